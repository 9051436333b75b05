package notify_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ringfence/ringfence/incident"
	"github.com/ringfence/ringfence/internal/netguard"
	"github.com/ringfence/ringfence/internal/notifytest"
	"github.com/ringfence/ringfence/internal/pgtest"
	"github.com/ringfence/ringfence/internal/servertest"
	"github.com/ringfence/ringfence/notify"
	"github.com/ringfence/ringfence/sqlstore"
)

// source is the real store with the status notifications and page given by
// the test: the worker's own tables (subscribers, messages, deliveries,
// cursor) are the store's.
type source struct {
	*sqlstore.Store
	mu    sync.Mutex
	notes []incident.Notification
}

func (s *source) StatusNotificationsAfter(_ context.Context, after int64, limit int) ([]incident.Notification, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []incident.Notification
	for _, n := range s.notes {
		if n.ID > after && len(out) < limit {
			out = append(out, n)
		}
	}
	return out, nil
}

func (s *source) StatusPage(_ context.Context, now time.Time) (incident.Page, error) {
	return incident.Page{ReadAt: now, UpdatedAt: now, Components: []incident.Component{
		{ID: 1, Name: "API", Status: incident.MajorOutage}, {ID: 2, Name: "Dashboard", Status: incident.Operational}}}, nil
}

// add appends a notification of a new incident naming components.
func (s *source) add(title string, components ...int64) incident.Notification {
	s.mu.Lock()
	defer s.mu.Unlock()
	at := time.Now().UTC()
	id := int64(len(s.notes) + 1)
	u := incident.Update{ID: id * 10, IncidentID: id, Status: incident.StatusInvestigating, Body: "We are looking into " + title, Notify: true, At: at}
	for _, c := range components {
		u.Components = append(u.Components, incident.ComponentChange{ComponentID: c, Name: fmt.Sprint("c", c), OldStatus: incident.Operational, NewStatus: incident.MajorOutage})
	}
	inc := incident.Incident{ID: id, Title: title, Impact: incident.ImpactMajor, Status: incident.StatusInvestigating, CreatedAt: at, UpdatedAt: at,
		Components: components, Updates: []incident.Update{u}}
	n, ok := incident.IncidentNotification(inc, &u, at)
	if !ok {
		panic("no notification")
	}
	n.ID = id
	s.notes = append(s.notes, n)
	return n
}

var site = incident.SPPage{ID: "pg1", Name: "Acme Status", URL: "https://status.example.com"}

func openStore(t *testing.T, dsn string) *source {
	t.Helper()
	st, err := sqlstore.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return &source{Store: st}
}

func startWorker(t *testing.T, src notify.Store, cfg notify.Config) *notify.Worker {
	t.Helper()
	cfg.Store, cfg.Site = src, site
	if cfg.HTTP == nil {
		cfg.HTTP = netguard.NewClient(2*time.Second, true, 16)
	}
	if cfg.Backoff == 0 {
		cfg.Backoff = 10 * time.Millisecond
	}
	cfg.Poll = 10 * time.Millisecond
	w, err := notify.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = w.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return w
}

func webhook(t *testing.T, st *source, rcv *notifytest.Receiver, path string, components ...int64) incident.Subscriber {
	t.Helper()
	sub, err := st.CreateSubscriber(context.Background(), "test", incident.Subscriber{Kind: incident.SubscriberWebhook, Target: rcv.URL + path, Components: components}, site)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(sub.Secret, incident.WebhookSecretPrefix) {
		t.Fatalf("generated secret %q lacks %s", sub.Secret, incident.WebhookSecretPrefix)
	}
	rcv.Secret(path, sub.Secret)
	return sub
}

