package release

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// CheckIn is what an installation's agent posts to POST /v1/checkin.
type CheckIn struct {
	// InstanceID identifies the installation: 1 to 128 characters of
	// [A-Za-z0-9._:-] (a UUID fits).
	InstanceID string  `json:"instance_id"`
	Product    string  `json:"product"`
	Version    Version `json:"version"`
	// Nonce is echoed in the signed answer so the agent knows the answer is
	// fresh and meant for this request: 16 to 128 characters of
	// [A-Za-z0-9+/=_-] (base64 or hex of at least 96 random bits).
	Nonce string `json:"nonce"`
	// Health is the agent's latest integrity report, if any.
	Health *Health `json:"health,omitempty"`
	// Events happened since the last acknowledged check-in, oldest first.
	Events []Event `json:"events,omitempty"`
}

// Limits the check-in decoder enforces.
const (
	// DefaultMaxCheckInBytes is the body size limit servers should use.
	DefaultMaxCheckInBytes = 64 << 10
	// MaxCheckInEvents bounds the events in one check-in.
	MaxCheckInEvents = 100
	maxInstanceIDLen = 128
	minNonceLen      = 16
	maxNonceLen      = 128
)

// DecodeCheckIn reads one JSON check-in from r, at most maxBytes of it, and
// validates it. It rejects unknown fields, trailing data, oversized bodies,
// missing or malformed ids, versions, nonces, events and health reports. All
// errors are *Error with code EINVALID and a message fit for the agent's log.
// For events that leave "to" out, upgrade_succeeded and integrity_failed get
// the check-in's version.
func DecodeCheckIn(r io.Reader, maxBytes int64) (CheckIn, error) {
	var c CheckIn
	body, err := io.ReadAll(io.LimitReader(r, maxBytes+1))
	if err != nil {
		return c, Errorf(EINVALID, "read check-in: %v", err)
	}
	if int64(len(body)) > maxBytes {
		return c, Errorf(EINVALID, "check-in larger than %d bytes", maxBytes)
	}
	return ParseCheckIn(body)
}

// ParseCheckIn is DecodeCheckIn of a body already read (and limited in
// size) by the caller, such as a server that read the request itself.
func ParseCheckIn(body []byte) (CheckIn, error) {
	var c CheckIn
	if err := DecodeJSON(body, &c, "check-in"); err != nil {
		return CheckIn{}, err
	}
	for i := range c.Events {
		e := &c.Events[i]
		if e.To.IsZero() && (e.Kind == EventUpgradeSucceeded || e.Kind == EventIntegrityFailed) {
			e.To = c.Version
		}
	}
	if err := c.Validate(); err != nil {
		return CheckIn{}, err
	}
	return c, nil
}

// describeJSONError turns encoding/json's errors into messages that name the
// field or offset without Go type names.
func describeJSONError(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	var de *Error
	var te *time.ParseError
	switch {
	case errors.Is(err, io.EOF):
		return "empty body"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "truncated JSON"
	case errors.As(err, &syn):
		return fmt.Sprintf("invalid JSON at byte %d: %s", syn.Offset, strings.TrimPrefix(syn.Error(), "json: "))
	case errors.As(err, &typ):
		if typ.Field == "" {
			return fmt.Sprintf("expected a JSON object, got %s", typ.Value)
		}
		return fmt.Sprintf("field %s: wrong type (got %s)", typ.Field, typ.Value)
	case errors.As(err, &de):
		return de.Message
	case errors.As(err, &te):
		return fmt.Sprintf("time %s is not an RFC 3339 time", strings.Trim(te.Value, `"`))
	}
	msg := err.Error()
	if f, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		return "unknown field " + f
	}
	return strings.TrimPrefix(msg, "json: ")
}

// Validate checks a decoded check-in.
func (c CheckIn) Validate() error {
	if err := validateInstanceID(c.InstanceID); err != nil {
		return err
	}
	if err := ValidateName("product", c.Product); err != nil {
		return err
	}
	if c.Version.IsZero() {
		return Errorf(EINVALID, "version is required")
	}
	if err := validateNonce(c.Nonce); err != nil {
		return err
	}
	if c.Health != nil {
		if !c.Health.Status.Valid() {
			return Errorf(EINVALID, "health status %q: want ok, corrupt, collation_changed or unknown", c.Health.Status)
		}
		if err := validateText("health detail", c.Health.Detail, false); err != nil {
			return err
		}
	}
	if len(c.Events) > MaxCheckInEvents {
		return Errorf(EINVALID, "%d events: at most %d per check-in", len(c.Events), MaxCheckInEvents)
	}
	for i, e := range c.Events {
		if err := e.Validate(); err != nil {
			return Errorf(EINVALID, "event %d: %s", i, ErrorMessage(err))
		}
	}
	return nil
}

