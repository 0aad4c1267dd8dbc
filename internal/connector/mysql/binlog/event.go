package binlog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"strconv"
	"strings"
)

// EventType is the type byte of an event header.
type EventType uint8

// Event types dualwrite reads; others are passed through with a nil Body.
const (
	QueryEvent             EventType = 2
	StopEvent              EventType = 3
	RotateEvent            EventType = 4
	FormatDescriptionEvent EventType = 15
	XIDEvent               EventType = 16
	TableMapEvent          EventType = 19
	WriteRowsEventV1       EventType = 23
	UpdateRowsEventV1      EventType = 24
	DeleteRowsEventV1      EventType = 25
	HeartbeatEvent         EventType = 27
	RowsQueryEvent         EventType = 29
	WriteRowsEventV2       EventType = 30
	UpdateRowsEventV2      EventType = 31
	DeleteRowsEventV2      EventType = 32
	MySQLGTIDEvent         EventType = 33
	AnonymousGTIDEvent     EventType = 34
	PreviousGTIDsEvent     EventType = 35
	TransactionPayload     EventType = 40
	AnnotateRowsEvent      EventType = 160
	BinlogCheckpointEvent  EventType = 161
	MariaGTIDEvent         EventType = 162
	MariaGTIDListEvent     EventType = 163
	StartEncryptionEvent   EventType = 164
	QueryCompressedEvent   EventType = 165
	// 166..171 are MariaDB's compressed row events (log_bin_compress=ON).
	firstCompressedRows EventType = 166
	lastCompressedRows  EventType = 171
)

// Header flags.
const (
	// FlagSkipReplication is LOG_EVENT_SKIP_REPLICATION_F: the event was
	// written by a session with skip_replication=1 (MariaDB).
	FlagSkipReplication uint16 = 0x8000
	// FlagArtificial marks events the server made up for the dump (the
	// fake ROTATE at the start), which are not in the log file.
	FlagArtificial uint16 = 0x20
)

// MariaDB GTID event flags.
const (
	GTIDStandalone  = 1
	GTIDGroupCommit = 2
	GTIDDDL         = 32
)

const headerLen = 19

// Header is the common v4 event header.
type Header struct {
	Timestamp uint32
	Type      EventType
	ServerID  uint32
	Size      uint32
	// LogPos is the offset just after this event in its log file (0 for
	// artificial events).
	LogPos uint32
	Flags  uint16
}

// Event is one decoded event. Body is one of *Rotate, *FormatDescription,
// *Query, *XID, *GTID, *TableMap, *Rows, *Annotate, *Heartbeat, or nil for
// event types dualwrite does not need.
type Event struct {
	Header
	Body any
}

// Rotate says the log continues in another file.
type Rotate struct {
	Position uint64
	File     string
}

// FormatDescription describes the events of a log file.
type FormatDescription struct {
	BinlogVersion  uint16
	ServerVersion  string
	HeaderLength   uint8
	PostHeaderLens []byte
	ChecksumAlg    byte // 0 none, 1 CRC32
}

// Query is a statement event: BEGIN, COMMIT, DDL.
type Query struct {
	Schema string
	SQL    string
}

// XID ends an XA-capable (InnoDB) transaction.
type XID struct{ ID uint64 }

// GTID starts an event group. For MariaDB, ID is "domain-server-seq"; for
// MySQL "uuid:gno".
type GTID struct {
	ID    string
	Flags uint8
	// Standalone groups (MariaDB DDL) have no terminating COMMIT or XID.
	Standalone bool
}

// Annotate carries the statement that produced the following row events.
type Annotate struct{ SQL string }

// Heartbeat is sent by the server when the log is idle.
type Heartbeat struct{ File string }

// Parser decodes the event stream of one dump. It remembers the format
// description and the table maps.
type Parser struct {
	fde    *FormatDescription
	tables map[uint64]*TableMap
}

// NewParser returns a parser for the start of a dump.
func NewParser() *Parser { return &Parser{tables: map[uint64]*TableMap{}} }

