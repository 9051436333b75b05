package release

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
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

// MaxStoredInt is the largest integer a count or position may hold: the
// stores keep them in 32-bit INTEGER columns (PostgreSQL refuses larger
// values, SQLite would store them), so validation refuses them first.
const MaxStoredInt = 1<<31 - 1

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

// Product is something the vendor ships to customers. Each product has its
// own rings, customers, releases and auto-halt policy.
type Product struct {
	Name string `json:"name"`
	// RequiredGates name the gates every release must pass before it enters
	// the product's first ring.
	RequiredGates []string  `json:"required_gates"`
	Policy        Policy    `json:"halt"`
	CreatedAt     time.Time `json:"created_at,omitzero"`
}

// Validate checks p's name, gates and policy.
func (p Product) Validate() error {
	if err := ValidateName("product", p.Name); err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, g := range p.RequiredGates {
		if err := ValidateName("gate", g); err != nil {
			return err
		}
		if seen[g] {
			return Errorf(EINVALID, "gate %s is listed twice", g)
		}
		seen[g] = true
	}
	return p.Policy.Validate()
}

// Status is where a release stands: ok releases can be offered, paused and
// pulled ones cannot. The same values describe an installation's current
// version in a check-in answer.
type Status string

// Release statuses.
const (
	// StatusOK: offered wherever the promotion rules allow.
	StatusOK Status = "ok"
	// StatusPaused: no new offers anywhere; installations on it carry on.
	// Reversible with Resume.
	StatusPaused Status = "paused"
	// StatusPulled: paused for good, and installations on it are told what to
	// do (the pull's guidance). Terminal.
	StatusPulled Status = "pulled"
)

// Valid reports whether s is a known status.
func (s Status) Valid() bool {
	return s == StatusOK || s == StatusPaused || s == StatusPulled
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

// Pause records why and by whom a release was paused.
type Pause struct {
	Reason      string    `json:"reason"`
	IncidentURL string    `json:"incident_url,omitempty"`
	By          string    `json:"by"`
	At          time.Time `json:"at"`
}

// Pull records why a release was pulled and what installations already on it
// should do.
type Pull struct {
	Reason      string `json:"reason"`
	IncidentURL string `json:"incident_url,omitempty"`
	// Action is upgrade, rollback or hold.
	Action Action `json:"action"`
	// Target is the version to upgrade or roll back to; zero for hold.
	Target Version   `json:"target,omitzero"`
	By     string    `json:"by,omitempty"`
	At     time.Time `json:"at,omitzero"`
	// ForcedPastGates, when set, is why an upgrade target that has not
	// passed its product's gates was accepted anyway.
	ForcedPastGates string `json:"forced_past_gates,omitempty"`
}

// Release is one version of a product, its status and the rings it entered.
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
	CreatedAt      time.Time `json:"created_at,omitzero"`
	// Waives are the database findings that do not stop an upgrade to this
	// release (Waivers): the vendor's word, in the signed offer, that the
	// release itself repairs them.
	Waives []string `json:"waives,omitempty"`
	// RequiresPostgres is the lowest PostgreSQL major version the release
	// runs on (0: any): preflight refuses the upgrade to it on an
	// installation whose watched database runs an older one.
	RequiresPostgres int `json:"requires_postgres,omitempty"`

	Status Status `json:"status"`
	// Paused is set while the release is paused (and kept when it is then
	// pulled); Pulled once it is pulled.
	Paused *Pause `json:"paused"`
	Pulled *Pull  `json:"pull"`
	// ResumedAt is when the release was last resumed (nil if never); the
	// store sets it. Auto-halt counts only evidence received after it, so
	// a person's resume is not overridden by the evidence they weighed.
	ResumedAt *time.Time `json:"resumed_at,omitempty"`
	// Rings are the recorded ring entries (see Availability), in any order.
	Rings []Promotion `json:"rings"`
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
	if !r.Status.Valid() {
		return Errorf(EINVALID, "release %s: unknown status %q", r.ID(), r.Status)
	}
	if r.RequiresPostgres != 0 && (r.RequiresPostgres < 10 || r.RequiresPostgres > 99) {
		return Errorf(EINVALID, "release %s: requires PostgreSQL %d: give a major version, 10 to 99", r.ID(), r.RequiresPostgres)
	}
	for i, w := range r.Waives {
		if !slices.Contains(Waivers, w) {
			return Errorf(EINVALID, "release %s: %q cannot be waived: only %s", r.ID(), w, strings.Join(Waivers, ", "))
		}
		if slices.Contains(r.Waives[:i], w) {
			return Errorf(EINVALID, "release %s: %s is waived twice", r.ID(), w)
		}
	}
	return nil
}

