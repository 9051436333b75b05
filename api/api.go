// Package api is the admin API's wire contract: the request and response
// bodies of /api/v1 (and /v1/keys) that are not domain types themselves.
// The server decodes and answers these types and the client encodes and
// decodes them, so a field cannot differ between the two sides. It is a
// package of its own, not part of client, so that the server does not
// import the client (an HTTP client with answer verification the server
// has no use for) and neither side owns the contract; client re-exports
// the types under their old names as aliases.
//
// Invariants: the package holds types only (no HTTP, no store, no rules
// beyond trivial conversions); it imports nothing of ours but the domain
// packages (release, incident, sign) and notify's subscriber types. Request
// types carry the client's omitempty tags (the server decodes them with
// unknown fields refused, so an omitted field reads as its zero value);
// response types carry the tags the server encodes with. Changing a tag
// changes the wire: docs/api.md documents every shape and tests assert it.
package api

import (
	"encoding/json"

	"github.com/ringfence/ringfence/release"
	"github.com/ringfence/ringfence/sign"
)

// Empty is the body of a POST that takes no parameters: {} (an empty body
// is read as {}).
type Empty struct{}

// Identity answers GET /api/v1/whoami: who the caller's token belongs to.
// The fields are in the order the server has always written them.
type Identity struct {
	Name    string       `json:"name"`
	Role    release.Role `json:"role"`
	TokenID string       `json:"token_id"`
}

// PublicKeys answers GET /v1/keys: the answer-verification keys.
type PublicKeys struct {
	Keys []sign.PublicKey `json:"keys"`
}

// NewProduct is the body of POST /api/v1/products. A nil Halt gets the
// server's default auto-halt policy.
type NewProduct struct {
	Name          string          `json:"name"`
	RequiredGates []string        `json:"required_gates,omitempty"`
	Halt          *release.Policy `json:"halt,omitempty"`
}

// ProductPatch is the body of PATCH /api/v1/products/{product}; nil fields
// stay as they are.
type ProductPatch struct {
	RequiredGates *[]string `json:"required_gates,omitempty"`
	// Halt is a JSON object of the auto-halt policy fields to change
	// ({"window":"2h"}); the fields it does not name stay as they are. A
	// release.Policy's own encoding names them all.
	Halt json.RawMessage `json:"halt,omitempty"`
}

// RingPatch is the body of PATCH .../rings/{ring}; nil fields stay as
// they are.
type RingPatch struct {
	Position *int `json:"position,omitempty"`
	// Soak is a duration as release.ParseDuration reads it ("36h", "2d").
	Soak           *string  `json:"soak,omitempty"`
	RolloutPercent *float64 `json:"rollout_percent,omitempty"`
	MinHealthy     *int     `json:"min_healthy,omitempty"`
}

// NewCustomer is the body of POST .../customers: a customer and its ring.
type NewCustomer struct {
	Name string `json:"name"`
	Ring string `json:"ring"`
}

// CustomerPatch is the body of PATCH .../customers/{customer}: the ring to
// move the customer to.
type CustomerPatch struct {
	Ring string `json:"ring"`
}

// EnrollmentKey is a customer's key for its installations' check-ins. Key,
// the secret, is set only in the answer to its creation (the only time it
// is shown).
type EnrollmentKey struct {
	release.EnrollmentKey
	Key string `json:"key,omitempty"`
}

// NewBundle is the body of POST .../customers/{customer}/bundles: how long
// the bundle stays valid, a Go duration or a number of days ("30d", "720h";
// empty: release.DefaultBundleValidity).
type NewBundle struct {
	Valid string `json:"valid,omitempty"`
}

// Status answers GET .../status: where every release of a product stands,
// newest first.
type Status struct {
	Product  string                  `json:"product"`
	Releases []release.ReleaseStatus `json:"releases"`
	// Quotas is each customer's use of its check-in quotas.
	Quotas []release.QuotaUsage `json:"quotas"`
}

// NewToken is the body of POST /api/v1/tokens.
type NewToken struct {
	Name string       `json:"name"`
	Role release.Role `json:"role"`
}

// Token is an API token. Secret is set only in the answer to its creation
// (the only time it is shown).
type Token struct {
	release.Token
	Secret string `json:"token,omitempty"`
}

// NewUser is the body of POST /api/v1/users: a console account.
type NewUser struct {
	Name     string       `json:"name"`
	Role     release.Role `json:"role"`
	Password string       `json:"password"`
}
