package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ringfence/ringfence/internal/servertest"
)

// TestServeAndAdminToken creates the first admin token offline, runs
// `ringfence serve` on :0 and uses the token against it, then stops it.
func TestServeAndAdminToken(t *testing.T) {
	db := filepath.Join(t.TempDir(), "ringfence.db")
	var out, errOut bytes.Buffer
	// Without --init a missing store is an error, and nothing is created.
	if code := Run(context.Background(), []string{"ringfence", "admin", "token", "create", "--db", db}, &out, &errOut); code != ExitError || out.Len() != 0 {
		t.Fatalf("admin token create on a missing store: exit %d, stdout %q; want 2 and nothing", code, out.String())
	}
	if _, err := os.Stat(db); !os.IsNotExist(err) {
		t.Fatalf("admin token create without --init created %s: %v", db, err)
	}
	errOut.Reset()
	if code := Run(context.Background(), []string{"ringfence", "admin", "token", "create", "--db", db, "--init", "--role", "admin", "--name", "alice"}, &out, &errOut); code != ExitOK {
		t.Fatalf("admin token create: exit %d: %s", code, errOut.String())
	}
	token := strings.TrimSpace(out.String())
	if !strings.HasPrefix(token, "rft_") || strings.Count(out.String(), "\n") != 1 {
		t.Fatalf("admin token create printed %q, want one token line", out.String())
	}
	out.Reset()
	errOut.Reset()
	if code := Run(context.Background(), []string{"ringfence", "admin", "token", "create", "--db", db, "--role", "root"}, &out, &errOut); code != ExitError || out.Len() != 0 {
		t.Errorf("admin token create --role root: exit %d, stdout %q; want 2 and nothing printed", code, out.String())
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logs := &servertest.Buffer{}
	done := make(chan int, 1)
	go func() {
		done <- Run(ctx, []string{"ringfence", "serve", "--db", db, "--listen", "127.0.0.1:0"}, io.Discard, logs)
	}()
	var addr string
	deadline := time.Now().Add(10 * time.Second)
	for addr == "" {
		if time.Now().After(deadline) {
			t.Fatalf("serve did not log its address: %s", logs.String())
		}
		for _, line := range strings.Split(logs.String(), "\n") {
			var l struct {
				Msg, Addr string
			}
			if json.Unmarshal([]byte(line), &l) == nil && l.Msg == "serving" {
				addr = l.Addr
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	req, _ := http.NewRequest("GET", "http://"+addr+"/api/v1/whoami", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var who struct{ Name, Role string }
	err = json.NewDecoder(resp.Body).Decode(&who)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || who.Name != "alice" || who.Role != "admin" {
		t.Fatalf("whoami with the offline token: %d %+v %v", resp.StatusCode, who, err)
	}
	cancel()
	select {
	case code := <-done:
		if code != ExitOK {
			t.Errorf("serve exited %d after cancel: %s", code, logs.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not stop after cancel")
	}
	if !strings.Contains(logs.String(), `"msg":"stopped"`) {
		t.Errorf("serve logs lack the stop: %s", logs.String())
	}
}