// Validate checks one reported event.
func (e Event) Validate() error {
	if !e.Kind.Valid() {
		return Errorf(EINVALID, "kind %q: want upgrade_started, upgrade_succeeded, upgrade_failed or integrity_failed", e.Kind)
	}
	if e.To.IsZero() {
		return Errorf(EINVALID, "%s needs \"to\"", e.Kind)
	}
	if e.Kind != EventIntegrityFailed && e.From.IsZero() {
		return Errorf(EINVALID, "%s needs \"from\"", e.Kind)
	}
	if e.At.IsZero() {
		return Errorf(EINVALID, "%s needs \"at\"", e.Kind)
	}
	return validateText("detail", e.Detail, false)
}

func validateInstanceID(id string) error {
	if id == "" {
		return Errorf(EINVALID, "instance_id is required")
	}
	if len(id) > maxInstanceIDLen {
		return Errorf(EINVALID, "instance_id longer than %d characters", maxInstanceIDLen)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == ':' || c == '-') {
			return Errorf(EINVALID, "instance_id: only [A-Za-z0-9._:-] allowed")
		}
	}
	return nil
}

func validateNonce(n string) error {
	if len(n) < minNonceLen || len(n) > maxNonceLen {
		return Errorf(EINVALID, "nonce must be %d to %d characters", minNonceLen, maxNonceLen)
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '+' || c == '/' || c == '=' || c == '_' || c == '-') {
			return Errorf(EINVALID, "nonce: only [A-Za-z0-9+/=_-] allowed")
		}
	}
	return nil
}

// Answer is the payload of the signed answer to a check-in.
type Answer struct {
	InstanceID string `json:"instance_id"`
	// Nonce echoes the check-in's nonce.
	Nonce     string    `json:"nonce"`
	IssuedAt  time.Time `json:"issued_at"`
	ExpiresAt time.Time `json:"expires_at"`
	Current   Current   `json:"current"`
	// Offer is the version to upgrade to, or nil.
	Offer   *Offer   `json:"offer"`
	Notices []Notice `json:"notices"`
	// SigningKeys, during a key rotation's overlap, name the keys that sign
	// the answer; absent otherwise.
	SigningKeys []SigningKey `json:"signing_keys,omitempty"`
}

// SigningKey names a key that signs a payload (an answer or a bundle).
// During a key rotation's overlap the payload names the new key and the
// previous one, and both sign it: an agent that trusts only the previous
// key learns the new one from a payload that key vouches for, so the
// rotation reaches it without a product update (docs/protocol.md, "Keys").
type SigningKey struct {
	KeyID string `json:"keyid"`
	// PublicKey is the 32-byte ed25519 public key (base64 on the wire).
	PublicKey []byte `json:"public_key"`
}

// Current tells an installation about the version it runs and what to do
// about it.
type Current struct {
	Version Version `json:"version"`
	// Status is ok (also for a version the server does not know), paused or
	// pulled.
	Status Status `json:"status"`
	Action Action `json:"action"`
	// Target is the version of an upgrade or rollback action.
	Target      Version `json:"target,omitzero"`
	Reason      string  `json:"reason,omitempty"`
	IncidentURL string  `json:"incident_url,omitempty"`
}

// Offer is a release the installation may upgrade to.
type Offer struct {
	Version      Version `json:"version"`
	NotesURL     string  `json:"notes_url,omitempty"`
	RequiredStop bool    `json:"required_stop"`
	// Waives are the preflight findings the offered release waives (see
	// Waivers); absent when none.
	Waives []string `json:"waives,omitempty"`
	// RequiresPostgres is the lowest PostgreSQL major version the offered
	// release runs on (absent: any).
	RequiresPostgres int `json:"requires_postgres,omitempty"`
}

// NoticeKind classifies a notice.
type NoticeKind string

// Notice kinds.
const (
	// NoticePaused: the installation's version is paused.
	NoticePaused NoticeKind = "paused"
	// NoticePulled: the installation's version is pulled.
	NoticePulled NoticeKind = "pulled"
	// NoticeRequiredStop: the offer is a required stop; later releases
	// exist and come after it.
	NoticeRequiredStop NoticeKind = "required_stop"
	// NoticeUnknownVersion: the server knows no release of this version.
	NoticeUnknownVersion NoticeKind = "unknown_version"
)

// Notice is a message for the installation's operators.
type Notice struct {
	Kind    NoticeKind `json:"kind"`
	Message string     `json:"message"`
	URL     string     `json:"url,omitempty"`
}
