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
	// What the server's decoder really says of a control character in
	// the second event's detail.
	body := []byte(`{"instance_id":"i-1","product":"acme","version":"1.0.0","nonce":"abcdefghijklmnop","events":[` +
		`{"kind":"upgrade_started","from":"1.0.0","to":"1.1.0","at":"2026-12-06T00:00:00Z"},` +
		`{"kind":"upgrade_failed","from":"1.0.0","to":"1.1.0","at":"2026-12-06T00:00:00Z","detail":"x\u0001y"}]}`)
	_, perr := release.ParseCheckIn(body)
	if perr == nil {
		t.Fatal("the server's decoder took a control character")
	}
	fromServer := &client.Error{Status: http.StatusBadRequest, Code: release.ErrorCode(perr), Detail: release.ErrorMessage(perr)}
	for _, c := range []struct {
		err  error
		n    int
		want int
		ok   bool
	}{
		{fromServer, 2, 1, true},
		{&client.Error{Status: http.StatusBadRequest, Detail: "events[3].detail: control character U+0001 is not allowed"}, 5, 3, true},
		{&client.Error{Status: http.StatusBadRequest, Detail: "check-in: events[3].detail: control character U+0001"}, 5, 3, true},
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
