// Package pgrepl speaks the PostgreSQL streaming replication protocol in
// logical mode and decodes the pgoutput plugin's messages (protocol
// version 1). It is written from the PostgreSQL documentation chapters
// "Streaming Replication Protocol" and "Logical Replication Message
// Formats"; it knows nothing about dualwrite's change model.
package pgrepl

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// LSN is a write-ahead log position.
type LSN uint64

// String formats the LSN the way PostgreSQL does ("16/B374D848").
func (l LSN) String() string {
	return fmt.Sprintf("%X/%X", uint32(l>>32), uint32(l))
}

// ParseLSN parses the "XXX/XXX" textual form.
func ParseLSN(s string) (LSN, error) {
	hi, lo, ok := strings.Cut(s, "/")
	if !ok {
		return 0, fmt.Errorf("parse lsn %q: missing '/'", s)
	}
	h, err := strconv.ParseUint(hi, 16, 32)
	if err != nil {
		return 0, fmt.Errorf("parse lsn %q: %w", s, err)
	}
	l, err := strconv.ParseUint(lo, 16, 32)
	if err != nil {
		return 0, fmt.Errorf("parse lsn %q: %w", s, err)
	}
	return LSN(h<<32 | l), nil
}

// postgresEpoch is the origin of the protocol's timestamps: microseconds
// since 2000-01-01 00:00:00 UTC.
var postgresEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// TimeFromMicros converts a protocol timestamp to UTC time.
func TimeFromMicros(us int64) time.Time {
	return postgresEpoch.Add(time.Duration(us) * time.Microsecond).UTC()
}

// MicrosFromTime converts t to a protocol timestamp.
func MicrosFromTime(t time.Time) int64 {
	return t.Sub(postgresEpoch).Microseconds()
}
