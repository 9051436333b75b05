// Package fault holds the one error type ringfence's domains share: Error,
// a machine-readable code with a message written for the person who caused
// it, and Const, an error made of its message alone that can be a constant.
//
// It imports nothing of ours (nothing but the standard library), so the
// pure domains can both use it and stay pure: release and incident re-export
// Error under their own names (release.Error and incident.Error are this
// type, with the same codes), so a code set in either domain reads the same
// everywhere, and transport layers map one set of codes to statuses.
package fault

import (
	"errors"
	"fmt"
)

// Error codes carried by *Error. Transport layers map them to statuses
// (ENOTFOUND → 404, EINVALID → 400, ECONFLICT → 409, EFORBIDDEN → 403,
// EUNAUTHORIZED → 401); anything else is internal.
const (
	ECONFLICT     = "conflict"
	EFORBIDDEN    = "forbidden"
	EINTERNAL     = "internal"
	EINVALID      = "invalid"
	ENOTFOUND     = "not_found"
	EUNAUTHORIZED = "unauthorized"
)

// Error is a domain error: a machine-readable code and a message written for
// the person who caused it (safe to show to API clients).
type Error struct {
	Code    string
	Message string
}

// Error implements error.
func (e *Error) Error() string { return fmt.Sprintf("%s: %s", e.Code, e.Message) }

// Errorf returns a domain error with code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Code returns the code of the first *Error in err's chain, EINTERNAL for
// any other non-nil error and "" for nil.
func Code(err error) string {
	code, _ := split(err)
	return code
}

// Message returns the message of the first *Error in err's chain, or a
// generic message for other errors (whose text may hold internal detail).
func Message(err error) string {
	_, msg := split(err)
	return msg
}

// split returns what Code and Message return.
func split(err error) (code, msg string) {
	var e *Error
	switch {
	case err == nil:
		return "", ""
	case errors.As(err, &e):
		return e.Code, e.Message
	}
	return EINTERNAL, "internal error"
}

// Const is an error made of its message. Its values can be constants
// (const ErrX fault.Const = "..."), which callers test with errors.Is.
type Const string

// Error implements error.
func (e Const) Error() string { return string(e) }