// Waivers are the preflight findings a release may waive: a watched
// database whose collation changed, or that the deep check found corrupt
// (amcheck finds the indexes a collation change broke). A release waives
// them when its own upgrade repairs them (it rebuilds the indexes, say):
// preflight to it then says go, with the findings as warnings. Nothing
// else can be waived: not being offered, a pull, a required stop, an
// upgrade that failed here, a database that could not be checked.
var Waivers = []string{"collation_changed", "database_corrupt"}

// Pause stops all new offers of r. Pausing a paused release updates the
// record; a pulled release cannot be paused (it already is, for good).
func (r *Release) Pause(by, reason, incidentURL string, now time.Time) error {
	if r.Status == StatusPulled {
		return Errorf(ECONFLICT, "release %s is pulled", r.ID())
	}
	if err := validateIncident(reason, incidentURL); err != nil {
		return err
	}
	r.Status, r.Paused = StatusPaused, &Pause{Reason: reason, IncidentURL: incidentURL, By: by, At: now}
	return nil
}

// validateIncident checks what a pause or a pull records about why: a
// reason (required) and an optional incident URL.
func validateIncident(reason, incidentURL string) error {
	if err := validateText("reason", reason, true); err != nil {
		return err
	}
	return validateURL("incident URL", incidentURL)
}

// Resume makes a paused release ok again. Pulled releases cannot be resumed:
// ship a new release instead.
func (r *Release) Resume() error {
	switch r.Status {
	case StatusPulled:
		return Errorf(ECONFLICT, "release %s is pulled and cannot be resumed; ship a new release", r.ID())
	case StatusOK:
		return Errorf(ECONFLICT, "release %s is not paused", r.ID())
	}
	r.Status, r.Paused = StatusOK, nil
	return nil
}

// Pull withdraws r for good with p's guidance, recording p.By and now.
// others are the product's releases: an upgrade target must be one of them,
// ok, higher than r, with no required stop in between; a rollback target must
// be one of them, not pulled, and lie in [r.RollbackSafeTo, r.Version).
func (r *Release) Pull(p Pull, others []Release, now time.Time) error {
	if r.Status == StatusPulled {
		return Errorf(ECONFLICT, "release %s is already pulled", r.ID())
	}
	if err := validateIncident(p.Reason, p.IncidentURL); err != nil {
		return err
	}
	if err := r.checkGuidance(p, others); err != nil {
		return err
	}
	p.At = now
	r.Status, r.Pulled = StatusPulled, &p
	return nil
}