func deliveries(t *testing.T, st *source, state incident.DeliveryState) []incident.Delivery {
	t.Helper()
	ds, err := st.ListDeliveries(context.Background(), state, 1000)
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

// TestWebhookSignedRetriedAndShapedLikeStatuspage: a receiver that fails
// twice gets the third attempt, verified by the Standard Webhooks library,
// with the same webhook-id on every attempt and Statuspage's payload.
func TestWebhookSignedRetriedAndShapedLikeStatuspage(t *testing.T) {
	st := openStore(t, servertest.SQLite(t))
	rcv := notifytest.NewReceiver(t)
	webhook(t, st, rcv, "/hook")
	rcv.FailNext(2)
	n := st.add("Checkout errors", 1)
	startWorker(t, st, notify.Config{})

	servertest.Eventually(t, 10*time.Second, "webhook delivered", func() bool { return rcv.Count() == 1 })
	hooks := rcv.Hooks()
	if len(hooks) != 3 {
		t.Fatalf("receiver got %d requests, want 2 failures then 1 success", len(hooks))
	}
	for i, h := range hooks {
		if h.Verified != nil {
			t.Fatalf("attempt %d not verified by the Standard Webhooks library: %v", i+1, h.Verified)
		}
		if h.ID != incident.EventID(n.ID) {
			t.Errorf("attempt %d webhook-id = %q, want the stable %q", i+1, h.ID, incident.EventID(n.ID))
		}
		if h.Header.Get("Content-Type") != "application/json" {
			t.Errorf("Content-Type = %q", h.Header.Get("Content-Type"))
		}
	}
	var p struct {
		Meta struct {
			Unsubscribe   string `json:"unsubscribe"`
			Documentation string `json:"documentation"`
			GeneratedAt   string `json:"generated_at"`
		} `json:"meta"`
		Page struct {
			ID                string `json:"id"`
			StatusIndicator   string `json:"status_indicator"`
			StatusDescription string `json:"status_description"`
		} `json:"page"`
		Incident struct {
			ID              string `json:"id"`
			Name            string `json:"name"`
			Status          string `json:"status"`
			Impact          string `json:"impact"`
			Shortlink       string `json:"shortlink"`
			IncidentUpdates []struct {
				Body               string `json:"body"`
				Status             string `json:"status"`
				AffectedComponents []struct {
					Code, Name, OldStatus, NewStatus string
				} `json:"affected_components"`
			} `json:"incident_updates"`
		} `json:"incident"`
	}
	if err := json.Unmarshal(hooks[2].Body, &p); err != nil {
		t.Fatal(err)
	}
	if _, err := time.Parse(time.RFC3339, p.Meta.GeneratedAt); err != nil {
		t.Errorf("meta.generated_at %q is not RFC 3339: %v", p.Meta.GeneratedAt, err)
	}
	if p.Page.ID != "pg1" || p.Page.StatusIndicator != "critical" || p.Page.StatusDescription != "Major System Outage" {
		t.Errorf("page = %+v", p.Page)
	}
	if p.Incident.Name != "Checkout errors" || p.Incident.Status != "investigating" || p.Incident.Impact != "major" ||
		p.Incident.Shortlink != "https://status.example.com/incidents/1" || len(p.Incident.IncidentUpdates) != 1 ||
		p.Incident.IncidentUpdates[0].Body != "We are looking into Checkout errors" {
		t.Errorf("incident = %+v", p.Incident)
	}
	servertest.Eventually(t, 5*time.Second, "delivery recorded", func() bool {
		ds := deliveries(t, st, incident.DeliveryDelivered)
		return len(ds) == 1 && ds[0].Attempts == 3
	})
	// Finished deliveries and their messages are pruned after retention.
	if n, err := st.PruneDeliveries(context.Background(), time.Now().Add(-time.Hour)); err != nil || n != 0 {
		t.Fatalf("prune of what is recent: %d, %v", n, err)
	}
	if n, err := st.PruneDeliveries(context.Background(), time.Now().Add(time.Hour)); err != nil || n != 2 {
		t.Fatalf("prune: %d rows, %v; want the delivery and its message", n, err)
	}
	if ds := deliveries(t, st, ""); len(ds) != 0 {
		t.Errorf("deliveries after pruning: %+v", ds)
	}
}

// TestDeadLetterAndReplay: a delivery that fails every attempt ends dead,
// is listed as such, and a replay delivers it.
func TestDeadLetterAndReplay(t *testing.T) {
	st := openStore(t, servertest.SQLite(t))
	rcv := notifytest.NewReceiver(t)
	webhook(t, st, rcv, "/h")
	rcv.FailNext(1 << 30)
	st.add("Outage")
	startWorker(t, st, notify.Config{MaxAttempts: 3})
	servertest.Eventually(t, 10*time.Second, "delivery dead", func() bool { return len(deliveries(t, st, incident.DeliveryDead)) == 1 })
	d := deliveries(t, st, incident.DeliveryDead)[0]
	if d.Attempts != 3 || !strings.Contains(d.LastError, "500") || d.Target != rcv.URL+"/…" {
		t.Fatalf("dead delivery = %+v", d)
	}
	if err := st.ReplayDelivery(context.Background(), "test", d.ID+1000); err == nil {
		t.Error("replay of an unknown delivery succeeded")
	}
	rcv.FailNext(0)
	if err := st.ReplayDelivery(context.Background(), "test", d.ID); err != nil {
		t.Fatal(err)
	}
	servertest.Eventually(t, 10*time.Second, "replayed delivery delivered", func() bool { return len(deliveries(t, st, incident.DeliveryDelivered)) == 1 })
	if err := st.ReplayDelivery(context.Background(), "test", d.ID); err == nil {
		t.Error("replay of a delivered delivery succeeded")
	}
}

// TestScopesAndSubscriptionTime: a subscriber scoped to components hears
// only of notifications concerning one of them; nobody hears of
// notifications made before they subscribed.
func TestScopesAndSubscriptionTime(t *testing.T) {
	st := openStore(t, servertest.SQLite(t))
	st.add("Before anyone subscribed", 1)
	rcv := notifytest.NewReceiver(t)
	webhook(t, st, rcv, "/all")
	webhook(t, st, rcv, "/api", 1)
	webhook(t, st, rcv, "/dash", 2)
	time.Sleep(2 * time.Millisecond) // notifications below are strictly after the subscriptions
	st.add("API down", 1)
	st.add("Whole page")
	startWorker(t, st, notify.Config{})
	servertest.Eventually(t, 10*time.Second, "deliveries", func() bool { return rcv.Count() == 5 })
	got := map[string][]string{}
	for _, h := range rcv.Hooks() {
		got[h.Path] = append(got[h.Path], h.ID)
	}
	want := map[string][]string{"/all": {"msg_n2", "msg_n3"}, "/api": {"msg_n2", "msg_n3"}, "/dash": {"msg_n3"}}
	for path, ids := range want {
		if strings.Join(sorted(got[path]), ",") != strings.Join(ids, ",") {
			t.Errorf("%s got %v, want %v", path, got[path], ids)
		}
	}
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

// TestPrivateTargetsRefused: without allowing private targets, a webhook
// on loopback is never connected to; the attempt fails naming the guard.
func TestPrivateTargetsRefused(t *testing.T) {
	st := openStore(t, servertest.SQLite(t))
	rcv := notifytest.NewReceiver(t)
	webhook(t, st, rcv, "/h")
	st.add("Outage")
	startWorker(t, st, notify.Config{HTTP: netguard.NewClient(2*time.Second, false, 4), MaxAttempts: 1})
	servertest.Eventually(t, 10*time.Second, "delivery dead", func() bool { return len(deliveries(t, st, incident.DeliveryDead)) == 1 })
	if d := deliveries(t, st, incident.DeliveryDead)[0]; !strings.Contains(d.LastError, "refusing to connect to non-public address 127.0.0.1") {
		t.Errorf("last error = %q", d.LastError)
	}
	if len(rcv.Hooks()) != 0 {
		t.Error("the receiver on loopback was reached")
	}
}

// TestSlowSubscriberDoesNotHoldOthersBack: while one receiver holds its
// request open, the others get theirs.
func TestSlowSubscriberDoesNotHoldOthersBack(t *testing.T) {
	st := openStore(t, servertest.SQLite(t))
	rcv := notifytest.NewReceiver(t)
	webhook(t, st, rcv, "/slow")
	for i := range 20 {
		webhook(t, st, rcv, fmt.Sprintf("/fast%d", i))
	}
	release := rcv.Block("/slow")
	defer release()
	st.add("Outage")
	st.add("Another")
	startWorker(t, st, notify.Config{HTTP: netguard.NewClient(time.Minute, true, 64), Timeout: time.Minute, Concurrency: 4})
	servertest.Eventually(t, 10*time.Second, "fast receivers served", func() bool { return rcv.Count() == 40 })
	release()
	servertest.Eventually(t, 10*time.Second, "slow receiver served", func() bool { return rcv.Count() == 42 })
}

// TestEmailOptInAndOneClickUnsubscribe: the opt-in email goes out through a
// real SMTP server; only after confirming does the subscriber get
// notifications, each multipart with RFC 8058 one-click unsubscribe
// headers; unsubscribing ends them.
func TestEmailOptInAndOneClickUnsubscribe(t *testing.T) {
	st := openStore(t, servertest.SQLite(t))
	smtpd := notifytest.NewSMTP(t)
	mailer, err := notify.NewMailer(smtpd.URL, "Acme Status <status@example.com>", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := st.Subscribe(ctx, "not an address", nil, site); err == nil {
		t.Error("bad address accepted")
	}
	if err := st.Subscribe(ctx, "ops@customer.example", nil, site); err != nil {
		t.Fatal(err)
	}
	st.add("Before confirming")
	startWorker(t, st, notify.Config{Mailer: mailer})
	servertest.Eventually(t, 10*time.Second, "opt-in email", func() bool { return len(smtpd.Mails()) == 1 })
	m := parse(t, smtpd.Mails()[0])
	if m.Header.Get("Subject") != "Confirm your subscription to Acme Status" || m.Header.Get("List-Unsubscribe") != "" {
		t.Fatalf("opt-in headers = %v", m.Header)
	}
	token := between(t, m.body, "https://status.example.com/subscriptions/confirm?token=", "\r\n")
	if _, err := st.ConfirmSubscription(ctx, token+"x"); err == nil {
		t.Error("a wrong token confirmed")
	}
	if _, err := st.ConfirmSubscription(ctx, token); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Millisecond)
	st.add("After confirming")
	servertest.Eventually(t, 10*time.Second, "notification email", func() bool { return len(smtpd.Mails()) == 2 })
	m = parse(t, smtpd.Mails()[1])
	if want := "<https://status.example.com/subscriptions/unsubscribe?token=" + token + ">"; m.Header.Get("List-Unsubscribe") != want {
		t.Errorf("List-Unsubscribe = %q, want %q", m.Header.Get("List-Unsubscribe"), want)
	}
	if id := m.Header.Get("Message-ID"); !strings.HasPrefix(id, "<msg_n2.") || !strings.HasSuffix(id, "@status.example.com>") {
		t.Errorf("Message-ID = %q", id)
	}
	if m.Header.Get("List-Unsubscribe-Post") != "List-Unsubscribe=One-Click" {
		t.Errorf("List-Unsubscribe-Post = %q", m.Header.Get("List-Unsubscribe-Post"))
	}
	if !strings.HasPrefix(m.Header.Get("Content-Type"), "multipart/alternative;") || !strings.Contains(m.body, "text/plain") ||
		!strings.Contains(m.body, "text/html") || !strings.Contains(m.body, "After confirming") {
		t.Errorf("notification email:\n%s", m.body)
	}
	if !strings.Contains(m.Header.Get("Subject"), "Investigating: After confirming") || smtpd.Mails()[1].To[0] != "ops@customer.example" {
		t.Errorf("subject %q to %v", m.Header.Get("Subject"), smtpd.Mails()[1].To)
	}
	if err := st.Unsubscribe(ctx, token); err != nil {
		t.Fatal(err)
	}
	if subs, _ := st.ListSubscribers(ctx); len(subs) != 0 {
		t.Errorf("subscribers after unsubscribing: %+v", subs)
	}
}

type parsedMail struct {
	mail.Header
	body string
}

func parse(t *testing.T, m notifytest.Mail) parsedMail {
	t.Helper()
	msg, err := mail.ReadMessage(strings.NewReader(string(m.Data)))
	if err != nil {
		t.Fatalf("parse email: %v\n%s", err, m.Data)
	}
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := msg.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	// Undo quoted-printable soft line breaks and the escapes links hold.
	body := strings.NewReplacer("=\r\n", "", "=3D", "=").Replace(b.String())
	return parsedMail{msg.Header, body}
}

func between(t *testing.T, s, start, end string) string {
	t.Helper()
	_, after, ok := strings.Cut(s, start)
	if !ok {
		t.Fatalf("%q not in:\n%s", start, s)
	}
	v, _, _ := strings.Cut(after, end)
	return v
}

// TestPostgresServersShareTheWork: two workers on one PostgreSQL database
// deliver every webhook once between them (claims skip locked rows).
func TestPostgresServersShareTheWork(t *testing.T) {
	c := pgtest.New(t)
	a, b := openStore(t, c.DSN("postgres")), openStore(t, c.DSN("postgres"))
	rcv := notifytest.NewReceiver(t)
	const subs = 100
	for i := range subs {
		webhook(t, a, rcv, fmt.Sprintf("/s%d", i))
	}
	time.Sleep(2 * time.Millisecond)
	for _, st := range []*source{a, b} {
		st.add("Outage")
		st.add("Update")
	}
	startWorker(t, a, notify.Config{Concurrency: 8})
	startWorker(t, b, notify.Config{Concurrency: 8})
	servertest.Eventually(t, 30*time.Second, "all delivered", func() bool { return rcv.Count() >= 2*subs })
	time.Sleep(200 * time.Millisecond) // a duplicate would arrive meanwhile
	seen := map[string]int{}
	for _, h := range rcv.Hooks() {
		seen[h.Path+" "+h.ID]++
	}
	if len(seen) != 2*subs {
		t.Fatalf("%d distinct deliveries, want %d", len(seen), 2*subs)
	}
	for k, n := range seen {
		if n != 1 {
			t.Errorf("%s delivered %d times", k, n)
		}
	}
	// A delivery is recorded after its answer is read, so the count may lag
	// the receiver's.
	servertest.Eventually(t, 10*time.Second, "every delivery recorded delivered", func() bool {
		return len(deliveries(t, a, incident.DeliveryDelivered)) == 2*subs
	})
}
