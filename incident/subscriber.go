package incident

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/mail"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Subscribers of the status page and what they are sent: who (Subscriber),
// what (Message, one per notification, rendered once for all), and the
// record of each message's delivery to each subscriber (Delivery, and the
// DeliveryAttempt and DeliveryOutcome the notify worker and the store pass
// each other). The notify package delivers; the store keeps these.

// SubscriberKind is how a subscriber is told.
type SubscriberKind string

// Subscriber kinds.
const (
	SubscriberWebhook SubscriberKind = "webhook"
	SubscriberEmail   SubscriberKind = "email"
)

// Subscriber is one recipient of status notifications.
type Subscriber struct {
	ID   string         `json:"id"`
	Kind SubscriberKind `json:"kind"`
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
	if s.Kind == SubscriberWebhook {
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

// WebhookSecretPrefix starts every Standard Webhooks signing secret.
const WebhookSecretPrefix = "whsec_"

// NewWebhookSecret returns a new webhook signing secret: whsec_ and 32 random bytes in
// base64.
func NewWebhookSecret() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("generate webhook secret: %w", err)
	}
	return WebhookSecretPrefix + base64.StdEncoding.EncodeToString(b[:]), nil
}

// NewSubscriptionToken returns a random capability for email links (URL-safe).
func NewSubscriptionToken() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("generate subscription token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// WebhookKey decodes a whsec_ secret to the key bytes it signs with.
func WebhookKey(secret string) ([]byte, error) {
	raw, ok := strings.CutPrefix(secret, WebhookSecretPrefix)
	if !ok {
		return nil, Errorf(EINVALID, "webhook secret must start with %s", WebhookSecretPrefix)
	}
	key, err := base64.StdEncoding.DecodeString(raw)
	if err != nil {
		return nil, Errorf(EINVALID, "webhook secret: the part after %s is not base64: %v", WebhookSecretPrefix, err)
	}
	if len(key) < 24 || len(key) > 64 {
		return nil, Errorf(EINVALID, "webhook secret: want 24 to 64 bytes of key, got %d", len(key))
	}
	return key, nil
}

// ValidateWebhook checks a new webhook subscriber's URL and secret.
func ValidateWebhook(target, secret string) error {
	u, err := url.Parse(target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || len(target) > 2000 {
		return Errorf(EINVALID, "webhook %s is not an absolute http(s) URL of at most 2000 bytes", RedactURL(target))
	}
	_, err = WebhookKey(secret)
	return err
}

// ValidateEmail checks and normalises an email address: a bare address, no
// display name.
func ValidateEmail(addr string) (string, error) {
	a, err := mail.ParseAddress(addr)
	if err != nil || a.Name != "" || a.Address != strings.TrimSpace(addr) || len(addr) > 254 {
		return "", Errorf(EINVALID, "%q is not an email address (write it bare: name@example.com)", addr)
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

// DeliveryState is where a delivery stands.
type DeliveryState string

// Delivery states.
const (
	DeliveryPending   DeliveryState = "pending"
	DeliveryDelivered DeliveryState = "delivered"
	DeliveryDead      DeliveryState = "dead"
)

// Delivery is one message to one subscriber, as operators see it.
type Delivery struct {
	ID            int64          `json:"id"`
	SubscriberID  string         `json:"subscriber_id"`
	Kind          SubscriberKind `json:"kind"`
	Target        string         `json:"target"`
	EventID       string         `json:"event_id"`
	MessageKind   string         `json:"message_kind"`
	Subject       string         `json:"subject"`
	State         DeliveryState  `json:"state"`
	Attempts      int            `json:"attempts"`
	NextAttemptAt time.Time      `json:"next_attempt_at"`
	LastError     string         `json:"last_error"`
	CreatedAt     time.Time      `json:"created_at"`
	DoneAt        *time.Time     `json:"done_at,omitempty"`
}

// DeliveryAttempt is a claimed delivery: what to send to whom.
type DeliveryAttempt struct {
	DeliveryID int64
	// Attempts counts the attempts made, including this one.
	Attempts   int
	Subscriber Subscriber
	Message    Message
}

// DeliveryOutcome is the result of an attempt, to record.
type DeliveryOutcome struct {
	DeliveryID int64
	// Err is "" when delivered.
	Err string
	// Dead gives up; otherwise a failed delivery is retried at RetryAt.
	Dead    bool
	RetryAt time.Time
}
