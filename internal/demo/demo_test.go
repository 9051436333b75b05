package demo_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ringfence/ringfence/client"
	"github.com/ringfence/ringfence/incident"
	"github.com/ringfence/ringfence/internal/demo"
	"github.com/ringfence/ringfence/internal/servertest"
	"github.com/ringfence/ringfence/release"
	"github.com/ringfence/ringfence/server"
)

// TestSeedReachesEveryState seeds the demo against a real server and checks
// that every release is where the story puts it — the paused one paused by
// the server's auto-halt — and that the fleet keeps checking in.
func TestSeedReachesEveryState(t *testing.T) {
	s := servertest.Start(t, servertest.SQLite(t), server.Config{AdoptionInterval: time.Second})
	ctx := context.Background()
	d, err := demo.Seed(ctx, demo.Config{Server: s.URL, Token: s.Admin, Interval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(s.URL, s.Admin)
	if err != nil {
		t.Fatal(err)
	}
	get := func(v string) release.Release {
		t.Helper()
		r, err := c.Release(ctx, demo.Product, release.MustParseVersion(v))
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if r := get(demo.Stable); r.Status != release.StatusOK || len(r.Rings) == 0 || r.Rings[len(r.Rings)-1].Ring != "stable" || !r.Rings[len(r.Rings)-1].Forced {
		t.Errorf("%s: %s, rings %+v; want ok and forced into stable", demo.Stable, r.Status, r.Rings)
	}
	if r := get(demo.Pulled); r.Status != release.StatusPulled || r.Pulled.Action != release.ActionUpgrade || r.Pulled.Target.String() != demo.Fixed {
		t.Errorf("%s: %s %+v; want pulled with guidance to upgrade to %s", demo.Pulled, r.Status, r.Pulled, demo.Fixed)
	}
	if r := get(demo.Halted); r.Status != release.StatusPaused || r.Paused.By != "auto-halt" {
		t.Errorf("%s: %s %+v; want paused by auto-halt", demo.Halted, r.Status, r.Paused)
	}
	holds, err := c.Holds(ctx, demo.Product, release.MustParseVersion(demo.Held))
	if err != nil || len(holds) != 1 || !holds[0].Open() {
		t.Errorf("holds on %s: %+v %v; want one open", demo.Held, holds, err)
	}
	st, err := c.Status(ctx, demo.Product)
	if err != nil {
		t.Fatal(err)
	}
	if rs := servertest.RingStatus(t, st.Releases, demo.Fixed, "early"); rs.State != release.RingSoaking {
		t.Errorf("%s in early: %+v; want soaking", demo.Fixed, rs)
	}
	// Installations that were on the pulled release followed its guidance.
	ins, err := c.Installations(ctx, demo.Product, 1000)
	if err != nil {
		t.Fatal(err)
	}
	halted := 0
	for _, in := range ins {
		if in.Version.String() == demo.Pulled {
			t.Errorf("installation %s is still on the pulled %s", in.InstanceID, demo.Pulled)
		}
		if in.Version.String() == demo.Halted && in.Health.Status == release.HealthCollationChanged {
			halted++
		}
	}
	if halted < 3 {
		t.Errorf("%d installations report a changed collation on %s; want the insiders' (at least 3)", halted, demo.Halted)
	}

	// The public status page shows the auto-halt's incident, with the
	// components it affects; the pull's incident is resolved, with its
	// postmortem.
	servertest.Eventually(t, 10*time.Second, "the public page shows the open incident", func() bool {
		resp, err := http.Get(s.URL + "/")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		page := string(body)
		return err == nil && strings.Contains(page, "Release "+demo.Product+"@"+demo.Halted+" paused by auto-halt") &&
			strings.Contains(page, "Partial outage") && strings.Contains(page, "glibc")
	})
	incs, err := c.Incidents(ctx, false, 10)
	if err != nil {
		t.Fatal(err)
	}
	var open, closed int
	for _, inc := range incs {
		switch {
		case inc.Draft:
			t.Errorf("incident %q is still a draft", inc.Title)
		case inc.Status == incident.StatusPostmortem && inc.Postmortem != "":
			closed++
		case inc.Unresolved() && len(inc.Components) == 2 && len(inc.Updates) == 2 && inc.Holder(incident.RoleCommander) != "":
			open++
		}
	}
	if open != 1 || closed != 1 {
		t.Errorf("incidents %+v: want one open with 2 components, 2 updates and a commander, one closed with a postmortem", incs)
	}

	// The fleet keeps checking in.
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { d.Run(runCtx); close(done) }()
	since := time.Now()
	servertest.Eventually(t, 10*time.Second, "every installation checked in again", func() bool {
		ins, err := c.Installations(ctx, demo.Product, 1000)
		if err != nil {
			return false
		}
		for _, in := range ins {
			if in.LastSeen.Before(since) {
				return false
			}
		}
		return len(ins) > 0
	})
	stop()
	<-done
}
