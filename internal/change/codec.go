package change

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// Rows, changes and transactions are persisted (durable queue, control
// store) as JSON in which every value carries a one-letter type tag, so a
// value read back has exactly the canonical Go type it was written with:
//
//	null → JSON null        "b" bool    "i" int64 (as a string, exact)
//	"f" float64 (as string, exact round trip)    "d" Decimal
//	"s" string              "x" []byte (base64)  "t" time.Time (RFC 3339, ns)
//
// The format is part of the on-disk contract: see testdata/ golden files.

type taggedValue struct {
	T string `json:"t"`
	V string `json:"v"`
}

// EncodeValue returns the tagged JSON form of a canonical value.
func EncodeValue(v any) (json.RawMessage, error) {
	var tv taggedValue
	switch x := v.(type) {
	case nil:
		return json.RawMessage("null"), nil
	case bool:
		tv = taggedValue{"b", strconv.FormatBool(x)}
	case int64:
		tv = taggedValue{"i", strconv.FormatInt(x, 10)}
	case float64:
		tv = taggedValue{"f", strconv.FormatFloat(x, 'g', -1, 64)}
	case Decimal:
		tv = taggedValue{"d", string(x)}
	case string:
		tv = taggedValue{"s", x}
	case []byte:
		tv = taggedValue{"x", base64.StdEncoding.EncodeToString(x)}
	case time.Time:
		tv = taggedValue{"t", x.UTC().Format(time.RFC3339Nano)}
	default:
		return nil, fmt.Errorf("encode value: %T is not a canonical type", v)
	}
	return json.Marshal(tv)
}

// DecodeValue parses the tagged JSON form written by EncodeValue.
func DecodeValue(raw json.RawMessage) (any, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var tv taggedValue
	if err := json.Unmarshal(raw, &tv); err != nil {
		return nil, fmt.Errorf("decode value: %w", err)
	}
	switch tv.T {
	case "b":
		return strconv.ParseBool(tv.V)
	case "i":
		return strconv.ParseInt(tv.V, 10, 64)
	case "f":
		return strconv.ParseFloat(tv.V, 64)
	case "d":
		return Decimal(tv.V), nil
	case "s":
		return tv.V, nil
	case "x":
		return base64.StdEncoding.DecodeString(tv.V)
	case "t":
		return time.Parse(time.RFC3339Nano, tv.V)
	}
	return nil, fmt.Errorf("decode value: unknown type tag %q", tv.T)
}

// MarshalJSON encodes the row with tagged values.
func (r Row) MarshalJSON() ([]byte, error) {
	if r == nil {
		return []byte("null"), nil
	}
	m := make(map[string]json.RawMessage, len(r))
	for k, v := range r {
		enc, err := EncodeValue(v)
		if err != nil {
			return nil, fmt.Errorf("column %s: %w", k, err)
		}
		m[k] = enc
	}
	return json.Marshal(m)
}

// UnmarshalJSON decodes a row written by MarshalJSON.
func (r *Row) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*r = nil
		return nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	out := make(Row, len(m))
	for k, raw := range m {
		v, err := DecodeValue(raw)
		if err != nil {
			return fmt.Errorf("column %s: %w", k, err)
		}
		out[k] = v
	}
	*r = out
	return nil
}

type changeJSON struct {
	Table       string    `json:"table"`
	Op          string    `json:"op"`
	Old         Row       `json:"old,omitempty"`
	OldComplete bool      `json:"old_complete,omitempty"`
	New         Row       `json:"new,omitempty"`
	Unchanged   []string  `json:"unchanged,omitempty"`
	At          time.Time `json:"at,omitzero"`
}

// MarshalJSON encodes the change with its op as a word.
func (c Change) MarshalJSON() ([]byte, error) {
	return json.Marshal(changeJSON{c.Table, c.Op.String(), c.Old, c.OldComplete, c.New, c.Unchanged, c.At})
}

// UnmarshalJSON decodes a change written by MarshalJSON.
func (c *Change) UnmarshalJSON(b []byte) error {
	var j changeJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	op, err := ParseOp(j.Op)
	if err != nil {
		return err
	}
	*c = Change{Table: j.Table, Op: op, Old: j.Old, OldComplete: j.OldComplete, New: j.New, Unchanged: j.Unchanged, At: j.At}
	return nil
}

// ParseOp is the inverse of Op.String.
func ParseOp(s string) (Op, error) {
	switch s {
	case "insert":
		return Insert, nil
	case "update":
		return Update, nil
	case "delete":
		return Delete, nil
	case "truncate":
		return Truncate, nil
	}
	return 0, fmt.Errorf("unknown op %q", s)
}

type txJSON struct {
	ID         string    `json:"id,omitempty"`
	Position   Position  `json:"position"`
	CommitTime time.Time `json:"commit_time"`
	Changes    []Change  `json:"changes"`
}

// MarshalJSON encodes the transaction.
func (t Tx) MarshalJSON() ([]byte, error) {
	return json.Marshal(txJSON{t.ID, t.Position, t.CommitTime.UTC(), t.Changes})
}

// UnmarshalJSON decodes a transaction written by MarshalJSON.
func (t *Tx) UnmarshalJSON(b []byte) error {
	var j txJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*t = Tx(j)
	return nil
}
