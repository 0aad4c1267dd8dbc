package engine

import (
	"slices"
	"testing"

	"github.com/dualwrite/dualwrite/internal/change"
	"github.com/dualwrite/dualwrite/internal/connector"
)

// TestOrderByRefs: rows of a chunk are written after the rows they refer
// to, by depth, stably; a reference cycle loses the references of the
// row that closes it, which stays deferred.
func TestOrderByRefs(t *testing.T) {
	t.Parallel()
	ref := func(j int) []chunkRef { return []chunkRef{{prep: j}} }
	cases := []struct {
		name     string
		n        int
		refs     map[int][]chunkRef
		want     []int
		deferred []int // rows whose references were dropped
	}{
		{"none", 3, map[int][]chunkRef{}, []int{0, 1, 2}, nil},
		{"backward", 4, map[int][]chunkRef{1: ref(0), 2: ref(0), 3: ref(0)}, []int{0, 1, 2, 3}, nil},
		{"forward", 3, map[int][]chunkRef{0: ref(2), 1: ref(2)}, []int{2, 0, 1}, nil},
		{"chain", 4, map[int][]chunkRef{0: ref(1), 1: ref(2), 2: ref(3)}, []int{3, 2, 1, 0}, nil},
		{"mutual pair", 3, map[int][]chunkRef{0: ref(1), 1: ref(0), 2: ref(0)}, []int{1, 0, 2}, []int{1}},
		{"cycle of three", 3, map[int][]chunkRef{0: ref(1), 1: ref(2), 2: ref(0)}, []int{2, 1, 0}, []int{2}},
	}
	for _, c := range cases {
		refs := map[int][]chunkRef{}
		for k, v := range c.refs {
			refs[k] = v
		}
		got := orderByRefs(c.n, refs)
		if !slices.Equal(got, c.want) {
			t.Errorf("%s: order %v, want %v", c.name, got, c.want)
		}
		for _, d := range c.deferred {
			if _, ok := refs[d]; ok {
				t.Errorf("%s: row %d keeps its references on a cycle", c.name, d)
			}
		}
		// Every remaining reference points to a row written before.
		pos := map[int]int{}
		for p, i := range got {
			pos[i] = p
		}
		for i, crs := range refs {
			for _, cr := range crs {
				if pos[cr.prep] >= pos[i] {
					t.Errorf("%s: row %d is written before the row %d it refers to", c.name, i, cr.prep)
				}
			}
		}
	}
}

// TestLinkChunkRefs: a row's only insert gets a connector.Ref to the
// earlier write of the row it refers to, in every column of the lookup;
// nothing changes when that row has no earlier write returning the
// referenced column.
func TestLinkChunkRefs(t *testing.T) {
	t.Parallel()
	written := []connector.Write{
		{Op: connector.InsertOnly, Values: change.Row{"id": nil}, Return: []string{"accountid", "accountnumber"}},
		{Op: connector.InsertOnly, Values: change.Row{}, Return: []string{"accountnumber"}},
	}
	writeOf := map[int]int{7: 0, 8: 1}
	crs := []chunkRef{{prep: 7, cols: []string{"invoiceaccountid"}, refs: []string{"accountid"}}}
	row := change.Row{"name": "x", "invoiceaccountid": nil}
	ws := []connector.Write{{Op: connector.InsertOnly, Values: row}}
	if !linkChunkRefs(ws, crs, written, writeOf, len(written)) {
		t.Fatal("not linked")
	}
	if got, want := ws[0].Values["invoiceaccountid"], (connector.Ref{Write: 0, Column: "accountid"}); got != want {
		t.Errorf("invoiceaccountid = %#v, want %#v", got, want)
	}
	if row["invoiceaccountid"] != nil || ws[0].Values["name"] != "x" {
		t.Errorf("the translated row was changed (%v) or values lost (%v)", row, ws[0].Values)
	}
	for name, c := range map[string]struct {
		ws      []connector.Write
		crs     []chunkRef
		writeOf map[int]int
	}{
		"no write":            {[]connector.Write{{Op: connector.InsertOnly, Values: change.Row{}}}, []chunkRef{{prep: 9, cols: []string{"c"}, refs: []string{"accountid"}}}, writeOf},
		"column not returned": {[]connector.Write{{Op: connector.InsertOnly, Values: change.Row{}}}, []chunkRef{{prep: 8, cols: []string{"c"}, refs: []string{"accountid"}}}, writeOf},
		"two writes":          {[]connector.Write{{Op: connector.InsertOnly}, {Op: connector.UpdateOnly}}, crs, writeOf},
		"later write":         {[]connector.Write{{Op: connector.InsertOnly, Values: change.Row{}}}, crs, map[int]int{7: 5}},
	} {
		if linkChunkRefs(c.ws, c.crs, written, c.writeOf, len(written)) {
			t.Errorf("%s: linked", name)
		}
		for _, w := range c.ws {
			for _, v := range w.Values {
				if _, ok := v.(connector.Ref); ok {
					t.Errorf("%s: a Ref was set", name)
				}
			}
		}
	}
}
