package problem

import (
	"net/http"
	"testing"

	"github.com/ringfence/ringfence/release"
)

// TestStatusAndCodeAreInverse checks that every code maps to a status that
// maps back to it, and that unknown codes and statuses are internal.
func TestStatusAndCodeAreInverse(t *testing.T) {
	for _, code := range []string{release.EINVALID, release.EUNAUTHORIZED, release.EFORBIDDEN, release.ENOTFOUND, release.ECONFLICT,
		TooLarge, RateLimited, Unavailable, UnsupportedMediaType, PreconditionFailed, MethodNotAllowed} {
		st := Status(code)
		if st == http.StatusInternalServerError {
			t.Errorf("Status(%q) = 500", code)
		}
		if got := Code(st); got != code {
			t.Errorf("Code(Status(%q) = %d) = %q", code, st, got)
		}
	}
	if got := Status(release.EINTERNAL); got != http.StatusInternalServerError {
		t.Errorf("Status(internal) = %d, want 500", got)
	}
	if got := Status("no_such_code"); got != http.StatusInternalServerError {
		t.Errorf("Status(no_such_code) = %d, want 500", got)
	}
	if got := Code(http.StatusTeapot); got != release.EINTERNAL {
		t.Errorf("Code(418) = %q, want internal", got)
	}
}
