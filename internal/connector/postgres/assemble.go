package postgres

import (
	"errors"
	"fmt"
	"strings"

	"github.com/dualwrite/dualwrite/internal/change"
	"github.com/dualwrite/dualwrite/internal/connector/postgres/pgrepl"
)

// assembler turns the pgoutput message stream into change.Tx values:
// it caches relations, decodes tuples and drops the engine's own
// transactions. It does no I/O except through baseType.
type assembler struct {
	// tables maps "schema.table" to the name used in the configuration.
	tables map[string]string
	// origin is the echo origin name; origin.N names are echoes too.
	origin string
	// baseType resolves a user type OID to its domain base type (or
	// itself); nil treats user types as opaque.
	baseType func(oid uint32) (uint32, error)

	rels map[uint32]pgrepl.Relation
	// altered is called with the configured name of a watched table whose
	// Relation message came again, changed, on the same stream (an ALTER
	// TABLE); nil ignores it.
	altered func(table string)
	// described holds each watched table's column names as described when
	// capture opened: the first Relation of a table is compared with it.
	described map[string][]string

	inTx    bool
	begin   pgrepl.Begin
	echo    bool
	changes []change.Change
}

func newAssembler(tables []string, origin string) *assembler {
	a := &assembler{tables: map[string]string{}, origin: origin, rels: map[uint32]pgrepl.Relation{}}
	for _, t := range tables {
		s, n := splitName(t)
		a.tables[s+"."+n] = t
	}
	return a
}

// committed is what a Commit yields.
type committed struct {
	tx      change.Tx
	end     pgrepl.LSN
	deliver bool // false: no watched change, or an echo
	echo    bool
}

// isEcho reports whether an origin name is the engine's.
func (a *assembler) isEcho(name string) bool {
	return name == a.origin || strings.HasPrefix(name, a.origin+".")
}

// handle consumes one message. It returns a non-nil *committed at the end
// of each transaction.
func (a *assembler) handle(m pgrepl.Message) (*committed, error) {
	switch m := m.(type) {
	case pgrepl.Begin:
		a.inTx, a.begin, a.echo, a.changes = true, m, false, nil
	case pgrepl.Commit:
		if !a.inTx {
			return nil, errors.New("commit without begin")
		}
		c := &committed{end: m.EndLSN, echo: a.echo}
		c.tx = change.Tx{
			ID:         fmt.Sprint(a.begin.XID),
			Position:   change.Position{LSN: uint64(m.EndLSN)},
			CommitTime: a.begin.CommitTime,
			Changes:    a.changes,
		}
		// Invariant: the engine's own transactions are dropped whole, so
		// a write never comes back to the side it came from.
		c.deliver = !a.echo && len(a.changes) > 0
		a.inTx, a.changes = false, nil
		return c, nil
	case pgrepl.Origin:
		if a.isEcho(m.Name) {
			a.echo = true
		}
	case pgrepl.LogicalMessage:
		if m.Transactional && a.inTx && m.Prefix == echoMessagePrefix && a.isEcho(string(m.Content)) {
			a.echo = true
		}
	case pgrepl.Relation:
		if a.baseType != nil {
			for i, col := range m.Columns {
				if col.TypeOID >= 16384 { // FirstNormalObjectId: user-defined
					base, err := a.baseType(col.TypeOID)
					if err != nil {
						return nil, fmt.Errorf("resolve type of %s.%s.%s: %w", m.Namespace, m.Name, col.Name, err)
					}
					m.Columns[i].TypeOID = base
				}
			}
		}
		if a.altered != nil {
			a.noteRelation(m)
		}
		a.rels[m.ID] = m
	case pgrepl.Type:
	case pgrepl.Insert, pgrepl.Update, pgrepl.Delete:
		if a.echo {
			// The engine's own transaction (its mark comes first): it is
			// dropped whole, so its rows are not even decoded.
			return nil, nil
		}
		return nil, a.row(m)
	case pgrepl.Truncate:
		if a.echo {
			return nil, nil
		}
		// A truncate of a watched table is a change of its own, in the
		// transaction's order: the engine handles it per map (on_truncate).
		for _, id := range m.RelationIDs {
			_, table, ok, err := a.relation(id)
			if err != nil {
				return nil, err
			}
			if ok {
				a.add(change.Change{Table: table, Op: change.Truncate})
			}
		}
	default:
		return nil, fmt.Errorf("unexpected pgoutput message %T", m)
	}
	return nil, nil
}

