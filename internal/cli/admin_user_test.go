package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestAdminUser creates, lists and deletes a console account offline.
func TestAdminUser(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "ringfence.db")
	pwFile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwFile, []byte("a long enough password\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		code := Run(context.Background(), append([]string{"ringfence", "admin", "user"}, args...), &out, &errOut)
		return code, out.String(), errOut.String()
	}
	if code, _, _ := run("create", "--db", db, "--password-file", pwFile, "alice"); code != ExitError {
		t.Fatalf("create on a missing store without --init: exit %d, want %d", code, ExitError)
	}
	if code, out, errOut := run("create", "--db", db, "--init", "--role", "releaser", "--password-file", pwFile, "alice"); code != ExitOK || !strings.Contains(out, "created releaser user alice") {
		t.Fatalf("create: exit %d, %q %q", code, out, errOut)
	}
	short := filepath.Join(dir, "short")
	if err := os.WriteFile(short, []byte("short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := run("create", "--db", db, "--password-file", short, "bob"); code != ExitError || !strings.Contains(errOut, "password needs") {
		t.Fatalf("short password: exit %d, %q", code, errOut)
	}
	if code, out, _ := run("list", "--db", db); code != ExitOK || !strings.Contains(out, "alice") || !strings.Contains(out, "releaser") || strings.Contains(out, "bob") {
		t.Fatalf("list: exit %d, %q", code, out)
	}
	if code, _, errOut := run("delete", "--db", db, "alice"); code != ExitOK {
		t.Fatalf("delete: exit %d, %q", code, errOut)
	}
	if code, _, errOut := run("delete", "--db", db, "alice"); code != ExitError || !strings.Contains(errOut, "not found") {
		t.Fatalf("delete again: exit %d, %q", code, errOut)
	}
}
