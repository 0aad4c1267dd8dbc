// Package problem is the catalogue of user-facing error codes. Every error
// a user can see carries one of these codes and says what to do next. The
// catalogue is documented in docs/ERRORS.md; keep the two in step.
package problem

import (
	"errors"
	"fmt"
)

// Code is a stable error code, "DW" and four digits.
type Code string

// The catalogue. Codes are never reused or renumbered.
const (
	// Configuration and validation (DW10xx).
	ConnectionFailed  Code = "DW1000" // a side's database cannot be reached
	ConfigSyntax      Code = "DW1001" // the YAML is malformed or has unknown fields
	ConfigInvalid     Code = "DW1002" // a field value is invalid
	KeyNotUnique      Code = "DW1003" // integration key not backed by a unique index
	KeyNotBidirection Code = "DW1004" // key column not bidirectional in a bidirectional map
	MandatoryUnmapped Code = "DW1010" // NOT NULL column without default is not mapped
	ExprInvalid       Code = "DW1012" // filter or expression does not compile
	LookupUncovered   Code = "DW1014" // lookup to a table no map covers
	UnknownTable      Code = "DW1021"
	UnknownColumn     Code = "DW1024"
	TypeMismatch      Code = "DW1030"
	DependencyCycle   Code = "DW1040"
	UnknownMap        Code = "DW1041" // depends_on or lookup names a map that does not exist
	ServerSetting     Code = "DW1050" // e.g. wal_level is not logical, binlog_format is not ROW
	MissingPrivilege  Code = "DW1051"

	// Lifecycle and operations (DW20xx).
	InvalidAction  Code = "DW2001" // the action is not allowed in the map's status
	MapNotFound    Code = "DW2002"
	MapInvalid     Code = "DW2003" // the map has validation errors and cannot start
	LogPurged      Code = "DW2010" // the source log no longer holds the saved position
	QueueRetention Code = "DW2020" // queued changes are close to the retention limit

	// Row errors (DW30xx), recorded per row during initial sync and catch-up.
	RowWriteFailed     Code = "DW3001" // the target database rejected the write
	LookupUnresolved   Code = "DW3002" // a lookup value has no matching row on the target side
	TransformFailed    Code = "DW3003" // an expression or value map failed on the row
	KeyMissing         Code = "DW3004" // an integration key value is NULL
	WaitingBehindError Code = "DW3005" // a later change to a key that has a parked catch-up error
)

// Error is an error with a stable code.
type Error struct {
	Code    Code
	Message string
	Err     error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%s %s", e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// New returns an error with a code and a message that says what to do.
func New(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Wrap returns an error with a code that wraps err.
func Wrap(code Code, err error, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...), Err: err}
}

// CodeOf returns the code of the first *Error in err's chain, or "".
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}
