// Package notify tells status page subscribers what changed: it fans each
// incident.Notification out into one message and one delivery per matching
// subscriber, and delivers them — webhooks signed per Standard Webhooks with
// Statuspage's payload, email over SMTP — with retries, exponential backoff
// and a dead-letter state operators can see and replay. What it delivers
// and to whom (incident.Subscriber, incident.Message, incident.Delivery and
// the attempt and outcome it passes the store) are incident's types, so the
// store and the client use them without importing the delivery machinery.
//
// Invariants:
//   - at least once: a delivery is only marked delivered after the receiver
//     accepted it (2xx, or the SMTP server took the message); a claim is a
//     lease, so a server that dies mid-attempt leaves the delivery to be
//     claimed again once the lease ends. Every attempt of a message carries
//     the same id (webhook-id, Message-ID) so receivers can drop duplicates;
//   - fan-out happens once per notification: messages and deliveries are
//     written in the transaction that advances the fan-out cursor;
//   - a subscriber only hears of notifications made after it was confirmed,
//     and, when scoped to components, only of those concerning one of them;
//   - one slow or dead subscriber takes one of Concurrency slots for at most
//     Timeout per attempt: it never holds back the others, nor the page.
package notify

import (
	"context"
	"time"

	"github.com/ringfence/ringfence/incident"
)

// Store is what the worker needs of the store.
type Store interface {
	// StatusNotificationsAfter returns up to limit notifications with id
	// above afterID, in id order.
	StatusNotificationsAfter(ctx context.Context, afterID int64, limit int) ([]incident.Notification, error)
	// StatusPage reads the page as of now.
	StatusPage(ctx context.Context, now time.Time) (incident.Page, error)
	// FanOutCursor returns the id of the last notification fanned out.
	FanOutCursor(ctx context.Context) (int64, error)
	// FanOut stores msgs with a delivery per subscriber that wants each and
	// moves the cursor from after to through, in one transaction; it does
	// nothing (0, nil) if the cursor is no longer at after (another server
	// fanned them out). It returns the number of deliveries queued.
	FanOut(ctx context.Context, after, through int64, msgs []incident.Message) (int, error)
	// ClaimDeliveries claims up to limit due deliveries for lease.
	ClaimDeliveries(ctx context.Context, limit int, lease time.Duration) ([]incident.DeliveryAttempt, error)
	// FinishDeliveries records outcomes.
	FinishDeliveries(ctx context.Context, outcomes []incident.DeliveryOutcome) error
	// PruneDeliveries deletes deliveries done (delivered or dead) before
	// cutoff, and messages older than cutoff no delivery refers to.
	PruneDeliveries(ctx context.Context, cutoff time.Time) (int64, error)
}
