package cli_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ringfence/ringfence/client"
	"github.com/ringfence/ringfence/internal/servertest"
	"github.com/ringfence/ringfence/release"
)

// TestReleaseStatusExplainsMissingEvidence: an installation first seen
// after the release was created reports healthy, and `release status` says
// why it does not count instead of leaving HEALTHY at 0 unexplained.
func TestReleaseStatusExplainsMissingEvidence(t *testing.T) {
	ctx := context.Background()
	url, admin := apiServer(t)
	api(t, url, admin, "product", "create", "acme")
	api(t, url, admin, "ring", "create", "acme", "insiders", "--position", "0", "--soak", "0s", "--min-healthy", "1")
	api(t, url, admin, "ring", "create", "acme", "stable", "--position", "1", "--soak", "0s")
	api(t, url, admin, "customer", "create", "acme", "early-co", "--ring", "insiders")
	key := apiJSON[client.EnrollmentKey](t, url, admin, "customer", "key", "create", "acme", "early-co")

	api(t, url, admin, "release", "create", "acme", "1.0.0")
	if out := api(t, url, admin, "release", "status", "acme"); !strings.Contains(out, "none of its 0 installation(s)") &&
		!strings.Contains(out, "has no installations") {
		t.Fatalf("status without installations does not say why:\n%s", out)
	}

	keys := listedKeys(t, url)
	agent, err := client.New(url, key.Key)
	if err != nil {
		t.Fatal(err)
	}
	inst := release.CheckIn{InstanceID: "trial-1", Product: "acme", Version: release.MustParseVersion("1.0.0"),
		Health: &release.Health{Status: release.HealthOK}}
	if _, _, err := agent.CheckIn(ctx, inst, keys); err != nil {
		t.Fatal(err)
	}
	var out string
	servertest.Eventually(t, 10*time.Second, "the check-in counted in status", func() bool {
		out = api(t, url, admin, "release", "status", "acme")
		// "1/1 " is the insiders ring's adoption column; the quota table
		// below it has "1/1000".
		return strings.Contains(out, "1/1 ")
	})
	for _, want := range []string{"0 of 1 healthy installations needed in ring insiders",
		"1 healthy installation(s) do not count: first seen after the release was created"} {
		if !strings.Contains(out, want) {
			t.Fatalf("status lacks %q:\n%s", want, out)
		}
	}
	st := apiJSON[client.Status](t, url, admin, "release", "status", "acme")
	if rs := ringOf(t, st, "1.0.0", "insiders"); rs.HealthyUncounted != 1 || rs.Healthy != 0 {
		t.Fatalf("insiders %+v: want healthy 0, healthy_uncounted 1", rs)
	}
}
