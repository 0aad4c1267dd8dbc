package pgrepl

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// Message is one decoded pgoutput message.
type Message interface{ pgoutput() }

// Begin starts a transaction.
type Begin struct {
	FinalLSN   LSN // LSN of the commit record
	CommitTime time.Time
	XID        uint32
}

// Commit ends a transaction.
type Commit struct {
	Flags      uint8
	CommitLSN  LSN // LSN of the commit record
	EndLSN     LSN // end of the commit record: the position to resume after
	CommitTime time.Time
}

// Origin names the replication origin a transaction was replayed from.
type Origin struct {
	CommitLSN LSN
	Name      string
}

// RelationColumn is one column of a Relation.
type RelationColumn struct {
	Key     bool // part of the replica identity
	Name    string
	TypeOID uint32
	TypMod  int32
}

// Relation describes a table. A later Relation with the same ID replaces
// the earlier one (the table was altered).
type Relation struct {
	ID              uint32
	Namespace       string
	Name            string
	ReplicaIdentity uint8 // 'd' default, 'n' nothing, 'f' full, 'i' index
	Columns         []RelationColumn
}

// Type describes a data type used by a following Relation.
type Type struct {
	OID       uint32
	Namespace string
	Name      string
}

// Tuple column kinds.
const (
	TupleNull      = 'n'
	TupleUnchanged = 'u' // an unchanged TOASTed value the log does not carry
	TupleText      = 't'
	TupleBinary    = 'b'
)

// TupleColumn is one column value of a tuple.
type TupleColumn struct {
	Kind byte
	Data []byte
}

// Tuple is the column values of one row, in the relation's column order.
type Tuple []TupleColumn

// Insert is an inserted row.
type Insert struct {
	RelationID uint32
	New        Tuple
}

// Update is an updated row. OldKind is 0 when the message carries no old
// tuple, 'K' when Old holds only the replica identity key columns (others
// are null), 'O' when Old is the full old row (REPLICA IDENTITY FULL).
type Update struct {
	RelationID uint32
	OldKind    byte
	Old        Tuple
	New        Tuple
}

// Delete is a deleted row; OldKind is 'K' or 'O' as for Update.
type Delete struct {
	RelationID uint32
	OldKind    byte
	Old        Tuple
}

// Truncate empties one or more tables.
type Truncate struct {
	Options     uint8 // 1 CASCADE, 2 RESTART IDENTITY
	RelationIDs []uint32
}

// LogicalMessage is a message written by pg_logical_emit_message.
type LogicalMessage struct {
	Transactional bool
	LSN           LSN
	Prefix        string
	Content       []byte
}

func (Begin) pgoutput()          {}
func (Commit) pgoutput()         {}
func (Origin) pgoutput()         {}
func (Relation) pgoutput()       {}
func (Type) pgoutput()           {}
func (Insert) pgoutput()         {}
func (Update) pgoutput()         {}
func (Delete) pgoutput()         {}
func (Truncate) pgoutput()       {}
func (LogicalMessage) pgoutput() {}

var errShort = errors.New("message too short")

// reader walks a message body.
type reader struct {
	b   []byte
	err error
}

