package store

import (
	"context"
	"fmt"
)

// alertSchema holds the alert rules edited in the web workspace. A map
// with a row here uses these rules instead of its configured ones.
const alertSchema = `
CREATE TABLE IF NOT EXISTS alert_rules (
	map TEXT PRIMARY KEY,
	rules TEXT NOT NULL,
	actor TEXT NOT NULL,
	updated_at TEXT NOT NULL
);
`

// AlertRules returns every map's edited alert rules, as stored by
// AlertRulesSet (JSON, owned by internal/alert), by map name.
func (s *Store) AlertRules(ctx context.Context) (map[string][]byte, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT map, rules FROM alert_rules`)
	if err != nil {
		return nil, fmt.Errorf("read alert rules: %w", err)
	}
	defer rows.Close()
	out := map[string][]byte{}
	for rows.Next() {
		var name, rules string
		if err := rows.Scan(&name, &rules); err != nil {
			return nil, fmt.Errorf("read alert rules: %w", err)
		}
		out[name] = []byte(rules)
	}
	return out, rows.Err()
}

// AlertRulesSet stores a map's edited alert rules.
func (s *Store) AlertRulesSet(ctx context.Context, name, actor string, rules []byte) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO alert_rules(map, rules, actor, updated_at) VALUES (?,?,?,?)
		ON CONFLICT(map) DO UPDATE SET rules=excluded.rules, actor=excluded.actor, updated_at=excluded.updated_at`, name, string(rules), actor, s.ts())
	if err != nil {
		return fmt.Errorf("save alert rules of map %s: %w", name, err)
	}
	return nil
}
