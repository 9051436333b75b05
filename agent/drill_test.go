package agent_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ringfence/ringfence/agent"
	"github.com/ringfence/ringfence/client"
	"github.com/ringfence/ringfence/internal/pgtest"
	"github.com/ringfence/ringfence/internal/servertest"
	"github.com/ringfence/ringfence/release"
	"github.com/ringfence/ringfence/sqlstore"
)

// drillInterval is the agents' check-in interval in the drill.
const drillInterval = 2 * time.Second

// installation is one agent process of the drill and what it runs.
type installation struct {
	name, customer, ring string
	dir, state, vfile    string
	pg                   *pgtest.Cluster
	proc                 *agentProc
}

// startServe runs `ringfence serve` on a fresh SQLite store on :0 and
// returns its URL and an admin token.
func startServe(t *testing.T) (string, string) {
	t.Helper()
	db := filepath.Join(t.TempDir(), "ringfence.db")
	out, code := ringfence(t, "admin", "token", "create", "--db", db, "--init", "--role", "admin", "--name", "drill")
	if code != 0 {
		t.Fatalf("admin token create: %s", out)
	}
	token := strings.TrimSpace(out)
	cmd := exec.Command(ringfenceBin, "serve", "--db", db, "--listen", "127.0.0.1:0")
	stderr, err := cmd.StderrPipe()
	must(t, err)
	must(t, cmd.Start())
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return servertest.WaitServing(t, stderr), token
}

