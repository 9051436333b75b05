// Package problem is the error format of ringfence's HTTP API, shared by
// the server that writes it and the client that reads it: RFC 9457 problem
// details carrying ringfence's error code, and the one table of which code
// goes with which HTTP status.
package problem

import (
	"net/http"

	"github.com/ringfence/ringfence/release"
)

// Codes beyond release's domain codes: failures of the transport (size,
// rate, availability) that have no domain meaning.
const (
	TooLarge    = "too_large"
	RateLimited = "rate_limited"
	Unavailable = "unavailable"
	// UnsupportedMediaType: a request body that is not application/json.
	UnsupportedMediaType = "unsupported_media_type"
	// PreconditionFailed: If-Match names another version of the resource.
	PreconditionFailed = "precondition_failed"
	// MethodNotAllowed: the path exists, not with this method (see Allow).
	MethodNotAllowed = "method_not_allowed"
)

// Details is an RFC 9457 problem details body, with ringfence's error code.
type Details struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
	Code   string `json:"code"`
}

// statuses pairs every code with its HTTP status, one to one; any other
// code is release.EINTERNAL, 500.
var statuses = [...]struct {
	code   string
	status int
}{
	{release.EINVALID, http.StatusBadRequest},
	{release.EUNAUTHORIZED, http.StatusUnauthorized},
	{release.EFORBIDDEN, http.StatusForbidden},
	{release.ENOTFOUND, http.StatusNotFound},
	{release.ECONFLICT, http.StatusConflict},
	{TooLarge, http.StatusRequestEntityTooLarge},
	{RateLimited, http.StatusTooManyRequests},
	{Unavailable, http.StatusServiceUnavailable},
	{UnsupportedMediaType, http.StatusUnsupportedMediaType},
	{PreconditionFailed, http.StatusPreconditionFailed},
	{MethodNotAllowed, http.StatusMethodNotAllowed},
}

// Status returns the HTTP status that answers code: 500 for codes it does
// not know, release.EINTERNAL among them.
func Status(code string) int {
	for _, s := range statuses {
		if s.code == code {
			return s.status
		}
	}
	return http.StatusInternalServerError
}

// Code returns the code an HTTP status stands for, for answers that carry
// no problem body (from a proxy, say): release.EINTERNAL for statuses it
// does not know.
func Code(status int) string {
	for _, s := range statuses {
		if s.status == status {
			return s.code
		}
	}
	return release.EINTERNAL
}
