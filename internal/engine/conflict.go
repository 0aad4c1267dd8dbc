package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"

	"github.com/dualwrite/dualwrite/internal/change"
	"github.com/dualwrite/dualwrite/internal/mapping"
)

// The conflict rule (docs/adr/20261122-conflict-rule.md): per column,
// the write with the later source commit time wins; at equal times the
// map's master wins. A record's existence is one more "column": a delete
// competes with the latest insert or update of the record. The rule is a
// maximum over all writes, so the result does not depend on the order in
// which the engine sees the two sides' changes, and both sides converge.
//
// The shadow keeps, per record and column, the stamp of the winning write.
// Records are keyed by their left-side integration key.

// stamp identifies a write: its commit time (ns) and side.
type stamp struct {
	At      int64 `json:"at"`
	Side    int   `json:"side"`
	Deleted bool  `json:"deleted,omitempty"`
	// Vals holds a winning column's value as each side stores it ("0"
	// left, "1" right): the reconciliation writes it wherever a side
	// holds something else.
	Vals change.Row `json:"vals,omitempty"`
}

func sideKey(s mapping.Side) string {
	if s == mapping.Left {
		return "0"
	}
	return "1"
}

type shadowState struct {
	Row  *stamp         `json:"row,omitempty"`
	Cols map[int]*stamp `json:"cols,omitempty"`
}

type conflictRule struct {
	at     int64
	from   mapping.Side
	master mapping.Side
}

// wins reports whether the write being planned beats the recorded stamp.
// A write beats nothing, an older write, and an equal-time write from the
// other side when its own side is the master. The same stamp again (a
// redelivery) wins, which keeps replays idempotent.
func (r conflictRule) wins(prev *stamp) bool {
	if prev == nil {
		return true
	}
	if r.at != prev.At {
		return r.at > prev.At
	}
	if prev.Side == int(r.from) {
		return true
	}
	return r.from == r.master
}

// shadowCache keeps the stored form of recently used shadows, so that
// planning a change does not read the control store. It is written
// through: saveShadows stores first, then caches what it stored. The
// engine is the only writer of shadows, so the cache never holds a value
// the store does not. It is emptied when it reaches maxCachedShadows.
type shadowCache struct {
	mu sync.Mutex
	m  map[string][]byte // map name + "\x00" + key → stored JSON (nil: none)
}

const maxCachedShadows = 20_000

func (c *shadowCache) get(name, key string) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	raw, ok := c.m[name+"\x00"+key]
	return raw, ok
}

func (c *shadowCache) put(name string, raws map[string][]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m)+len(raws) > maxCachedShadows {
		c.m = make(map[string][]byte, len(raws))
	}
	for k, raw := range raws {
		c.m[name+"\x00"+k] = raw
	}
}

// prefetchShadows reads the shadows of keys the cache lacks in one query,
// so that planning a group does not read the store once per change.
func (e *Engine) prefetchShadows(ctx context.Context, ms *mapState, keys []string) error {
	var missing []string
	seen := map[string]bool{}
	for _, k := range keys {
		if seen[k] {
			continue
		}
		seen[k] = true
		if _, ok := e.shadows.get(ms.name, k); !ok {
			missing = append(missing, k)
		}
	}
	if len(missing) < 2 {
		return nil
	}
	got, err := e.store.Shadows(ctx, ms.name, missing)
	if err != nil {
		return err
	}
	raws := make(map[string][]byte, len(missing))
	for _, k := range missing {
		raws[k] = got[k] // nil: the record has no shadow yet
	}
	e.shadows.put(ms.name, raws)
	return nil
}

func (e *Engine) loadShadow(ctx context.Context, ms *mapState, key string) (*shadowState, error) {
	raw, ok := e.shadows.get(ms.name, key)
	if !ok {
		var err error
		if raw, err = e.store.Shadow(ctx, ms.name, key); err != nil {
			return nil, err
		}
		e.shadows.put(ms.name, map[string][]byte{key: raw})
	}
	sh := &shadowState{}
	if raw != nil {
		if err := json.Unmarshal(raw, sh); err != nil {
			return nil, fmt.Errorf("decode conflict shadow of %s %s: %w", ms.name, key, err)
		}
	}
	if sh.Cols == nil {
		sh.Cols = map[int]*stamp{}
	}
	return sh, nil
}

// saveShadows saves the shadows of keys in one store transaction.
func (e *Engine) saveShadows(ctx context.Context, ms *mapState, keys []string, shadows map[string]*shadowState) error {
	if len(keys) == 0 {
		return nil
	}
	raws := make(map[string][]byte, len(keys))
	for _, k := range keys {
		raw, err := json.Marshal(shadows[k])
		if err != nil {
			return err
		}
		raws[k] = raw
	}
	if err := e.store.SetShadows(ctx, ms.name, raws); err != nil {
		return err
	}
	e.shadows.put(ms.name, raws)
	return nil
}

func sortedStrings(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}
