package server_test

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ringfence/ringfence/internal/servertest"
	"github.com/ringfence/ringfence/server"
)

// checkInSeeds are check-in bodies the fuzzing starts from: valid ones with
// every field, and the attacks issue 8 found.
var checkInSeeds = []string{
	`{"instance_id":"m-1","product":"acme","version":"1.0.0","nonce":"abcdefghijklmnopqr"}`,
	`{"instance_id":"m-2","product":"acme","version":"1.0.0","nonce":"abcdefghijklmnopqr","health":{"status":"corrupt","detail":"index x"},"events":[{"kind":"upgrade_failed","from":"1.0.0","to":"1.1.0","at":"2026-01-01T00:00:00Z","detail":"boom"},{"kind":"integrity_failed","at":"2026-01-01T00:00:00Z"}]}`,
	`{"instance_id":"victim-0","product":"acme","version":"1.1.0","nonce":"abcdefghijklmnopqr","events":[{"kind":"upgrade_succeeded","from":"1.0.0","to":"1.1.0","at":"2026-01-01T00:00:00Z"}]}`,
	`{"instance_id":"m-3","product":"acme","version":"1.0.0","nonce":"abcdefghijklmnopqr","health":{"status":"ok","detail":"a\u0000b"}}`,
	`{"instance_id":"m-4","product":"acme","version":"1.0.0","version":"9.9.9","nonce":"abcdefghijklmnopqr"}`,
	`{"Instance_ID":"m-5","product":"acme","version":"1.0.0","nonce":"abcdefghijklmnopqr"}`,
	`{"instance_id":"m-6","product":"acme","version":"99999999999999999999.0.0","nonce":"abcdefghijklmnopqr"}`,
	`{"instance_id":"m-7","product":"other","version":"1.0.0-rc.1","nonce":"abcdefghijklmnopqr","events":[]}`,
}

// fuzzTarget is a running server with customers mallory (whose key sends
// the fuzzed bodies) and victim (whose rows must never change), and a
// digest of victim's rows.
type fuzzTarget struct {
	e       *env
	mallory string
	db      *sql.DB
	before  string
}

func newFuzzTarget(t testing.TB, dsn string) *fuzzTarget {
	e := startServer(t, dsn, server.Config{CheckInRate: 1e6, CheckInBurst: 1e6, QuotaNewInstances: -1, QuotaEvents: -1, QuotaStoredBytes: -1,
		FlushInterval: 5 * time.Millisecond})
	mallory, victim := twoCustomers(e)
	for i := range 3 {
		e.checkIn(victim, checkIn{InstanceID: fmt.Sprintf("victim-%d", i), Product: "acme", Version: "1.0.0",
			Events: []map[string]any{{"kind": "upgrade_started", "from": "1.0.0", "to": "1.1.0", "at": time.Now().UTC()}}})
	}
	f := &fuzzTarget{e: e, mallory: mallory, db: servertest.RawDB(t, dsn)}
	time.Sleep(20 * time.Millisecond) // victim's routine rows are flushed
	f.before = f.digest(t)
	return f
}

// digest describes every row of customer victim.
func (f *fuzzTarget) digest(t testing.TB) string {
	var b strings.Builder
	for _, q := range []string{
		`SELECT instance_id || '|' || version || '|' || health || '|' || health_detail || '|' || CAST(last_seen AS TEXT) FROM installations WHERE customer = 'victim' ORDER BY instance_id`,
		`SELECT CAST(COUNT(*) AS TEXT) FROM events WHERE customer = 'victim'`,
		`SELECT CAST(COUNT(*) AS TEXT) FROM health_reports WHERE customer = 'victim'`,
	} {
		rows, err := f.db.Query(q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			b.WriteString(s + "\n")
		}
		rows.Close()
	}
	return b.String()
}

// send posts body as a check-in of mallory and fails t on a 5xx or a change
// to victim's rows.
func (f *fuzzTarget) send(t testing.TB, body []byte, contentType string) int {
	req, err := http.NewRequest("POST", f.e.URL+"/v1/checkin", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+f.mallory)
	req.Header.Set("Content-Type", contentType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("check-in %q: %v", body, err)
	}
	resp.Body.Close()
	if resp.StatusCode >= 500 {
		t.Fatalf("check-in %q: status %d", body, resp.StatusCode)
	}
	if resp.StatusCode == http.StatusOK {
		time.Sleep(6 * time.Millisecond) // a routine record is flushed before the digest
	}
	if after := f.digest(t); after != f.before {
		t.Fatalf("check-in %q by mallory changed victim's rows:\n%s\nwas\n%s", body, after, f.before)
	}
	return resp.StatusCode
}

