package server_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"golang.org/x/time/rate"

	"github.com/ringfence/ringfence/internal/servertest"
	"github.com/ringfence/ringfence/server"
)

// BenchmarkCheckIn serves check-ins through the server's handler without
// the network (HTTP parsing and connections are not in it), on a SQLite
// store: what the handler path costs per check-in in CPU and allocations
// (-benchmem), routine and carrying an event (which waits for its commit).
func BenchmarkCheckIn(b *testing.B) {
	e := startServer(b, servertest.SQLite(b), server.Config{CheckInRate: rate.Inf, CheckInBurst: 1, QuotaEvents: 1 << 30})
	key := setupProduct(e)
	h := e.Srv.Handler()
	for _, c := range []struct {
		name, extra string
	}{
		{"routine", `,"health":{"status":"ok"}`},
		{"event", `,"events":[{"kind":"upgrade_started","from":"1.0.0","to":"1.0.0","at":"2026-01-01T00:00:00Z"}]`},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				n++
				body := fmt.Sprintf(`{"instance_id":"i-%d","product":"acme","version":"1.0.0","nonce":"q8W2b6mZ0pVt3xYcR1d9Kw"%s}`, n%1000, c.extra)
				req := httptest.NewRequest(http.MethodPost, "/v1/checkin", strings.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+key)
				req.Header.Set("Content-Type", "application/json")
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				if w.Code != http.StatusOK {
					b.Fatalf("check-in: %d %s", w.Code, w.Body)
				}
			}
		})
	}
}
