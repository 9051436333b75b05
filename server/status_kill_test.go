package server_test

import (
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ringfence/ringfence/internal/notifytest"
	"github.com/ringfence/ringfence/internal/servertest"
)

// adminToken creates the store db with bin and returns an admin token.
func adminToken(t *testing.T, bin, db string) string {
	t.Helper()
	out, err := exec.Command(bin, "admin", "token", "create", "--db", db, "--init", "--role", "admin").Output()
	if err != nil {
		t.Fatalf("admin token create: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// runServe starts bin's serve on db with extra flags and returns its URL
// and a function that kills it with SIGKILL.
func runServe(t *testing.T, bin, db string, flags ...string) (string, func()) {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"serve", "--db", db, "--listen", "127.0.0.1:0"}, flags...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	kill := func() {
		if !killed {
			killed = true
			_ = cmd.Process.Signal(syscall.SIGKILL)
			_ = cmd.Wait()
		}
	}
	t.Cleanup(kill)
	return servertest.WaitServing(t, stderr), kill
}

// TestKilledServerLosesNoWebhook runs the real ringfence binary, kills it
// with SIGKILL while it delivers three notifications to 50 webhook
// subscribers (some attempts failing, many in flight), starts it again on
// the same store and checks that every subscriber got every notification,
// verified with the Standard Webhooks library. Duplicates are allowed
// (at least once) and have the same webhook-id.
func TestKilledServerLosesNoWebhook(t *testing.T) {
	bin := buildRingfence(t)
	db := filepath.Join(t.TempDir(), "ringfence.db")
	token := adminToken(t, bin, db)
	flags := []string{"--webhook-allow-private", "--subscriber-timeout", "1s", "--subscriber-backoff", "100ms", "--subscriber-attempts", "1000"}
	url, kill := runServe(t, bin, db, flags...)
	e := &env{t: t, URL: url, Admin: token}

	rcv := notifytest.NewReceiver(t)
	rcv.Delay(30 * time.Millisecond)
	rcv.FailNext(40)
	const subs = 50
	for i := range subs {
		var s struct{ Secret string }
		e.api("POST", "/api/v1/subscribers", map[string]any{"webhook": fmt.Sprintf("%s/s%d", rcv.URL, i)}, http.StatusCreated, &s)
		rcv.Secret(fmt.Sprintf("/s%d", i), s.Secret)
	}
	// One subscriber's deliveries wait until after the kill, so that not all
	// can be done before it however the machine schedules the test.
	unblock := rcv.Block("/s0")
	var inc struct{ ID int64 }
	e.api("POST", "/api/v1/incidents", map[string]any{"title": "Check-ins failing", "impact": "major", "status": "investigating",
		"message": "Looking into it."}, http.StatusCreated, &inc)
	for _, st := range []string{"identified", "monitoring"} {
		e.api("POST", fmt.Sprintf("/api/v1/incidents/%d/updates", inc.ID), map[string]any{"status": st, "message": "Now " + st + "."}, http.StatusCreated, nil)
	}
	servertest.Eventually(t, 20*time.Second, "deliveries under way", func() bool { return rcv.Count() >= 20 })
	kill()
	before := rcv.Count()
	unblock()
	if before >= 3*subs {
		t.Fatalf("all %d deliveries were done before the kill; the test proves nothing", before)
	}

	url, _ = runServe(t, bin, db, flags...)
	e.URL = url
	distinct := func() map[string]int {
		seen := map[string]int{}
		for _, h := range rcv.Hooks() {
			if h.Verified == nil && h.Answered < 300 {
				seen[h.Path+" "+h.ID]++
			}
		}
		return seen
	}
	servertest.Eventually(t, 60*time.Second, "every notification delivered to every subscriber", func() bool { return len(distinct()) == 3*subs })
	dups := 0
	for _, n := range distinct() {
		dups += n - 1
	}
	for _, h := range rcv.Hooks() {
		if h.Verified != nil {
			t.Errorf("unverified webhook: %v", h.Verified)
		}
	}
	var dead []any
	e.api("GET", "/api/v1/deliveries?state=dead", nil, http.StatusOK, &dead)
	if len(dead) != 0 {
		t.Errorf("dead deliveries: %v", dead)
	}
	t.Logf("%d accepted before the kill, %d in all; %d duplicates after the restart", before, rcv.Count(), dups)
}
