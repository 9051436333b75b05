package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/ringfence/ringfence/release"
)

// The incident webhook: auto-halts queue a notification in the store's
// outbox in the halt's own transaction; the outbox loop here delivers them.

// IncidentHook is the JSON body POSTed to the incident webhook when
// auto-halt pauses a release.
type IncidentHook struct {
	// Event is "release.auto_halt".
	Event    string           `json:"event"`
	At       time.Time        `json:"at"`
	Release  release.Release  `json:"release"`
	Evidence release.Evidence `json:"evidence"`
}

// outboxLoop delivers the queued incident notifications (sqlstore's
// outbox, written with the auto-halt that caused them) to the webhook:
// when kicked after a halt and every WebhookBackoff (at most a second), it
// claims the due ones and makes one attempt each. A failed attempt is
// retried after WebhookBackoff, doubling per attempt up to an hour, until
// WebhookAttempts were made. Attempts survive restarts: a notification
// queued or claimed by a server that died is delivered by the next one.
func (s *Server) outboxLoop(ctx context.Context) {
	if s.cfg.IncidentWebhook == "" {
		return
	}
	t := time.NewTicker(min(s.cfg.WebhookBackoff, time.Second))
	defer t.Stop()
	for {
		s.deliverOutbox(ctx)
		select {
		case <-ctx.Done():
			return
		case <-s.outboxKick:
		case <-t.C:
		}
	}
}

// deliverOutbox makes one attempt at each due notification.
func (s *Server) deliverOutbox(ctx context.Context) {
	lease := 2*s.cfg.WebhookTimeout + time.Second // longer than one attempt
	items, err := s.store.ClaimOutbox(ctx, 10, lease)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Error("claim incident notifications", slog.Any("err", err))
		}
		return
	}
	for _, it := range items {
		err := s.postWebhook(ctx, it.Body)
		giveUp := err != nil && it.Attempts >= s.cfg.WebhookAttempts
		backoff := min(s.cfg.WebhookBackoff<<min(it.Attempts-1, 20), time.Hour)
		switch {
		case err == nil:
			s.metrics.webhooks.WithLabelValues("delivered").Inc()
		case giveUp:
			s.log.Error("incident webhook failed; giving up", slog.Int("attempt", it.Attempts), slog.Any("err", err))
			s.metrics.webhooks.WithLabelValues("failed").Inc()
		default:
			s.log.Warn("incident webhook failed", slog.Int("attempt", it.Attempts), slog.Any("err", err))
		}
		if ferr := s.store.FinishOutbox(context.WithoutCancel(ctx), it.ID, err, time.Now().Add(backoff), giveUp); ferr != nil {
			s.log.Error("record incident notification delivery", slog.Any("err", ferr))
		}
	}
}

func (s *Server) postWebhook(ctx context.Context, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.WebhookTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.cfg.IncidentWebhook, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("build webhook request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "ringfence")
	resp, err := s.webhook.Do(req)
	if err != nil {
		// *url.Error repeats the whole URL, whose path or query may hold a
		// secret (many incident tools put their token there): log the
		// scheme and host only.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("post webhook to %s: %w", redactURL(s.cfg.IncidentWebhook), err)
	}
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("post webhook to %s: status %s", redactURL(s.cfg.IncidentWebhook), resp.Status)
	}
	return nil
}

// redactURL returns the scheme and host of raw, for logs and errors: the
// user info, path and query of a webhook URL may be secrets.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "(unparsable URL)"
	}
	return u.Scheme + "://" + u.Host
}
