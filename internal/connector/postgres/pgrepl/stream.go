package pgrepl

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// The connection passed to these functions must have been opened with the
// run-time parameter replication=database.

// System is the answer to IDENTIFY_SYSTEM.
type System struct {
	SystemID string
	Timeline int32
	XLogPos  LSN
	DBName   string
}

// IdentifySystem runs IDENTIFY_SYSTEM.
func IdentifySystem(ctx context.Context, conn *pgconn.PgConn) (System, error) {
	rows, err := simpleRows(ctx, conn, "IDENTIFY_SYSTEM")
	if err != nil {
		return System{}, fmt.Errorf("identify system: %w", err)
	}
	if len(rows) != 1 || len(rows[0]) < 4 {
		return System{}, fmt.Errorf("identify system: unexpected answer %q", rows)
	}
	r := rows[0]
	var tl int32
	if _, err := fmt.Sscan(r[1], &tl); err != nil {
		return System{}, fmt.Errorf("identify system: timeline %q: %w", r[1], err)
	}
	pos, err := ParseLSN(r[2])
	if err != nil {
		return System{}, fmt.Errorf("identify system: %w", err)
	}
	return System{SystemID: r[0], Timeline: tl, XLogPos: pos, DBName: r[3]}, nil
}

// CreateLogicalSlot runs CREATE_REPLICATION_SLOT name LOGICAL pgoutput
// without exporting a snapshot, and returns the slot's consistent point.
func CreateLogicalSlot(ctx context.Context, conn *pgconn.PgConn, slot string) (LSN, error) {
	sql := fmt.Sprintf("CREATE_REPLICATION_SLOT %s LOGICAL pgoutput (SNAPSHOT 'nothing')", QuoteIdent(slot))
	rows, err := simpleRows(ctx, conn, sql)
	if err != nil {
		return 0, fmt.Errorf("create replication slot %s: %w", slot, err)
	}
	if len(rows) != 1 || len(rows[0]) < 2 {
		return 0, fmt.Errorf("create replication slot %s: unexpected answer %q", slot, rows)
	}
	return ParseLSN(rows[0][1])
}

// CreateLogicalSlotExport runs CREATE_REPLICATION_SLOT name LOGICAL
// pgoutput exporting a snapshot, and returns the slot's consistent point and
// the snapshot's name. The snapshot shows the data exactly as of the
// consistent point: every later commit is in the slot's stream. It can be
// imported (SET TRANSACTION SNAPSHOT) only while conn stays open and runs
// no other command.
func CreateLogicalSlotExport(ctx context.Context, conn *pgconn.PgConn, slot string) (LSN, string, error) {
	sql := fmt.Sprintf("CREATE_REPLICATION_SLOT %s LOGICAL pgoutput (SNAPSHOT 'export')", QuoteIdent(slot))
	rows, err := simpleRows(ctx, conn, sql)
	if err != nil {
		return 0, "", fmt.Errorf("create replication slot %s: %w", slot, err)
	}
	if len(rows) != 1 || len(rows[0]) < 3 || rows[0][2] == "" {
		return 0, "", fmt.Errorf("create replication slot %s: unexpected answer %q", slot, rows)
	}
	lsn, err := ParseLSN(rows[0][1])
	return lsn, rows[0][2], err
}

// DropSlot runs DROP_REPLICATION_SLOT name WAIT, which waits until no
// walsender uses the slot.
func DropSlot(ctx context.Context, conn *pgconn.PgConn, slot string) error {
	if _, err := simpleRows(ctx, conn, "DROP_REPLICATION_SLOT "+QuoteIdent(slot)+" WAIT"); err != nil {
		return fmt.Errorf("drop replication slot %s: %w", slot, err)
	}
	return nil
}

// StartOptions are pgoutput's START_REPLICATION options.
type StartOptions struct {
	Publications []string
	// Messages asks for pg_logical_emit_message messages.
	Messages bool
}

