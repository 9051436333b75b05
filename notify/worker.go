package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ringfence/ringfence/incident"
)

// Config configures a Worker. Zero values get the defaults named per field.
type Config struct {
	// Store is required.
	Store Store
	// Logger receives structured logs; default discards.
	Logger *slog.Logger
	// Site names the page in payloads and emails (its id, name and public
	// URL, without a trailing slash).
	Site incident.SPPage
	// Docs is the URL of the payload documentation (meta.documentation).
	Docs string
	// HTTP posts webhooks; required for webhook subscribers (use
	// netguard.NewClient, so private targets are refused).
	HTTP *http.Client
	// Mailer sends email; nil fails email deliveries (they end dead, to be
	// replayed once SMTP is configured).
	Mailer *Mailer
	// Concurrency is how many attempts run at once (64).
	Concurrency int
	// Timeout bounds one attempt (10s).
	Timeout time.Duration
	// MaxAttempts is how many attempts a delivery gets before it is dead
	// (10); Backoff the wait after the first failure (10s), doubling after
	// each, at most an hour.
	MaxAttempts int
	Backoff     time.Duration
	// Poll is how often the worker looks for work without being kicked (1s).
	Poll time.Duration
	// Retention is how long finished deliveries are kept (90 days), pruned
	// hourly; negative keeps them.
	Retention time.Duration
}

// Worker fans notifications out and delivers them. Create it with New and
// keep Run running; Kick after a change for prompt delivery.
type Worker struct {
	cfg  Config
	log  *slog.Logger
	kick chan struct{}
	// freed tells the claim loop an attempt ended.
	freed    chan struct{}
	inflight atomic.Int64
	// Delivered, Failed and Died count attempts' outcomes since start.
	delivered, failed, died atomic.Int64
	// host is the page's host name, the domain of Message-IDs.
	host string
}

// New returns a worker for cfg.
func New(cfg Config) (*Worker, error) {
	if cfg.Store == nil {
		return nil, errors.New("notify: no store")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 64
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 10
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = 10 * time.Second
	}
	if cfg.Poll <= 0 {
		cfg.Poll = time.Second
	}
	if cfg.Retention == 0 {
		cfg.Retention = 90 * 24 * time.Hour
	}
	host := "ringfence.invalid"
	if u, err := url.Parse(cfg.Site.URL); err == nil && u.Hostname() != "" {
		host = u.Hostname()
	}
	return &Worker{cfg: cfg, log: cfg.Logger, kick: make(chan struct{}, 1), freed: make(chan struct{}, 1), host: host}, nil
}

// Kick wakes the worker: something may be waiting. It never blocks.
func (w *Worker) Kick() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// Stats reports the attempts since start: delivered, failed (to be
// retried) and dead.
func (w *Worker) Stats() (delivered, failed, dead int64) {
	return w.delivered.Load(), w.failed.Load(), w.died.Load()
}

// Run fans out and delivers until ctx ends, then waits for the attempts in
// flight and records their outcomes.
func (w *Worker) Run(ctx context.Context) error {
	outcomes := make(chan incident.DeliveryOutcome, w.cfg.Concurrency)
	finished := make(chan struct{})
	go func() { w.finisher(context.WithoutCancel(ctx), outcomes); close(finished) }()
	var attempts sync.WaitGroup
	t := time.NewTicker(w.cfg.Poll)
	defer t.Stop()
	var pruned time.Time
	for {
		if w.cfg.Retention > 0 && time.Since(pruned) > time.Hour {
			pruned = time.Now()
			if n, err := w.cfg.Store.PruneDeliveries(ctx, pruned.Add(-w.cfg.Retention)); err != nil && ctx.Err() == nil {
				w.log.Error("prune deliveries", slog.Any("err", err))
			} else if n > 0 {
				w.log.Info("pruned deliveries", slog.Int64("rows", n))
			}
		}
		if err := w.fanOut(ctx); err != nil && ctx.Err() == nil {
			w.log.Error("fan out status notifications", slog.Any("err", err))
		}
		// Claim when a quarter of the slots are free (or none is busy): one
		// claim transaction per freed slot would cost a commit each.
		inflight := int(w.inflight.Load())
		free := w.cfg.Concurrency - inflight
		if free < max(1, w.cfg.Concurrency/4) && inflight > 0 {
			free = 0
		}
		want, got := min(free, 500), 0
		if want > 0 {
			lease := 3 * w.cfg.Timeout // beyond one attempt and its recording
			items, err := w.cfg.Store.ClaimDeliveries(ctx, want, lease)
			if err != nil && ctx.Err() == nil {
				w.log.Error("claim deliveries", slog.Any("err", err))
			}
			got = len(items)
			for _, it := range items {
				w.inflight.Add(1)
				attempts.Add(1)
				go func() {
					defer attempts.Done()
					o := w.attempt(ctx, it)
					// An attempt cut short by shutdown is not recorded: its
					// lease ends and the next run attempts it again.
					if o.Err == "" || ctx.Err() == nil {
						outcomes <- o
					}
					w.inflight.Add(-1)
					select {
					case w.freed <- struct{}{}:
					default:
					}
				}()
			}
		}
		if got > 0 && got == want {
			continue // there may be more due
		}
		var freed chan struct{}
		if want == 0 {
			freed = w.freed // full: claim again when a slot frees
		}
		select {
		case <-ctx.Done():
			attempts.Wait()
			close(outcomes)
			<-finished
			return nil
		case <-w.kick:
		case <-t.C:
		case <-freed:
		}
	}
}

