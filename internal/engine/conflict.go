package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"

	"github.com/dualwrite/dualwrite/internal/mapping"
	"github.com/dualwrite/dualwrite/internal/plan"
)

// The conflict rule lives in internal/plan; the engine keeps the shadows,
// keyed by the record's canonical key, in the control store and a cache.

type stamp = plan.Stamp

type shadowState = plan.Shadow

func sideKey(s mapping.Side) string { return plan.SideKey(s) }

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