// noteRelation reports a watched table whose definition m shows changed:
// against the previous Relation of the same stream, or for the first one,
// against the columns described when capture opened.
func (a *assembler) noteRelation(m pgrepl.Relation) {
	table, watched := a.tables[m.Namespace+"."+m.Name]
	if prev, ok := a.rels[m.ID]; ok {
		if sameRelation(prev, m) {
			return
		}
		if !watched {
			table, watched = a.tables[prev.Namespace+"."+prev.Name] // renamed away
		}
		if watched {
			a.altered(table)
		}
		return
	}
	cols, known := a.described[table]
	if !watched || !known {
		return
	}
	if len(cols) != len(m.Columns) {
		a.altered(table)
		return
	}
	for i, c := range m.Columns {
		if cols[i] != c.Name {
			a.altered(table)
			return
		}
	}
}

// sameRelation reports whether two Relation messages describe the same
// table definition.
func sameRelation(a, b pgrepl.Relation) bool {
	if a.Namespace != b.Namespace || a.Name != b.Name || len(a.Columns) != len(b.Columns) {
		return false
	}
	for i := range a.Columns {
		if a.Columns[i].Name != b.Columns[i].Name || a.Columns[i].TypeOID != b.Columns[i].TypeOID || a.Columns[i].TypMod != b.Columns[i].TypMod {
			return false
		}
	}
	return true
}

// row decodes one row change of a transaction that is not an echo.
func (a *assembler) row(m pgrepl.Message) error {
	switch m := m.(type) {
	case pgrepl.Insert:
		rel, table, ok, err := a.relation(m.RelationID)
		if err != nil || !ok {
			return err
		}
		row, _, err := decodeTuple(rel, m.New, false)
		if err != nil {
			return fmt.Errorf("insert into %s: %w", table, err)
		}
		a.add(change.Change{Table: table, Op: change.Insert, New: row})
	case pgrepl.Update:
		rel, table, ok, err := a.relation(m.RelationID)
		if err != nil || !ok {
			return err
		}
		row, unchanged, err := decodeTuple(rel, m.New, false)
		if err != nil {
			return fmt.Errorf("update of %s: %w", table, err)
		}
		ch := change.Change{Table: table, Op: change.Update, New: row, Unchanged: unchanged}
		switch m.OldKind {
		case 'O':
			ch.Old, unchanged, err = decodeTuple(rel, m.Old, false)
			ch.OldComplete = len(unchanged) == 0
		case 'K':
			ch.Old, _, err = decodeTuple(rel, m.Old, true)
		default: // the key did not change: its old values are the new ones
			ch.Old = change.Row{}
			for _, col := range rel.Columns {
				if v, ok := row[col.Name]; ok && col.Key {
					ch.Old[col.Name] = v
				}
			}
		}
		if err != nil {
			return fmt.Errorf("update of %s: old row: %w", table, err)
		}
		a.add(ch)
	case pgrepl.Delete:
		rel, table, ok, err := a.relation(m.RelationID)
		if err != nil || !ok {
			return err
		}
		old, unchanged, err := decodeTuple(rel, m.Old, m.OldKind == 'K')
		if err != nil {
			return fmt.Errorf("delete from %s: %w", table, err)
		}
		a.add(change.Change{Table: table, Op: change.Delete, Old: old, OldComplete: m.OldKind == 'O' && len(unchanged) == 0})
	}
	return nil
}

func (a *assembler) add(ch change.Change) {
	if !a.echo {
		a.changes = append(a.changes, ch)
	}
}

// relation returns the cached relation and its configured table name; ok
// is false for a table that is not watched.
func (a *assembler) relation(id uint32) (pgrepl.Relation, string, bool, error) {
	rel, found := a.rels[id]
	if !found {
		return rel, "", false, fmt.Errorf("change for relation %d before its Relation message", id)
	}
	table, ok := a.tables[rel.Namespace+"."+rel.Name]
	return rel, table, ok, nil
}

// decodeTuple converts a tuple to canonical values. keyOnly keeps only
// the replica identity columns. Unchanged TOAST values are left out of the
// row and returned by name.
func decodeTuple(rel pgrepl.Relation, t pgrepl.Tuple, keyOnly bool) (change.Row, []string, error) {
	if len(t) > len(rel.Columns) {
		return nil, nil, fmt.Errorf("tuple has %d columns, relation %s.%s has %d", len(t), rel.Namespace, rel.Name, len(rel.Columns))
	}
	row := make(change.Row, len(t))
	var unchanged []string
	for i, col := range t {
		rc := rel.Columns[i]
		if keyOnly && !rc.Key {
			continue
		}
		switch col.Kind {
		case pgrepl.TupleNull:
			row[rc.Name] = nil
		case pgrepl.TupleUnchanged:
			unchanged = append(unchanged, rc.Name)
		case pgrepl.TupleText:
			v, err := pgrepl.DecodeText(rc.TypeOID, col.Data)
			if err != nil {
				return nil, nil, fmt.Errorf("column %s: %w", rc.Name, err)
			}
			row[rc.Name] = v
		default:
			return nil, nil, fmt.Errorf("column %s: unsupported tuple format %q", rc.Name, col.Kind)
		}
	}
	return row, unchanged, nil
}
