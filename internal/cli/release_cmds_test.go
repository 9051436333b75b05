package cli_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ringfence/ringfence/client"
	"github.com/ringfence/ringfence/internal/cli"
	"github.com/ringfence/ringfence/internal/servertest"
	"github.com/ringfence/ringfence/release"
	"github.com/ringfence/ringfence/server"
	"github.com/ringfence/ringfence/sign"
)

// apiServer runs the real server on a SQLite file over HTTP on :0 and
// returns its URL and an admin token.
func apiServer(t *testing.T) (string, string) {
	t.Helper()
	s := servertest.Start(t, servertest.SQLite(t), server.Config{RefreshInterval: 50 * time.Millisecond, FlushInterval: 10 * time.Millisecond,
		AdoptionInterval: 50 * time.Millisecond})
	return s.URL, s.Admin
}

// api runs ringfence with --server and --token and fails the test unless
// it exits 0; it returns stdout.
func api(t *testing.T, url, token string, args ...string) string {
	t.Helper()
	code, out, errOut := runAPI(t, url, token, args...)
	if code != 0 {
		t.Fatalf("ringfence %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// apiFails runs ringfence and fails the test unless it exits 2 with want
// in stderr.
func apiFails(t *testing.T, url, token, want string, args ...string) {
	t.Helper()
	code, out, errOut := runAPI(t, url, token, args...)
	if code != cli.ExitError || !strings.Contains(errOut, want) {
		t.Fatalf("ringfence %s: exit %d, stderr %q, want exit 2 mentioning %q (stdout %q)", strings.Join(args, " "), code, errOut, want, out)
	}
}

func runAPI(t *testing.T, url, token string, args ...string) (int, string, string) {
	t.Helper()
	full := append(append([]string{}, args...), "--server", url)
	if token != "" {
		full = append(full, "--token", token)
	}
	return run(t, context.Background(), full...)
}

// listedKeys returns the server's public keys as `ringfence keys list`
// prints them.
func listedKeys(t *testing.T, url string) []sign.PublicKey {
	t.Helper()
	return apiJSON[struct {
		Keys []sign.PublicKey `json:"keys"`
	}](t, url, "", "keys", "list").Keys
}

func apiJSON[T any](t *testing.T, url, token string, args ...string) T {
	t.Helper()
	var v T
	out := api(t, url, token, append(args, "--json")...)
	data := []byte(out)
	var list struct { // a list is the document's items
		Items json.RawMessage `json:"items"`
	}
	if json.Unmarshal(data, &list) == nil && list.Items != nil {
		data = list.Items
	}
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatalf("ringfence %s --json: %v\n%s", strings.Join(args, " "), err, out)
	}
	return v
}

func ringOf(t *testing.T, st client.Status, version, ring string) release.RingStatus {
	t.Helper()
	return servertest.RingStatus(t, st.Releases, version, ring)
}

func TestReleaseCommandsEndToEnd(t *testing.T) {
	ctx := context.Background()
	url, admin := apiServer(t)

	// Set up a product, rings, customers and an enrollment key.
	out := api(t, url, admin, "product", "create", "acme", "--gate", "collation-compare", "--halt-min-failures", "2")
	if !strings.Contains(out, "collation-compare") || !strings.Contains(out, ">=2 of >=2 customers and >=20% in 1h0m0s") {
		t.Fatalf("product create printed:\n%s", out)
	}
	api(t, url, admin, "ring", "create", "acme", "insiders", "--position", "0", "--soak", "0s", "--min-healthy", "1")
	api(t, url, admin, "ring", "create", "acme", "stable", "--position", "1", "--soak", "48h", "--rollout", "25")
	rings := apiJSON[[]release.Ring](t, url, admin, "ring", "list", "acme")
	if len(rings) != 2 || rings[1].Name != "stable" || rings[1].SoakTime != 48*time.Hour || rings[1].RolloutPercent != 25 || rings[0].RolloutPercent != 100 {
		t.Fatalf("rings %+v", rings)
	}
	api(t, url, admin, "ring", "update", "acme", "stable", "--rollout", "100")
	api(t, url, admin, "customer", "create", "acme", "early-co", "--ring", "insiders")
	api(t, url, admin, "customer", "create", "acme", "bigbank", "--ring", "insiders")
	if out := api(t, url, admin, "customer", "move", "acme", "bigbank", "--ring", "stable"); !strings.Contains(out, "bigbank   stable") {
		t.Fatalf("customer move printed:\n%s", out)
	}
	if c := apiJSON[release.Customer](t, url, admin, "customer", "show", "acme", "bigbank"); c.Ring != "stable" {
		t.Fatalf("customer show: %+v", c)
	}
	if out := api(t, url, admin, "ring", "show", "acme", "stable"); !strings.Contains(out, "stable") || !strings.Contains(out, "48h") || strings.Contains(out, "insiders") {
		t.Fatalf("ring show:\n%s", out)
	}
	apiFails(t, url, admin, "ring nope of acme not found", "ring", "show", "acme", "nope")
	apiFails(t, url, admin, "customer nope of acme not found", "customer", "show", "acme", "nope")
	key := apiJSON[client.EnrollmentKey](t, url, admin, "customer", "key", "create", "acme", "early-co")
	if key.Key == "" {
		t.Fatal("enrollment key not printed")
	}
	if out := api(t, url, admin, "customer", "key", "list", "acme", "early-co"); !strings.Contains(out, key.ID) || strings.Contains(out, key.Key) {
		t.Fatalf("key list must show the id but never the secret:\n%s", out)
	}

	// Releases and gates: a failed gate blocks the first ring.
	api(t, url, admin, "release", "create", "acme", "3.29.4")
	api(t, url, admin, "release", "create", "acme", "3.30.0", "--rollback-safe-to", "3.29.4", "--notes-url", "https://acme.example/notes/3.30.0")
	apiFails(t, url, admin, `"not_offered" cannot be waived`, "release", "create", "acme", "3.30.9", "--waive", "not_offered")
	apiFails(t, url, admin, "give a major version", "release", "create", "acme", "3.30.9", "--requires-postgres", "9")
	if r := apiJSON[release.Release](t, url, admin, "release", "create", "acme", "3.30.9", "--waive", "collation_changed", "--waive", "database_corrupt",
		"--requires-postgres", "14"); !slices.Equal(r.Waives, []string{"collation_changed", "database_corrupt"}) || r.RequiresPostgres != 14 {
		t.Fatalf("release created with waivers: %+v", r)
	}
	api(t, url, admin, "gate", "fail", "acme", "3.30.0", "collation-compare", "--url", "https://ci.acme.example/run/1")
	out = api(t, url, admin, "release", "status", "acme")
	for _, want := range []string{"acme 3.30.0", "collation-compare=fail", "blocked", "required gate collation-compare failed", "acme 3.29.4", "collation-compare=missing"} {
		if !strings.Contains(out, want) {
			t.Fatalf("status lacks %q:\n%s", want, out)
		}
	}
	api(t, url, admin, "gate", "pass", "acme", "3.30.0", "collation-compare", "--url", "https://ci.acme.example/run/2")
	if gs := apiJSON[[]release.GateResult](t, url, admin, "gate", "list", "acme", "3.30.0"); len(gs) == 0 || gs[0].Status != release.GatePass {
		t.Fatalf("gate results %+v", gs)
	}
	st := apiJSON[client.Status](t, url, admin, "release", "status", "acme")
	if rs := ringOf(t, st, "3.30.0", "insiders"); rs.State != release.RingSoaking && rs.State != release.RingActive {
		t.Fatalf("insiders after the gate passed: %+v", rs)
	}

	// An installation of an insider customer is offered 3.30.0 and verifies
	// the answer against the keys `ringfence keys list` prints.
	keys := listedKeys(t, url)
	agent, err := client.New(url, key.Key)
	if err != nil {
		t.Fatal(err)
	}
	inst := release.CheckIn{InstanceID: "inst-1", Product: "acme", Version: release.MustParseVersion("3.29.4"), Health: &release.Health{Status: release.HealthOK}}
	ans, _, err := agent.CheckIn(ctx, inst, keys)
	if err != nil {
		t.Fatal(err)
	}
	if ans.Offer == nil || ans.Offer.Version.String() != "3.30.0" {
		t.Fatalf("insider answer %+v", ans)
	}

	// Anyone may raise a hold; resolving needs the releaser role.
	viewer := apiJSON[client.Token](t, url, admin, "token", "create", "vera", "--role", "viewer")
	hold := apiJSON[release.Hold](t, url, viewer.Secret, "hold", "raise", "acme", "3.30.0", "--reason", "support sees odd sorting")
	if out := api(t, url, viewer.Secret, "release", "status", "acme"); !strings.Contains(out, "hold "+hold.ID+":") || !strings.Contains(out, "support sees odd sorting") {
		t.Fatalf("status does not show the hold:\n%s", out)
	}
	apiFails(t, url, viewer.Secret, "releaser role", "hold", "resolve", "acme", hold.ID, "--resolution", "fine")
	apiFails(t, url, viewer.Secret, "releaser role", "release", "pause", "acme", "3.30.0", "--reason", "x")
	api(t, url, admin, "hold", "resolve", "acme", hold.ID, "--resolution", "false alarm")
	if hs := apiJSON[[]release.Hold](t, url, admin, "hold", "list", "acme", "3.30.0"); len(hs) != 1 || hs[0].Open() {
		t.Fatalf("holds %+v", hs)
	}

	// Pause and resume.
	out = api(t, url, admin, "release", "pause", "acme", "3.30.0", "--reason", "index reports", "--incident", "https://status.acme.example/i/7")
	if !strings.Contains(out, "paused") || !strings.Contains(out, "index reports by root (") {
		t.Fatalf("pause printed:\n%s", out)
	}
	if ans, _, err := agent.CheckIn(ctx, inst, keys); err != nil || ans.Offer != nil {
		t.Fatalf("offer of a paused release: %+v %v", ans.Offer, err)
	}
	api(t, url, admin, "release", "resume", "acme", "3.30.0", "--reason", "false alarm")

	// Pull with guidance, as in the example.
	api(t, url, admin, "release", "create", "acme", "3.30.3")
	api(t, url, admin, "gate", "pass", "acme", "3.30.3", "collation-compare") // an upgrade target must have passed the gates
	apiFails(t, url, admin, "exactly one guidance", "release", "pull", "acme", "3.30.0", "--reason", "x")
	apiFails(t, url, admin, "exactly one guidance", "release", "pull", "acme", "3.30.0", "--reason", "x", "--hold", "--upgrade-to", "3.30.3")
	apiFails(t, url, admin, "rollback-safe", "release", "pull", "acme", "3.30.0", "--reason", "x", "--rollback-to", "3.29.0")
	pulled := apiJSON[release.Release](t, url, admin, "release", "pull", "acme", "3.30.0",
		"--reason", "collation change corrupts unique indexes", "--incident", "https://status.acme.example/i/42", "--upgrade-to", "3.30.3")
	if pulled.Status != release.StatusPulled || pulled.Pulled == nil || pulled.Pulled.Target.String() != "3.30.3" {
		t.Fatalf("pulled %+v", pulled)
	}
	inst.Version = release.MustParseVersion("3.30.0")
	ans, _, err = agent.CheckIn(ctx, inst, keys)
	if err != nil {
		t.Fatal(err)
	}
	if ans.Current.Status != release.StatusPulled || ans.Current.Action != release.ActionUpgrade || ans.Current.Target.String() != "3.30.3" ||
		ans.Current.IncidentURL != "https://status.acme.example/i/42" || ans.Offer == nil || ans.Offer.Version.String() != "3.30.3" {
		t.Fatalf("answer on the pulled release %+v", ans)
	}
	if out := api(t, url, admin, "release", "status", "acme"); !strings.Contains(out, "pulled: collation change corrupts unique indexes; installations on it: upgrade to 3.30.3") {
		t.Fatalf("status of a pulled release:\n%s", out)
	}
	if out := api(t, url, admin, "release", "show", "acme", "3.30.0"); !strings.Contains(out, "upgrade to 3.30.3") || !strings.Contains(out, "collation change corrupts unique indexes") {
		t.Fatalf("release show:\n%s", out)
	}
	apiFails(t, url, admin, "pulled", "release", "resume", "acme", "3.30.0")

	// Force-promote needs a reason and enters every ring up to the named one.
	apiFails(t, url, admin, "--reason is required", "release", "promote", "acme", "3.30.3", "--ring", "stable")
	promoted := apiJSON[release.Release](t, url, admin, "release", "promote", "acme", "3.30.3", "--ring", "stable", "--reason", "bigbank needs the fix")
	if len(promoted.Rings) == 0 || !promoted.Rings[len(promoted.Rings)-1].Forced {
		t.Fatalf("promoted %+v", promoted)
	}
	if out := api(t, url, admin, "release", "list", "acme"); !strings.Contains(out, "3.30.0") || !strings.Contains(out, "pulled") {
		t.Fatalf("release list:\n%s", out)
	}
	if out := api(t, url, admin, "release", "installations", "acme"); !strings.Contains(out, "inst-1") || !strings.Contains(out, "early-co") {
		t.Fatalf("installations:\n%s", out)
	}

	// Keys, tokens, audit.
	rotated := apiJSON[sign.PublicKey](t, url, admin, "keys", "rotate")
	if out := api(t, url, "", "keys", "list"); !strings.Contains(out, rotated.ID) || !strings.Contains(out, keys[0].ID) {
		t.Fatalf("keys list after rotation:\n%s", out)
	}
	if out := api(t, url, admin, "token", "list"); !strings.Contains(out, "vera") || strings.Contains(out, viewer.Secret) {
		t.Fatalf("token list:\n%s", out)
	}
	api(t, url, admin, "token", "revoke", viewer.ID)
	apiFails(t, url, viewer.Secret, "unauthorized", "product", "list")
	out = api(t, url, admin, "audit", "--limit", "200")
	for _, want := range []string{"release.pull", "hold.raise", "hold.resolve", "release.force_promote", "vera"} {
		if !strings.Contains(out, want) {
			t.Fatalf("audit lacks %q:\n%s", want, out)
		}
	}

	// Products can be changed.
	p := apiJSON[release.Product](t, url, admin, "product", "update", "acme", "--no-gates", "--halt-disabled")
	if len(p.RequiredGates) != 0 || !p.Policy.Disabled || p.Policy.MinFailures != 2 {
		t.Fatalf("updated product %+v", p)
	}
	if ps := apiJSON[[]release.Product](t, url, admin, "product", "list"); len(ps) != 1 || ps[0].Name != "acme" {
		t.Fatalf("products %+v", ps)
	}
}

func TestAPICommandErrors(t *testing.T) {
	url, admin := apiServer(t)
	apiFails(t, url, "", "no API token", "product", "list")
	apiFails(t, url, admin, "not found", "product", "show", "nope")
	apiFails(t, url, admin, "needs 2 argument(s)", "release", "show", "acme")
	apiFails(t, url, admin, "version argument", "release", "show", "acme", "v3")
	apiFails(t, url, admin, "--ring is required", "customer", "create", "acme", "bigbank")
	apiFails(t, url, admin, "nothing to change", "ring", "update", "acme", "insiders")
	apiFails(t, "http://127.0.0.1:1", admin, "connection refused", "product", "list")
	apiFails(t, "ftp://x", admin, "not an http(s) URL", "product", "list")

	// --server and --token may come from the environment.
	t.Setenv("RINGFENCE_SERVER", url)
	t.Setenv("RINGFENCE_TOKEN", admin)
	code, out, errOut := run(t, context.Background(), "product", "create", "envco")
	if code != 0 || !strings.Contains(out, "envco") {
		t.Fatalf("with env: exit %d\n%s\n%s", code, out, errOut)
	}
}