// TestDrill is the 3.30 story on real processes: `ringfence serve`, 22
// `agent run` processes in three rings and six customers, three of them
// watching real PostgreSQL clusters. 3.30.0 reaches the insiders; its
// database image changes the collation; their agents detect it and report;
// auto-halt pauses it before the next ring is offered it; it is pulled with
// guidance; every installation on it shows the guidance in `agent status`
// at its next check-in. The number of intervals each step took is logged
// (docs/agent.md records them).
func TestDrill(t *testing.T) {
	start := time.Now()
	ctx := context.Background()
	url, token := startServe(t)
	admin, err := client.New(url, token)
	must(t, err)
	v := release.MustParseVersion

	halt := release.Policy{Window: time.Hour, MinFailures: 3, MinCustomers: 3, MinFailureShare: 0.2}
	_, err = admin.CreateProduct(ctx, client.NewProduct{Name: "acme", Halt: &halt})
	must(t, err)
	// The insiders' soak outlasts the drill even on a loaded machine (it
	// takes under a minute alone), so the clock never lets 3.30.0 into the
	// early ring while auto-halt is awaited; auto-halt's pause is what the
	// drill then checks.
	for i, r := range []release.Ring{
		{Name: "insiders", SoakTime: 10 * time.Minute, RolloutPercent: 100},
		{Name: "early", SoakTime: time.Hour, RolloutPercent: 100},
		{Name: "stable", RolloutPercent: 100},
	} {
		r.Position = i
		_, err := admin.CreateRing(ctx, "acme", r)
		must(t, err)
	}
	_, err = admin.CreateRelease(ctx, "acme", client.NewRelease{Version: v("3.29.0")})
	must(t, err)
	keys, err := admin.PublicKeys(ctx)
	must(t, err)
	trust := writeKeys(t, t.TempDir(), keys)

	customers := map[string]string{"ins-a": "insiders", "ins-b": "insiders", "ins-c": "insiders",
		"early-a": "early", "early-b": "early", "big-a": "stable", "big-b": "stable"}
	keyFiles := map[string]string{}
	for c, ring := range customers {
		_, err := admin.CreateCustomer(ctx, "acme", c, ring)
		must(t, err)
		k, err := admin.CreateEnrollmentKey(ctx, "acme", c)
		must(t, err)
		keyFiles[c] = filepath.Join(t.TempDir(), "key")
		must(t, os.WriteFile(keyFiles[c], []byte(k.Key), 0o600))
	}

	// Installations: per insider customer one watching its own PostgreSQL
	// cluster and one without a database; three or four per other customer.
	var insts []*installation
	add := func(customer string, n int, withPG bool) {
		for i := range n {
			in := &installation{name: fmt.Sprintf("%s-%d", customer, i), customer: customer, ring: customers[customer], dir: t.TempDir()}
			if withPG && i == 0 {
				in.pg = pgtest.New(t)
				pgtest.CollationFixture(t, in.pg, "app")
				checkRole(in.pg, "app")
			}
			insts = append(insts, in)
		}
	}
	for _, c := range []string{"ins-a", "ins-b", "ins-c"} {
		add(c, 2, true)
	}
	for _, c := range []string{"early-a", "early-b", "big-a", "big-b"} {
		add(c, 4, false)
	}
	t.Logf("%d clusters and fixtures ready after %s", 3, time.Since(start).Round(time.Second))
	for _, in := range insts {
		in.state = filepath.Join(in.dir, "state")
		in.vfile = filepath.Join(in.dir, "VERSION")
		must(t, os.WriteFile(in.vfile, []byte("3.29.0\n"), 0o644))
		args := []string{"--server", url, "--key-file", keyFiles[in.customer], "--product", "acme",
			"--version-file", in.vfile, "--state", in.state, "--trust", trust, "--interval", drillInterval.String(),
			"--deep-check", "off", "--log-format", "json"}
		if in.pg != nil {
			args = append(args, "--pg", in.pg.UserDSN("ringfence_check", "app"))
		}
		in.proc = startAgent(t, args...)
	}
	ins := func(pred func(*installation) bool) []*installation {
		var out []*installation
		for _, in := range insts {
			if pred(in) {
				out = append(out, in)
			}
		}
		return out
	}
	insiders := ins(func(in *installation) bool { return in.ring == "insiders" })
	others := ins(func(in *installation) bool { return in.ring != "insiders" })
	intervals := func(d time.Duration) string {
		return fmt.Sprintf("%.1f intervals (%s)", float64(d)/float64(drillInterval), d.Round(10*time.Millisecond))
	}
	every := func(what string, set []*installation, cond func(agent agentStatus) bool) {
		t.Helper()
		servertest.Eventually(t, 60*time.Second, what, func() bool {
			for _, in := range set {
				// Polled in-process for fine timings; what `agent status`
				// prints is checked with the binary below.
				if !cond(agentStatus{status(t, in.state)}) {
					return false
				}
			}
			return true
		})
	}
	every("every installation checked in on 3.29.0", insts, func(s agentStatus) bool { return s.verified() && s.Version.String() == "3.29.0" })
	// Twice: auto-halt believes only installations it knew before.
	marks := map[string]time.Time{}
	for _, in := range insts {
		marks[in.name] = statusOf(t, in.state).LastAttempt
	}
	every("every installation checked in twice", insts, func(s agentStatus) bool { return s.LastAttempt.After(marks[s.name(insts)]) })
	t.Logf("%d agents running and checked in after %s", len(insts), time.Since(start).Round(time.Second))

	// 1. 3.30.0 is released; only the insiders are offered it.
	released := time.Now()
	_, err = admin.CreateRelease(ctx, "acme", client.NewRelease{Version: v("3.30.0"), RollbackSafeTo: v("3.29.0")})
	must(t, err)
	every("insiders offered 3.30.0", insiders, func(s agentStatus) bool { return s.offer() == "3.30.0" })
	offered := time.Since(released)
	t.Logf("step 1: 3.30.0 offered to all %d insiders within %s", len(insiders), intervals(offered))

	// 2. The insiders upgrade; the new image's PostgreSQL sorts text
	// differently (musl: code-point order under the en_US name).
	firstUpgrade := time.Now()
	for _, in := range insiders {
		if out, code := ringfence(t, "agent", "report", "upgrade-started", "--state", in.state, "--from", "3.29.0", "--to", "3.30.0"); code != 0 {
			t.Fatalf("report: %s", out)
		}
		if in.pg != nil {
			in.pg.Restart(pgtest.CodePoint)
		}
		must(t, os.WriteFile(in.vfile, []byte("3.30.0\n"), 0o644))
	}
	// From here every insider runs 3.30.0.
	upgraded := time.Now()
	withPG := ins(func(in *installation) bool { return in.pg != nil })
	every("insiders' agents detect the drift and deliver it", withPG, func(s agentStatus) bool {
		return s.Version.String() == "3.30.0" && s.dbStatus() == release.HealthCollationChanged && len(s.Undelivered) == 0 && s.verified()
	})
	detected := time.Since(upgraded)
	t.Logf("step 2: drift detected and reported by all %d database-watching insiders within %s of the last insider's upgrade (%s of the first's; the upgrades, cluster restarts included, took %s)",
		len(withPG), intervals(detected), intervals(time.Since(firstUpgrade)), upgraded.Sub(firstUpgrade).Round(10*time.Millisecond))

	// 3. Auto-halt pauses 3.30.0.
	servertest.Eventually(t, 60*time.Second, "auto-halt pauses 3.30.0", func() bool {
		r, err := admin.Release(ctx, "acme", v("3.30.0"))
		must(t, err)
		return r.Status == release.StatusPaused && r.Paused != nil && r.Paused.By == sqlstore.ActorAutoHalt
	})
	halted := time.Since(upgraded)
	t.Logf("step 3: auto-halt paused 3.30.0 %s after the upgrade", intervals(halted))
	st, err := admin.Status(ctx, "acme")
	must(t, err)
	rs := servertest.RingStatus(t, st.Releases, "3.30.0", "early")
	if rs.State == release.RingActive || rs.State == release.RingSoaking {
		t.Fatalf("3.30.0 reached the early ring: %+v", rs)
	}
	t.Logf("step 3: 3.30.0 in ring early when paused: %s (%s)", rs.State, rs.Reason)
	audit, err := admin.Audit(ctx, 0, 100)
	must(t, err)
	var evidence *release.Evidence
	for _, e := range audit {
		if e.Action == "release.auto_halt" {
			var after struct{ Evidence release.Evidence }
			must(t, json.Unmarshal(e.After, &after))
			evidence = &after.Evidence
		}
	}
	if evidence == nil || evidence.Customers < 3 || evidence.Failed < 3 {
		t.Fatalf("auto-halt evidence = %+v, want failures of at least 3 installations of 3 customers", evidence)
	}
	t.Logf("step 3: auto-halt evidence: %s", evidence.Reason)
	// No installation outside the insiders was ever offered 3.30.0.
	for _, in := range others {
		if strings.Contains(in.proc.stderr.String(), `"offer":"3.30.0"`) {
			t.Fatalf("%s (%s) was offered 3.30.0", in.name, in.ring)
		}
		if s := (agentStatus{statusOf(t, in.state)}); s.offer() == "3.30.0" {
			t.Fatalf("%s holds an offer of 3.30.0", in.name)
		}
	}
	// Insiders still on 3.29.0 are no longer offered it either; those on it
	// are told it is paused.
	every("installations on 3.30.0 told it is paused", insiders, func(s agentStatus) bool {
		return s.Answer != nil && s.Answer.Answer != nil && s.Answer.Answer.Current.Status == release.StatusPaused
	})

	// 4. Pulled with guidance: upgrade to the fixed 3.30.1.
	_, err = admin.CreateRelease(ctx, "acme", client.NewRelease{Version: v("3.30.1")})
	must(t, err)
	pulled := time.Now()
	_, err = admin.PullRelease(ctx, "acme", v("3.30.0"), client.PullRequest{
		Reason:      "the new base image changes text sort order; unique indexes stop enforcing uniqueness",
		IncidentURL: "https://status.acme.example/incidents/42", Action: release.ActionUpgrade, Target: v("3.30.1")})
	must(t, err)
	// Every installation on 3.30.0 shows the guidance after its first
	// check-in since the pull: within one interval. (A check-in answered
	// just before the pull may end after it, so the wait is for what each
	// agent shows, not for a check-in after the pull's start.)
	every("pull guidance shown", insiders, func(s agentStatus) bool {
		return s.verified() && strings.Contains(s.Guidance, "PULLED") && strings.Contains(s.Guidance, "Upgrade to 3.30.1")
	})
	shown := time.Since(pulled)
	t.Logf("step 4: pull guidance shown by all %d installations on 3.30.0 within %s", len(insiders), intervals(shown))

	// What operators see, for docs/agent.md.
	out, _ := ringfence(t, "agent", "status", "--state", withPG[0].state)
	t.Logf("agent status of %s:\n%s", withPG[0].name, out)
	out, code := ringfence(t, "agent", "preflight", "--to", "3.30.1", "--state", withPG[0].state, "--server", url,
		"--key-file", keyFiles[withPG[0].customer], "--product", "acme", "--version-file", withPG[0].vfile,
		"--pg", withPG[0].pg.UserDSN("ringfence_check", "app"), "--trust", trust)
	t.Logf("agent preflight --to 3.30.1 on %s: exit %d\n%s", withPG[0].name, code, out)
	if code != 1 || !strings.Contains(out, "collation_changed") {
		t.Fatalf("preflight of an installation with a changed collation: exit %d", code)
	}
	early := others[0]
	out, code = ringfence(t, "agent", "preflight", "--to", "3.30.0", "--state", early.state, "--server", url,
		"--key-file", keyFiles[early.customer], "--product", "acme", "--version-file", early.vfile, "--trust", trust)
	t.Logf("agent preflight --to 3.30.0 on %s (%s): exit %d\n%s", early.name, early.ring, code, out)
	if code != 1 || !strings.Contains(out, "not_offered") {
		t.Fatalf("preflight to the pulled release: exit %d", code)
	}
	t.Logf("drill done in %s", time.Since(start).Round(time.Second))
}

// agentStatus adds the drill's questions to a status.
type agentStatus struct{ agent.Status }

func (s agentStatus) verified() bool {
	return s.Answer != nil && s.Answer.Verified && !s.Answer.Expired
}

func (s agentStatus) offer() string {
	if !s.verified() || s.Answer.Answer.Offer == nil {
		return ""
	}
	return s.Answer.Answer.Offer.Version.String()
}

func (s agentStatus) dbStatus() release.HealthStatus {
	if len(s.Databases) != 1 {
		return ""
	}
	return s.Databases[0].Status
}

// name finds the installation whose state directory s describes.
func (s agentStatus) name(insts []*installation) string {
	for _, in := range insts {
		if s.StateDir == in.state {
			return in.name
		}
	}
	return ""
}
