// Package incident is the domain of incident response and the public status
// page: components in two-level groups with Statuspage's statuses, incidents
// with impact, severity, a lifecycle (investigating → identified → monitoring
// → resolved → postmortem) and a timeline of updates, scheduled maintenance,
// templates, the severity policy that ties incidents to releases, and the
// read models the status page and the subscriber fan-out consume (Page,
// Notification).
//
// It imports nothing of ours and touches nothing: the store feeds it values
// and persists what its rules return. Invariants its rules keep:
//   - an incident only moves along Status.CanBecome: a resolved incident is
//     never reopened (declare a new one), a postmortem is terminal;
//   - a maintenance only moves along MaintenanceStatus.CanBecome; completed
//     and cancelled are terminal;
//   - a draft incident is never public and notifies no one until published;
//   - every value a Page or a Notification holds is as it was when read, so
//     consumers render and deliver exactly what was decided.
package incident

import (
	"errors"
	"fmt"
)

// Error codes carried by *Error. They have the same values as the release
// package's codes, so transport layers map both alike (ENOTFOUND → 404,
// EINVALID → 400, ECONFLICT → 409); anything else is internal.
const (
	ECONFLICT = "conflict"
	EINVALID  = "invalid"
	ENOTFOUND = "not_found"
	EINTERNAL = "internal"
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

// ErrorCode returns the code of the first *Error in err's chain, EINTERNAL
// for any other non-nil error and "" for nil.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// maxTitleLen bounds titles and names; maxBodyLen bounds update bodies,
// messages and postmortems.
const (
	maxTitleLen = 200
	maxBodyLen  = 64 << 10
)

// validateText checks a free-text field: required or not, at most max bytes.
func validateText(field, s string, required bool, max int) error {
	if required && s == "" {
		return Errorf(EINVALID, "%s is required", field)
	}
	if len(s) > max {
		return Errorf(EINVALID, "%s is longer than %d bytes", field, max)
	}
	return nil
}
