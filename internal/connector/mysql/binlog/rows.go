package binlog

import (
	"fmt"
	"math/bits"
)

// Column types as written in TABLE_MAP events.
const (
	TypeDecimal    byte = 0
	TypeTiny       byte = 1
	TypeShort      byte = 2
	TypeLong       byte = 3
	TypeFloat      byte = 4
	TypeDouble     byte = 5
	TypeNull       byte = 6
	TypeTimestamp  byte = 7
	TypeLongLong   byte = 8
	TypeInt24      byte = 9
	TypeDate       byte = 10
	TypeTime       byte = 11
	TypeDateTime   byte = 12
	TypeYear       byte = 13
	TypeNewDate    byte = 14
	TypeVarchar    byte = 15
	TypeBit        byte = 16
	TypeTimestamp2 byte = 17
	TypeDateTime2  byte = 18
	TypeTime2      byte = 19
	TypeJSON       byte = 245
	TypeNewDecimal byte = 246
	TypeEnum       byte = 247
	TypeSet        byte = 248
	TypeTinyBlob   byte = 249
	TypeMediumBlob byte = 250
	TypeLongBlob   byte = 251
	TypeBlob       byte = 252
	TypeVarString  byte = 253
	TypeString     byte = 254
	TypeGeometry   byte = 255
)

// ColumnType is a column's binlog type with its metadata.
type ColumnType struct {
	// Type is the real type: for CHAR columns written as STRING with an
	// ENUM or SET real type, it is TypeEnum or TypeSet.
	Type byte
	// Meta is the type's metadata: max byte length (VARCHAR, STRING),
	// length-prefix bytes (BLOB, JSON, GEOMETRY), pack length (ENUM, SET,
	// FLOAT, DOUBLE), fractional digits (TIME2, DATETIME2, TIMESTAMP2).
	Meta uint16
	// Precision and Scale of NEWDECIMAL; Bits of BIT.
	Precision, Scale uint8
	Bits             uint16
}

// TableMap maps a table id to a table and its column types.
type TableMap struct {
	TableID  uint64
	Schema   string
	Table    string
	Columns  []ColumnType
	Nullable []bool
}

func (p *Parser) parseTableMap(body []byte) (*TableMap, error) {
	r := reader{b: body}
	tm := &TableMap{}
	if p.postHeaderLen(TableMapEvent, 8) == 6 {
		tm.TableID = uint64(r.uint32())
	} else {
		tm.TableID = r.uint48()
	}
	r.skip(2) // flags
	tm.Schema = string(r.bytes(int(r.byte1())))
	r.skip(1)
	tm.Table = string(r.bytes(int(r.byte1())))
	r.skip(1)
	n := int(r.lenEnc())
	if r.err != nil {
		return nil, fmt.Errorf("table map: %w", r.err)
	}
	if n > len(r.b) {
		return nil, fmt.Errorf("table map of %s.%s: %d columns in a %d-byte event", tm.Schema, tm.Table, n, len(body))
	}
	types := r.bytes(n)
	meta := reader{b: r.bytes(int(r.lenEnc()))}
	tm.Columns = make([]ColumnType, n)
	for i, t := range types {
		c := ColumnType{Type: t}
		switch t {
		case TypeFloat, TypeDouble, TypeBlob, TypeTinyBlob, TypeMediumBlob, TypeLongBlob,
			TypeGeometry, TypeJSON, TypeTimestamp2, TypeDateTime2, TypeTime2:
			c.Meta = uint16(meta.byte1())
		case TypeVarchar, TypeVarString:
			c.Meta = meta.uint16()
		case TypeBit:
			rem := uint16(meta.byte1())
			nbytes := uint16(meta.byte1())
			c.Bits = nbytes*8 + rem
			c.Meta = nbytes
		case TypeNewDecimal:
			c.Precision = meta.byte1()
			c.Scale = meta.byte1()
		case TypeString, TypeEnum, TypeSet:
			b0, b1 := meta.byte1(), meta.byte1()
			real, length := b0, uint16(b1)
			if b0&0x30 != 0x30 {
				// Lengths above 255 keep their high bits in b0.
				real = b0 | 0x30
				length |= uint16((b0&0x30)^0x30) << 4
			}
			c.Type, c.Meta = real, length
		}
		tm.Columns[i] = c
	}
	if meta.err != nil {
		return nil, fmt.Errorf("table map of %s.%s: column metadata: %w", tm.Schema, tm.Table, meta.err)
	}
	nulls := r.bytes((n + 7) / 8)
	if r.err != nil {
		return nil, fmt.Errorf("table map of %s.%s: %w", tm.Schema, tm.Table, r.err)
	}
	tm.Nullable = make([]bool, n)
	for i := range tm.Nullable {
		tm.Nullable[i] = bitSet(nulls, i)
	}
	// Optional metadata (binlog_row_metadata=FULL) follows; it is not
	// needed: names, signedness and charsets come from information_schema.
	return tm, nil
}

