// Package browsertest drives headless Chromium (Debian's chromium package,
// installed by scripts/deps.sh) through chromedp, for tests of the pages
// ringfence serves: the public status page and the operators' console.
//
// Every browser is a fresh process with an empty profile in a temporary
// directory, started with the flags that keep it off the network (no
// background networking, component updates or sync), and closed when the
// test ends. Without Chromium a test is skipped, except with CI set, where
// it fails: a missing browser must never turn a CI run green.
package browsertest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Timeout bounds everything one browser does in a test.
const Timeout = 5 * time.Minute

// Path returns the Chromium binary to run: $RINGFENCE_CHROMIUM, or the first
// of chromium, chromium-browser and google-chrome on PATH.
func Path() (string, error) {
	if p := os.Getenv("RINGFENCE_CHROMIUM"); p != "" {
		return p, nil
	}
	var err error
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		var p string
		if p, err = exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", err
}

// New starts a headless browser for t and returns a context for chromedp.Run
// and chromedp.Do on its first tab (chromedp.NewContext of it opens more
// tabs). The browser is closed when t ends, or after Timeout.
func New(t testing.TB) context.Context {
	t.Helper()
	path, err := Path()
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("test dependency missing in CI: chromium (scripts/deps.sh installs it): %v", err)
		}
		t.Skipf("test dependency missing: chromium: %v", err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-first-run", true),
		chromedp.WindowSize(1280, 900),
	)
	ctx, cancelTimeout := context.WithTimeout(context.Background(), Timeout)
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	// Start the browser now, so a broken installation fails here and not in
	// the middle of a test's first action.
	if err := chromedp.Do(bctx); err != nil {
		cancelBrowser()
		cancelAlloc()
		cancelTimeout()
		t.Fatalf("start chromium %s: %v", path, err)
	}
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc()
		cancelTimeout()
	})
	return bctx
}

// Screenshot saves a full-page PNG of the current page as NAME.png in
// $RINGFENCE_ARTIFACTS (created if needed), or in a temporary directory of
// t when that is unset, and returns its path.
func Screenshot(t testing.TB, ctx context.Context, name string) string {
	t.Helper()
	dir := os.Getenv("RINGFENCE_ARTIFACTS")
	if dir == "" {
		dir = t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(dir, strings.TrimSuffix(name, ".png")+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	return path
}
