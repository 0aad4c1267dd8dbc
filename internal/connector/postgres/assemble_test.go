package postgres

import (
	"reflect"
	"testing"
	"time"

	"github.com/dualwrite/dualwrite/internal/change"
	"github.com/dualwrite/dualwrite/internal/connector/postgres/pgrepl"
)

func TestAssembler(t *testing.T) {
	t.Parallel()
	when := time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)
	rel := pgrepl.Relation{ID: 7, Namespace: "public", Name: "acct", ReplicaIdentity: 'd', Columns: []pgrepl.RelationColumn{
		{Key: true, Name: "id", TypeOID: pgrepl.OIDInt8}, {Name: "name", TypeOID: pgrepl.OIDText},
	}}
	other := pgrepl.Relation{ID: 8, Namespace: "public", Name: "other", Columns: rel.Columns}
	row := func(id, name string) pgrepl.Tuple {
		return pgrepl.Tuple{{Kind: 't', Data: []byte(id)}, {Kind: 't', Data: []byte(name)}}
	}
	begin := pgrepl.Begin{FinalLSN: 90, CommitTime: when, XID: 42}
	commit := pgrepl.Commit{CommitLSN: 90, EndLSN: 100, CommitTime: when}
	insert := pgrepl.Insert{RelationID: 7, New: row("1", "a")}
	tests := []struct {
		name    string
		msgs    []pgrepl.Message
		deliver bool
		echo    bool
		changes []change.Change
		wantErr bool
	}{
		{"plain insert", []pgrepl.Message{rel, begin, insert, commit}, true, false,
			[]change.Change{{Table: "acct", Op: change.Insert, New: change.Row{"id": int64(1), "name": "a"}}}, false},
		{"origin echo", []pgrepl.Message{rel, begin, pgrepl.Origin{Name: "dw"}, insert, commit}, false, true, nil, false},
		{"numbered origin echo", []pgrepl.Message{rel, begin, pgrepl.Origin{Name: "dw.3"}, insert, commit}, false, true, nil, false},
		{"foreign origin is not an echo", []pgrepl.Message{rel, begin, pgrepl.Origin{Name: "dwx"}, insert, commit}, true, false,
			[]change.Change{{Table: "acct", Op: change.Insert, New: change.Row{"id": int64(1), "name": "a"}}}, false},
		{"message echo", []pgrepl.Message{rel, begin, pgrepl.LogicalMessage{Transactional: true, Prefix: echoMessagePrefix, Content: []byte("dw")}, insert, commit},
			false, true, nil, false},
		{"message of another origin", []pgrepl.Message{rel, begin, pgrepl.LogicalMessage{Transactional: true, Prefix: echoMessagePrefix, Content: []byte("other")}, insert, commit},
			true, false, []change.Change{{Table: "acct", Op: change.Insert, New: change.Row{"id": int64(1), "name": "a"}}}, false},
		{"unwatched table only", []pgrepl.Message{other, begin, pgrepl.Insert{RelationID: 8, New: row("1", "a")}, commit}, false, false, nil, false},
		{"delete by key", []pgrepl.Message{rel, begin, pgrepl.Delete{RelationID: 7, OldKind: 'K', Old: pgrepl.Tuple{{Kind: 't', Data: []byte("5")}, {Kind: 'n'}}}, commit},
			true, false, []change.Change{{Table: "acct", Op: change.Delete, Old: change.Row{"id": int64(5)}}}, false},
		{"update keeps key as old", []pgrepl.Message{rel, begin, pgrepl.Update{RelationID: 7, New: pgrepl.Tuple{{Kind: 't', Data: []byte("5")}, {Kind: 'u'}}}, commit},
			true, false, []change.Change{{Table: "acct", Op: change.Update, Old: change.Row{"id": int64(5)}, New: change.Row{"id": int64(5)}, Unchanged: []string{"name"}}}, false},
		{"change before relation", []pgrepl.Message{begin, insert}, false, false, nil, true},
		{"bad value", []pgrepl.Message{rel, begin, pgrepl.Insert{RelationID: 7, New: row("x", "a")}}, false, false, nil, true},
		{"truncate is a change in order", []pgrepl.Message{rel, other, begin, insert, pgrepl.Truncate{RelationIDs: []uint32{7, 8}}, insert, commit}, true, false,
			[]change.Change{
				{Table: "acct", Op: change.Insert, New: change.Row{"id": int64(1), "name": "a"}},
				{Table: "acct", Op: change.Truncate},
				{Table: "acct", Op: change.Insert, New: change.Row{"id": int64(1), "name": "a"}},
			}, false},
		{"truncate of an unwatched table only", []pgrepl.Message{other, begin, pgrepl.Truncate{RelationIDs: []uint32{8}}, commit}, false, false, nil, false},
		{"truncate before relation", []pgrepl.Message{begin, pgrepl.Truncate{RelationIDs: []uint32{7}}}, false, false, nil, true},
		{"truncate by the engine is dropped", []pgrepl.Message{rel, begin, pgrepl.Origin{Name: "dw"}, pgrepl.Truncate{RelationIDs: []uint32{7}}, commit}, false, true, nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a := newAssembler([]string{"acct"}, "dw")
			var got *committed
			var err error
			for _, m := range tc.msgs {
				var c *committed
				if c, err = a.handle(m); err != nil {
					break
				}
				if c != nil {
					got = c
				}
			}
			if tc.wantErr {
				if err == nil {
					t.Fatal("want an error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got == nil {
				t.Fatal("no commit")
			}
			if got.deliver != tc.deliver || got.echo != tc.echo || got.end != 100 {
				t.Errorf("deliver %v echo %v end %d, want %v %v 100", got.deliver, got.echo, got.end, tc.deliver, tc.echo)
			}
			if tc.deliver {
				want := change.Tx{ID: "42", Position: change.Position{LSN: 100}, CommitTime: when, Changes: tc.changes}
				if !reflect.DeepEqual(got.tx, want) {
					t.Errorf("tx = %#v\nwant %#v", got.tx, want)
				}
			}
		})
	}
}

