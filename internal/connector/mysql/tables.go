package mysql

import (
	"context"
	"sync"
)

// tableCache keeps table descriptions between statements: reading
// information_schema for every apply and every keyed read costs more than
// the write itself. An entry is dropped (forget) when a statement on the
// table fails, since the table may have been altered; the next use
// describes it again.
type tableCache struct {
	mu     sync.Mutex
	tables map[string]*tableInfo
}

// info returns the cached description of table, describing it on first use.
func (c *Connector) info(ctx context.Context, table string) (*tableInfo, error) {
	c.cache.mu.Lock()
	ti := c.cache.tables[table]
	c.cache.mu.Unlock()
	if ti != nil {
		return ti, nil
	}
	ti, err := c.describe(ctx, table)
	if err != nil {
		return nil, err
	}
	c.cache.mu.Lock()
	if c.cache.tables == nil {
		c.cache.tables = map[string]*tableInfo{}
	}
	c.cache.tables[table] = ti
	c.cache.mu.Unlock()
	return ti, nil
}

// forget drops the cached description of table.
func (c *Connector) forget(table string) {
	c.cache.mu.Lock()
	delete(c.cache.tables, table)
	c.cache.mu.Unlock()
}