// FuzzCheckIn fuzzes the whole check-in handler — key lookup, rate limit,
// quotas, decoding, decision, signing, group commit — over HTTP against a
// real server and SQLite store: no input may yield a 5xx or change another
// customer's rows. `go test` runs the seeds; run longer with
// go test -run '^$' -fuzz FuzzCheckIn -fuzztime 5m ./server/.
func FuzzCheckIn(f *testing.F) {
	for _, s := range checkInSeeds {
		f.Add([]byte(s))
	}
	target := newFuzzTarget(f, servertest.SQLite(f))
	f.Fuzz(func(t *testing.T, body []byte) {
		_ = target.send(t, body, "application/json")
	})
}

// checkInMutations is FuzzCheckIn's property over a fixed, seeded series
// of n mutations of the seeds, so that CI checks it on every store in
// bounded time without the fuzzing engine.
func checkInMutations(t *testing.T, dsn string, n int) {
	f := newFuzzTarget(t, dsn)
	rng := rand.New(rand.NewPCG(8, 2026))
	accepted := 0
	pieces := []string{"\x00", "\\u0000", "\xff", "\\ud800", `"`, `{`, `}`, `[`, `]`, `,`, `:`, `null`, `1e999`, `-1`, `9223372036854775808`,
		`"victim"`, `"instance_id":"victim-0"`, `"customer":"victim"`, `"Product"`, strings.Repeat("x", 5000), "\t", "\n", "é", "\u2028"}
	values := []any{"victim-0", "m-9", "1.1.0", "2.0.0", "1.0.0-rc.1", "ok", "corrupt", "collation_changed", "upgrade_failed",
		"upgrade_succeeded", "integrity_failed", "2026-01-01T00:00:00Z", "é\u2028x", strings.Repeat("y", 4096), "a\tb\nc", 7, nil, true}
	for i := range n {
		b := []byte(checkInSeeds[rng.IntN(len(checkInSeeds))])
		if i%2 == 0 {
			// Valid JSON with one value replaced: reaches the decision and
			// the store more often than byte mutations do.
			var doc map[string]any
			if json.Unmarshal(b, &doc) == nil {
				mutateValue(rng, doc, values)
				if out, err := json.Marshal(doc); err == nil {
					b = out
				}
			}
			if f.send(t, b, "application/json") == http.StatusOK {
				accepted++
			}
			continue
		}
		for range 1 + rng.IntN(3) {
			p := rng.IntN(len(b) + 1)
			switch rng.IntN(4) {
			case 0: // insert a piece
				b = append(b[:p:p], append([]byte(pieces[rng.IntN(len(pieces))]), b[p:]...)...)
			case 1: // delete a range
				b = append(b[:p:p], b[min(len(b), p+rng.IntN(8)):]...)
			case 2: // flip a byte
				if p < len(b) {
					b[p] ^= byte(1 << rng.IntN(8))
				}
			case 3: // repeat a range
				q := min(len(b), p+rng.IntN(40))
				b = append(b[:q:q], append(append([]byte{}, b[p:q]...), b[q:]...)...)
			}
		}
		ct := "application/json"
		if i%17 == 0 {
			ct = "text/plain"
		}
		if f.send(t, b, ct) == http.StatusOK {
			accepted++
		}
	}
	// The mutations must reach past the decoder, to decisions and writes.
	if accepted < n/40 {
		t.Errorf("only %d of %d mutated check-ins were accepted; the loop tests little beyond the decoder", accepted, n)
	}
	t.Logf("%d of %d mutated check-ins accepted, none answered 5xx or touched victim's rows", accepted, n)
}

// mutateValue replaces one value somewhere in doc with one of values.
func mutateValue(rng *rand.Rand, doc map[string]any, values []any) {
	keys := make([]string, 0, len(doc))
	for k := range doc {
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return
	}
	slices.Sort(keys)
	k := keys[rng.IntN(len(keys))]
	switch v := doc[k].(type) {
	case map[string]any:
		mutateValue(rng, v, values)
	case []any:
		if len(v) > 0 {
			if m, ok := v[rng.IntN(len(v))].(map[string]any); ok {
				mutateValue(rng, m, values)
				return
			}
		}
		doc[k] = values[rng.IntN(len(values))]
	default:
		doc[k] = values[rng.IntN(len(values))]
	}
}

func TestCheckInMutationsSQLite(t *testing.T) { checkInMutations(t, servertest.SQLite(t), 400) }
