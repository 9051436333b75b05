package agent

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/ringfence/ringfence/client"
	"github.com/ringfence/ringfence/release"
)

// TestRefusedEvent: the event a check-in was refused for is found in the
// server's 400 (a field path or an event number) and in the client's own
// check; nothing else names one.
func TestRefusedEvent(t *testing.T) {
	for _, c := range []struct {
		err  error
		n    int
		want int
		ok   bool
	}{
		{&client.Error{Status: http.StatusBadRequest, Detail: "events[3].detail: control character U+0001 is not allowed"}, 5, 3, true},
		{&client.Error{Status: http.StatusBadRequest, Detail: "event 0: kind \"x\": want ..."}, 1, 0, true},
		{fmt.Errorf("check in: %w", release.Errorf(release.EINVALID, "event 2: upgrade_failed needs \"from\"")), 3, 2, true},
		{&client.Error{Status: http.StatusBadRequest, Detail: "events[7].detail: ..."}, 5, 0, false}, // not one sent
		{&client.Error{Status: http.StatusBadRequest, Detail: "nonce must be 16 to 128 characters"}, 5, 0, false},
		{&client.Error{Status: http.StatusServiceUnavailable, Detail: "event 0: could not record"}, 5, 0, false},
		{fmt.Errorf("dial tcp: refused"), 5, 0, false},
	} {
		if got, ok := refusedEvent(c.err, c.n); got != c.want || ok != c.ok {
			t.Errorf("refusedEvent(%v, %d) = %d, %v; want %d, %v", c.err, c.n, got, ok, c.want, c.ok)
		}
	}
}
