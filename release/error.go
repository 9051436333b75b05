// Package release is the domain of release control: products, releases and
// their versions, rings, customers, gates, holds, installations and the events
// they report. It holds the pure rules — promotion between rings, the answer
// an installation gets when it checks in (Decide), and auto-halt — and the
// check-in protocol types. It imports nothing of ours but internal/fault (a
// leaf holding the error type) and touches nothing: the store and the server
// feed it values and persist what it returns.
package release

import "github.com/ringfence/ringfence/internal/fault"

// Error codes carried by *Error. Transport layers map them to statuses
// (ENOTFOUND → 404, EINVALID → 400, ECONFLICT → 409, EFORBIDDEN → 403,
// EUNAUTHORIZED → 401); anything else is internal.
const (
	ECONFLICT     = fault.ECONFLICT
	EFORBIDDEN    = fault.EFORBIDDEN
	EINTERNAL     = fault.EINTERNAL
	EINVALID      = fault.EINVALID
	ENOTFOUND     = fault.ENOTFOUND
	EUNAUTHORIZED = fault.EUNAUTHORIZED
)

// Error is a domain error: a machine-readable code and a message written for
// the person who caused it (safe to show to API clients). It is fault.Error,
// the type incident.Error is too.
type Error = fault.Error

// Errorf returns a domain error with code and a formatted message.
func Errorf(code, format string, args ...any) *Error { return fault.Errorf(code, format, args...) }

// ErrorCode returns the code of the first *Error in err's chain, EINTERNAL
// for any other non-nil error and "" for nil.
func ErrorCode(err error) string { return fault.Code(err) }

// ErrorMessage returns the message of the first *Error in err's chain, or a
// generic message for other errors (whose text may hold internal detail).
func ErrorMessage(err error) string { return fault.Message(err) }
