// Package change holds the value types that travel along the data path:
// a captured source transaction (Tx), its row changes (Change), the source
// log position (Position) and the canonical column values (Row).
//
// Every connector converts its driver's values into the canonical forms
// listed on Row so that the engine can compare and map values without
// knowing which database they came from.
package change

import (
	"fmt"
	"time"
)

// Op is the kind of row change.
type Op uint8

const (
	Insert Op = iota + 1
	Update
	Delete
	// Truncate empties the table: the change carries no rows. The engine
	// handles it per map as the map's on_truncate says.
	Truncate
)

func (o Op) String() string {
	switch o {
	case Insert:
		return "insert"
	case Update:
		return "update"
	case Delete:
		return "delete"
	case Truncate:
		return "truncate"
	}
	return fmt.Sprintf("op(%d)", uint8(o))
}

// Row maps column names to canonical values. The canonical Go types are:
//
//	nil          SQL NULL
//	bool
//	int64        every integer type (unsigned values above MaxInt64 use Decimal)
//	float64      float/double/real
//	Decimal      numeric/decimal, exact digits as text, e.g. "12.3400"
//	string       text, varchar, char, uuid (lower case), enum, json (as text)
//	[]byte       bytea, blob, binary
//	time.Time    date, timestamp, datetime; always UTC
//
// Connectors must produce only these types; the mapping layer relies on it.
type Row map[string]any

// Decimal is an exact numeric value in its textual form.
type Decimal string

// Clone returns a shallow copy of r.
func (r Row) Clone() Row {
	if r == nil {
		return nil
	}
	c := make(Row, len(r))
	for k, v := range r {
		c[k] = v
	}
	return c
}

// Change is one row change in a source transaction.
type Change struct {
	// Table is the source table name as written in the configuration.
	Table string
	Op    Op
	// Old holds the row before an update or delete. It always holds the
	// columns of the table's primary key or replica identity; when
	// OldComplete is true it holds every column.
	Old         Row
	OldComplete bool
	// New holds the full row after an insert or update. Columns whose
	// value the log did not carry (PostgreSQL unchanged TOAST values) are
	// absent from New and listed in Unchanged.
	New       Row
	Unchanged []string
	// At is the change's own commit time when the source records one per
	// change (SQLite triggers, which may deliver several source
	// transactions as one Tx); zero means Tx.CommitTime.
	At time.Time
}

// Position is a point in a side's change log. LSN orders positions within
// one side: a larger LSN is later. Sub orders the parts of one source
// transaction that was split into several target transactions; a
// transaction that was not split has Sub 0. Token carries what a connector
// needs beyond the LSN to resume (a binlog file name, a GTID), and is
// opaque to the engine.
type Position struct {
	LSN   uint64 `json:"lsn"`
	Sub   uint32 `json:"sub,omitempty"`
	Token string `json:"token,omitempty"`
}

// IsZero reports whether p is the zero position ("from now" when used as a
// starting point).
func (p Position) IsZero() bool { return p.LSN == 0 && p.Sub == 0 && p.Token == "" }

// Less reports whether p is before q.
func (p Position) Less(q Position) bool {
	if p.LSN != q.LSN {
		return p.LSN < q.LSN
	}
	return p.Sub < q.Sub
}

func (p Position) String() string {
	if p.Token != "" {
		return fmt.Sprintf("%d.%d(%s)", p.LSN, p.Sub, p.Token)
	}
	return fmt.Sprintf("%d.%d", p.LSN, p.Sub)
}

// Tx is one committed source transaction, restricted to the watched tables
// and with the engine's own writes removed.
type Tx struct {
	// ID is the source's transaction identifier (xid, GTID), for logs only.
	ID string
	// Position is the position at the end of this transaction. Acknowledging
	// it acknowledges this and every earlier transaction.
	Position Position
	// CommitTime is the source commit time, used by the conflict rule.
	CommitTime time.Time
	Changes    []Change
}