// ChecksumError means an event's CRC32 did not match its bytes.
var ErrChecksum = errors.New("binlog event checksum mismatch")

// Parse decodes one event (without the leading OK byte).
func (p *Parser) Parse(data []byte) (*Event, error) {
	if len(data) < headerLen {
		return nil, fmt.Errorf("event of %d bytes is shorter than its header", len(data))
	}
	r := reader{b: data}
	h := Header{
		Timestamp: r.uint32(),
		Type:      EventType(r.byte1()),
		ServerID:  r.uint32(),
		Size:      r.uint32(),
		LogPos:    r.uint32(),
		Flags:     r.uint16(),
	}
	if int(h.Size) != len(data) {
		return nil, fmt.Errorf("event type %d: header says %d bytes, got %d", h.Type, h.Size, len(data))
	}
	body := data[headerLen:]
	ev := &Event{Header: h}
	if h.Type == FormatDescriptionEvent {
		fde, err := parseFDE(data)
		if err != nil {
			return nil, err
		}
		p.fde = fde
		// A new format description starts a new log file: table ids
		// restart.
		p.tables = map[uint64]*TableMap{}
		ev.Body = fde
		return ev, nil
	}
	// Strip and verify the checksum. Before the format description (the
	// fake ROTATE at the start of a dump) the algorithm is unknown: we
	// asked for CRC32, so accept the trailing 4 bytes as a checksum only
	// when they match.
	switch {
	case p.fde != nil && p.fde.ChecksumAlg == 1:
		if len(body) < 4 {
			return nil, fmt.Errorf("event type %d: too short for its checksum", h.Type)
		}
		if err := verifyCRC(data); err != nil {
			return nil, fmt.Errorf("event type %d at %d: %w", h.Type, h.LogPos, err)
		}
		body = body[:len(body)-4]
	case p.fde == nil && len(body) >= 4 && verifyCRC(data) == nil:
		body = body[:len(body)-4]
	}
	var err error
	switch h.Type {
	case RotateEvent:
		r := reader{b: body}
		rot := &Rotate{Position: r.uint64()}
		rot.File = string(r.rest())
		ev.Body, err = rot, r.err
	case QueryEvent:
		ev.Body, err = p.parseQuery(body)
	case XIDEvent:
		r := reader{b: body}
		ev.Body, err = &XID{ID: r.uint64()}, r.err
	case MariaGTIDEvent:
		r := reader{b: body}
		seq := r.uint64()
		domain := r.uint32()
		flags := r.byte1()
		ev.Body, err = &GTID{
			ID:         fmt.Sprintf("%d-%d-%d", domain, h.ServerID, seq),
			Flags:      flags,
			Standalone: flags&GTIDStandalone != 0,
		}, r.err
	case MySQLGTIDEvent:
		r := reader{b: body}
		flags := r.byte1()
		sid := r.bytes(16)
		gno := r.uint64()
		if r.err == nil {
			ev.Body = &GTID{ID: formatUUID(sid) + ":" + strconv.FormatUint(gno, 10), Flags: flags}
		}
		err = r.err
	case AnnotateRowsEvent, RowsQueryEvent:
		b := body
		if h.Type == RowsQueryEvent && len(b) > 0 {
			b = b[1:] // one length byte, then the (possibly truncated) text
		}
		ev.Body = &Annotate{SQL: string(b)}
	case HeartbeatEvent:
		ev.Body = &Heartbeat{File: string(body)}
	case TableMapEvent:
		var tm *TableMap
		tm, err = p.parseTableMap(body)
		if err == nil {
			p.tables[tm.TableID] = tm
			ev.Body = tm
		}
	case WriteRowsEventV1, UpdateRowsEventV1, DeleteRowsEventV1,
		WriteRowsEventV2, UpdateRowsEventV2, DeleteRowsEventV2:
		ev.Body, err = p.parseRows(h.Type, body)
	case TransactionPayload:
		err = errors.New("compressed transaction payloads (binlog_transaction_compression=ON) are not supported; turn the setting off")
	case QueryCompressedEvent:
		err = errors.New("compressed binlog events (log_bin_compress=ON) are not supported; turn the setting off")
	default:
		if h.Type >= firstCompressedRows && h.Type <= lastCompressedRows {
			err = errors.New("compressed row events (log_bin_compress=ON) are not supported; turn the setting off")
		}
	}
	if err != nil {
		return nil, fmt.Errorf("decode event type %d ending at %d: %w", h.Type, h.LogPos, err)
	}
	return ev, nil
}