// fanOut turns every notification after the cursor into messages and
// deliveries, a batch at a time.
func (w *Worker) fanOut(ctx context.Context) error {
	for {
		after, err := w.cfg.Store.FanOutCursor(ctx)
		if err != nil {
			return err
		}
		notes, err := w.cfg.Store.StatusNotificationsAfter(ctx, after, 100)
		if err != nil {
			return err
		}
		if notes = contiguous(after, notes, time.Now()); len(notes) == 0 {
			return nil
		}
		page, err := w.cfg.Store.StatusPage(ctx, time.Now())
		if err != nil {
			return err
		}
		sp := incident.NewStatuspage(w.cfg.Site, page)
		msgs := make([]incident.Message, 0, len(notes))
		for _, n := range notes {
			m, err := incident.NewMessage(n, sp, w.cfg.Docs)
			if err != nil {
				return err
			}
			msgs = append(msgs, m)
		}
		queued, err := w.cfg.Store.FanOut(ctx, after, notes[len(notes)-1].ID, msgs)
		if err != nil {
			return err
		}
		if queued > 0 {
			w.log.Info("queued status notifications", slog.Int("notifications", len(notes)), slog.Int("deliveries", queued))
		}
	}
}

// gapWait is how long fan-out waits for a notification id missing below
// one it has read: on PostgreSQL ids are taken in insertion order but may
// commit out of order, so a gap is usually a transaction about to commit
// (and, after gapWait, one that rolled back).
const gapWait = 5 * time.Second

// contiguous returns the leading notes whose ids follow after without a
// gap, or whose gap is older than gapWait.
func contiguous(after int64, notes []incident.Notification, now time.Time) []incident.Notification {
	prev := after
	for i, n := range notes {
		if n.ID != prev+1 && now.Sub(n.At) < gapWait {
			return notes[:i]
		}
		prev = n.ID
	}
	return notes
}

// attempt makes one attempt at a delivery and returns its outcome.
func (w *Worker) attempt(ctx context.Context, a incident.DeliveryAttempt) incident.DeliveryOutcome {
	actx, cancel := context.WithTimeout(ctx, w.cfg.Timeout)
	defer cancel()
	var err error
	switch a.Subscriber.Kind {
	case incident.SubscriberWebhook:
		if w.cfg.HTTP == nil {
			err = errors.New("no webhook client configured")
		} else {
			err = postWebhook(actx, w.cfg.HTTP, a.Subscriber, a.Message, time.Now())
		}
	case incident.SubscriberEmail:
		err = w.sendEmail(actx, a)
	default:
		err = fmt.Errorf("unknown subscriber kind %q", a.Subscriber.Kind)
	}
	o := incident.DeliveryOutcome{DeliveryID: a.DeliveryID}
	switch {
	case err == nil:
		w.delivered.Add(1)
	case a.Attempts >= w.cfg.MaxAttempts:
		w.died.Add(1)
		o.Err, o.Dead = err.Error(), true
		w.log.Warn("delivery dead after its last attempt", slog.Int64("delivery", a.DeliveryID), slog.Int("attempts", a.Attempts), slog.Any("err", err))
	default:
		w.failed.Add(1)
		backoff := min(w.cfg.Backoff<<min(a.Attempts-1, 20), time.Hour)
		o.Err, o.RetryAt = err.Error(), time.Now().Add(backoff)
		w.log.Info("delivery failed; will retry", slog.Int64("delivery", a.DeliveryID), slog.Int("attempts", a.Attempts),
			slog.Duration("backoff", backoff), slog.Any("err", err))
	}
	return o
}

// sendEmail composes and sends one email: the opt-in request with its
// confirm link, or a notification with the one-click unsubscribe link.
func (w *Worker) sendEmail(ctx context.Context, a incident.DeliveryAttempt) error {
	if w.cfg.Mailer == nil {
		return errors.New("no SMTP server configured (serve --smtp)")
	}
	base := w.cfg.Site.URL
	e := Mail{From: w.cfg.Mailer.from.String(), To: a.Subscriber.Target, Subject: a.Message.Subject,
		MessageID: a.Message.EventID + "." + a.Subscriber.ID + "@" + w.host, Text: a.Message.Text, Date: time.Now()}
	if a.Message.Kind == incident.KindConfirm {
		e.Link, e.LinkText = base+"/subscriptions/confirm?token="+a.Subscriber.Token, "Confirm subscription"
	} else {
		e.Unsubscribe = base + "/subscriptions/unsubscribe?token=" + a.Subscriber.Token
	}
	msg, err := Compose(e)
	if err != nil {
		return err
	}
	return w.cfg.Mailer.Send(ctx, a.Subscriber.Target, msg)
}

// finisher records outcomes in batches: whatever arrived while the last
// batch was written.
func (w *Worker) finisher(ctx context.Context, outcomes <-chan incident.DeliveryOutcome) {
	for o := range outcomes {
		batch := []incident.DeliveryOutcome{o}
	more:
		for len(batch) < 1000 {
			select {
			case o, ok := <-outcomes:
				if !ok {
					break more
				}
				batch = append(batch, o)
			default:
				break more
			}
		}
		if err := w.cfg.Store.FinishDeliveries(ctx, batch); err != nil {
			// The claims' leases end and the deliveries are attempted
			// again: at least once, never lost.
			w.log.Error("record delivery outcomes", slog.Int("count", len(batch)), slog.Any("err", err))
		}
	}
}
