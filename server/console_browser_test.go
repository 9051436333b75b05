package server_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/ringfence/ringfence/client"
	"github.com/ringfence/ringfence/internal/browsertest"
	"github.com/ringfence/ringfence/internal/demo"
	"github.com/ringfence/ringfence/internal/servertest"
	"github.com/ringfence/ringfence/release"
	"github.com/ringfence/ringfence/server"
)

// a11yCheck lists what the current page lacks: a lang, a <main> landmark,
// a heading, a label for every visible form control, a name for every
// button, and text contrast of at least 4.5:1 (WCAG AA) against the
// nearest opaque background, for every element with text of its own.
const a11yCheck = `(() => {
	const bad = [];
	const rgb = s => (s.match(/[\d.]+/g) || []).map(Number);
	const lum = c => {
		const [r, g, b] = c.slice(0, 3).map(v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); });
		return 0.2126 * r + 0.7152 * g + 0.0722 * b;
	};
	const background = el => {
		for (; el; el = el.parentElement) {
			const c = rgb(getComputedStyle(el).backgroundColor);
			if (c.length === 3 || (c.length === 4 && c[3] === 1)) return c;
		}
		return [255, 255, 255];
	};
	document.querySelectorAll("body *").forEach(el => {
		const own = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
		if (!own || el.offsetParent === null) return;
		const a = lum(rgb(getComputedStyle(el).color)), b = lum(background(el));
		const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
		if (ratio < 4.5) bad.push("contrast " + ratio.toFixed(2) + " of " + el.tagName + " " + el.textContent.trim().slice(0, 30));
	});
	if (!document.documentElement.lang) bad.push("no lang");
	if (!document.querySelector("main")) bad.push("no main landmark");
	if (!document.querySelector("h1")) bad.push("no h1");
	document.querySelectorAll("input:not([type=hidden]), select, textarea").forEach(e => {
		if (!(e.labels && e.labels.length) && !e.getAttribute("aria-label")) bad.push("unlabelled " + (e.id || e.name));
	});
	document.querySelectorAll("button").forEach(b => { if (!b.textContent.trim() && !b.getAttribute("aria-label")) bad.push("button without a name"); });
	return bad;
})()`

// consolePassword is the password of the accounts demoConsole creates.
const consolePassword = "a long enough password"

