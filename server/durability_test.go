package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ringfence/ringfence/internal/servertest"
	"github.com/ringfence/ringfence/sqlstore"
)

// TestKilledServerLosesNoAnsweredEvent runs the real ringfence binary,
// sends check-ins carrying failure events from several installations at
// once, kills the server with SIGKILL mid-stream and checks that every
// event whose check-in was answered is in the store.
// (TestPostgres runs the same on PostgreSQL.)
func TestKilledServerLosesNoAnsweredEvent(t *testing.T) {
	killDuringFailures(t, buildRingfence(t), filepath.Join(t.TempDir(), "ringfence.db"))
}

// buildRingfence builds the ringfence binary into a temporary directory.
func buildRingfence(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "ringfence")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/ringfence/ringfence/cmd/ringfence").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// killDuringFailures runs bin's serve on store db and kills it while
// installations report failures.
func killDuringFailures(t *testing.T, bin, db string) {
	token := adminToken(t, bin, db)

	url, kill := runServe(t, bin, db, "--checkin-rate", "1000000", "--checkin-burst", "1000000", "--quota-events", "-1",
		"--key-encryption-key-file", filepath.Join(t.TempDir(), "kek"))

	e := &env{t: t, URL: url, Admin: token}
	e.api("POST", "/api/v1/products", map[string]any{"name": "acme", "halt": map[string]any{"disabled": true}}, http.StatusCreated, nil)
	e.api("POST", "/api/v1/products/acme/rings", map[string]any{"name": "all", "position": 0, "rollout_percent": 100}, http.StatusCreated, nil)
	for _, v := range []string{"1.0.0", "1.1.0"} {
		e.api("POST", "/api/v1/products/acme/releases", map[string]any{"version": v}, http.StatusCreated, nil)
	}
	key := e.enroll("acme", "bigbank", "all")

	// Eight installations report failures as fast as they are answered.
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var mu sync.Mutex
	answered := map[string]bool{}
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 5 * time.Second}
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ctx.Err() == nil; n++ {
				detail := fmt.Sprintf("ev-%d-%d", g, n)
				body, _ := json.Marshal(checkIn{InstanceID: fmt.Sprintf("inst-%d", g), Product: "acme", Version: "1.0.0",
					Nonce:  fmt.Sprintf("nonce-%016d-%d", n, g),
					Events: []map[string]any{{"kind": "upgrade_failed", "from": "1.0.0", "to": "1.1.0", "at": time.Now().UTC(), "detail": detail}}})
				req, _ := http.NewRequestWithContext(ctx, "POST", url+"/v1/checkin", strings.NewReader(string(body)))
				req.Header.Set("Authorization", "Bearer "+key)
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if err != nil {
					return // the server is gone
				}
				var env struct {
					Payload []byte `json:"payload"`
				}
				err = json.NewDecoder(resp.Body).Decode(&env)
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK && err == nil && len(env.Payload) > 0 {
					mu.Lock()
					answered[detail] = true
					mu.Unlock()
				}
			}
		}()
	}
	// Kill once enough were answered for the test to prove something (a
	// loaded machine takes longer to get there), and some more are in flight.
	servertest.Eventually(t, 2*time.Second, "100 check-ins answered", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(answered) >= 100
	})
	time.Sleep(200 * time.Millisecond)
	kill() // SIGKILL: no shutdown, no final flush
	wg.Wait()
	stop()

	mu.Lock()
	defer mu.Unlock()
	if len(answered) < 100 {
		t.Fatalf("only %d check-ins answered before the kill; the test proves little", len(answered))
	}
	store, err := sqlstore.Open(context.Background(), db)
	if err != nil {
		t.Fatalf("reopen store after SIGKILL: %v", err)
	}
	defer store.Close()
	events, err := store.ListEvents(context.Background(), "acme", 10_000_000)
	if err != nil {
		t.Fatal(err)
	}
	stored := map[string]bool{}
	for _, ev := range events {
		stored[ev.Detail] = true
	}
	var lost []string
	for d := range answered {
		if !stored[d] {
			lost = append(lost, d)
		}
	}
	if len(lost) > 0 {
		t.Fatalf("%d of %d answered events lost after SIGKILL, e.g. %v", len(lost), len(answered), lost[:min(5, len(lost))])
	}
	t.Logf("%d answered events, all stored (%d stored in total)", len(answered), len(stored))
}
