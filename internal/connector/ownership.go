package connector

import (
	"context"
	"errors"

	"github.com/dualwrite/dualwrite/internal/change"
)

// ErrForeignPosition means a recorded applied position belongs to another
// source than the one bound (see ProgressKeeper.BindSource): its numbers
// mean nothing for this source and are never compared with its positions.
// Callers report it as DW2041; it is not a row's fault.
var ErrForeignPosition = errors.New("applied position recorded for another source")

// SourceIdentifier is implemented by connectors that can name the source
// their capture positions belong to: a PostgreSQL server's system
// identifier, database and slot; a MariaDB/MySQL server's identity and
// database; a SQLite database's own uuid. Two positions are comparable
// only when their sources' identities are equal.
type SourceIdentifier interface {
	SourceIdentity(ctx context.Context) (string, error)
}

// Progress is one stream's applied position as recorded on a target.
type Progress struct {
	Stream   string
	Position change.Position
	// Source is the identity of the source the position belongs to; ""
	// when it was recorded without one (by an earlier version).
	Source string
}

// ProgressKeeper is implemented by connectors whose progress table records
// the source of every applied position.
type ProgressKeeper interface {
	// BindSource sets the identity of the source whose changes this side
	// receives (the other side of the link). From then on Apply records it
	// with every position, and Apply and AppliedPosition refuse a stream
	// whose recorded position belongs to another source with an error
	// wrapping ErrForeignPosition. Unbound (""), nothing is checked.
	BindSource(source string)
	// Progress lists every applied position recorded on this side.
	Progress(ctx context.Context) ([]Progress, error)
	// ResetProgress forgets a stream's applied position (a deliberate
	// reset: the next batch of the stream is applied whatever its position).
	ResetProgress(ctx context.Context, stream string) error
	// StampProgress records source on the positions recorded without one
	// (a deliberate adoption after an upgrade). It returns how many.
	StampProgress(ctx context.Context, source string) (int64, error)
}

// OwnerKeeper is implemented by connectors that keep, in the database's
// dualwrite tables, which control store owns a link there.
type OwnerKeeper interface {
	// Owner returns the instance id of the control store owning link on
	// this database, "" when none does.
	Owner(ctx context.Context, link string) (string, error)
	// SetOwner records instance as the owner of link on this database.
	SetOwner(ctx context.Context, link, instance string) error
}

// CaptureObject is a server object capture or apply uses on a side.
type CaptureObject struct {
	Kind string // "slot", "publication", "origin"
	Name string
}

func (o CaptureObject) String() string { return o.Kind + " " + o.Name }

// ObjectKeeper is implemented by connectors whose capture keeps server
// objects (PostgreSQL: a replication slot, a publication, replication
// origins).
type ObjectKeeper interface {
	// CaptureObjects lists the objects of this connector's names that
	// exist on the server.
	CaptureObjects(ctx context.Context) ([]CaptureObject, error)
}
