package release

import (
	"encoding/json"
	"fmt"
	"net/url"
	"time"
)

// maxNameLen bounds product, ring, customer and gate names.
const maxNameLen = 64

// ValidateName checks a product, ring, customer or gate name: 1 to 64
// characters, lower-case ASCII letters, digits, '.', '_' and '-', starting
// with a letter or digit. kind names the thing in the error ("product").
func ValidateName(kind, name string) error {
	if name == "" {
		return Errorf(EINVALID, "%s name is empty", kind)
	}
	if len(name) > maxNameLen {
		return Errorf(EINVALID, "%s name %.20q... is longer than %d characters", kind, name, maxNameLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case (c == '.' || c == '_' || c == '-') && i > 0:
		default:
			return Errorf(EINVALID, "%s name %q: use lower-case letters, digits, '.', '_' and '-', starting with a letter or digit", kind, name)
		}
	}
	return nil
}

// validateURL accepts "" or an absolute http(s) URL.
func validateURL(field, s string) error {
	if s == "" {
		return nil
	}
	if len(s) > 2048 {
		return Errorf(EINVALID, "%s is longer than 2048 characters", field)
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return Errorf(EINVALID, "%s %q is not an absolute http(s) URL", field, s)
	}
	return nil
}

// maxTextLen bounds free-text fields (reasons, details).
const maxTextLen = 4096

func validateText(field, s string, required bool) error {
	if required && s == "" {
		return Errorf(EINVALID, "%s is required", field)
	}
	if len(s) > maxTextLen {
		return Errorf(EINVALID, "%s is longer than %d bytes", field, maxTextLen)
	}
	return nil
}

// Product is something the vendor ships to customers, with its own releases
// and auto-halt policy.
type Product struct {
	Name      string    `json:"name"`
	Policy    Policy    `json:"policy"`
	CreatedAt time.Time `json:"created_at"`
}

// Validate checks p's name and policy.
func (p Product) Validate() error {
	if err := ValidateName("product", p.Name); err != nil {
		return err
	}
	return p.Policy.Validate()
}

// State is where a release stands: active releases can be offered, paused and
// pulled ones cannot.
type State string

// Release states.
const (
	// StateActive: offered wherever the promotion rules allow.
	StateActive State = "active"
	// StatePaused: no new offers anywhere; installations on it carry on.
	// Reversible with Resume.
	StatePaused State = "paused"
	// StatePulled: paused for good, and installations on it are told what to
	// do (Guidance). Terminal.
	StatePulled State = "pulled"
)

// Valid reports whether s is a known state.
func (s State) Valid() bool {
	return s == StateActive || s == StatePaused || s == StatePulled
}

// Action is what an installation is told to do about the version it runs.
type Action string

// Actions in an answer's current block and in a pull's guidance.
const (
	// ActionNone: nothing to do.
	ActionNone Action = "none"
	// ActionUpgrade: upgrade to the target version.
	ActionUpgrade Action = "upgrade"
	// ActionRollback: roll back to the target version.
	ActionRollback Action = "rollback"
	// ActionHold: stay on this version, upgrade to nothing, wait for news.
	ActionHold Action = "hold"
)

// Guidance tells installations already on a pulled release what to do.
type Guidance struct {
	Action Action `json:"action"`
	// Target is the version to upgrade or roll back to; zero for hold.
	Target Version `json:"target,omitzero"`
}

// Release is one version of a product and its state.
type Release struct {
	Product string  `json:"product"`
	Version Version `json:"version"`
	// NotesURL points at the release notes.
	NotesURL string `json:"notes_url,omitempty"`
	// RequiredStop marks a release that may not be skipped: an installation
	// below it is offered nothing beyond it until it has installed it.
	RequiredStop bool `json:"required_stop"`
	// RollbackSafeTo is the lowest version an installation on this release
	// can roll back to without harm (its data stays readable there); zero
	// means rolling back is not safe. A pull may guide installations back to
	// any version from RollbackSafeTo up to, not including, this release.
	RollbackSafeTo Version   `json:"rollback_safe_to,omitzero"`
	CreatedAt      time.Time `json:"created_at"`

	State State `json:"state"`
	// StateReason says why the release is paused or pulled.
	StateReason string `json:"state_reason,omitempty"`
	// IncidentURL links the incident behind a pause or pull.
	IncidentURL string `json:"incident_url,omitempty"`
	// Guidance is set when the release is pulled.
	Guidance       Guidance  `json:"guidance,omitzero"`
	StateChangedAt time.Time `json:"state_changed_at,omitzero"`
}

