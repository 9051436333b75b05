package cli_test

import (
	"strings"
	"testing"

	"github.com/ringfence/ringfence/release"
)

// TestWhoamiDefaultProductAndAuditFilters: whoami says whose token is in
// use; RINGFENCE_PRODUCT stands in for a left-out PRODUCT; audit filters by
// product, release, action, actor and age and shows the reason.
func TestWhoamiDefaultProductAndAuditFilters(t *testing.T) {
	url, admin := apiServer(t)
	out := api(t, url, admin, "whoami")
	if !strings.Contains(out, "role:") || !strings.Contains(out, "admin") || !strings.Contains(out, url) {
		t.Fatalf("whoami:\n%s", out)
	}
	api(t, url, admin, "product", "create", "acme")
	api(t, url, admin, "product", "create", "other")
	t.Setenv("RINGFENCE_PRODUCT", "acme")
	api(t, url, admin, "release", "create", "1.0.0")
	api(t, url, admin, "release", "create", "other", "1.0.0")
	api(t, url, admin, "release", "pause", "1.0.0", "--reason", "support sees odd sorting")
	if st := apiJSON[struct {
		Product string `json:"product"`
	}](t, url, admin, "release", "status"); st.Product != "acme" {
		t.Fatalf("status with RINGFENCE_PRODUCT: %+v", st)
	}
	t.Setenv("RINGFENCE_PRODUCT", "")

	entries := apiJSON[[]release.AuditEntry](t, url, admin, "audit", "--product", "acme", "--release", "1.0.0")
	if len(entries) != 2 {
		t.Fatalf("audit --product acme --release 1.0.0: %d entries, want create and pause: %+v", len(entries), entries)
	}
	for _, e := range entries {
		if !strings.HasPrefix(e.Target, "release/acme@1.0.0") {
			t.Errorf("entry of another release: %+v", e)
		}
	}
	out = api(t, url, admin, "audit", "--action", "release.pause")
	if !strings.Contains(out, "REASON") || !strings.Contains(out, "support sees odd sorting") || strings.Contains(out, "release.create") {
		t.Fatalf("audit --action release.pause:\n%s", out)
	}
	if es := apiJSON[[]release.AuditEntry](t, url, admin, "audit", "--action", "release", "--actor", "nobody-such"); len(es) != 0 {
		t.Fatalf("--actor nobody-such: %+v", es)
	}
	if es := apiJSON[[]release.AuditEntry](t, url, admin, "audit", "--since", "1d", "--limit", "3"); len(es) != 3 {
		t.Fatalf("--since 1d --limit 3: %d entries", len(es))
	}
	apiFails(t, url, admin, "drop the leading v", "audit", "--release", "v1.0.0")
}

// TestQuietPrintsNothingButSecrets: -q silences API commands, but never
// swallows a token shown only once.
func TestQuietPrintsNothingButSecrets(t *testing.T) {
	url, admin := apiServer(t)
	if out := api(t, url, admin, "product", "create", "acme", "-q"); out != "" {
		t.Fatalf("product create -q printed %q", out)
	}
	if out := api(t, url, admin, "release", "status", "acme", "-q"); out != "" {
		t.Fatalf("release status -q printed %q", out)
	}
	if out := api(t, url, admin, "token", "create", "bob", "-q"); !strings.Contains(out, "rft_") {
		t.Fatalf("token create -q hid the secret: %q", out)
	}
}