// RowsKind says what a rows event does.
type RowsKind uint8

const (
	RowsInsert RowsKind = iota + 1
	RowsUpdate
	RowsDelete
)

// absent marks a column that a row image does not carry
// (binlog_row_image other than FULL).
type absent struct{}

// Absent is the value of a column missing from a row image.
var Absent any = absent{}

// Rows is a decoded WRITE/UPDATE/DELETE_ROWS event. For updates, Rows
// holds before and after images in turn: Rows[0] before, Rows[1] after, and
// so on. Values are raw binlog values, see decodeValue.
type Rows struct {
	Kind  RowsKind
	Table *TableMap
	Rows  [][]any
}

func (p *Parser) parseRows(t EventType, body []byte) (*Rows, error) {
	r := reader{b: body}
	var id uint64
	if p.postHeaderLen(t, 8) == 6 {
		id = uint64(r.uint32())
	} else {
		id = r.uint48()
	}
	r.skip(2) // flags
	v2 := t >= WriteRowsEventV2 && t <= DeleteRowsEventV2
	if v2 {
		extra := int(r.uint16())
		r.skip(extra - 2)
	}
	ev := &Rows{}
	switch t {
	case WriteRowsEventV1, WriteRowsEventV2:
		ev.Kind = RowsInsert
	case UpdateRowsEventV1, UpdateRowsEventV2:
		ev.Kind = RowsUpdate
	default:
		ev.Kind = RowsDelete
	}
	tm, ok := p.tables[id]
	if !ok {
		return nil, fmt.Errorf("rows event for table id %d without a preceding table map", id)
	}
	ev.Table = tm
	n := int(r.lenEnc())
	if n != len(tm.Columns) {
		return nil, fmt.Errorf("rows event for %s.%s has %d columns, table map %d", tm.Schema, tm.Table, n, len(tm.Columns))
	}
	present := r.bytes((n + 7) / 8)
	presentAfter := present
	if ev.Kind == RowsUpdate {
		presentAfter = r.bytes((n + 7) / 8)
	}
	if r.err != nil {
		return nil, fmt.Errorf("rows event for %s.%s: %w", tm.Schema, tm.Table, r.err)
	}
	data := r.b
	for len(data) > 0 {
		row, rest, err := decodeImage(tm, present, data)
		if err != nil {
			return nil, err
		}
		ev.Rows = append(ev.Rows, row)
		data = rest
		if ev.Kind == RowsUpdate {
			row, rest, err = decodeImage(tm, presentAfter, data)
			if err != nil {
				return nil, err
			}
			ev.Rows = append(ev.Rows, row)
			data = rest
		}
	}
	return ev, nil
}

func bitSet(b []byte, i int) bool { return b[i/8]&(1<<(uint(i)%8)) != 0 }

func decodeImage(tm *TableMap, present, data []byte) ([]any, []byte, error) {
	n := len(tm.Columns)
	count := 0
	for _, b := range present {
		count += bits.OnesCount8(b)
	}
	nb := (count + 7) / 8
	if len(data) < nb {
		return nil, nil, fmt.Errorf("row image of %s.%s truncated", tm.Schema, tm.Table)
	}
	nulls := data[:nb]
	data = data[nb:]
	row := make([]any, n)
	k := 0
	for i := 0; i < n; i++ {
		if !bitSet(present, i) {
			row[i] = Absent
			continue
		}
		if bitSet(nulls, k) {
			row[i] = nil
			k++
			continue
		}
		k++
		v, used, err := decodeValue(tm.Columns[i], data)
		if err != nil {
			return nil, nil, fmt.Errorf("row of %s.%s column %d: %w", tm.Schema, tm.Table, i+1, err)
		}
		row[i] = v
		data = data[used:]
	}
	return row, data, nil
}
