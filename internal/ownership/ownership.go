// Package ownership keeps one engine per link and positions with their
// source: the control store's instance owns the link in each database (an
// owner row), capture objects it did not create are never adopted
// silently, and a position recorded for another source is never compared
// with this one's (docs/adr/20261204-ownership-and-source-identity.md).
//
// Check runs at every start, before capture or apply; Adopt, Drop and
// Reset are the deliberate ways out that `dualwrite ownership` offers.
package ownership

import (
	"context"
	"fmt"
	"strings"

	"github.com/dualwrite/dualwrite/internal/change"
	"github.com/dualwrite/dualwrite/internal/connector"
	"github.com/dualwrite/dualwrite/internal/problem"
)

// Store is the part of the control store ownership needs.
type Store interface {
	InstanceID(ctx context.Context) (string, error)
	SidePosition(ctx context.Context, side string) (change.Position, error)
	SideSource(ctx context.Context, side string) (string, error)
	SetSideSource(ctx context.Context, side, source string) error
	ResetSide(ctx context.Context, side string) error
}

// Side is one side of the link.
type Side struct {
	Name string
	Conn connector.Connector
}

// Link is what ownership works on: the link's name, its two sides, the
// control store, and the configuration file (for the messages' commands).
type Link struct {
	Name       string
	Sides      [2]Side
	Store      Store
	ConfigPath string
}

// identities returns each side's source identity ("" where the driver
// cannot say).
func (l Link) identities(ctx context.Context) ([2]string, error) {
	var ids [2]string
	for i, s := range l.Sides {
		si, ok := s.Conn.(connector.SourceIdentifier)
		if !ok {
			continue
		}
		id, err := si.SourceIdentity(ctx)
		if err != nil {
			return ids, fmt.Errorf("side %s: %w", s.Name, err)
		}
		ids[i] = id
	}
	return ids, nil
}

// direction is the part every stream name of changes from side `from`
// carries ("crm->erp"), whatever else it holds.
func (l Link) direction(from int) string {
	return l.Sides[from].Name + "->" + l.Sides[1-from].Name
}

func (l Link) cmd(sub string) string {
	c := "dualwrite ownership " + sub
	if l.ConfigPath != "" {
		c += " --config " + l.ConfigPath
	}
	return c
}

// Check verifies, before anything is captured or applied, that this
// control store owns the link on both databases and that every recorded
// position belongs to the side's current source. It claims an unowned
// database (one without capture objects of this link) and binds each
// side's progress table to the other side's identity, so that Apply
// refuses foreign positions from then on. Nothing is claimed when
// anything is refused.
func Check(ctx context.Context, l Link) error {
	instance, err := l.Store.InstanceID(ctx)
	if err != nil {
		return err
	}
	ids, err := l.identities(ctx)
	if err != nil {
		return err
	}
	var claim []int
	for i, s := range l.Sides {
		ok, err := checkOwner(ctx, l, i, instance)
		if err != nil {
			return err
		}
		if !ok {
			claim = append(claim, i)
		}
		// Invariant: a capture position recorded for another source is
		// never used to resume this one.
		pos, err := l.Store.SidePosition(ctx, s.Name)
		if err != nil {
			return err
		}
		src, err := l.Store.SideSource(ctx, s.Name)
		if err != nil {
			return err
		}
		if !pos.IsZero() && ids[i] != "" && src != ids[i] {
			return problem.New(problem.ForeignPosition,
				"the control store's capture position of side %s (%s) belongs to another source: expected %s, found %s; it is not compared with this source's positions; resync the side's maps after forgetting it deliberately with `%s --capture %s`",
				s.Name, pos, ids[i], orUnknown(src), l.cmd("reset"), s.Name)
		}
		pk, ok := s.Conn.(connector.ProgressKeeper)
		if !ok {
			continue
		}
		from := 1 - i
		progress, err := pk.Progress(ctx)
		if err != nil {
			return fmt.Errorf("side %s: %w", s.Name, err)
		}
		for _, p := range progress {
			if p.Position.IsZero() || ids[from] == "" || p.Source == ids[from] || !strings.Contains(p.Stream, l.direction(from)) {
				continue
			}
			return problem.Wrap(problem.ForeignPosition, connector.ErrForeignPosition,
				"the applied position of stream %s on side %s (%s) belongs to another source: expected %s (side %s), found %s; it is not compared with this source's positions; resync the map, or forget the position deliberately with `%s --stream %s`",
				p.Stream, s.Name, p.Position, ids[from], l.Sides[from].Name, orUnknown(p.Source), l.cmd("reset"), p.Stream)
		}
	}
	for _, i := range claim {
		if err := l.Sides[i].Conn.(connector.OwnerKeeper).SetOwner(ctx, l.Name, instance); err != nil {
			return fmt.Errorf("side %s: %w", l.Sides[i].Name, err)
		}
	}
	for i, s := range l.Sides {
		if pos, err := l.Store.SidePosition(ctx, s.Name); err != nil {
			return err
		} else if pos.IsZero() && ids[i] != "" {
			if err := l.Store.SetSideSource(ctx, s.Name, ids[i]); err != nil {
				return err
			}
		}
		if pk, ok := s.Conn.(connector.ProgressKeeper); ok {
			pk.BindSource(ids[1-i])
		}
	}
	return nil
}

