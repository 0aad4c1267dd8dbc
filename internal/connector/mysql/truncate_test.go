package mysql

import "testing"

func TestTruncatedTable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		sql, schema        string
		wantSchema, wantTb string
		ok                 bool
	}{
		{"TRUNCATE TABLE items", "shop", "shop", "items", true},
		{"truncate items", "shop", "shop", "items", true},
		{"  TrUnCaTe\n\tTABLE   items ;", "shop", "shop", "items", true},
		{"TRUNCATE TABLE `order items`", "shop", "shop", "order items", true},
		{"TRUNCATE TABLE `we``ird`", "shop", "shop", "we`ird", true},
		{"TRUNCATE TABLE other.items", "shop", "other", "items", true},
		{"TRUNCATE `other` . `items`", "shop", "other", "items", true},
		{"/* app: nightly */ TRUNCATE /* x */ TABLE /* y */ items", "shop", "shop", "items", true},
		{"-- reload\nTRUNCATE TABLE items", "shop", "shop", "items", true},
		{"# reload\nTRUNCATE items -- done", "shop", "shop", "items", true},
		{"TRUNCATE TABLE items WAIT 10", "shop", "shop", "items", true},
		{"TRUNCATE TABLE items NOWAIT", "shop", "shop", "items", true},
		{"TRUNCATE TABLE items", "", "", "", false},
		{"TRUNCATE TABLE", "shop", "", "", false},
		{"TRUNCATE TABLE `unterminated", "shop", "", "", false},
		{"ALTER TABLE items TRUNCATE PARTITION p0", "shop", "", "", false},
		{"DELETE FROM items", "shop", "", "", false},
		{"CREATE TABLE truncate_log (id INT)", "shop", "", "", false},
		{"/* TRUNCATE TABLE items */ DROP TABLE x", "shop", "", "", false},
		{"TRUNCATEX items", "shop", "", "", false},
	}
	for _, tc := range tests {
		s, tb, ok := truncatedTable(tc.sql, tc.schema)
		if ok != tc.ok || s != tc.wantSchema || tb != tc.wantTb {
			t.Errorf("truncatedTable(%q, %q) = %q, %q, %v; want %q, %q, %v", tc.sql, tc.schema, s, tb, ok, tc.wantSchema, tc.wantTb, tc.ok)
		}
	}
}

func TestStatementTable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		sql, schema        string
		wantSchema, wantTb string
		ok                 bool
	}{
		{"INSERT INTO items VALUES (1)", "shop", "shop", "items", true},
		{"insert ignore into `shop`.`items` (a) values (1)", "x", "shop", "items", true},
		{"REPLACE LOW_PRIORITY items SET a = 1", "shop", "shop", "items", true},
		{"UPDATE /* app */ items SET a = 2", "shop", "shop", "items", true},
		{"UPDATE LOW_PRIORITY IGNORE other.items SET a = 2", "shop", "other", "items", true},
		{"DELETE QUICK FROM items WHERE a = 1", "shop", "shop", "items", true},
		{"DELETE FROM items", "shop", "shop", "items", true},
		{"SELECT * FROM items", "shop", "", "", false},
		{"ALTER TABLE items ADD c INT", "shop", "", "", false},
		{"INSERT INTO items VALUES (1)", "", "", "", false},
		{"BEGIN", "shop", "", "", false},
	}
	for _, tc := range tests {
		s, tb, ok := statementTable(tc.sql, tc.schema)
		if ok != tc.ok || s != tc.wantSchema || tb != tc.wantTb {
			t.Errorf("statementTable(%q, %q) = %q, %q, %v; want %q, %q, %v", tc.sql, tc.schema, s, tb, ok, tc.wantSchema, tc.wantTb, tc.ok)
		}
	}
}