func (r *Release) checkGuidance(p Pull, others []Release) error {
	switch p.Action {
	case ActionHold:
		if !p.Target.IsZero() {
			return Errorf(EINVALID, "hold guidance takes no target version")
		}
		return nil
	case ActionUpgrade:
		if !r.Version.Less(p.Target) {
			return Errorf(EINVALID, "upgrade target %s must be higher than %s", p.Target, r.Version)
		}
		var found bool
		for _, o := range others {
			if o.Product != r.Product || o.Version == r.Version {
				continue
			}
			if o.Version == p.Target {
				if o.Status != StatusOK {
					return Errorf(ECONFLICT, "upgrade target %s is %s", o.ID(), o.Status)
				}
				found = true
				continue
			}
			if o.RequiredStop && o.Status != StatusPulled && r.Version.Less(o.Version) && o.Version.Less(p.Target) {
				return Errorf(ECONFLICT, "upgrade target %s would skip required stop %s", p.Target, o.Version)
			}
		}
		if !found {
			return Errorf(ENOTFOUND, "upgrade target %s@%s does not exist", r.Product, p.Target)
		}
		return nil
	case ActionRollback:
		if r.RollbackSafeTo.IsZero() {
			return Errorf(ECONFLICT, "release %s is not marked rollback-safe to any version", r.ID())
		}
		if p.Target.Less(r.RollbackSafeTo) || !p.Target.Less(r.Version) {
			return Errorf(ECONFLICT, "release %s is rollback-safe to versions from %s below %s, not to %s",
				r.ID(), r.RollbackSafeTo, r.Version, p.Target)
		}
		for _, o := range others {
			if o.Product == r.Product && o.Version == p.Target {
				if o.Status == StatusPulled {
					return Errorf(ECONFLICT, "rollback target %s is pulled", o.ID())
				}
				return nil
			}
		}
		return Errorf(ENOTFOUND, "rollback target %s@%s does not exist", r.Product, p.Target)
	case ActionNone, "":
		return Errorf(EINVALID, "a pull needs guidance: upgrade, rollback or hold")
	}
	return Errorf(EINVALID, "unknown guidance action %q", p.Action)
}

// Ring is a stage of a product's rollout. Releases enter rings in Position
// order, 0 first.
type Ring struct {
	Product  string `json:"product,omitempty"`
	Name     string `json:"name"`
	Position int    `json:"position"`
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
	Product        string  `json:"product,omitempty"`
	Name           string  `json:"name"`
	Position       int     `json:"position"`
	SoakTime       string  `json:"soak"`
	RolloutPercent float64 `json:"rollout_percent"`
	MinHealthy     int     `json:"min_healthy"`
}

// MarshalJSON writes the soak time as a duration string.
func (r Ring) MarshalJSON() ([]byte, error) {
	return json.Marshal(ringJSON{r.Product, r.Name, r.Position, r.SoakTime.String(), r.RolloutPercent, r.MinHealthy})
}

// UnmarshalJSON reads the soak time as a duration string ("36h", "90m").
func (r *Ring) UnmarshalJSON(b []byte) error {
	var j ringJSON
	if err := strictUnmarshal(b, &j); err != nil {
		return err
	}
	var soak time.Duration
	if j.SoakTime != "" {
		d, err := ParseDuration(j.SoakTime)
		if err != nil {
			return Errorf(EINVALID, "ring soak: %s", ErrorMessage(err))
		}
		soak = d
	}
	*r = Ring{j.Product, j.Name, j.Position, soak, j.RolloutPercent, j.MinHealthy}
	return nil
}

// Validate checks r's fields.
func (r Ring) Validate() error {
	if err := ValidateName("ring", r.Name); err != nil {
		return err
	}
	if r.Position < 0 || r.Position > MaxStoredInt {
		return Errorf(EINVALID, "ring %s: position must be within [0, %d]", r.Name, MaxStoredInt)
	}
	if r.SoakTime < 0 {
		return Errorf(EINVALID, "ring %s: soak time must not be negative", r.Name)
	}
	if !(r.RolloutPercent >= 0 && r.RolloutPercent <= 100) {
		return Errorf(EINVALID, "ring %s: rollout percent must be within [0, 100]", r.Name)
	}
	if r.MinHealthy < 0 || r.MinHealthy > MaxStoredInt {
		return Errorf(EINVALID, "ring %s: min_healthy must be within [0, %d]", r.Name, MaxStoredInt)
	}
	return nil
}