// ID returns "product@version", the release's identity in logs and messages.
func (r Release) ID() string { return r.Product + "@" + r.Version.String() }

// Validate checks the fields a caller sets when creating a release.
func (r Release) Validate() error {
	if err := ValidateName("product", r.Product); err != nil {
		return err
	}
	if r.Version.IsZero() {
		return Errorf(EINVALID, "release version is required")
	}
	if err := validateURL("notes URL", r.NotesURL); err != nil {
		return err
	}
	if !r.RollbackSafeTo.IsZero() && !r.RollbackSafeTo.Less(r.Version) {
		return Errorf(EINVALID, "release %s: rollback-safe-to %s must be lower than the release", r.ID(), r.RollbackSafeTo)
	}
	if !r.State.Valid() {
		return Errorf(EINVALID, "release %s: unknown state %q", r.ID(), r.State)
	}
	if err := validateText("reason", r.StateReason, false); err != nil {
		return err
	}
	return validateURL("incident URL", r.IncidentURL)
}

// Pause stops all new offers of r. Pausing a paused release updates its
// reason; a pulled release cannot be paused (it already is, for good).
func (r *Release) Pause(reason, incidentURL string, now time.Time) error {
	if r.State == StatePulled {
		return Errorf(ECONFLICT, "release %s is pulled", r.ID())
	}
	if err := validateText("reason", reason, true); err != nil {
		return err
	}
	if err := validateURL("incident URL", incidentURL); err != nil {
		return err
	}
	r.State, r.StateReason, r.IncidentURL, r.StateChangedAt = StatePaused, reason, incidentURL, now
	return nil
}

// Resume makes a paused release active again. Pulled releases cannot be
// resumed: ship a new release instead.
func (r *Release) Resume(now time.Time) error {
	switch r.State {
	case StatePulled:
		return Errorf(ECONFLICT, "release %s is pulled and cannot be resumed; ship a new release", r.ID())
	case StateActive:
		return Errorf(ECONFLICT, "release %s is not paused", r.ID())
	}
	r.State, r.StateReason, r.IncidentURL, r.StateChangedAt = StateActive, "", "", now
	return nil
}

// Pull withdraws r for good and records what installations already on it
// should do. others are the product's other releases: an upgrade target must
// be one of them, active, higher than r, with no required stop in between;
// a rollback target must lie in [r.RollbackSafeTo, r.Version).
func (r *Release) Pull(g Guidance, reason, incidentURL string, others []Release, now time.Time) error {
	if r.State == StatePulled {
		return Errorf(ECONFLICT, "release %s is already pulled", r.ID())
	}
	if err := validateText("reason", reason, true); err != nil {
		return err
	}
	if err := validateURL("incident URL", incidentURL); err != nil {
		return err
	}
	if err := r.checkGuidance(g, others); err != nil {
		return err
	}
	r.State, r.StateReason, r.IncidentURL, r.Guidance, r.StateChangedAt = StatePulled, reason, incidentURL, g, now
	return nil
}