// TestAssemblerReportsAlteredRelations: a Relation message that comes
// again on the same stream with another definition names its watched
// table; the same definition again, or an unwatched table, does not.
func TestAssemblerReportsAlteredRelations(t *testing.T) {
	t.Parallel()
	cols := []pgrepl.RelationColumn{{Key: true, Name: "id", TypeOID: pgrepl.OIDInt8}, {Name: "name", TypeOID: pgrepl.OIDText}}
	rel := pgrepl.Relation{ID: 7, Namespace: "public", Name: "acct", Columns: cols}
	dropped := rel
	dropped.Columns = cols[:1]
	retyped := rel
	retyped.Columns = []pgrepl.RelationColumn{cols[0], {Name: "name", TypeOID: pgrepl.OIDInt8}}
	renamed := rel
	renamed.Name = "acct_old"
	other := pgrepl.Relation{ID: 8, Namespace: "public", Name: "other", Columns: cols}
	otherAltered := other
	otherAltered.Columns = cols[:1]
	tests := []struct {
		name string
		msgs []pgrepl.Message
		want []string
	}{
		{"first relation", []pgrepl.Message{rel}, nil},
		{"sent again unchanged", []pgrepl.Message{rel, rel}, nil},
		{"column dropped", []pgrepl.Message{rel, dropped}, []string{"acct"}},
		{"column retyped", []pgrepl.Message{rel, retyped}, []string{"acct"}},
		{"table renamed", []pgrepl.Message{rel, renamed}, []string{"acct"}},
		{"unwatched table altered", []pgrepl.Message{other, otherAltered}, nil},
		{"first relation differs from the description", []pgrepl.Message{dropped}, []string{"acct"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a := newAssembler([]string{"acct"}, "dw")
			a.described = map[string][]string{"acct": {"id", "name"}}
			var got []string
			a.altered = func(table string) { got = append(got, table) }
			for _, m := range tc.msgs {
				if _, err := a.handle(m); err != nil {
					t.Fatal(err)
				}
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("altered = %v, want %v", got, tc.want)
			}
		})
	}
}
