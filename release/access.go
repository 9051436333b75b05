package release

import (
	"encoding/json"
	"time"
)

// Token is an API token as the store keeps it and the admin API lists it:
// its secret is never kept, only a hash, so it is shown only once, when the
// token is created.
type Token struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	Role       Role       `json:"role"`
	CreatedAt  time.Time  `json:"created_at"`
	CreatedBy  string     `json:"created_by"`
	LastUsedAt *time.Time `json:"last_used_at"`
	RevokedAt  *time.Time `json:"revoked_at"`
}

// Actor is how changes made with t are attributed (audit log actor, by
// fields): its name and, because names of revoked tokens may be reused, its
// id, e.g. "ci (01a2155c-d582-...)".
func (t Token) Actor() string { return t.Name + " (" + t.ID + ")" }

// EnrollmentKey is a customer's key for its installations' check-ins, as the
// store keeps it: the key itself is never kept, only a hash and a short
// prefix to recognise it by.
type EnrollmentKey struct {
	ID        string     `json:"id"`
	Product   string     `json:"product"`
	Customer  string     `json:"customer"`
	Prefix    string     `json:"prefix"`
	CreatedAt time.Time  `json:"created_at"`
	CreatedBy string     `json:"created_by"`
	RevokedAt *time.Time `json:"revoked_at"`
}

// AuditEntry is one recorded change: who did what to which thing, why if
// they said, and the thing before and after (JSON; null when it did not
// exist before or after).
type AuditEntry struct {
	ID     int64           `json:"id"`
	At     time.Time       `json:"at"`
	Actor  string          `json:"actor"`
	Action string          `json:"action"`
	Target string          `json:"target"`
	Reason string          `json:"reason,omitempty"`
	Before json.RawMessage `json:"before"`
	After  json.RawMessage `json:"after"`
}
