// Package mapping compiles the table maps of a configuration against the
// described tables of both sides and translates rows from one side to the
// other. It is pure: it never touches a database; callers hand it the
// described tables (connector.Table) and the rows (change.Row).
//
// # Compiling
//
// Compile checks one map against the tables and returns every problem it
// finds as an Issue carrying a stable code (internal/problem), the path of
// the offending field ("maps[2].columns[1].right") and its place in the
// file. A map with any issue does not compile (nil *Map). The checks:
//
//	DW1021 a map's table (or a lookup's related table) does not exist
//	DW1024 a key, mapped, lookup or referenced column does not exist, or an
//	       expression or filter names a variable that is not a column
//	DW1003 the key columns of a side are not exactly a unique index
//	DW1010 a NOT NULL column without a database default is never written
//	       on a side the map inserts into
//	DW1012 a filter or expression does not compile (or a filter is not
//	       boolean)
//	DW1030 a pair's column kinds cannot carry each other's values, or a
//	       default or value_map value does not fit the target column
//	DW1014 a lookup names a map that does not exist
//
// # Directions
//
// The map's direction (empty means both) bounds everything. A column
// pair's direction defaults to the map's, except that a pair naming only a
// right column flows left to right and one naming only a left column flows
// right to left. A lookup's direction defaults to the map's. A pair flows
// from side s when its direction allows it, it has a target column on the
// other side, and it has something to read: a source column, an expression
// for that direction, or a default.
//
// # Transforms, applied in this order for one pair and direction
//
//  1. Expression (left_to_right / right_to_left, github.com/expr-lang/expr):
//     computes the target value from the whole source row. Variables are
//     the source table's column names, typed from the column kinds: int as
//     int64, float and decimal as float64 (decimals lose exactness inside
//     expressions), text, uuid, json and other kinds as string, bool as
//     bool, bytes as []byte, time and date as time.Time, and NULL as nil
//     (use `col ?? "fallback"` to handle it). An expression replaces the
//     value map in its direction. Compile errors are DW1012, runtime errors
//     DW3003.
//  2. Otherwise the source column's value. A value map translates it:
//     the source value is compared as text (int64 "1", Decimal digits, bool
//     "true", time RFC 3339); left values map to right values, and the
//     inverse (first entry in file order wins) maps right to left. A
//     numeric source value that matches no entry as text is also compared
//     numerically, so Decimal "1.0000" finds the entry "1". A value without
//     an entry fails the row with DW3003 unless the pair has a default,
//     which is then written instead. NULL is not translated.
//  3. Default: written when the value is still NULL, or when the pair has
//     no source column on this side.
//  4. The result is coerced (Coerce) to the target column's kind; a value
//     that does not convert fails the row with DW3003.
//
// Key columns that no column pair or lookup writes are copied as implicit
// pairs, so Translate always produces the target key unless a lookup
// produces it (then the caller resolves the lookup first).
//
// # Values
//
// Equal is the canonical comparison used to decide whether two values are
// the same across databases: numbers compare exactly by value whatever
// their Go type (a float64 by its shortest decimal form, so float64 1.1
// equals Decimal "1.10"), times by instant, text against bytes by bytes,
// bool against the numbers 0 and 1, and NULL equals only NULL.
package mapping
