// Package notify tells status page subscribers what changed: it fans each
// incident.Notification out into one message and one delivery per matching
// subscriber, and delivers them — webhooks signed per Standard Webhooks with
// Statuspage's payload, email over SMTP — with retries, exponential backoff
// and a dead-letter state operators can see and replay.
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
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/mail"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/ringfence/ringfence/incident"
	"github.com/ringfence/ringfence/release"
)

// Kind is how a subscriber is told.
type Kind string

// Subscriber kinds.
const (
	Webhook Kind = "webhook"
	Email   Kind = "email"
)

// Subscriber is one recipient of status notifications.
type Subscriber struct {
	ID   string `json:"id"`
	Kind Kind   `json:"kind"`
	// Target is the webhook URL or the email address.
	Target string `json:"target"`
	// Components scopes the subscriber to these component ids; empty means
	// every notification.
	Components  []int64    `json:"components"`
	CreatedAt   time.Time  `json:"created_at"`
	CreatedBy   string     `json:"created_by"`
	ConfirmedAt *time.Time `json:"confirmed_at,omitempty"`
	// Secret signs webhooks (whsec_…); Token is the capability in an email
	// subscriber's confirm and unsubscribe links. Never encoded.
	Secret string `json:"-"`
	Token  string `json:"-"`
}

// Redacted returns s as shown to operators who read subscriber lists: a
// webhook URL cut to its scheme and host (its path or query may hold a
// secret, as many receivers put their token there).
func (s Subscriber) Redacted() Subscriber {
	if s.Kind == Webhook {
		s.Target = RedactURL(s.Target)
	}
	return s
}

// RedactURL returns the scheme and host of raw, for lists, logs and errors.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "(unparsable URL)"
	}
	return u.Scheme + "://" + u.Host + "/…"
}

// Wants reports whether s must hear of a message concerning components
// (empty: the whole page) made at at.
func (s Subscriber) Wants(components []int64, at time.Time) bool {
	if s.ConfirmedAt == nil || s.ConfirmedAt.After(at) {
		return false
	}
	if len(s.Components) == 0 || len(components) == 0 {
		return true
	}
	for _, c := range components {
		if slices.Contains(s.Components, c) {
			return true
		}
	}
	return false
}

// SecretPrefix starts every Standard Webhooks signing secret.
const SecretPrefix = "whsec_"

// NewSecret returns a new signing secret: whsec_ and 32 random bytes in
// base64.
func NewSecret() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("generate webhook secret: %w", err)
	}
	return SecretPrefix + base64.StdEncoding.EncodeToString(b[:]), nil
}

// NewToken returns a random capability for email links (URL-safe).
func NewToken() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("generate subscription token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// secretKey decodes a whsec_ secret to its key bytes.
func secretKey(secret string) ([]byte, error) {
	raw, ok := strings.CutPrefix(secret, SecretPrefix)
	if !ok {
		return nil, release.Errorf(release.EINVALID, "webhook secret must start with %s", SecretPrefix)
	}
	key, err := base64.StdEncoding.DecodeString(raw)
	if err != nil {
		return nil, release.Errorf(release.EINVALID, "webhook secret: the part after %s is not base64: %v", SecretPrefix, err)
	}
	if len(key) < 24 || len(key) > 64 {
		return nil, release.Errorf(release.EINVALID, "webhook secret: want 24 to 64 bytes of key, got %d", len(key))
	}
	return key, nil
}

// ValidateWebhook checks a new webhook subscriber's URL and secret.
func ValidateWebhook(target, secret string) error {
	u, err := url.Parse(target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || len(target) > 2000 {
		return release.Errorf(release.EINVALID, "webhook %s is not an absolute http(s) URL of at most 2000 bytes", RedactURL(target))
	}
	_, err = secretKey(secret)
	return err
}

// ValidateEmail checks and normalises an email address: a bare address, no
// display name.
func ValidateEmail(addr string) (string, error) {
	a, err := mail.ParseAddress(addr)
	if err != nil || a.Name != "" || a.Address != strings.TrimSpace(addr) || len(addr) > 254 {
		return "", release.Errorf(release.EINVALID, "%q is not an email address (write it bare: name@example.com)", addr)
	}
	return a.Address, nil
}

// Message is one thing to send: a notification rendered once for every
// subscriber, or an opt-in request for one.
type Message struct {
	// EventID is stable across attempts: webhook-id, and the email's
	// Message-ID.
	EventID string `json:"event_id"`
	// Kind is the notification kind, or KindConfirm.
	Kind    string `json:"kind"`
	Subject string `json:"subject"`
	// Body is the Statuspage-shaped webhook payload.
	Body []byte `json:"-"`
	// Text is the email's plain text; the sender appends the subscriber's
	// own link.
	Text string `json:"-"`
	// Components are the component ids the message concerns (empty: all).
	Components []int64   `json:"components"`
	At         time.Time `json:"at"`
}

// KindConfirm is the kind of an email opt-in request.
const KindConfirm = "confirm"

// State is where a delivery stands.
type State string

// Delivery states.
const (
	Pending   State = "pending"
	Delivered State = "delivered"
	Dead      State = "dead"
)

// Delivery is one message to one subscriber, as operators see it.
type Delivery struct {
	ID            int64      `json:"id"`
	SubscriberID  string     `json:"subscriber_id"`
	Kind          Kind       `json:"kind"`
	Target        string     `json:"target"`
	EventID       string     `json:"event_id"`
	MessageKind   string     `json:"message_kind"`
	Subject       string     `json:"subject"`
	State         State      `json:"state"`
	Attempts      int        `json:"attempts"`
	NextAttemptAt time.Time  `json:"next_attempt_at"`
	LastError     string     `json:"last_error"`
	CreatedAt     time.Time  `json:"created_at"`
	DoneAt        *time.Time `json:"done_at,omitempty"`
}

// Attempt is a claimed delivery: what to send to whom.
type Attempt struct {
	DeliveryID int64
	// Attempts counts the attempts made, including this one.
	Attempts   int
	Subscriber Subscriber
	Message    Message
}

// Outcome is the result of an attempt, to record.
type Outcome struct {
	DeliveryID int64
	// Err is "" when delivered.
	Err string
	// Dead gives up; otherwise a failed delivery is retried at RetryAt.
	Dead    bool
	RetryAt time.Time
}

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
	FanOut(ctx context.Context, after, through int64, msgs []Message) (int, error)
	// ClaimDeliveries claims up to limit due deliveries for lease.
	ClaimDeliveries(ctx context.Context, limit int, lease time.Duration) ([]Attempt, error)
	// FinishDeliveries records outcomes.
	FinishDeliveries(ctx context.Context, outcomes []Outcome) error
	// PruneDeliveries deletes deliveries done (delivered or dead) before
	// cutoff, and messages older than cutoff no delivery refers to.
	PruneDeliveries(ctx context.Context, cutoff time.Time) (int64, error)
}
