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

// TestReleaseInstallationsFiltersAndHistory: installations filtered by
// version, customer, ring and health, and one installation's history.
func TestReleaseInstallationsFiltersAndHistory(t *testing.T) {
	ctx := context.Background()
	url, admin := apiServer(t)
	api(t, url, admin, "product", "create", "acme")
	api(t, url, admin, "ring", "create", "acme", "insiders", "--position", "0")
	api(t, url, admin, "ring", "create", "acme", "stable", "--position", "1")
	api(t, url, admin, "customer", "create", "acme", "early-co", "--ring", "insiders")
	api(t, url, admin, "customer", "create", "acme", "bigbank", "--ring", "stable")
	api(t, url, admin, "release", "create", "acme", "1.0.0")
	api(t, url, admin, "release", "create", "acme", "1.1.0")
	keys := listedKeys(t, url)
	checkIn := func(customer, instance, version string, health release.HealthStatus, events ...release.Event) {
		t.Helper()
		key := apiJSON[client.EnrollmentKey](t, url, admin, "customer", "key", "create", "acme", customer)
		agent, err := client.New(url, key.Key)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := agent.CheckIn(ctx, release.CheckIn{InstanceID: instance, Product: "acme", Version: release.MustParseVersion(version),
			Health: &release.Health{Status: health}, Events: events}, keys); err != nil {
			t.Fatal(err)
		}
	}
	checkIn("early-co", "e-1", "1.1.0", release.HealthOK)
	checkIn("early-co", "e-2", "1.0.0", release.HealthOK)
	checkIn("bigbank", "b-1", "1.0.0", release.HealthOK)
	checkIn("bigbank", "b-1", "1.1.0", release.HealthOK,
		release.Event{Kind: release.EventUpgradeSucceeded, From: release.MustParseVersion("1.0.0"), To: release.MustParseVersion("1.1.0"), At: time.Now().UTC()})

	var out []release.Installation
	servertest.Eventually(t, 10*time.Second, "four check-ins stored", func() bool {
		out = apiJSON[[]release.Installation](t, url, admin, "release", "installations", "acme")
		return len(out) == 3 && strings.Contains(api(t, url, admin, "release", "installations", "acme", "--customer", "bigbank"), "1.1.0")
	})
	for _, tc := range []struct {
		args []string
		want int
	}{
		{[]string{"--version", "1.1.0"}, 2},
		{[]string{"--customer", "early-co"}, 2},
		{[]string{"--ring", "stable"}, 1},
		{[]string{"--health", "ok", "--ring", "insiders", "--version", "1.0.0"}, 1},
		{[]string{"--health", "corrupt"}, 0},
	} {
		got := apiJSON[[]release.Installation](t, url, admin, append([]string{"release", "installations", "acme"}, tc.args...)...)
		if len(got) != tc.want {
			t.Errorf("installations %v: %d, want %d: %+v", tc.args, len(got), tc.want, got)
		}
	}
	apiFails(t, url, admin, "drop the leading v", "release", "installations", "acme", "--version", "v1.0.0")
	// A filter that can match nothing is refused, not answered with an empty list.
	apiFails(t, url, admin, `health "healthy" is not a status`, "release", "installations", "acme", "--health", "healthy")
	apiFails(t, url, admin, `customer "nosuch-co" of acme not found`, "release", "installations", "acme", "--customer", "nosuch-co")
	apiFails(t, url, admin, `ring "beta" of acme not found; its rings: insiders, stable`, "release", "installations", "acme", "--ring", "beta")

	h := apiJSON[release.InstallationHistory](t, url, admin, "release", "installation", "acme", "b-1")
	if len(h.Installations) != 1 || h.Installations[0].Customer != "bigbank" || len(h.Events) != 1 || h.Events[0].Kind != release.EventUpgradeSucceeded {
		t.Fatalf("history of b-1: %+v", h)
	}
	if out := api(t, url, admin, "release", "installation", "acme", "b-1"); !strings.Contains(out, "upgrade_succeeded") || !strings.Contains(out, "ring stable") {
		t.Fatalf("readable history:\n%s", out)
	}
	apiFails(t, url, admin, "no installation nosuch", "release", "installation", "acme", "nosuch")
}
