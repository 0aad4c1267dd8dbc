package app_test

import (
	"database/sql"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

// Timestamps of the randomized convergence test: the instants it writes,
// the forms and zones the applications write them in, and the oracle's
// reading of them.

// dstEdges are daylight saving changes of the zones the applications'
// sessions use: America/New_York and Europe/Berlin, spring and autumn.
var dstEdges = []time.Time{
	time.Date(2024, 3, 10, 7, 0, 0, 0, time.UTC),  // New York 02:00 EST → 03:00 EDT
	time.Date(2024, 11, 3, 6, 0, 0, 0, time.UTC),  // New York 02:00 EDT → 01:00 EST (01:xx twice)
	time.Date(2024, 3, 31, 1, 0, 0, 0, time.UTC),  // Berlin 02:00 CET → 03:00 CEST
	time.Date(2024, 10, 27, 1, 0, 0, 0, time.UTC), // Berlin 03:00 CEST → 02:00 CET (02:xx twice)
	time.Date(1967, 4, 30, 7, 0, 0, 0, time.UTC),  // New York, before 1970
	time.Date(2037, 11, 1, 6, 0, 0, 0, time.UTC),  // New York, near the 32-bit limit
}

// edgeInstants are the limits of the types and of 32-bit time.
var edgeInstants = []time.Time{
	time.Date(1000, 1, 1, 0, 0, 0, 1000, time.UTC), // MariaDB DATETIME's first year
	time.Date(1901, 12, 13, 20, 45, 52, 0, time.UTC),
	time.Date(1969, 12, 31, 23, 59, 59, 999999000, time.UTC),
	time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC),
	time.Date(2038, 1, 19, 3, 14, 7, 999999000, time.UTC),
	time.Date(2038, 1, 19, 3, 14, 8, 0, time.UTC),
	time.Date(9999, 12, 31, 12, 34, 56, 789012000, time.UTC),
}