func (r *Release) checkGuidance(g Guidance, others []Release) error {
	switch g.Action {
	case ActionHold:
		if !g.Target.IsZero() {
			return Errorf(EINVALID, "hold guidance takes no target version")
		}
		return nil
	case ActionUpgrade:
		if !r.Version.Less(g.Target) {
			return Errorf(EINVALID, "upgrade target %s must be higher than %s", g.Target, r.Version)
		}
		var found bool
		for _, o := range others {
			if o.Product != r.Product || o.Version == r.Version {
				continue
			}
			if o.Version == g.Target {
				if o.State != StateActive {
					return Errorf(ECONFLICT, "upgrade target %s is %s", o.ID(), o.State)
				}
				found = true
				continue
			}
			if o.RequiredStop && o.State != StatePulled && r.Version.Less(o.Version) && o.Version.Less(g.Target) {
				return Errorf(ECONFLICT, "upgrade target %s would skip required stop %s", g.Target, o.Version)
			}
		}
		if !found {
			return Errorf(ENOTFOUND, "upgrade target %s@%s does not exist", r.Product, g.Target)
		}
		return nil
	case ActionRollback:
		if r.RollbackSafeTo.IsZero() {
			return Errorf(ECONFLICT, "release %s is not marked rollback-safe to any version", r.ID())
		}
		if g.Target.Less(r.RollbackSafeTo) || !g.Target.Less(r.Version) {
			return Errorf(ECONFLICT, "release %s is rollback-safe to versions from %s below %s, not to %s",
				r.ID(), r.RollbackSafeTo, r.Version, g.Target)
		}
		return nil
	case ActionNone:
		return Errorf(EINVALID, "a pull needs guidance: upgrade, rollback or hold")
	}
	return Errorf(EINVALID, "unknown guidance action %q", g.Action)
}

// Ring is a stage of the rollout. Releases enter rings in Order, lowest first.
type Ring struct {
	Name  string `json:"name"`
	Order int    `json:"order"`
	// SoakTime is how long a release must have been in this ring before it
	// may enter the next one.
	SoakTime time.Duration `json:"-"`
	// RolloutPercent is the share of this ring's installations offered a
	// release available here, in [0, 100]; buckets are sticky.
	RolloutPercent float64 `json:"rollout_percent"`
	// MinHealthy is how many installations in this ring must run the release
	// and report healthy before it may enter the next ring.
	MinHealthy int `json:"min_healthy"`
}

// ringJSON is Ring's wire form: the soak time as a Go duration string ("24h").
type ringJSON struct {
	Name           string  `json:"name"`
	Order          int     `json:"order"`
	SoakTime       string  `json:"soak_time"`
	RolloutPercent float64 `json:"rollout_percent"`
	MinHealthy     int     `json:"min_healthy"`
}

// MarshalJSON writes the soak time as a duration string.
func (r Ring) MarshalJSON() ([]byte, error) {
	return json.Marshal(ringJSON{r.Name, r.Order, r.SoakTime.String(), r.RolloutPercent, r.MinHealthy})
}

// UnmarshalJSON reads the soak time as a duration string ("36h", "90m").
func (r *Ring) UnmarshalJSON(b []byte) error {
	var j ringJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	var soak time.Duration
	if j.SoakTime != "" {
		d, err := time.ParseDuration(j.SoakTime)
		if err != nil {
			return Errorf(EINVALID, "ring soak_time %q: %v", j.SoakTime, err)
		}
		soak = d
	}
	*r = Ring{j.Name, j.Order, soak, j.RolloutPercent, j.MinHealthy}
	return nil
}

// Validate checks r's fields.
func (r Ring) Validate() error {
	if err := ValidateName("ring", r.Name); err != nil {
		return err
	}
	if r.Order < 0 {
		return Errorf(EINVALID, "ring %s: order must not be negative", r.Name)
	}
	if r.SoakTime < 0 {
		return Errorf(EINVALID, "ring %s: soak time must not be negative", r.Name)
	}
	if !(r.RolloutPercent >= 0 && r.RolloutPercent <= 100) {
		return Errorf(EINVALID, "ring %s: rollout percent must be within [0, 100]", r.Name)
	}
	if r.MinHealthy < 0 {
		return Errorf(EINVALID, "ring %s: min healthy installations must not be negative", r.Name)
	}
	return nil
}

// Customer is one of the vendor's customers; its installations belong to its
// ring.
type Customer struct {
	Name string `json:"name"`
	Ring string `json:"ring"`
}

// Validate checks c's fields.
func (c Customer) Validate() error {
	if err := ValidateName("customer", c.Name); err != nil {
		return err
	}
	return ValidateName("ring", c.Ring)
}

// Gate is a named check a product's releases must (Required) or may pass
// before entering ring 0, such as "collation-compare" posted by CI.
type Gate struct {
	Product  string `json:"product"`
	Name     string `json:"name"`
	Required bool   `json:"required"`
}

