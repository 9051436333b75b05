package cli

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ringfence/ringfence/internal/servertest"
)

// runServeUntilServing runs `ringfence serve` with args until it logs that
// it serves, then stops it; it returns the exit code and the logs.
func runServeUntilServing(t *testing.T, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logs := &servertest.Buffer{}
	done := make(chan int, 1)
	go func() {
		done <- Run(ctx, append([]string{"ringfence", "serve", "--listen", "127.0.0.1:0"}, args...), io.Discard, logs)
	}()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case code := <-done:
			return code, logs.String()
		case <-deadline:
			t.Fatalf("serve neither served nor stopped: %s", logs.String())
		case <-time.After(10 * time.Millisecond):
		}
		for _, line := range strings.Split(logs.String(), "\n") {
			var l struct{ Msg string }
			if json.Unmarshal([]byte(line), &l) == nil && l.Msg == "serving" {
				cancel()
				return <-done, logs.String()
			}
		}
	}
}

// TestServeKeyEncryptionKey: serve on a new SQLite store creates
// <db>.kek (0600) and says so, starts again with it, refuses to start when
// the store's keys are encrypted and the file is gone, and refuses a key
// file others can read.
func TestServeKeyEncryptionKey(t *testing.T) {
	db := filepath.Join(t.TempDir(), "ringfence.db")
	code, logs := runServeUntilServing(t, "--db", db)
	if code != ExitOK || !strings.Contains(logs, "created a key-encryption key file") {
		t.Fatalf("first start: exit %d: %s", code, logs)
	}
	fi, err := os.Stat(db + ".kek")
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v, want mode 0600", fi, err)
	}
	if code, logs := runServeUntilServing(t, "--db", db); code != ExitOK || strings.Contains(logs, "created a key-encryption key") {
		t.Fatalf("second start: exit %d: %s", code, logs)
	}
	if err := os.Chmod(db+".kek", 0o644); err != nil {
		t.Fatal(err)
	}
	if code, logs := runServeUntilServing(t, "--db", db); code != ExitError || !strings.Contains(logs, "chmod 600") {
		t.Errorf("start with a readable key file: exit %d: %s", code, logs)
	}
	if err := os.Rename(db+".kek", db+".kek.bak"); err != nil {
		t.Fatal(err)
	}
	code, logs = runServeUntilServing(t, "--db", db)
	if code != ExitError || !strings.Contains(logs, "signing keys are encrypted") {
		t.Errorf("start without the key file: exit %d: %s", code, logs)
	}
	if _, err := os.Stat(db + ".kek"); !os.IsNotExist(err) {
		t.Errorf("a new key file was created over encrypted keys: %v", err)
	}
}
