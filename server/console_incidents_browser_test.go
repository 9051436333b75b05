package server_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/ringfence/ringfence/client"
	"github.com/ringfence/ringfence/internal/browsertest"
	"github.com/ringfence/ringfence/internal/demo"
	"github.com/ringfence/ringfence/release"
)

// TestConsoleIncidentsInBrowser drives the incident pages in headless
// Chromium over the demo: declare an incident from a template with a
// component status, read the preview of what subscribers receive, post an
// update, resolve it, and see each step on the public status page; visit
// the components, maintenance and subscribers pages; and as a viewer find
// no declare form and be refused one posted anyway. It saves screenshots
// of the new pages.
func TestConsoleIncidentsInBrowser(t *testing.T) {
	s, _ := demoConsole(t, map[string]release.Role{"ines": release.RoleIncident, "vic": release.RoleViewer})
	ctx := context.Background()
	admin, err := client.New(s.URL, s.Admin)
	if err != nil {
		t.Fatal(err)
	}
	// A webhook subscriber, so the subscribers page and the preview have
	// someone to count.
	if _, err := admin.CreateSubscriber(ctx, client.NewSubscriber{Webhook: "https://hooks.example.com/status"}); err != nil {
		t.Fatal(err)
	}

	b, do, text, accessible := newTab(t)
	// public reloads the public page at path (past any cache: the query
	// differs each time) until its text has every one of want.
	visits := 0
	public := func(step, path string, want ...string) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			visits++
			do(step, chromedp.Navigate(fmt.Sprintf("%s%s?visit=%d", s.URL, path, visits)), chromedp.WaitVisible(chromedp.CSS("main")))
			got := text("main")
			missing := ""
			for _, w := range want {
				if !strings.Contains(got, w) {
					missing = w
				}
			}
			if missing == "" {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: the public page %s lacks %q: %s", step, path, missing, got)
			}
			time.Sleep(300 * time.Millisecond)
		}
	}

	do("log in", chromedp.Navigate(s.URL+"/admin/incidents"), chromedp.WaitVisible(chromedp.CSS("#name")),
		chromedp.SendKeys(chromedp.CSS("#name"), "ines"), chromedp.SendKeys(chromedp.CSS("#password"), consolePassword+kb.Enter),
		chromedp.WaitVisible(chromedp.CSS("#declare")))
	accessible("incidents")
	if got := text("main table"); !strings.Contains(got, "paused by auto-halt") {
		t.Fatalf("incidents of the demo: %s", got)
	}

	// Declare from a template, with a component status: the confirmation
	// shows what subscribers receive.
	do("declare", chromedp.SetValue(chromedp.CSS("#declare-template"), "downloads-slow"),
		chromedp.SetValue(chromedp.CSS(`select[name="component.Customer portal"]`), "degraded_performance"),
		chromedp.SendKeys(chromedp.CSS("#declare-message"), "Downloads from the customer portal time out for some customers."))
	browsertest.Screenshot(t, b, "console-incidents")
	do("declare", submit("#declare"), chromedp.WaitVisible(chromedp.CSS("form.confirm")))
	accessible("declare confirmation")
	if got := text("#preview-subject"); !strings.Contains(got, "Investigating: Release downloads are slow") {
		t.Fatalf("preview subject: %q", got)
	}
	if got := text("#preview-text"); !strings.Contains(got, "Customer portal: Operational → Degraded performance") {
		t.Fatalf("preview text: %q", got)
	}
	if got := text(".preview"); !strings.Contains(got, "1 webhook subscriber") {
		t.Fatalf("preview audience: %q", got)
	}
	browsertest.Screenshot(t, b, "console-incident-preview")
	do("confirm the declaration", submit("form.confirm"), chromedp.WaitVisible(chromedp.CSS("p.notice")))
	incURL, err := chromedp.Run(b, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	incPath := strings.TrimPrefix(strings.SplitN(incURL, "?", 2)[0], s.URL)
	id := strings.TrimPrefix(incPath, "/admin/incidents/")
	public("after declaring", "/", "Release downloads are slow", "Downloads from the customer portal time out")

	// Post an update.
	do("update", chromedp.Navigate(s.URL+incPath), chromedp.WaitVisible(chromedp.CSS("#update")))
	accessible("incident")
	do("update", chromedp.SetValue(chromedp.CSS("#update-status"), "identified"),
		chromedp.SendKeys(chromedp.CSS("#update-message"), "A storage node of the portal is overloaded; traffic is moving off it."),
		submit("#update"), chromedp.WaitVisible(chromedp.CSS("form.confirm")))
	if got := text("#preview-subject"); !strings.Contains(got, "Identified: Release downloads are slow") {
		t.Fatalf("update preview subject: %q", got)
	}
	do("confirm the update", submit("form.confirm"), chromedp.WaitVisible(chromedp.CSS("p.notice")))
	browsertest.Screenshot(t, b, "console-incident")
	public("after the update", "/incidents/"+id, "Identified", "storage node of the portal is overloaded")

	// Resolve: the component goes back to operational.
	do("resolve", chromedp.Navigate(s.URL+incPath), chromedp.WaitVisible(chromedp.CSS("#resolve")),
		chromedp.SendKeys(chromedp.CSS("#resolve-message"), "Downloads are back to normal speed."),
		submit("#resolve"), chromedp.WaitVisible(chromedp.CSS("form.confirm")))
	if got := text("#preview-text"); !strings.Contains(got, "Customer portal: Degraded performance → Operational") {
		t.Fatalf("resolve preview text: %q", got)
	}
	do("confirm the resolution", submit("form.confirm"), chromedp.WaitVisible(chromedp.CSS("#postmortem")))
	if got := text("#incident-status"); got != "resolved" {
		t.Fatalf("status after resolving: %q", got)
	}
	public("after resolving", "/incidents/"+id, "Resolved", "Downloads are back to normal speed.")
	public("after resolving", "/", "Release "+demo.Product+"@"+demo.Halted+" paused by auto-halt")
	if got := text("main"); strings.Contains(got, "Release downloads are slow") && strings.Contains(got, "time out for some customers") && !strings.Contains(got, "Resolved") {
		t.Fatalf("the resolved incident is still shown open: %s", got)
	}

	for _, p := range []struct{ path, name string }{
		{"/admin/components", "console-components"}, {"/admin/maintenance", "console-maintenance"}, {"/admin/subscribers", "console-subscribers"},
	} {
		do(p.path, chromedp.Navigate(s.URL+p.path), chromedp.WaitVisible(chromedp.CSS("main table")))
		accessible(p.path)
		browsertest.Screenshot(t, b, p.name)
	}
	if got := text("main table"); !strings.Contains(got, "https://hooks.example.com") {
		t.Fatalf("subscribers: %s", got)
	}

	// A viewer: no declare form, and one posted anyway is refused.
	do("log out", submit("form.logout"), chromedp.WaitVisible(chromedp.CSS("#name")))
	do("log in as a viewer", chromedp.SendKeys(chromedp.CSS("#name"), "vic"), chromedp.SendKeys(chromedp.CSS("#password"), consolePassword+kb.Enter),
		chromedp.WaitVisible(chromedp.CSS("form.logout")), chromedp.Navigate(s.URL+"/admin/incidents"), chromedp.WaitVisible(chromedp.CSS("main table")))
	if none, err := chromedp.Run(b, chromedp.Evaluate[bool](`document.querySelector("#declare") === null`)); err != nil || !none {
		t.Fatalf("viewer's incidents page offers a declaration (%v)", err)
	}
	before, err := admin.Incidents(ctx, false, 100)
	if err != nil {
		t.Fatal(err)
	}
	status, err := chromedp.Run(b, chromedp.Evaluate[int](`fetch("/admin/incidents", {method: "POST",
		body: new URLSearchParams({csrf: document.querySelector("input[name=csrf]").value, title: "x", message: "y", impact: "minor", confirm: "yes"})}).then(r => r.status)`,
		chromedp.EvalAwaitPromise))
	if err != nil || status != 403 {
		t.Fatalf("viewer's declaration: status %d (%v), want 403", status, err)
	}
	if after, err := admin.Incidents(ctx, false, 100); err != nil || len(after) != len(before) {
		t.Fatalf("incidents after the viewer's refused declaration: %d, before %d (%v)", len(after), len(before), err)
	}
}