// checkOwner reports whether side i is owned by instance (true), free to
// claim (false), or refused (an error): owned by another control store,
// or holding capture objects of this link that no owner row covers.
func checkOwner(ctx context.Context, l Link, i int, instance string) (bool, error) {
	s := l.Sides[i]
	ok, isKeeper := s.Conn.(connector.OwnerKeeper)
	if !isKeeper {
		return true, nil
	}
	owner, err := ok.Owner(ctx, l.Name)
	if err != nil {
		return false, fmt.Errorf("side %s: %w", s.Name, err)
	}
	switch {
	case owner == instance:
		return true, nil
	case owner != "":
		// Invariant: one control store per link and database; a second
		// engine with another data_dir is refused.
		return false, problem.New(problem.LinkOwned,
			"link %s on side %s is owned by another control store (instance %s; this data_dir's is %s): another engine with another data_dir runs, or ran, this link; stop it; to move the link here on purpose run `%s` (keeps its slot and positions) or `%s --side %s` (drops them; the maps need a resync)",
			l.Name, s.Name, owner, instance, l.cmd("adopt"), l.cmd("drop"), s.Name)
	}
	okeep, isObj := s.Conn.(connector.ObjectKeeper)
	if !isObj {
		return false, nil
	}
	objs, err := okeep.CaptureObjects(ctx)
	if err != nil {
		return false, fmt.Errorf("side %s: %w", s.Name, err)
	}
	if len(objs) > 0 {
		// Invariant: capture never adopts silently a slot, publication or
		// origin this control store did not create.
		names := make([]string, len(objs))
		for j, o := range objs {
			names[j] = o.String()
		}
		return false, problem.New(problem.ForeignObject,
			"side %s has the %s of link %s, which this control store did not create and whose position it does not hold; adopt them deliberately with `%s`, or drop them with `%s --side %s` (the maps need a resync)",
			s.Name, strings.Join(names, ", "), l.Name, l.cmd("adopt"), l.cmd("drop"), s.Name)
	}
	return false, nil
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown (recorded before positions carried their source)"
	}
	return s
}

// Owned returns DW2043 when another control store has taken the link
// over on a side since Check (a deliberate `dualwrite ownership adopt`
// from another data_dir), nil otherwise. A side that cannot be read counts
// as owned: that is a connection problem, reported elsewhere.
func Owned(ctx context.Context, l Link) error {
	instance, err := l.Store.InstanceID(ctx)
	if err != nil {
		return nil
	}
	for _, s := range l.Sides {
		ok, isKeeper := s.Conn.(connector.OwnerKeeper)
		if !isKeeper {
			continue
		}
		owner, err := ok.Owner(ctx, l.Name)
		if err != nil || owner == "" || owner == instance {
			continue
		}
		return problem.New(problem.LinkOwned,
			"link %s on side %s was taken over by another control store (instance %s; this data_dir's is %s); this engine stops so that two engines never run one link",
			l.Name, s.Name, owner, instance)
	}
	return nil
}
