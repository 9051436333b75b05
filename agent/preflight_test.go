package agent_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/ringfence/ringfence/agent"
	"github.com/ringfence/ringfence/release"
)

// TestDecide covers every reason and exit code of the pure decision.
func TestDecide(t *testing.T) {
	v := release.MustParseVersion
	ok := func(cur string, offer string, stop bool) release.Answer {
		a := release.Answer{Current: release.Current{Version: v(cur), Status: release.StatusOK, Action: release.ActionNone}}
		if offer != "" {
			a.Offer = &release.Offer{Version: v(offer), RequiredStop: stop}
		}
		return a
	}
	pulled := func(cur string, action release.Action, target, offer string) release.Answer {
		a := ok(cur, offer, false)
		a.Current.Status, a.Current.Action, a.Current.Reason = release.StatusPulled, action, "corrupts indexes"
		if target != "" {
			a.Current.Target = v(target)
		}
		return a
	}
	waiving := func(a release.Answer, waives ...string) release.Answer {
		o := *a.Offer
		o.Waives = waives
		a.Offer = &o
		return a
	}
	needs := func(a release.Answer, major int) release.Answer {
		o := *a.Offer
		o.RequiresPostgres = major
		a.Offer = &o
		return a
	}
	pg := func(num int) []*agent.DatabaseHealth {
		return []*agent.DatabaseHealth{{Name: "app@db:5432/app", Status: release.HealthOK, ServerVersionNum: num}}
	}
	paused := ok("3.30.0", "", false)
	paused.Current.Status = release.StatusPaused
	db := func(s release.HealthStatus) []*agent.DatabaseHealth {
		return []*agent.DatabaseHealth{{Name: "app@db:5432/app", Status: s, Detail: "d"}}
	}
	cases := []struct {
		name  string
		ans   release.Answer
		to    string
		dbs   []*agent.DatabaseHealth
		exit  int
		codes []string
	}{
		{"offered", ok("3.29.0", "3.30.0", false), "3.30.0", db(release.HealthOK), 0, nil},
		{"nothing offered", ok("3.29.0", "", false), "3.30.0", nil, 1, []string{agent.ReasonNotOffered}},
		{"another version offered", ok("3.29.0", "3.31.0", false), "3.30.0", nil, 1, []string{agent.ReasonNotOffered}},
		{"required stop between", ok("3.29.0", "3.30.0", true), "3.31.0", nil, 1, []string{agent.ReasonRequiredStop}},
		{"running a paused release", paused, "3.30.1", nil, 1, []string{agent.ReasonPaused, agent.ReasonNotOffered}},
		{"pulled, upgrade along", pulled("3.30.0", release.ActionUpgrade, "3.30.3", "3.30.3"), "3.30.3", nil, 0, nil},
		{"pulled, upgrade elsewhere", pulled("3.30.0", release.ActionUpgrade, "3.30.3", "3.30.3"), "3.31.0", nil, 1, []string{agent.ReasonPulled, agent.ReasonNotOffered}},
		{"pulled, rollback along", pulled("3.30.0", release.ActionRollback, "3.29.4", ""), "3.29.4", nil, 0, nil},
		{"pulled, hold", pulled("3.30.0", release.ActionHold, "", ""), "3.30.3", nil, 1, []string{agent.ReasonPulled, agent.ReasonNotOffered}},
		{"corrupt database", ok("3.29.0", "3.30.0", false), "3.30.0", db(release.HealthCorrupt), 1, []string{agent.ReasonDatabaseCorrupt}},
		{"collation changed", ok("3.29.0", "3.30.0", false), "3.30.0", db(release.HealthCollationChanged), 1, []string{agent.ReasonCollationChanged}},
		{"database unknown", ok("3.29.0", "3.30.0", false), "3.30.0", db(release.HealthUnknown), 2, []string{agent.ReasonDatabaseUnknown}},
		{"no-go beats undecided", ok("3.29.0", "", false), "3.30.0", db(release.HealthUnknown), 1, []string{agent.ReasonNotOffered, agent.ReasonDatabaseUnknown}},
		// A release that repairs what it waives: those findings warn.
		{"waived collation change", waiving(pulled("3.30.0", release.ActionUpgrade, "3.30.3", "3.30.3"), "collation_changed", "database_corrupt"), "3.30.3",
			db(release.HealthCollationChanged), 0, nil},
		{"waived elsewhere only", waiving(ok("3.29.0", "3.30.0", false), "collation_changed"), "3.30.0", db(release.HealthCorrupt), 1, []string{agent.ReasonDatabaseCorrupt}},
		{"postgres new enough", needs(ok("3.29.0", "3.30.0", false), 15), "3.30.0", pg(150004), 0, nil},
		{"postgres too old", needs(ok("3.29.0", "3.30.0", false), 16), "3.30.0", pg(150004), 1, []string{agent.ReasonPostgresTooOld}},
		{"no database watched: nothing to hold against", needs(ok("3.29.0", "3.30.0", false), 16), "3.30.0", nil, 0, nil},
		{"unknown is never waived", waiving(ok("3.29.0", "3.30.0", false), "collation_changed", "database_corrupt"), "3.30.0", db(release.HealthUnknown), 2, []string{agent.ReasonDatabaseUnknown}},
		{"waives of another version", waiving(ok("3.29.0", "3.31.0", false), "collation_changed"), "3.30.0", db(release.HealthCollationChanged), 1, []string{agent.ReasonNotOffered, agent.ReasonCollationChanged}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := agent.Decide(c.ans, v(c.to), c.dbs)
			if d.ExitCode != c.exit || !slices.Equal(reasons(d), c.codes) {
				t.Fatalf("exit %d %v (%+v), want %d %v", d.ExitCode, reasons(d), d.Reasons, c.exit, c.codes)
			}
			if waived := c.ans.Offer != nil && len(c.ans.Offer.Waives) > 0 && c.exit == 0; waived &&
				(len(d.Warnings) != 1 || !strings.Contains(d.Warnings[0].Message, "waived by the vendor for "+c.to)) {
				t.Fatalf("warnings %+v, want the waived finding", d.Warnings)
			}
			want := map[int]string{0: agent.Go, 1: agent.NoGo, 2: agent.Undecided}[c.exit]
			if d.Decision != want {
				t.Fatalf("decision %q with exit %d", d.Decision, d.ExitCode)
			}
		})
	}
	if g := agent.Guidance(pulled("3.30.0", release.ActionUpgrade, "3.30.3", "3.30.3")); !strings.Contains(g, "PULLED") || !strings.Contains(g, "Upgrade to 3.30.3") {
		t.Errorf("guidance %q", g)
	}
	if g := agent.Guidance(pulled("3.30.0", release.ActionHold, "", "")); !strings.Contains(g, "stay on 3.30.0") {
		t.Errorf("guidance %q", g)
	}
}

func TestParseConfigFile(t *testing.T) {
	known := map[string]bool{"server": true, "pg": true, "interval": true}
	rep := map[string]bool{"pg": true}
	got, err := agent.ParseConfigFile(strings.NewReader("# agent\nserver = https://r.example\n\npg = postgres://a/b?x=1\npg=host=/run db=c\ninterval= 2m\n"), known, rep)
	if err != nil {
		t.Fatal(err)
	}
	if got["server"][0] != "https://r.example" || !slices.Equal(got["pg"], []string{"postgres://a/b?x=1", "host=/run db=c"}) || got["interval"][0] != "2m" {
		t.Fatalf("parsed %v", got)
	}
	for _, bad := range []string{"serverx = 1\n", "server https://x\n", "server = a\nserver = b\n"} {
		if _, err := agent.ParseConfigFile(strings.NewReader(bad), known, rep); err == nil {
			t.Errorf("%q parsed without error", bad)
		}
	}
}
