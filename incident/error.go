// Package incident is the domain of incident response and the public status
// page: components in two-level groups with Statuspage's statuses, incidents
// with impact, severity, a lifecycle (investigating → identified → monitoring
// → resolved → postmortem) and a timeline of updates, scheduled maintenance,
// templates, the severity policy that ties incidents to releases, the read
// models the status page and the subscriber fan-out consume (Page,
// Notification), and the page's subscribers with the messages they are sent
// and the record of each delivery (Subscriber, Message, Delivery), which
// notify delivers.
//
// It imports nothing of ours but internal/fault (a leaf holding the error
// type it shares with release) and touches nothing but the random source
// new subscribers' secrets come from: the store feeds it values and
// persists what its rules return. Invariants its rules keep:
//   - an incident only moves along Status.CanBecome: a resolved incident is
//     never reopened (declare a new one), a postmortem is terminal;
//   - a maintenance only moves along MaintenanceStatus.CanBecome; completed
//     and cancelled are terminal;
//   - a draft incident is never public and notifies no one until published;
//   - every value a Page or a Notification holds is as it was when read, so
//     consumers render and deliver exactly what was decided.
package incident

import "github.com/ringfence/ringfence/internal/fault"

// Error is a domain error with a code and a message safe to show. It is
// fault.Error, the same type as release.Error, so an incident error needs
// no translation to be answered, and these are release's codes.
type Error = fault.Error

// The codes incident's errors carry; transport layers map them as they map
// release's (ENOTFOUND → 404, EINVALID → 400, ECONFLICT → 409).
const (
	ECONFLICT = fault.ECONFLICT
	EINVALID  = fault.EINVALID
	ENOTFOUND = fault.ENOTFOUND
	EINTERNAL = fault.EINTERNAL
)

// Errorf is fault.Errorf: an *Error with code and a formatted message.
func Errorf(code, format string, args ...any) *Error { return fault.Errorf(code, format, args...) }

// ErrorCode is fault.Code: the code of the first *Error in err's chain
// (incident's or release's, one type), EINTERNAL for any other error.
func ErrorCode(err error) string { return fault.Code(err) }

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
