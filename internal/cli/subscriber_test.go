package cli_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ringfence/ringfence/client"
	"github.com/ringfence/ringfence/incident"
	"github.com/ringfence/ringfence/internal/notifytest"
	"github.com/ringfence/ringfence/internal/servertest"
	"github.com/ringfence/ringfence/server"
)

// TestSubscriberCommands drives subscribers through the real CLI against
// the real server: create (secret printed once), roles, a delivery that
// dies, listed with --dead and replayed, list and delete.
func TestSubscriberCommands(t *testing.T) {
	cfg := server.Config{WebhookAllowPrivate: true}
	cfg.Notify.MaxAttempts, cfg.Notify.Poll = 1, 20*time.Millisecond
	s := servertest.Start(t, servertest.SQLite(t), cfg)
	url, admin := s.URL, s.Admin
	oncall := apiJSON[client.Token](t, url, admin, "token", "create", "oncall", "--role", "incident").Secret
	viewer := apiJSON[client.Token](t, url, admin, "token", "create", "vera", "--role", "viewer").Secret
	rcv := notifytest.NewReceiver(t)

	apiFails(t, url, viewer, "needs the incident role", "subscriber", "create", "--webhook", rcv.URL+"/hook")
	apiFails(t, url, oncall, "exactly one of --webhook URL and --email ADDR", "subscriber", "create")
	apiFails(t, url, oncall, "need an SMTP server", "subscriber", "create", "--email", "ops@customer.example")
	apiFails(t, url, oncall, `component "Nope" not found`, "subscriber", "create", "--webhook", rcv.URL+"/hook", "--component", "Nope")
	out := api(t, url, oncall, "subscriber", "create", "--webhook", rcv.URL+"/hook")
	if !strings.Contains(out, "secret:") || !strings.Contains(out, "whsec_") || !strings.Contains(out, "shown only now") {
		t.Fatalf("create printed:\n%s", out)
	}
	secret := strings.Fields(out[strings.Index(out, "whsec_"):])[0]
	rcv.Secret("/hook", secret)
	subs := apiJSON[[]incident.Subscriber](t, url, viewer, "subscriber", "list")
	if len(subs) != 1 || subs[0].Target != rcv.URL+"/…" || subs[0].Kind != incident.SubscriberWebhook {
		t.Fatalf("list: %+v", subs)
	}

	rcv.FailNext(1 << 30)
	api(t, url, oncall, "component", "create", "API")
	api(t, url, oncall, "component", "set", "API", "major_outage")
	var dead []incident.Delivery
	servertest.Eventually(t, 10*time.Second, "dead delivery", func() bool {
		dead = apiJSON[[]incident.Delivery](t, url, viewer, "subscriber", "deliveries", "--dead")
		return len(dead) == 1
	})
	if human := api(t, url, viewer, "subscriber", "deliveries", "--dead"); !strings.Contains(human, "dead") || !strings.Contains(human, "500") {
		t.Errorf("deliveries --dead printed:\n%s", human)
	}
	apiFails(t, url, viewer, "needs the incident role", "subscriber", "replay", strconv.FormatInt(dead[0].ID, 10))
	apiFails(t, url, oncall, "not a positive integer", "subscriber", "replay", "x")
	rcv.FailNext(0)
	api(t, url, oncall, "subscriber", "replay", strconv.FormatInt(dead[0].ID, 10))
	servertest.Eventually(t, 10*time.Second, "replayed delivery received", func() bool { return rcv.Count() == 1 })
	if h := rcv.Hooks(); h[len(h)-1].Verified != nil {
		t.Errorf("replayed webhook not verified: %v", h[len(h)-1].Verified)
	}
	api(t, url, oncall, "subscriber", "delete", subs[0].ID)
	if subs := apiJSON[[]incident.Subscriber](t, url, viewer, "subscriber", "list"); len(subs) != 0 {
		t.Errorf("after delete: %+v", subs)
	}
}