// Customer is one of the vendor's customers of a product; its installations
// of the product belong to its ring.
type Customer struct {
	Product   string    `json:"product,omitempty"`
	Name      string    `json:"name"`
	Ring      string    `json:"ring"`
	CreatedAt time.Time `json:"created_at,omitzero"`
}

// Validate checks c's fields.
func (c Customer) Validate() error {
	if err := ValidateName("customer", c.Name); err != nil {
		return err
	}
	return ValidateName("ring", c.Ring)
}

// GateOutcome is a gate result's verdict.
type GateOutcome string

// Gate outcomes.
const (
	GatePass GateOutcome = "pass"
	GateFail GateOutcome = "fail"
)

// GateResult is one posted outcome of a named gate (such as
// "collation-compare", posted by CI) for a release. The latest result per
// gate and release counts.
type GateResult struct {
	Product  string      `json:"product,omitempty"`
	Version  Version     `json:"version,omitzero"`
	Name     string      `json:"name"`
	Status   GateOutcome `json:"status"`
	URL      string      `json:"url,omitempty"`
	PostedBy string      `json:"posted_by,omitempty"`
	PostedAt time.Time   `json:"posted_at"`
}

// Validate checks r's fields.
func (r GateResult) Validate() error {
	if err := ValidateName("gate", r.Name); err != nil {
		return err
	}
	if r.Status != GatePass && r.Status != GateFail {
		return Errorf(EINVALID, "gate %s: status %q, want pass or fail", r.Name, r.Status)
	}
	return validateURL("gate result URL", r.URL)
}

// Hold is a flag anyone with an account raises on a release: while open it
// blocks the release from entering any ring it has not entered yet.
type Hold struct {
	ID       string    `json:"id"`
	Product  string    `json:"product"`
	Version  Version   `json:"version"`
	Reason   string    `json:"reason"`
	RaisedBy string    `json:"raised_by"`
	RaisedAt time.Time `json:"raised_at"`
	// ResolvedAt is nil while the hold is open.
	ResolvedAt *time.Time `json:"resolved_at"`
	ResolvedBy string     `json:"resolved_by"`
	Resolution string     `json:"resolution"`
}

// Open reports whether h still blocks promotion.
func (h Hold) Open() bool { return h.ResolvedAt == nil }

// Validate checks the fields of a new hold.
func (h Hold) Validate() error {
	if h.RaisedBy == "" {
		return Errorf(EINVALID, "hold needs the name of who raised it")
	}
	return validateText("hold reason", h.Reason, true)
}

// Resolve closes h, recording who and why.
func (h *Hold) Resolve(by, resolution string, now time.Time) error {
	if !h.Open() {
		return Errorf(ECONFLICT, "hold %s is already resolved", h.ID)
	}
	if by == "" {
		return Errorf(EINVALID, "resolving a hold needs the name of who resolves it")
	}
	if err := validateText("resolution", resolution, true); err != nil {
		return err
	}
	h.ResolvedAt, h.ResolvedBy, h.Resolution = &now, by, resolution
	return nil
}

// Role is what an API token or account may do. Roles are ordered; each may
// do everything the weaker ones may.
type Role string

// Roles, weakest first: viewer reads everything and raises holds; releaser
// creates releases, posts gate results, pauses, resumes, pulls, force-promotes
// and resolves holds; incident may do what a releaser may, and incidents;
// admin everything, including products, rings, customers, tokens and keys.
const (
	RoleViewer   Role = "viewer"
	RoleReleaser Role = "releaser"
	RoleIncident Role = "incident"
	RoleAdmin    Role = "admin"
)

// rank orders roles; 0 is unknown.
func (r Role) rank() int {
	switch r {
	case RoleViewer:
		return 1
	case RoleReleaser:
		return 2
	case RoleIncident:
		return 3
	case RoleAdmin:
		return 4
	}
	return 0
}

// Valid reports whether r is a known role.
func (r Role) Valid() bool { return r.rank() > 0 }

// AtLeast reports whether r may do what need may; unknown roles may nothing.
func (r Role) AtLeast(need Role) bool { return r.Valid() && r.rank() >= need.rank() }

