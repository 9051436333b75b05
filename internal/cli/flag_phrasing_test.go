package cli_test

import (
	"context"
	"strings"
	"testing"

	"github.com/ringfence/ringfence/internal/cli"
)

// TestServerMessagesArePhrasedWithFlags: the server and client name their
// request fields and configuration, never the CLI's flags; the CLI says
// what to type.
func TestServerMessagesArePhrasedWithFlags(t *testing.T) {
	url, admin := apiServer(t)
	api(t, url, admin, "product", "create", "acme", "--gate", "upgrade-test")
	api(t, url, admin, "ring", "create", "acme", "all", "--position", "0")
	api(t, url, admin, "release", "create", "acme", "3.30.0")
	api(t, url, admin, "release", "create", "acme", "3.30.3")

	code, _, errOut := runAPI(t, url, admin, "release", "pull", "acme", "3.30.0", "--reason", "broken", "--upgrade-to", "3.30.3")
	if code != cli.ExitError || !strings.Contains(errOut, "(force_reason)") || !strings.Contains(errOut, "--force --force-reason TEXT") {
		t.Errorf("pull to an ungated target: exit %d, stderr %q", code, errOut)
	}
	code, _, errOut = runAPI(t, url, admin, "subscriber", "create", "--email", "ops@customer.example")
	if code != cli.ExitError || !strings.Contains(errOut, "started with --smtp and --smtp-from") {
		t.Errorf("email subscriber without SMTP: exit %d, stderr %q", code, errOut)
	}
	t.Setenv("RINGFENCE_SERVER", "")
	code, _, errOut = run(t, context.Background(), "product", "list", "--token", admin)
	if code != cli.ExitError || !strings.Contains(errOut, "set --server or RINGFENCE_SERVER") {
		t.Errorf("no server: exit %d, stderr %q", code, errOut)
	}
	code, _, errOut = run(t, context.Background(), "serve", "--listen", "127.0.0.1:0", "--db", t.TempDir()+"/s.db", "--smtp", "smtp://localhost:25")
	if code != cli.ExitError || !strings.Contains(errOut, "--smtp needs --smtp-from") {
		t.Errorf("serve --smtp without --smtp-from: exit %d, stderr %q", code, errOut)
	}
}
