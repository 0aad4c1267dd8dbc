package ownership

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/dualwrite/dualwrite/internal/connector"
	"github.com/dualwrite/dualwrite/internal/problem"
)

// Adopt makes this control store the owner of the link on both databases,
// deliberately: the link's capture objects (slot, publication, origins) are
// kept at their positions, and positions recorded without a source (by an
// earlier version) are stamped with the side's current source. Positions
// recorded for another source stay refused: Reset forgets them.
func Adopt(ctx context.Context, l Link, out io.Writer) error {
	instance, err := l.Store.InstanceID(ctx)
	if err != nil {
		return err
	}
	ids, err := l.identities(ctx)
	if err != nil {
		return err
	}
	for i, s := range l.Sides {
		if ok, isKeeper := s.Conn.(connector.OwnerKeeper); isKeeper {
			if err := ok.SetOwner(ctx, l.Name, instance); err != nil {
				return fmt.Errorf("side %s: %w", s.Name, err)
			}
			fmt.Fprintf(out, "%s: link %s is owned by this data_dir (instance %s)\n", s.Name, l.Name, instance)
		}
		if okeep, isObj := s.Conn.(connector.ObjectKeeper); isObj {
			objs, err := okeep.CaptureObjects(ctx)
			if err != nil {
				return fmt.Errorf("side %s: %w", s.Name, err)
			}
			for _, o := range objs {
				fmt.Fprintf(out, "%s: adopted %s\n", s.Name, o)
			}
		}
		if src, err := l.Store.SideSource(ctx, s.Name); err != nil {
			return err
		} else if src == "" && ids[i] != "" {
			if err := l.Store.SetSideSource(ctx, s.Name, ids[i]); err != nil {
				return err
			}
		}
		if pk, ok := s.Conn.(connector.ProgressKeeper); ok && ids[1-i] != "" {
			n, err := pk.StampProgress(ctx, ids[1-i])
			if err != nil {
				return fmt.Errorf("side %s: %w", s.Name, err)
			}
			if n > 0 {
				fmt.Fprintf(out, "%s: %d applied positions without a source now belong to %s\n", s.Name, n, ids[1-i])
			}
		}
	}
	return nil
}

// Drop releases side's capture objects (slot, publication, origins),
// forgets its capture position in the control store and makes this control
// store the owner of the link there. The maps on the side need a resync.
func Drop(ctx context.Context, l Link, side string, out io.Writer) error {
	i, err := l.index(side)
	if err != nil {
		return err
	}
	s := l.Sides[i]
	instance, err := l.Store.InstanceID(ctx)
	if err != nil {
		return err
	}
	var objs []connector.CaptureObject
	if okeep, isObj := s.Conn.(connector.ObjectKeeper); isObj {
		if objs, err = okeep.CaptureObjects(ctx); err != nil {
			return fmt.Errorf("side %s: %w", s.Name, err)
		}
	}
	if r, ok := s.Conn.(connector.Releaser); ok {
		if err := r.Release(ctx); err != nil {
			return fmt.Errorf("side %s: %w", s.Name, err)
		}
	}
	for _, o := range objs {
		fmt.Fprintf(out, "%s: dropped %s\n", s.Name, o)
	}
	if err := l.Store.ResetSide(ctx, s.Name); err != nil {
		return err
	}
	fmt.Fprintf(out, "%s: capture position forgotten; run the side's maps again with initial sync\n", s.Name)
	if ok, isKeeper := s.Conn.(connector.OwnerKeeper); isKeeper {
		if err := ok.SetOwner(ctx, l.Name, instance); err != nil {
			return fmt.Errorf("side %s: %w", s.Name, err)
		}
		fmt.Fprintf(out, "%s: link %s is owned by this data_dir (instance %s)\n", s.Name, l.Name, instance)
	}
	return nil
}