// Validate checks g's fields.
func (g Gate) Validate() error {
	if err := ValidateName("product", g.Product); err != nil {
		return err
	}
	return ValidateName("gate", g.Name)
}

// GateResult is one posted outcome of a gate for a release. The latest result
// per gate and release counts.
type GateResult struct {
	Product string    `json:"product"`
	Version Version   `json:"version"`
	Gate    string    `json:"gate"`
	Passed  bool      `json:"passed"`
	URL     string    `json:"url,omitempty"`
	At      time.Time `json:"at"`
}

// Validate checks r's fields.
func (r GateResult) Validate() error {
	if err := ValidateName("product", r.Product); err != nil {
		return err
	}
	if r.Version.IsZero() {
		return Errorf(EINVALID, "gate result needs a version")
	}
	if err := ValidateName("gate", r.Gate); err != nil {
		return err
	}
	if r.At.IsZero() {
		return Errorf(EINVALID, "gate result needs a time")
	}
	return validateURL("gate result URL", r.URL)
}

// Hold is a flag anyone with an account raises on a release: while open it
// blocks the release from entering any ring it has not entered yet.
type Hold struct {
	ID       int64     `json:"id"`
	Product  string    `json:"product"`
	Version  Version   `json:"version"`
	Actor    string    `json:"actor"`
	Reason   string    `json:"reason"`
	OpenedAt time.Time `json:"opened_at"`
	// ResolvedAt is zero while the hold is open.
	ResolvedAt time.Time `json:"resolved_at,omitzero"`
	ResolvedBy string    `json:"resolved_by,omitempty"`
	Resolution string    `json:"resolution,omitempty"`
}

// Open reports whether h still blocks promotion.
func (h Hold) Open() bool { return h.ResolvedAt.IsZero() }

// Validate checks the fields of a new hold.
func (h Hold) Validate() error {
	if err := ValidateName("product", h.Product); err != nil {
		return err
	}
	if h.Version.IsZero() {
		return Errorf(EINVALID, "hold needs a version")
	}
	if h.Actor == "" {
		return Errorf(EINVALID, "hold needs an actor")
	}
	return validateText("hold reason", h.Reason, true)
}

// Resolve closes h, recording who and why.
func (h *Hold) Resolve(actor, resolution string, now time.Time) error {
	if !h.Open() {
		return Errorf(ECONFLICT, "hold %d is already resolved", h.ID)
	}
	if actor == "" {
		return Errorf(EINVALID, "resolving a hold needs an actor")
	}
	if err := validateText("resolution", resolution, true); err != nil {
		return err
	}
	h.ResolvedAt, h.ResolvedBy, h.Resolution = now, actor, resolution
	return nil
}

// Role is what an API token or account may do.
type Role string

// Roles, from least to most powerful. incident manages incidents and may
// pause releases; releaser manages releases, gates, rings and customers;
// admin may do everything, including tokens and keys.
const (
	RoleViewer   Role = "viewer"
	RoleIncident Role = "incident"
	RoleReleaser Role = "releaser"
	RoleAdmin    Role = "admin"
)

// Valid reports whether r is a known role.
func (r Role) Valid() bool {
	switch r {
	case RoleViewer, RoleIncident, RoleReleaser, RoleAdmin:
		return true
	}
	return false
}

