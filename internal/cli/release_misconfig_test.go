package cli_test

import (
	"strings"
	"testing"
	"time"

	"github.com/ringfence/ringfence/release"
)

// TestReleaseMistakesRefused: the mistakes a release engineer makes in
// the first hour are refused with what to do instead, and the forms people
// bring with them (1d, 2w) are accepted.
func TestReleaseMistakesRefused(t *testing.T) {
	url, admin := apiServer(t)
	api(t, url, admin, "product", "create", "acme", "--gate", "collation-compare", "--gate", "upgrade-test")

	// Days and weeks wherever a duration is taken.
	api(t, url, admin, "ring", "create", "acme", "insiders", "--position", "0", "--soak", "1d")
	api(t, url, admin, "ring", "create", "acme", "stable", "--position", "1", "--soak", "2w")
	rings := apiJSON[[]release.Ring](t, url, admin, "ring", "list", "acme")
	if len(rings) != 2 || rings[0].SoakTime != 24*time.Hour || rings[1].SoakTime != 14*24*time.Hour {
		t.Fatalf("rings %+v", rings)
	}
	api(t, url, admin, "ring", "update", "acme", "stable", "--soak", "1w2d")
	apiFails(t, url, admin, "1x", "ring", "update", "acme", "stable", "--soak", "1x")
	// Two rings at one position have no order between them.
	apiFails(t, url, admin, "already at position 1", "ring", "create", "acme", "early", "--position", "1")
	apiFails(t, url, admin, "already at position 0", "ring", "update", "acme", "stable", "--position", "0")

	// A leading v.
	apiFails(t, url, admin, "drop the leading v", "release", "create", "acme", "v3.30.3")
	api(t, url, admin, "release", "create", "acme", "3.30.0")
	api(t, url, admin, "release", "create", "acme", "3.30.3")

	// A misspelt gate is refused with the product's gates.
	apiFails(t, url, admin, "the gates of product acme are collation-compare, upgrade-test",
		"gate", "pass", "acme", "3.30.3", "collation-compmare")

	// A pull's upgrade target must have passed the gates, unless forced with a reason.
	apiFails(t, url, admin, "has not passed the gates of acme (collation-compare missing, upgrade-test missing)",
		"release", "pull", "acme", "3.30.0", "--reason", "broken", "--upgrade-to", "3.30.3")
	apiFails(t, url, admin, "--force needs --force-reason",
		"release", "pull", "acme", "3.30.0", "--reason", "broken", "--upgrade-to", "3.30.3", "--force")
	api(t, url, admin, "gate", "pass", "acme", "3.30.3", "collation-compare")
	apiFails(t, url, admin, "(upgrade-test missing)",
		"release", "pull", "acme", "3.30.0", "--reason", "broken", "--upgrade-to", "3.30.3")
	pulled := apiJSON[release.Release](t, url, admin, "release", "pull", "acme", "3.30.0", "--reason", "broken",
		"--upgrade-to", "3.30.3", "--force", "--force-reason", "hotfix; upgrade-test runs after")
	if pulled.Pulled == nil || pulled.Pulled.ForcedPastGates != "hotfix; upgrade-test runs after" {
		t.Fatalf("forced pull %+v", pulled.Pulled)
	}
	if out := api(t, url, admin, "audit"); !strings.Contains(out, "release.pull") {
		t.Fatalf("the forced pull is not in the audit log:\n%s", out)
	}
}