// StartReplication runs START_REPLICATION SLOT slot LOGICAL start with
// pgoutput protocol version 1 and waits for the copy-both mode. A zero
// start resumes at the slot's confirmed_flush_lsn.
func StartReplication(ctx context.Context, conn *pgconn.PgConn, slot string, start LSN, o StartOptions) error {
	pubs := make([]string, len(o.Publications))
	for i, p := range o.Publications {
		pubs[i] = QuoteIdent(p)
	}
	sql := fmt.Sprintf("START_REPLICATION SLOT %s LOGICAL %s (proto_version '1', publication_names %s, messages '%t')",
		QuoteIdent(slot), start, QuoteLiteral(strings.Join(pubs, ",")), o.Messages)
	conn.Frontend().Send(&pgproto3.Query{String: sql})
	if err := conn.Frontend().Flush(); err != nil {
		return fmt.Errorf("start replication: send: %w", err)
	}
	for {
		msg, err := conn.ReceiveMessage(ctx)
		if err != nil {
			return fmt.Errorf("start replication: %w", err)
		}
		switch m := msg.(type) {
		case *pgproto3.CopyBothResponse:
			return nil
		case *pgproto3.ErrorResponse:
			return fmt.Errorf("start replication: %w", pgconn.ErrorResponseToPgError(m))
		case *pgproto3.NoticeResponse, *pgproto3.ParameterStatus:
		default:
			return fmt.Errorf("start replication: unexpected %T", msg)
		}
	}
}

// XLogData is a chunk of decoded log sent by the server.
type XLogData struct {
	WALStart   LSN
	ServerEnd  LSN
	ServerTime time.Time
	Data       []byte // a pgoutput message; valid until the next receive
}

// Keepalive is the server's primary keepalive message.
type Keepalive struct {
	ServerEnd      LSN
	ServerTime     time.Time
	ReplyRequested bool
}

// ParseCopyData parses the body of a CopyData message received in
// copy-both mode: an *XLogData or a *Keepalive.
func ParseCopyData(b []byte) (any, error) {
	if len(b) == 0 {
		return nil, errors.New("parse copy data: empty")
	}
	switch b[0] {
	case 'w':
		if len(b) < 25 {
			return nil, errors.New("parse XLogData: too short")
		}
		return &XLogData{
			WALStart:   LSN(binary.BigEndian.Uint64(b[1:])),
			ServerEnd:  LSN(binary.BigEndian.Uint64(b[9:])),
			ServerTime: TimeFromMicros(int64(binary.BigEndian.Uint64(b[17:]))),
			Data:       b[25:],
		}, nil
	case 'k':
		if len(b) < 18 {
			return nil, errors.New("parse keepalive: too short")
		}
		return &Keepalive{
			ServerEnd:      LSN(binary.BigEndian.Uint64(b[1:])),
			ServerTime:     TimeFromMicros(int64(binary.BigEndian.Uint64(b[9:]))),
			ReplyRequested: b[17] == 1,
		}, nil
	}
	return nil, fmt.Errorf("parse copy data: unknown type %q", b[0])
}

// StandbyStatus builds a standby status update ('r') reporting pos as
// written, flushed and applied.
func StandbyStatus(pos LSN, now time.Time, replyRequested bool) []byte {
	b := make([]byte, 34)
	b[0] = 'r'
	binary.BigEndian.PutUint64(b[1:], uint64(pos))
	binary.BigEndian.PutUint64(b[9:], uint64(pos))
	binary.BigEndian.PutUint64(b[17:], uint64(pos))
	binary.BigEndian.PutUint64(b[25:], uint64(MicrosFromTime(now)))
	if replyRequested {
		b[33] = 1
	}
	return b
}

// SendStandbyStatus sends a standby status update: the server may then
// release the log before pos (the slot's confirmed_flush_lsn).
func SendStandbyStatus(conn *pgconn.PgConn, pos LSN, now time.Time) error {
	conn.Frontend().Send(&pgproto3.CopyData{Data: StandbyStatus(pos, now, false)})
	if err := conn.Frontend().Flush(); err != nil {
		return fmt.Errorf("send standby status: %w", err)
	}
	return nil
}

// simpleRows runs a replication command and returns its rows as text.
func simpleRows(ctx context.Context, conn *pgconn.PgConn, sql string) ([][]string, error) {
	results, err := conn.Exec(ctx, sql).ReadAll()
	if err != nil {
		return nil, err
	}
	var out [][]string
	for _, r := range results {
		if r.Err != nil {
			return nil, r.Err
		}
		for _, row := range r.Rows {
			s := make([]string, len(row))
			for i, v := range row {
				s[i] = string(v)
			}
			out = append(out, s)
		}
	}
	return out, nil
}

// QuoteIdent quotes an SQL identifier.
func QuoteIdent(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

// QuoteLiteral quotes an SQL string literal (standard_conforming_strings).
func QuoteLiteral(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}
