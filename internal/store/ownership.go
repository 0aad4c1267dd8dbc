package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
)

// ownershipSchema holds the control store's identity and the source
// identity of each side's recorded capture position.
const ownershipSchema = `
CREATE TABLE IF NOT EXISTS instance (
	id INTEGER PRIMARY KEY CHECK (id = 1),
	instance_id TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS side_sources (
	side TEXT PRIMARY KEY,
	source TEXT NOT NULL
);
`

// InstanceID returns the control store's identity, created on first use.
// Each database's dualwrite owner row names the control store that owns
// the link there.
func (s *Store) InstanceID(ctx context.Context) (string, error) {
	var id string
	err := s.db.QueryRowContext(ctx, `SELECT instance_id FROM instance WHERE id = 1`).Scan(&id)
	if err == nil {
		return id, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("read control store instance id: %w", err)
	}
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	if _, err := s.db.ExecContext(ctx, `INSERT OR IGNORE INTO instance(id, instance_id) VALUES (1, ?)`, hex.EncodeToString(b)); err != nil {
		return "", fmt.Errorf("create control store instance id: %w", err)
	}
	if err := s.db.QueryRowContext(ctx, `SELECT instance_id FROM instance WHERE id = 1`).Scan(&id); err != nil {
		return "", fmt.Errorf("read control store instance id: %w", err)
	}
	return id, nil
}

// SideSource returns the source identity the side's capture position was
// recorded for ("" when none is recorded).
func (s *Store) SideSource(ctx context.Context, side string) (string, error) {
	var src string
	err := s.db.QueryRowContext(ctx, `SELECT source FROM side_sources WHERE side=?`, side).Scan(&src)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read source identity of side %s: %w", side, err)
	}
	return src, nil
}

// SetSideSource records the source identity of a side's capture positions.
func (s *Store) SetSideSource(ctx context.Context, side, source string) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO side_sources(side, source) VALUES (?,?)
		ON CONFLICT(side) DO UPDATE SET source=excluded.source`, side, source)
	if err != nil {
		return fmt.Errorf("save source identity of side %s: %w", side, err)
	}
	return nil
}

// ResetSide forgets a side's capture position and its source identity,
// in one transaction: the next capture starts afresh on the side's
// current source.
func (s *Store) ResetSide(ctx context.Context, side string) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("reset capture position of side %s: %w", side, err)
	}
	defer tx.Rollback()
	for _, q := range []string{`DELETE FROM side_positions WHERE side=?`, `DELETE FROM side_sources WHERE side=?`} {
		if _, err := tx.ExecContext(ctx, q, side); err != nil {
			return fmt.Errorf("reset capture position of side %s: %w", side, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("reset capture position of side %s: %w", side, err)
	}
	return nil
}