// Promotion records that a release became available in a ring: computed by
// the rules (Forced false, Actor empty) or forced by a person.
type Promotion struct {
	Product string    `json:"product"`
	Version Version   `json:"version"`
	Ring    string    `json:"ring"`
	At      time.Time `json:"at"`
	Forced  bool      `json:"forced"`
	// Actor and Role are who forced it; Reason why.
	Actor  string `json:"actor,omitempty"`
	Role   Role   `json:"role,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// ForcePromote returns the record of a person forcing rel into ring, past
// gates, soak time, evidence and holds. It needs the releaser (or admin) role
// and a reason; a paused or pulled release cannot be forced anywhere.
func ForcePromote(rel Release, ring, actor string, role Role, reason string, now time.Time) (Promotion, error) {
	if role != RoleReleaser && role != RoleAdmin {
		return Promotion{}, Errorf(EFORBIDDEN, "force-promote needs the releaser role, %q has %q", actor, role)
	}
	if actor == "" {
		return Promotion{}, Errorf(EINVALID, "force-promote needs an actor")
	}
	if err := validateText("force-promote reason", reason, true); err != nil {
		return Promotion{}, err
	}
	if err := ValidateName("ring", ring); err != nil {
		return Promotion{}, err
	}
	if rel.State != StateActive {
		return Promotion{}, Errorf(ECONFLICT, "release %s is %s and cannot be promoted", rel.ID(), rel.State)
	}
	return Promotion{Product: rel.Product, Version: rel.Version, Ring: ring, At: now, Forced: true, Actor: actor, Role: role, Reason: reason}, nil
}

// HealthStatus is an installation's integrity as its agent last saw it.
type HealthStatus string

// Health statuses.
const (
	HealthOK               HealthStatus = "ok"
	HealthCorrupt          HealthStatus = "corrupt"
	HealthCollationChanged HealthStatus = "collation_changed"
	HealthUnknown          HealthStatus = "unknown"
)

// Valid reports whether s is a known status.
func (s HealthStatus) Valid() bool {
	switch s {
	case HealthOK, HealthCorrupt, HealthCollationChanged, HealthUnknown:
		return true
	}
	return false
}

// Failing reports whether s is evidence of damage (counts toward auto-halt).
func (s HealthStatus) Failing() bool { return s == HealthCorrupt || s == HealthCollationChanged }

// Health is an agent's integrity report.
type Health struct {
	Status HealthStatus `json:"status"`
	Detail string       `json:"detail,omitempty"`
}

// Installation is one running copy of a product at a customer.
type Installation struct {
	InstanceID string    `json:"instance_id"`
	Product    string    `json:"product"`
	Customer   string    `json:"customer"`
	Version    Version   `json:"version"`
	LastSeen   time.Time `json:"last_seen,omitzero"`
	Health     Health    `json:"health"`
}

// EventKind is what happened on an installation.
type EventKind string

// Event kinds an agent reports.
const (
	EventUpgradeStarted   EventKind = "upgrade_started"
	EventUpgradeSucceeded EventKind = "upgrade_succeeded"
	EventUpgradeFailed    EventKind = "upgrade_failed"
	EventIntegrityFailed  EventKind = "integrity_failed"
)

// Valid reports whether k is a known kind.
func (k EventKind) Valid() bool {
	switch k {
	case EventUpgradeStarted, EventUpgradeSucceeded, EventUpgradeFailed, EventIntegrityFailed:
		return true
	}
	return false
}

// Event is something an installation reports in a check-in. For upgrade
// events From is the version upgraded from and To the target; for
// integrity_failed To is the version running when the check failed.
type Event struct {
	Kind   EventKind `json:"kind"`
	From   Version   `json:"from,omitzero"`
	To     Version   `json:"to,omitzero"`
	At     time.Time `json:"at"`
	Detail string    `json:"detail,omitempty"`
}

// InstanceEvent is an Event with the installation that reported it, as the
// store keeps it.
type InstanceEvent struct {
	InstanceID string `json:"instance_id"`
	Event
}

// HealthReport is a health status an installation reported while running
// Version.
type HealthReport struct {
	InstanceID string    `json:"instance_id"`
	Version    Version   `json:"version"`
	At         time.Time `json:"at"`
	Health     Health    `json:"health"`
}

// Adoption is the evidence for promotion: how many installations of a ring
// run a release, and how many of those report healthy or failing.
type Adoption struct {
	Product       string  `json:"product"`
	Version       Version `json:"version"`
	Ring          string  `json:"ring"`
	Installations int     `json:"installations"`
	Healthy       int     `json:"healthy"`
	Failed        int     `json:"failed"`
}

// String helps debugging output.
func (a Adoption) String() string {
	return fmt.Sprintf("%s@%s in %s: %d installed, %d healthy, %d failed", a.Product, a.Version, a.Ring, a.Installations, a.Healthy, a.Failed)
}
