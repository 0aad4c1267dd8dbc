package app

import (
	"context"
	"io"
	"log/slog"
	"time"

	"github.com/dualwrite/dualwrite/internal/config"
	"github.com/dualwrite/dualwrite/internal/connector"
	"github.com/dualwrite/dualwrite/internal/ownership"
	"github.com/dualwrite/dualwrite/internal/problem"
	"github.com/dualwrite/dualwrite/internal/store"
)

// OwnershipRequest is one `dualwrite ownership` command.
type OwnershipRequest struct {
	ConfigPath string
	Action     string // "show", "adopt", "drop", "reset"
	Side       string // drop; reset --capture
	Stream     string // reset --stream
	Out        io.Writer
}

func linkOf(cfg *config.Config, st *store.Store, left, right connector.Connector) ownership.Link {
	return ownership.Link{
		Name:       cfg.Link.Name,
		Sides:      [2]ownership.Side{{Name: cfg.Link.Left.Name, Conn: left}, {Name: cfg.Link.Right.Name, Conn: right}},
		Store:      st,
		ConfigPath: cfg.File,
	}
}

// Ownership runs a deliberate ownership action on the link of a
// configuration file. It takes the data_dir's lock, so it never runs
// beside the engine of that data_dir.
func Ownership(ctx context.Context, req OwnershipRequest, log *slog.Logger) error {
	cfg, err := config.Load(req.ConfigPath)
	if err != nil {
		return err
	}
	lock, err := store.LockDir(cfg.Engine.DataDir)
	if err != nil {
		return err
	}
	defer lock.Unlock()
	left, err := OpenSide(ctx, cfg, cfg.Link.Left, log)
	if err != nil {
		return err
	}
	defer left.Close()
	right, err := OpenSide(ctx, cfg, cfg.Link.Right, log)
	if err != nil {
		return err
	}
	defer right.Close()
	st, err := store.Open(ctx, cfg.Engine.DataDir, nil)
	if err != nil {
		return err
	}
	defer st.Close()
	l := linkOf(cfg, st, left, right)
	switch req.Action {
	case "show":
		return ownership.Show(ctx, l, req.Out)
	case "adopt":
		return ownership.Adopt(ctx, l, req.Out)
	case "drop":
		return ownership.Drop(ctx, l, req.Side, req.Out)
	case "reset":
		if req.Stream != "" {
			return ownership.ResetStream(ctx, l, req.Stream, req.Out)
		}
		return ownership.ResetCapture(ctx, l, req.Side, req.Out)
	}
	return problem.New(problem.Internal, "unknown ownership action %q", req.Action)
}

// ownershipCheckEvery is how often a running engine checks that it still
// owns its link.
const ownershipCheckEvery = 5 * time.Second

// watchOwnership ends the engine (through Done) when another data_dir has
// taken the link over deliberately, so that two engines never run one
// link. Close stops the watch and waits for it.
func (r *Running) watchOwnership(ctx context.Context, l ownership.Link) {
	ctx, r.stopWatch = context.WithCancel(ctx)
	r.watched = make(chan struct{})
	go func() {
		defer close(r.watched)
		t := time.NewTicker(ownershipCheckEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if err := ownership.Owned(ctx, l); err != nil {
				r.log.Error("link taken over by another data_dir; stopping", "link", l.Name, "err", err)
				r.done <- err
				return
			}
		}
	}()
}
