package cli

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ringfence/ringfence/internal/servertest"
)

// TestServeDemo runs `ringfence serve --demo`: it prints the console's URL
// and a login that works, the board shows the seeded product with the
// release auto-halt paused, and stopping it removes the throwaway store.
func TestServeDemo(t *testing.T) {
	if code := Run(context.Background(), []string{"ringfence", "serve", "--demo", "--db", "x.db"}, io.Discard, io.Discard); code != ExitError {
		t.Fatalf("serve --demo --db: exit %d, want %d (the demo never uses a given store)", code, ExitError)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &servertest.Buffer{}
	done := make(chan int, 1)
	go func() {
		done <- Run(ctx, []string{"ringfence", "serve", "--demo", "--listen", "127.0.0.1:0"}, out, io.Discard)
	}()
	servertest.Eventually(t, 60*time.Second, "demo seeded", func() bool { return strings.Contains(out.String(), "seeded in") })
	m := regexp.MustCompile(`open +(http://\S+)/admin/`).FindStringSubmatch(out.String())
	pw := regexp.MustCompile(`password (\S+)`).FindStringSubmatch(out.String())
	store := regexp.MustCompile(`throwaway store at (\S+)`).FindStringSubmatch(out.String())
	if m == nil || pw == nil || store == nil {
		t.Fatalf("demo output lacks the URL, password or store: %s", out.String())
	}
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	resp, err := hc.PostForm(m[1]+"/admin/login", url.Values{"name": {"demo"}, "password": {pw[1]}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	page := string(body)
	for _, want := range []string{"acme-erp", "3.30.0", "paused by auto-halt", "pulled", "open hold"} {
		if !strings.Contains(page, want) {
			t.Errorf("demo board lacks %q", want)
		}
	}
	cancel()
	if code := <-done; code != ExitOK {
		t.Fatalf("serve --demo exit %d", code)
	}
	if _, err := os.Stat(store[1]); !os.IsNotExist(err) {
		t.Fatalf("demo store %s still there after stop: %v", store[1], err)
	}
}
