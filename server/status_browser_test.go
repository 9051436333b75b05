package server_test

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/ringfence/ringfence/internal/browsertest"
	"github.com/ringfence/ringfence/internal/servertest"
	"github.com/ringfence/ringfence/server"
)

// TestStatusPageInChromium renders the status page of an incident day in
// headless Chromium, checks what a reader sees, follows the incident link from the keyboard
// and saves a screenshot (status-page.png in $RINGFENCE_ARTIFACTS).
func TestStatusPageInChromium(t *testing.T) {
	ctx := browsertest.New(t)
	e := startServer(t, servertest.SQLite(t), server.Config{PageTitle: "Acme Status"})
	statusScene(e)
	// Links point at the public URL (localhost:8080 by default); the test
	// server is elsewhere, so follow them by path.
	if err := chromedp.Do(ctx, chromedp.Navigate(e.URL+"/")); err != nil {
		t.Fatal(err)
	}
	banner, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("h1.banner")))
	if err != nil {
		t.Fatal(err)
	}
	if banner != "Partial System Outage" {
		t.Errorf("banner = %q", banner)
	}
	main, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("main")))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Active incidents", "Check-ins failing", "A bad index; rebuilding it.", "acme: do not upgrade to 1.1.0",
		"Upgrade to 1.2.0.", "Components", "Core", "Check-in", "Partial outage", "Scheduled maintenance", "Database upgrade", "Slow dashboard"} {
		if !strings.Contains(main, want) {
			t.Errorf("the page as rendered lacks %q", want)
		}
	}
	bars, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("svg.bars[role=img][aria-label]").length`))
	if err != nil {
		t.Fatal(err)
	}
	if bars != 3 {
		t.Errorf("%d labelled history bars, want one per component (3)", bars)
	}
	browsertest.Screenshot(t, ctx, "status-page")
	// The first Tab lands on the skip link, which is then visible.
	if err := chromedp.Do(ctx, chromedp.KeyEvent("\t")); err != nil {
		t.Fatal(err)
	}
	focused, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.activeElement.textContent`))
	if err != nil {
		t.Fatal(err)
	}
	if focused != "Skip to content" {
		t.Errorf("first Tab focuses %q, want the skip link", focused)
	}

	href, err := chromedp.Run(ctx, chromedp.Evaluate[string](`[...document.querySelectorAll("section[aria-labelledby=active] h3 a")].find(a => a.textContent === "Check-ins failing").getAttribute("href")`))
	if err != nil {
		t.Fatal(err)
	}
	path := href[strings.Index(href, "/incidents/"):]
	if err := chromedp.Do(ctx, chromedp.Navigate(e.URL+path)); err != nil {
		t.Fatal(err)
	}
	title, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("h1")))
	if err != nil {
		t.Fatal(err)
	}
	updates, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll(".upd").length`))
	if err != nil {
		t.Fatal(err)
	}
	if title != "Check-ins failing" || updates != 2 {
		t.Errorf("incident page %s: title %q, %d updates", path, title, updates)
	}
	browsertest.Screenshot(t, ctx, "status-incident")
}
