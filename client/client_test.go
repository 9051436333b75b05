package client_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/ringfence/ringfence/client"
	"github.com/ringfence/ringfence/internal/servertest"
	"github.com/ringfence/ringfence/release"
	"github.com/ringfence/ringfence/server"
	"github.com/ringfence/ringfence/sign"
)

// startServer runs the real server on a SQLite file over HTTP on :0 and
// returns its URL and an admin token.
func startServer(t *testing.T, cfg server.Config) (string, string) {
	t.Helper()
	if cfg.RefreshInterval == 0 {
		cfg.RefreshInterval = 50 * time.Millisecond
	}
	s := servertest.Start(t, servertest.SQLite(t), cfg)
	return s.URL, s.Admin
}

func mustClient(t *testing.T, url, token string, opts ...client.Option) *client.Client {
	t.Helper()
	c, err := client.New(url, token, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func must[T any](t *testing.T) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func v(s string) release.Version { return release.MustParseVersion(s) }

// setup creates product acme with one ring, a customer and an enrollment
// key, and releases 1.0.0 and 1.1.0 (the latter with its gate passed).
func setup(t *testing.T, ctx context.Context, admin *client.Client) string {
	t.Helper()
	must[release.Product](t)(admin.CreateProduct(ctx, client.NewProduct{Name: "acme", RequiredGates: []string{"upgrade-test"}}))
	must[release.Ring](t)(admin.CreateRing(ctx, "acme", release.Ring{Name: "insiders", Position: 0, SoakTime: time.Hour, RolloutPercent: 100, MinHealthy: 1}))
	must[release.Customer](t)(admin.CreateCustomer(ctx, "acme", "early-co", "insiders"))
	key := must[client.EnrollmentKey](t)(admin.CreateEnrollmentKey(ctx, "acme", "early-co"))
	if key.Key == "" {
		t.Fatal("enrollment key without its secret")
	}
	for _, ver := range []string{"1.0.0", "1.1.0"} {
		must[release.Release](t)(admin.CreateRelease(ctx, "acme", client.NewRelease{Version: v(ver), NotesURL: "https://acme.example/notes/" + ver}))
	}
	must[release.GateResult](t)(admin.PostGateResult(ctx, "acme", v("1.1.0"), "upgrade-test", release.GatePass, "https://ci.example/1"))
	return key.Key
}

func TestAdminAndCheckIn(t *testing.T) {
	ctx := context.Background()
	url, adminToken := startServer(t, server.Config{})
	admin := mustClient(t, url, adminToken)
	if id := must[client.Identity](t)(admin.WhoAmI(ctx)); id.Role != release.RoleAdmin || id.Name != "root" {
		t.Fatalf("whoami %+v", id)
	}
	enroll := setup(t, ctx, admin)

	st := must[client.Status](t)(admin.Status(ctx, "acme"))
	if len(st.Releases) != 2 || st.Releases[0].Version != v("1.1.0") || st.Releases[0].Rings[0].State != release.RingActive {
		t.Fatalf("status %+v", st)
	}

	keys := must[[]sign.PublicKey](t)(mustClient(t, url, "").PublicKeys(ctx))
	agent := mustClient(t, url, enroll)
	req := release.CheckIn{InstanceID: "inst-1", Product: "acme", Version: v("1.0.0"), Health: &release.Health{Status: release.HealthOK}}
	ans, env, err := agent.CheckIn(ctx, req, keys)
	if err != nil {
		t.Fatal(err)
	}
	if ans.Offer == nil || ans.Offer.Version != v("1.1.0") || ans.InstanceID != "inst-1" || ans.Nonce == "" {
		t.Fatalf("answer %+v", ans)
	}

	// The same envelope is refused as the answer to another request, with
	// other keys, or once expired.
	if _, err := client.VerifyAnswer(env, keys, "inst-1", "another-nonce-123", time.Now()); !errors.Is(err, client.ErrUnverified) {
		t.Errorf("other nonce: %v", err)
	}
	if _, err := client.VerifyAnswer(env, keys, "inst-2", ans.Nonce, time.Now()); !errors.Is(err, client.ErrUnverified) {
		t.Errorf("other instance: %v", err)
	}
	late := mustClient(t, url, enroll, client.WithClock(func() time.Time { return time.Now().Add(2 * time.Hour) }))
	if _, _, err := late.CheckIn(ctx, req, keys); !errors.Is(err, client.ErrUnverified) || !errors.Is(err, sign.ErrExpired) {
		t.Errorf("expired answer: %v", err)
	}
	tampered := env
	tampered.Payload = append([]byte(nil), env.Payload...)
	tampered.Payload[len(tampered.Payload)/2] ^= 1
	if _, err := client.VerifyAnswer(tampered, keys, "inst-1", ans.Nonce, time.Now()); !errors.Is(err, sign.ErrBadSignature) {
		t.Errorf("tampered answer: %v", err)
	}

	// Rotation: new answers are signed by the new key and, during the
	// overlap, co-signed by the old one, so an agent pinned to the old key
	// alone still accepts them.
	newKey := must[sign.PublicKey](t)(admin.RotateKey(ctx))
	all := must[[]sign.PublicKey](t)(admin.PublicKeys(ctx))
	if len(all) != 2 || all[1].ID != newKey.ID {
		t.Fatalf("keys after rotation %+v", all)
	}
	if _, _, err := agent.CheckIn(ctx, req, all); err != nil {
		t.Fatalf("check-in after rotation: %v", err)
	}
	if _, _, err := agent.CheckIn(ctx, req, keys); err != nil {
		t.Fatalf("old pin during the rotation overlap: %v", err)
	}

	// Pull with guidance reaches the installation already on the release.
	must[release.Release](t)(admin.CreateRelease(ctx, "acme", client.NewRelease{Version: v("1.1.1")}))
	pulled := must[release.Release](t)(admin.PullRelease(ctx, "acme", v("1.1.0"), client.PullRequest{
		Reason: "sort order changed", IncidentURL: "https://status.acme.example/i/1", Action: release.ActionUpgrade, Target: v("1.1.1"), ForceReason: "hotfix: its gates run after the pull"}))
	if pulled.Status != release.StatusPulled || pulled.Pulled == nil || !strings.HasPrefix(pulled.Pulled.By, "root (") {
		t.Fatalf("pulled %+v", pulled)
	}
	req.Version = v("1.1.0")
	ans, _, err = agent.CheckIn(ctx, req, all)
	if err != nil {
		t.Fatal(err)
	}
	if ans.Current.Status != release.StatusPulled || ans.Current.Action != release.ActionUpgrade || ans.Current.Target != v("1.1.1") || ans.Offer == nil || ans.Offer.Version != v("1.1.1") {
		t.Fatalf("answer on a pulled release %+v", ans)
	}
}

func TestErrors(t *testing.T) {
	ctx := context.Background()
	url, adminToken := startServer(t, server.Config{CheckInRate: rate.Limit(0.01), CheckInBurst: 1})
	admin := mustClient(t, url, adminToken)
	enroll := setup(t, ctx, admin)

	_, err := admin.Product(ctx, "nope")
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Status != http.StatusNotFound || release.ErrorCode(err) != release.ENOTFOUND {
		t.Fatalf("missing product: %v", err)
	}
	if _, err := mustClient(t, url, "rft_wrong").Products(ctx); release.ErrorCode(err) != release.EUNAUTHORIZED {
		t.Fatalf("bad token: %v", err)
	}
	viewer := must[client.Token](t)(admin.CreateToken(ctx, "vera", release.RoleViewer))
	if viewer.Secret == "" {
		t.Fatal("token without secret")
	}
	if _, err := mustClient(t, url, viewer.Secret).CreateProduct(ctx, client.NewProduct{Name: "other"}); release.ErrorCode(err) != release.EFORBIDDEN {
		t.Fatalf("viewer creating a product: %v", err)
	}
	if _, err := admin.CreateProduct(ctx, client.NewProduct{Name: "acme"}); release.ErrorCode(err) != release.ECONFLICT {
		t.Fatalf("duplicate product: %v", err)
	}
	if _, err := admin.CreateRelease(ctx, "acme", client.NewRelease{}); release.ErrorCode(err) != release.EINVALID {
		t.Fatalf("release without version: %v", err)
	}

	// Rate limit: the second check-in within the burst of 1 gets 429 with
	// Retry-After.
	agent := mustClient(t, url, enroll)
	keys := must[[]sign.PublicKey](t)(agent.PublicKeys(ctx))
	req := release.CheckIn{InstanceID: "inst-1", Product: "acme", Version: v("1.0.0")}
	if _, _, err := agent.CheckIn(ctx, req, keys); err != nil {
		t.Fatal(err)
	}
	_, _, err = agent.CheckIn(ctx, req, keys)
	if !errors.As(err, &ce) || ce.Status != http.StatusTooManyRequests || ce.RetryAfter <= 0 {
		t.Fatalf("rate limited check-in: %v", err)
	}
	// An invalid request is refused before it is sent.
	if _, _, err := agent.CheckIn(ctx, release.CheckIn{InstanceID: "bad id", Product: "acme", Version: v("1.0.0")}, keys); release.ErrorCode(err) != release.EINVALID {
		t.Fatalf("invalid check-in: %v", err)
	}
}

func TestNonProblemErrorAndTimeout(t *testing.T) {
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/slow/") {
			time.Sleep(300 * time.Millisecond)
		}
		w.Header().Set("Retry-After", "7")
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte("<html>upstream down</html>"))
	}))
	defer proxy.Close()
	c := mustClient(t, proxy.URL, "x")
	_, err := c.Products(context.Background())
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Code != "unavailable" || ce.RetryAfter != 7*time.Second || ce.Detail != "<html>upstream down</html>" {
		t.Fatalf("non-problem error: %#v", err)
	}
	slow := mustClient(t, proxy.URL+"/slow", "x", client.WithHTTPClient(&http.Client{Timeout: 50 * time.Millisecond}))
	if _, err := slow.WhoAmI(context.Background()); err == nil || errors.As(err, &ce) {
		t.Fatalf("timeout: %v", err)
	}
	for _, bad := range []string{"", "ftp://x", "not a url", "http://"} {
		if _, err := client.New(bad, "t"); err == nil {
			t.Errorf("New(%q) accepted", bad)
		}
	}
}
