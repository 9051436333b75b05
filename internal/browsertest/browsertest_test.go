package browsertest_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/ringfence/ringfence/internal/browsertest"
)

// TestBrowserRendersAndScreenshots proves the browser starts, runs a page's
// script against a real HTTP server and takes a screenshot.
func TestBrowserRendersAndScreenshots(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, `<!doctype html><title>t</title><main><h1 id="h">static</h1></main>
<script>document.getElementById("h").textContent = "scripted";</script>`)
	}))
	defer srv.Close()
	ctx := browsertest.New(t)
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL)); err != nil {
		t.Fatal(err)
	}
	got, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#h")))
	if err != nil {
		t.Fatal(err)
	}
	if got != "scripted" {
		t.Fatalf("heading = %q, want the text the page's script set", got)
	}
	path := browsertest.Screenshot(t, ctx, "browsertest")
	st, err := os.Stat(path)
	if err != nil || st.Size() < 100 {
		t.Fatalf("screenshot %s: %v, %v", path, st, err)
	}
}