// ResetStream forgets a stream's applied position on every side that
// records it: its next batch is applied whatever its position.
func ResetStream(ctx context.Context, l Link, stream string, out io.Writer) error {
	found := false
	for _, s := range l.Sides {
		pk, ok := s.Conn.(connector.ProgressKeeper)
		if !ok {
			continue
		}
		progress, err := pk.Progress(ctx)
		if err != nil {
			return fmt.Errorf("side %s: %w", s.Name, err)
		}
		for _, p := range progress {
			if p.Stream != stream {
				continue
			}
			if err := pk.ResetProgress(ctx, stream); err != nil {
				return fmt.Errorf("side %s: %w", s.Name, err)
			}
			found = true
			fmt.Fprintf(out, "%s: forgot the applied position %s of stream %s (source %s)\n", s.Name, p.Position, stream, orUnknown(p.Source))
		}
	}
	if !found {
		return problem.New(problem.ConfigInvalid, "no side records stream %s; `%s` lists the streams", stream, l.cmd("show"))
	}
	return nil
}

// ResetCapture forgets side's capture position and its source in the
// control store: capture starts afresh on the side's current source.
func ResetCapture(ctx context.Context, l Link, side string, out io.Writer) error {
	i, err := l.index(side)
	if err != nil {
		return err
	}
	if err := l.Store.ResetSide(ctx, l.Sides[i].Name); err != nil {
		return err
	}
	fmt.Fprintf(out, "%s: capture position forgotten; run the side's maps again with initial sync\n", l.Sides[i].Name)
	return nil
}

// Show prints who owns the link on each side, the capture objects, the
// control store's capture positions and every applied position, each with
// its source and whether it matches the side's current one.
func Show(ctx context.Context, l Link, out io.Writer) error {
	instance, err := l.Store.InstanceID(ctx)
	if err != nil {
		return err
	}
	ids, err := l.identities(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "control store instance:\t%s\n", instance)
	for i, s := range l.Sides {
		fmt.Fprintf(tw, "\nside %s\n", s.Name)
		fmt.Fprintf(tw, "  source:\t%s\n", orUnknown(ids[i]))
		if ok, isKeeper := s.Conn.(connector.OwnerKeeper); isKeeper {
			owner, err := ok.Owner(ctx, l.Name)
			if err != nil {
				return err
			}
			fmt.Fprintf(tw, "  owner of link %s:\t%s\n", l.Name, ownerText(owner, instance))
		}
		if okeep, isObj := s.Conn.(connector.ObjectKeeper); isObj {
			objs, err := okeep.CaptureObjects(ctx)
			if err != nil {
				return err
			}
			for _, o := range objs {
				fmt.Fprintf(tw, "  %s:\t%s\n", o.Kind, o.Name)
			}
		}
		pos, err := l.Store.SidePosition(ctx, s.Name)
		if err != nil {
			return err
		}
		src, err := l.Store.SideSource(ctx, s.Name)
		if err != nil {
			return err
		}
		if !pos.IsZero() {
			fmt.Fprintf(tw, "  capture position:\t%s (%s)\n", pos, match(src, ids[i]))
		}
		if pk, ok := s.Conn.(connector.ProgressKeeper); ok {
			progress, err := pk.Progress(ctx)
			if err != nil {
				return err
			}
			for _, p := range progress {
				fmt.Fprintf(tw, "  stream %s:\t%s (%s)\n", p.Stream, p.Position, match(p.Source, ids[1-i]))
			}
		}
	}
	return tw.Flush()
}

func ownerText(owner, instance string) string {
	switch owner {
	case "":
		return "none"
	case instance:
		return owner + " (this data_dir)"
	}
	return owner + " (another control store)"
}

func match(src, want string) string {
	if src == want {
		return "source " + src
	}
	return fmt.Sprintf("source %s; FOREIGN, the source is now %s", orUnknown(src), orUnknown(want))
}

func (l Link) index(side string) (int, error) {
	for i, s := range l.Sides {
		if s.Name == side {
			return i, nil
		}
	}
	return 0, problem.New(problem.ConfigInvalid, "side %q is not a side of link %s; use %s or %s", side, l.Name, l.Sides[0].Name, l.Sides[1].Name)
}