// demoConsole starts the server on SQLite with the living demo seeded (its
// installations not yet running; they check in every second once run) and
// creates the console accounts users (name: role), all with
// consolePassword.
func demoConsole(t *testing.T, users map[string]release.Role) (*servertest.Server, *demo.Demo) {
	t.Helper()
	s := servertest.Start(t, servertest.SQLite(t), server.Config{AdoptionInterval: time.Second})
	ctx := context.Background()
	d, err := demo.Seed(ctx, demo.Config{Server: s.URL, Token: s.Admin, Interval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	for name, role := range users {
		if _, err := s.Store.CreateUser(ctx, "test", name, role, consolePassword); err != nil {
			t.Fatal(err)
		}
	}
	return s, d
}

// TestConsoleInBrowser drives the console in headless Chromium over the
// living demo: log in with the keyboard, watch the board refresh itself,
// raise a flag, pull a release with guidance and see an installation's
// signed answer change, be refused a form without its anti-CSRF token, and
// as a viewer be unable to pull. It saves screenshots of the main pages.
func TestConsoleInBrowser(t *testing.T) {
	s, d := demoConsole(t, map[string]release.Role{"rita": release.RoleReleaser, "vic": release.RoleViewer})
	ctx := context.Background()
	runCtx, stop := context.WithCancel(ctx)
	fleetDone := make(chan struct{})
	go func() { d.Run(runCtx); close(fleetDone) }()
	t.Cleanup(func() { stop(); <-fleetDone })

	admin, err := client.New(s.URL, s.Admin)
	if err != nil {
		t.Fatal(err)
	}
	// An installation of bigbank (stable ring) on 3.28.0, checking in
	// through the client with every answer verified.
	key, err := admin.CreateEnrollmentKey(ctx, demo.Product, "bigbank")
	if err != nil {
		t.Fatal(err)
	}
	trusted, err := admin.PublicKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	probe, err := client.New(s.URL, key.Key)
	if err != nil {
		t.Fatal(err)
	}
	checkIn := func() release.Answer {
		t.Helper()
		ans, _, err := probe.CheckIn(ctx, release.CheckIn{InstanceID: "probe-1", Product: demo.Product, Version: release.MustParseVersion(demo.Stable)}, trusted)
		if err != nil {
			t.Fatal(err)
		}
		return ans
	}
	if ans := checkIn(); ans.Current.Status != release.StatusOK || ans.Current.Action != release.ActionNone {
		t.Fatalf("before the pull: %+v", ans.Current)
	}

	b, do, text, accessible := newTab(t)
	waitFor := func(what, js string) {
		t.Helper()
		if _, err := chromedp.Run(b, chromedp.Poll[bool](js, chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(30*time.Second))); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	rel := s.URL + "/admin/products/" + demo.Product + "/releases/"

	// Log in with the keyboard alone: type, then Enter.
	do("open the login page", chromedp.Navigate(s.URL+"/admin/"), chromedp.WaitVisible(chromedp.CSS("#name")))
	accessible("login")
	browsertest.Screenshot(t, b, "console-login")
	do("log in", chromedp.SendKeys(chromedp.CSS("#name"), "rita"), chromedp.SendKeys(chromedp.CSS("#password"), consolePassword+kb.Enter),
		chromedp.WaitVisible(chromedp.CSS("#board table")))
	accessible("board")
	if got := text("#board"); !strings.Contains(got, "paused by auto-halt") || !strings.Contains(got, "pulled") || !strings.Contains(got, "open hold") {
		t.Fatalf("board of the demo: %s", got)
	}
	waitFor("board shows the insiders' changed collation", `document.querySelector("#board").innerText.includes("collation changed")`)
	browsertest.Screenshot(t, b, "console-board")

	// A colleague pauses a release through the API: the open board shows it
	// by itself.
	if _, err := admin.PauseRelease(ctx, demo.Product, release.MustParseVersion(demo.Fixed), "a colleague checks a report", ""); err != nil {
		t.Fatal(err)
	}
	waitFor("the board shows the colleague's pause without a reload", `document.querySelector("#board").innerText.includes("a colleague checks a report")`)
	if _, err := admin.ResumeRelease(ctx, demo.Product, release.MustParseVersion(demo.Fixed), "report explained"); err != nil {
		t.Fatal(err)
	}

	// Raise a flag, confirming on the second page.
	do("raise a flag", chromedp.Navigate(rel+demo.Fixed), chromedp.WaitVisible(chromedp.CSS("#hold-reason")))
	accessible("release")
	do("raise a flag", chromedp.SendKeys(chromedp.CSS("#hold-reason"), "customer reports slow logins after upgrading"),
		submit(`form[action$="/hold"]`), chromedp.WaitVisible(chromedp.CSS("form.confirm")))
	accessible("confirmation")
	browsertest.Screenshot(t, b, "console-confirm")
	do("confirm the flag", submit("form.confirm"), chromedp.WaitVisible(chromedp.CSS("p.notice")))
	holds, err := admin.Holds(ctx, demo.Product, release.MustParseVersion(demo.Fixed))
	if err != nil || len(holds) != 1 || !holds[0].Open() || !strings.HasPrefix(holds[0].RaisedBy, "rita (user:") {
		t.Fatalf("holds after the console's flag: %+v %v", holds, err)
	}

	// Pull 3.28.0 with guidance: its installations are told to upgrade.
	do("pull", chromedp.Navigate(rel+demo.Stable), chromedp.WaitVisible(chromedp.CSS("#pull-reason")),
		chromedp.SendKeys(chromedp.CSS("#pull-reason"), "reports time zones wrongly after DST"),
		chromedp.SetValue(chromedp.CSS("#pull-action"), "upgrade"),
		chromedp.SendKeys(chromedp.CSS("#pull-target"), demo.Fixed),
		submit(`form[action$="/pull"]`), chromedp.WaitVisible(chromedp.CSS("form.confirm")),
		submit("form.confirm"), chromedp.WaitVisible(chromedp.CSS("p.notice")))
	browsertest.Screenshot(t, b, "console-release")
	if ans := checkIn(); ans.Current.Status != release.StatusPulled || ans.Current.Action != release.ActionUpgrade || ans.Current.Target.String() != demo.Fixed {
		t.Fatalf("answer after the console's pull: %+v", ans.Current)
	}

	// A form without its anti-CSRF token is refused and changes nothing.
	do("post a form without its token", chromedp.Navigate(rel+demo.Held), chromedp.WaitVisible(chromedp.CSS("#hold-reason")))
	if _, err := chromedp.Run(b, chromedp.Evaluate[bool](`document.querySelector('form[action$="/hold"] input[name=csrf]').remove() || true`)); err != nil {
		t.Fatal(err)
	}
	do("post a form without its token", chromedp.SendKeys(chromedp.CSS("#hold-reason"), "forged"),
		submit(`form[action$="/hold"]`), chromedp.WaitVisible(chromedp.CSS("form.confirm, p.error")))
	if msg := text("main"); !strings.Contains(msg, "Forbidden") || !strings.Contains(msg, "anti-CSRF") {
		t.Fatalf("a form without its token: %s", msg)
	}
	if holds, _ := admin.Holds(ctx, demo.Product, release.MustParseVersion(demo.Held)); len(holds) != 1 {
		t.Fatalf("holds on %s after the refused form: %d, want the demo's 1", demo.Held, len(holds))
	}

	do("installations", chromedp.Navigate(s.URL+"/admin/products/"+demo.Product+"/installations"), chromedp.WaitVisible(chromedp.CSS("main table")))
	accessible("installations")
	browsertest.Screenshot(t, b, "console-installations")
	do("audit log", chromedp.Navigate(s.URL+"/admin/audit?action=release."), chromedp.WaitVisible(chromedp.CSS("main table")))
	accessible("audit")
	if got := text("main table"); !strings.Contains(got, "release.pull") || !strings.Contains(got, "rita (user:") {
		t.Fatalf("audit log: %s", got)
	}
	browsertest.Screenshot(t, b, "console-audit")

	// A viewer: no pull form, and a pull posted anyway (with a valid token)
	// is refused as the API refuses it.
	do("log out", submit("form.logout"), chromedp.WaitVisible(chromedp.CSS("#name")))
	do("log in as a viewer", chromedp.SendKeys(chromedp.CSS("#name"), "vic"), chromedp.SendKeys(chromedp.CSS("#password"), consolePassword+kb.Enter),
		chromedp.WaitVisible(chromedp.CSS("#board table")), chromedp.Navigate(rel+demo.Fixed), chromedp.WaitVisible(chromedp.CSS("#hold-reason")))
	if none, err := chromedp.Run(b, chromedp.Evaluate[bool](`document.querySelector('form[action$="/pull"]') === null`)); err != nil || !none {
		t.Fatalf("viewer's release page offers a pull (%v)", err)
	}
	status, err := chromedp.Run(b, chromedp.Evaluate[int](`fetch(location.pathname + "/pull", {method: "POST",
		body: new URLSearchParams({csrf: document.querySelector("input[name=csrf]").value, reason: "x", action: "hold", confirm: "yes"})}).then(r => r.status)`,
		chromedp.EvalAwaitPromise))
	if err != nil || status != 403 {
		t.Fatalf("viewer's pull: status %d (%v), want 403", status, err)
	}
	if r, err := admin.Release(ctx, demo.Product, release.MustParseVersion(demo.Fixed)); err != nil || r.Status != release.StatusOK {
		t.Fatalf("after the viewer's refused pull: %+v %v", r.Status, err)
	}
}

// newTab starts a headless browser for t and returns its context with the
// steps the console's browser tests share: do runs steps and fails the
// test naming what, text reads an element's text, accessible runs
// a11yCheck on the current page and reports what it lacks.
func newTab(t *testing.T) (b context.Context, do func(what string, steps ...chromedp.Action[chromedp.Void]), text func(sel string) string, accessible func(page string)) {
	b = browsertest.New(t)
	do = func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(b, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	text = func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(b, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}
	accessible = func(page string) {
		t.Helper()
		bad, err := chromedp.Run(b, chromedp.Evaluate[[]string](a11yCheck))
		if err != nil {
			t.Fatal(err)
		}
		if len(bad) > 0 {
			t.Errorf("%s page: %v", page, bad)
		}
	}
	return b, do, text, accessible
}

// submit clicks the submit button of the form the selector names.
func submit(form string) chromedp.Action[chromedp.Void] {
	return chromedp.Click(chromedp.CSS(form + " button[type=submit]"))
}