func verifyCRC(data []byte) error {
	n := len(data) - 4
	want := binary.LittleEndian.Uint32(data[n:])
	if got := crc32.ChecksumIEEE(data[:n]); got != want {
		return fmt.Errorf("%w: computed %08x, event carries %08x", ErrChecksum, got, want)
	}
	return nil
}

func parseFDE(data []byte) (*FormatDescription, error) {
	r := reader{b: data[headerLen:]}
	f := &FormatDescription{BinlogVersion: r.uint16()}
	f.ServerVersion = strings.TrimRight(string(r.bytes(50)), "\x00")
	r.skip(4)
	f.HeaderLength = r.byte1()
	rest := r.rest()
	if r.err != nil {
		return nil, fmt.Errorf("format description: %w", r.err)
	}
	if f.BinlogVersion != 4 {
		return nil, fmt.Errorf("binlog version %d not supported (want 4)", f.BinlogVersion)
	}
	if f.HeaderLength != headerLen {
		return nil, fmt.Errorf("event header length %d not supported", f.HeaderLength)
	}
	if checksumCapable(f.ServerVersion) {
		if len(rest) < 5 {
			return nil, errors.New("format description: too short for its checksum algorithm")
		}
		f.ChecksumAlg = rest[len(rest)-5]
		rest = rest[:len(rest)-5]
		if f.ChecksumAlg == 1 {
			if err := verifyCRC(data); err != nil {
				return nil, fmt.Errorf("format description: %w", err)
			}
		} else if f.ChecksumAlg != 0 {
			return nil, fmt.Errorf("binlog checksum algorithm %d not supported", f.ChecksumAlg)
		}
	}
	f.PostHeaderLens = append([]byte(nil), rest...)
	return f, nil
}

// checksumCapable reports whether a server writes the checksum algorithm
// byte into its format description (MySQL 5.6.1+, MariaDB 5.3+).
func checksumCapable(version string) bool {
	var major, minor, patch int
	fmt.Sscanf(version, "%d.%d.%d", &major, &minor, &patch)
	if strings.Contains(strings.ToLower(version), "mariadb") {
		return major > 5 || (major == 5 && minor >= 3)
	}
	return major > 5 || (major == 5 && (minor > 6 || (minor == 6 && patch >= 1)))
}

func (p *Parser) postHeaderLen(t EventType, def int) int {
	if p.fde != nil && int(t) >= 1 && int(t) <= len(p.fde.PostHeaderLens) {
		return int(p.fde.PostHeaderLens[t-1])
	}
	return def
}

func (p *Parser) parseQuery(body []byte) (*Query, error) {
	phl := p.postHeaderLen(QueryEvent, 13)
	r := reader{b: body}
	r.skip(4 + 4) // thread id, execution time
	schemaLen := int(r.byte1())
	r.skip(2) // error code
	statusLen := 0
	if phl >= 13 {
		statusLen = int(r.uint16())
	}
	r.skip(phl - 13)
	r.skip(statusLen)
	schema := string(r.bytes(schemaLen))
	r.skip(1)
	q := &Query{Schema: schema, SQL: string(r.rest())}
	return q, r.err
}

func formatUUID(b []byte) string {
	const hex = "0123456789abcdef"
	var sb strings.Builder
	for i, c := range b {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			sb.WriteByte('-')
		}
		sb.WriteByte(hex[c>>4])
		sb.WriteByte(hex[c&15])
	}
	return sb.String()
}
