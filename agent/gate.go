package agent

import (
	"encoding/json"
	"net/http"
	"sync"
	"time"
)

// PreflightHandler serves GET /preflight?to=VERSION for deployment tools
// that gate on a webhook (Flagger's pre-rollout hook, an Argo Rollouts web
// metric): it runs Preflight and answers the Decision as JSON with 200 for
// go, 412 Precondition Failed for no-go and 503 Service Unavailable for
// undecided, so a tool that only looks at the status never proceeds on
// doubt. Requests are served one at a time (each checks in), and a decision
// is reused for the same version for the reuse period (a retrying tool does
// not turn into a flood of check-ins).
func PreflightHandler(a *Agent, reuse time.Duration) http.Handler {
	var (
		mu   sync.Mutex
		last Decision
		at   time.Time
	)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodPost {
			w.Header().Set("Allow", "GET, POST")
			http.Error(w, "use GET or POST", http.StatusMethodNotAllowed)
			return
		}
		to, err := ParseVersion(r.URL.Query().Get("to"))
		if err != nil {
			http.Error(w, "?to=VERSION: "+err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		d := last
		if at.IsZero() || d.To != to || a.cfg.Now().Sub(at) >= reuse {
			d = a.Preflight(r.Context(), to)
			last, at = d, a.cfg.Now()
		}
		mu.Unlock()
		status := http.StatusServiceUnavailable
		switch d.Decision {
		case Go:
			status = http.StatusOK
		case NoGo:
			status = http.StatusPreconditionFailed
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(d)
	})
}