// randomInstant is NULL, an instant near a DST change, an edge of a
// type, a time before 1970 or any time, to the microsecond.
func randomInstant(rng *rand.Rand) any {
	jitter := func() time.Duration {
		return time.Duration(rng.Int64N(4_000_000)-2_000_000) * time.Microsecond
	}
	switch rng.IntN(8) {
	case 0:
		return nil
	case 1:
		// Within two hours of the change, so local wall clocks inside the
		// gap and the repeated hour occur.
		return dstEdges[rng.IntN(len(dstEdges))].Add(time.Duration(rng.Int64N(14_400_000_000)-7_200_000_000) * time.Microsecond)
	case 2:
		// On the change or whole seconds beside it.
		return dstEdges[rng.IntN(len(dstEdges))].Add(time.Duration(rng.IntN(5)-2) * time.Second)
	case 3:
		return edgeInstants[rng.IntN(len(edgeInstants))]
	case 4:
		// 1883 (railway time in New York) to 1970.
		from, to := time.Date(1883, 11, 19, 0, 0, 0, 0, time.UTC).UnixMicro(), int64(0)
		return time.UnixMicro(from + rng.Int64N(to-from)).UTC()
	case 5:
		return time.Date(1969, 12, 31, 23, 59, 59, 0, time.UTC).Add(jitter())
	}
	from, to := time.Date(1990, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro(), time.Date(2040, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro()
	at := time.UnixMicro(from + rng.Int64N(to-from)).UTC()
	if rng.IntN(3) == 0 {
		at = at.Truncate(time.Millisecond)
	}
	return at
}

// The forms in which the applications write a timestamp (stampArg).
const (
	formBound       = iota // a time.Time argument in a zone other than the session's
	formSessionZone        // wall-clock text in the session's zone: the application's local time
	formText               // text in the column's own convention (see stampArg)
	formCount
)

var (
	tokyo   = mustZone("Asia/Tokyo")
	newYork = mustZone("America/New_York")
	// kathmandu's +05:45 is an explicit offset no session here uses.
	kathmandu = time.FixedZone("+0545", 5*3600+45*60)
)

func mustZone(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return loc
}

// stampArg returns the placeholder and the argument with which the
// application on db writes v.seen in v.form:
//
//	PostgreSQL (timestamptz): formBound a time.Time (an instant on the
//	  wire); formSessionZone wall-clock text the server reads in the
//	  session's TimeZone; formText text with an explicit +05:45 offset.
//	MariaDB (DATETIME(6) holding UTC, see serverItemsRight): formBound a
//	  time.Time, which the driver writes as UTC; formSessionZone the
//	  session's local wall clock converted by the server with
//	  CONVERT_TZ(?, @@session.time_zone, '+00:00') (within TIMESTAMP's
//	  range, where CONVERT_TZ converts; else formText); formText UTC text.
//	SQLite (text): formBound a time.Time in Tokyo, which the driver
//	  writes as "2006-01-02 15:04:05.999999999 +0900 JST"; formSessionZone
//	  ISO 8601 with New York's offset; formText UTC text as SQLite's
//	  datetime() writes it; for whole seconds or milliseconds also the
//	  numbers of unixepoch(), julianday() and unixepoch(..., 'subsec').
func stampArg(t *testing.T, db *sql.DB, v itemValues) (string, any) {
	t.Helper()
	at, ok := v.seen.(time.Time)
	if !ok {
		return "?", nil
	}
	const wall = "2006-01-02 15:04:05.999999"
	switch fmt.Sprintf("%T", db.Driver()) {
	case "*stdlib.Driver":
		switch v.form {
		case formBound:
			return "?", at.In(tokyo)
		case formSessionZone:
			return "?", at.In(sessionZone(t, db)).Format(wall)
		}
		return "?", at.In(kathmandu).Format(wall + "-07:00")
	case "mysql.MySQLDriver", "*mysql.MySQLDriver":
		inRange := at.After(time.Date(1970, 1, 2, 0, 0, 0, 0, time.UTC)) && at.Before(time.Date(2038, 1, 18, 0, 0, 0, 0, time.UTC))
		switch {
		case v.form == formBound:
			return "?", at.In(tokyo)
		case v.form == formSessionZone && inRange:
			return "CONVERT_TZ(?, @@session.time_zone, '+00:00')", at.In(sessionZone(t, db)).Format(wall)
		}
		return "?", at.UTC().Format(wall)
	}
	switch v.form {
	case formBound:
		return "?", at.In(tokyo)
	case formSessionZone:
		return "?", at.In(newYork).Format("2006-01-02T15:04:05.999999Z07:00")
	}
	switch ms := at.UnixMilli(); {
	case at.Nanosecond() == 0 && at.Unix()%2 == 0:
		return "?", at.Unix()
	case at.Nanosecond()%1_000_000 == 0 && ms%2 == 0:
		return "julianday(?)", at.UTC().Format("2006-01-02 15:04:05.000")
	case at.Nanosecond()%1_000_000 == 0:
		return "unixepoch(?, 'subsec')", at.UTC().Format("2006-01-02 15:04:05.000")
	}
	return "?", at.UTC().Format(wall)
}

var sessionZones sync.Map // *sql.DB → *time.Location

// sessionZone is the time zone of db's sessions, as the server reports it.
func sessionZone(t *testing.T, db *sql.DB) *time.Location {
	t.Helper()
	if loc, ok := sessionZones.Load(db); ok {
		return loc.(*time.Location)
	}
	q := "SHOW TimeZone"
	if fmt.Sprintf("%T", db.Driver()) != "*stdlib.Driver" {
		q = "SELECT @@session.time_zone"
	}
	var name string
	if err := db.QueryRow(q).Scan(&name); err != nil {
		t.Fatal(err)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		// MariaDB's numeric zone "+09:00".
		off, perr := time.Parse("-07:00", name)
		if perr != nil {
			t.Fatalf("session time zone %q: %v", name, err)
		}
		_, secs := off.Zone()
		loc = time.FixedZone(name, secs)
	}
	sessionZones.Store(db, loc)
	return loc
}

// instantText renders a timestamp as the application's driver read it
// as its UTC instant to the nanosecond, so sides on different engines
// compare exactly. Text without a zone is UTC and numbers are read as
// SQLite's date functions read them: the conventions of the MariaDB
// DATETIME and the SQLite columns.
func instantText(v any) string {
	switch x := v.(type) {
	case nil:
		return "<nil>"
	case time.Time:
		return x.UTC().Format("2006-01-02 15:04:05.000000000Z")
	case int64:
		return instantText(time.Unix(x, 0))
	case float64:
		// SQLite's 'auto' rule: a Julian day number (kept to the
		// millisecond) below 5373484.5, else Unix seconds.
		if x >= 0 && x < 5373484.5 {
			return instantText(time.UnixMilli(int64(math.Round((x - 2440587.5) * 86_400_000))))
		}
		sec := math.Floor(x)
		return instantText(time.Unix(int64(sec), int64(math.Round((x-sec)*1e6))*1000))
	case []byte:
		v = string(x)
	}
	s, ok := v.(string)
	if !ok {
		return fmt.Sprintf("unexpected %T %v", v, v)
	}
	for _, layout := range []string{
		"2006-01-02 15:04:05.999999999",
		"2006-01-02T15:04:05.999999999",
		"2006-01-02 15:04:05.999999999Z07:00",
		"2006-01-02T15:04:05.999999999Z07:00",
		"2006-01-02 15:04:05.999999999 -0700 MST",
	} {
		if at, err := time.Parse(layout, s); err == nil {
			return instantText(at)
		}
	}
	return "unparsed " + s
}