func (r *reader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || len(r.b) < n {
		r.err = errShort
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *reader) u8() uint8 {
	b := r.take(1)
	if b == nil {
		return 0
	}
	return b[0]
}

func (r *reader) u16() uint16 {
	b := r.take(2)
	if b == nil {
		return 0
	}
	return binary.BigEndian.Uint16(b)
}

func (r *reader) u32() uint32 {
	b := r.take(4)
	if b == nil {
		return 0
	}
	return binary.BigEndian.Uint32(b)
}

func (r *reader) u64() uint64 {
	b := r.take(8)
	if b == nil {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}

// str reads a NUL-terminated string.
func (r *reader) str() string {
	if r.err != nil {
		return ""
	}
	for i, c := range r.b {
		if c == 0 {
			s := string(r.b[:i])
			r.b = r.b[i+1:]
			return s
		}
	}
	r.err = errors.New("unterminated string")
	return ""
}

func (r *reader) tuple() Tuple {
	n := int(r.u16())
	if r.err != nil {
		return nil
	}
	t := make(Tuple, n)
	for i := range t {
		kind := r.u8()
		switch kind {
		case TupleNull, TupleUnchanged:
			t[i] = TupleColumn{Kind: kind}
		case TupleText, TupleBinary:
			l := int32(r.u32())
			data := r.take(int(l))
			// Copy: the caller's buffer is reused by the connection.
			t[i] = TupleColumn{Kind: kind, Data: append([]byte{}, data...)}
		default:
			if r.err == nil {
				r.err = fmt.Errorf("unknown tuple column kind %q", kind)
			}
			return nil
		}
	}
	return t
}

// Decode parses one pgoutput message (protocol version 1, with messages
// enabled). Data is not retained.
func Decode(data []byte) (Message, error) {
	if len(data) == 0 {
		return nil, errors.New("decode pgoutput: empty message")
	}
	r := &reader{b: data[1:]}
	var m Message
	switch data[0] {
	case 'B':
		m = Begin{FinalLSN: LSN(r.u64()), CommitTime: TimeFromMicros(int64(r.u64())), XID: r.u32()}
	case 'C':
		m = Commit{Flags: r.u8(), CommitLSN: LSN(r.u64()), EndLSN: LSN(r.u64()), CommitTime: TimeFromMicros(int64(r.u64()))}
	case 'O':
		m = Origin{CommitLSN: LSN(r.u64()), Name: r.str()}
	case 'R':
		rel := Relation{ID: r.u32(), Namespace: r.str(), Name: r.str(), ReplicaIdentity: r.u8()}
		n := int(r.u16())
		if r.err == nil {
			rel.Columns = make([]RelationColumn, n)
			for i := range rel.Columns {
				rel.Columns[i] = RelationColumn{Key: r.u8()&1 == 1, Name: r.str(), TypeOID: r.u32(), TypMod: int32(r.u32())}
			}
		}
		m = rel
	case 'Y':
		m = Type{OID: r.u32(), Namespace: r.str(), Name: r.str()}
	case 'I':
		ins := Insert{RelationID: r.u32()}
		if k := r.u8(); r.err == nil && k != 'N' {
			return nil, fmt.Errorf("decode pgoutput insert: expected 'N', got %q", k)
		}
		ins.New = r.tuple()
		m = ins
	case 'U':
		up := Update{RelationID: r.u32()}
		k := r.u8()
		if k == 'K' || k == 'O' {
			up.OldKind = k
			up.Old = r.tuple()
			k = r.u8()
		}
		if r.err == nil && k != 'N' {
			return nil, fmt.Errorf("decode pgoutput update: expected 'N', got %q", k)
		}
		up.New = r.tuple()
		m = up
	case 'D':
		del := Delete{RelationID: r.u32()}
		del.OldKind = r.u8()
		if r.err == nil && del.OldKind != 'K' && del.OldKind != 'O' {
			return nil, fmt.Errorf("decode pgoutput delete: expected 'K' or 'O', got %q", del.OldKind)
		}
		del.Old = r.tuple()
		m = del
	case 'T':
		n := int(r.u32())
		tr := Truncate{Options: r.u8()}
		if r.err == nil && n <= len(r.b)/4 {
			tr.RelationIDs = make([]uint32, n)
			for i := range tr.RelationIDs {
				tr.RelationIDs[i] = r.u32()
			}
		} else if r.err == nil {
			r.err = errShort
		}
		m = tr
	case 'M':
		lm := LogicalMessage{Transactional: r.u8()&1 == 1, LSN: LSN(r.u64()), Prefix: r.str()}
		l := int32(r.u32())
		lm.Content = append([]byte(nil), r.take(int(l))...)
		m = lm
	default:
		return nil, fmt.Errorf("decode pgoutput: unknown message type %q", data[0])
	}
	if r.err != nil {
		return nil, fmt.Errorf("decode pgoutput %q message: %w", data[0], r.err)
	}
	return m, nil
}