// Promotion records that a release entered a ring: by the rules (Forced
// false, By empty) or forced by a person.
type Promotion struct {
	Ring      string    `json:"ring"`
	EnteredAt time.Time `json:"entered_at"`
	Forced    bool      `json:"forced"`
	// By and Reason say who forced it and why.
	By     string `json:"by,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// ForcePromote returns the record of a person forcing rel into ring, past
// gates, soak time, evidence and holds (and into every ring before it). It
// needs the releaser role or stronger and a reason; a paused or pulled release
// cannot be forced anywhere.
func ForcePromote(rel Release, ring, by string, role Role, reason string, now time.Time) (Promotion, error) {
	if !role.AtLeast(RoleReleaser) {
		return Promotion{}, Errorf(EFORBIDDEN, "force-promote needs the releaser role, %s has %q", by, role)
	}
	if by == "" {
		return Promotion{}, Errorf(EINVALID, "force-promote needs the name of who forces it")
	}
	if err := validateText("force-promote reason", reason, true); err != nil {
		return Promotion{}, err
	}
	if err := ValidateName("ring", ring); err != nil {
		return Promotion{}, err
	}
	if rel.Status != StatusOK {
		return Promotion{}, Errorf(ECONFLICT, "release %s is %s and cannot be promoted", rel.ID(), rel.Status)
	}
	return Promotion{Ring: ring, EnteredAt: now, Forced: true, By: by, Reason: reason}, nil
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

// Installation is one running copy of a product at a customer. Decide reads
// InstanceID, Product, Customer and Version.
type Installation struct {
	InstanceID string    `json:"instance_id"`
	Product    string    `json:"product,omitempty"`
	Customer   string    `json:"customer"`
	Ring       string    `json:"ring,omitempty"`
	Version    Version   `json:"version"`
	Health     Health    `json:"health"`
	FirstSeen  time.Time `json:"first_seen,omitzero"`
	LastSeen   time.Time `json:"last_seen,omitzero"`
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
// store keeps it. An installation is identified by its customer (from the
// enrollment key) and its agent-chosen instance id together.
type InstanceEvent struct {
	InstanceID string `json:"instance_id"`
	Customer   string `json:"customer"`
	// SeenOn is the version the store last had for the installation before
	// the check-in that carried the event; zero when that check-in was the
	// installation's first. Auto-halt only believes installations it knew.
	SeenOn Version `json:"seen_on,omitzero"`
	Event
}

// HealthReport is a health status an installation reported while running
// Version.
type HealthReport struct {
	InstanceID string `json:"instance_id"`
	Customer   string `json:"customer"`
	// SeenOn is as in InstanceEvent.
	SeenOn  Version   `json:"seen_on,omitzero"`
	Version Version   `json:"version"`
	At      time.Time `json:"at"`
	Health  Health    `json:"health"`
}

// Adoption is the evidence for promotion: how many installations of a ring
// of product run a release, and how many of those report healthy or failing
// (by their last health report and events).
type Adoption struct {
	Product string  `json:"product"`
	Version Version `json:"version"`
	Ring    string  `json:"ring"`
	// Installations run Version; Healthy and Failed are among them.
	Installations int `json:"installations"`
	Healthy       int `json:"healthy"`
	Failed        int `json:"failed"`
	// HealthyUncounted counts installations that report healthy but are
	// not evidence: first seen after the release was created.
	HealthyUncounted int `json:"healthy_uncounted,omitempty"`
}

// String helps debugging output.
func (a Adoption) String() string {
	return fmt.Sprintf("%s@%s in %s: %d installed, %d healthy, %d failed", a.Product, a.Version, a.Ring, a.Installations, a.Healthy, a.Failed)
}

// RingSize is how many installations of a product a ring has.
type RingSize struct {
	Product       string `json:"product"`
	Ring          string `json:"ring"`
	Installations int    `json:"installations"`
}
