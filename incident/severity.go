package incident

import "strings"

// Severity names a severity level ("SEV1"). The levels in force, their names
// and descriptions, are configurable (Severities); SEV1–SEV4 by default.
type Severity string

// SeverityLevel is one severity: its name and what it means, for the people
// who must choose it in a hurry.
type SeverityLevel struct {
	Name        Severity `json:"name"`
	Description string   `json:"description"`
}

// Severities are the levels in force, most severe first.
type Severities []SeverityLevel

// DefaultSeverities returns SEV1–SEV4 with their default meanings.
func DefaultSeverities() Severities {
	return Severities{
		{"SEV1", "Critical: customers' data is at risk or the product is down for many customers. All hands; public notice at once; releases involved are paused or pulled."},
		{"SEV2", "Major: a core function is broken or degraded for many customers, or a release is doing harm. Incident commander and communications lead; public notice; releases involved are paused."},
		{"SEV3", "Minor: a non-core function is broken, or a few customers are affected, with a workaround. Handled by the on-call engineer in working hours."},
		{"SEV4", "Low: cosmetic or internal issue, no customer impact. Tracked, no public notice needed."},
	}
}

// Lookup returns the level named s; EINVALID (listing the names) if there is
// none.
func (l Severities) Lookup(s Severity) (SeverityLevel, error) {
	for _, v := range l {
		if v.Name == s {
			return v, nil
		}
	}
	return SeverityLevel{}, Errorf(EINVALID, "unknown severity %q: use one of %s", s, l.names())
}

// Rank returns s's position, 0 for the most severe, -1 if unknown.
func (l Severities) Rank(s Severity) int {
	for i, v := range l {
		if v.Name == s {
			return i
		}
	}
	return -1
}

// Default is the severity of an incident declared without one: the least
// severe level but one (SEV3 of SEV1–SEV4), or the only one.
func (l Severities) Default() Severity {
	switch len(l) {
	case 0:
		return ""
	case 1:
		return l[0].Name
	}
	return l[len(l)-2].Name
}

func (l Severities) names() string {
	n := make([]string, len(l))
	for i, v := range l {
		n[i] = string(v.Name)
	}
	return strings.Join(n, ", ")
}

// Validate checks the levels: 1 to 10, each name 1 to 32 bytes of letters,
// digits, '-' and '_', unique, with a description.
func (l Severities) Validate() error {
	if len(l) == 0 || len(l) > 10 {
		return Errorf(EINVALID, "define 1 to 10 severity levels, not %d", len(l))
	}
	seen := map[Severity]bool{}
	for _, v := range l {
		if v.Name == "" || len(v.Name) > 32 {
			return Errorf(EINVALID, "severity name %q must be 1 to 32 bytes", v.Name)
		}
		for _, r := range v.Name {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return Errorf(EINVALID, "severity name %q: use letters, digits, '-' and '_'", v.Name)
			}
		}
		if seen[v.Name] {
			return Errorf(EINVALID, "severity %s is defined twice", v.Name)
		}
		seen[v.Name] = true
		if err := validateText("description of "+string(v.Name), v.Description, true, 1024); err != nil {
			return err
		}
	}
	return nil
}

// SeverityPolicy says what severities do to releases.
type SeverityPolicy struct {
	// PauseReleases are the severities whose incidents pause the releases
	// they name, when declared (or raised to such a severity).
	PauseReleases []Severity `json:"pause_releases"`
	// AutoHalt is what auto-halt opens when it pauses a release.
	AutoHalt AutoHaltAction `json:"auto_halt"`
	// Pull is the severity and impact of the incident a pull opens when it
	// names none to link.
	Pull PullAction `json:"pull"`
}

// AutoHaltAction is the incident auto-halt opens, naming the release it
// paused.
type AutoHaltAction struct {
	// Open: auto-halt opens an incident at all.
	Open bool `json:"open"`
	// Publish: the incident is published at once (subscribers told);
	// otherwise it is a draft for a person to review and publish.
	Publish  bool     `json:"publish"`
	Severity Severity `json:"severity"`
	Impact   Impact   `json:"impact"`
}

// PullAction is the incident a pull opens when it links none: published.
type PullAction struct {
	Severity Severity `json:"severity"`
	Impact   Impact   `json:"impact"`
}

// Config is the incident configuration in force: the severity levels and
// the policy over them.
type Config struct {
	Severities Severities     `json:"severities"`
	Policy     SeverityPolicy `json:"policy"`
}

// DefaultConfig returns SEV1–SEV4; SEV1 and SEV2 pause the releases they
// name; auto-halt opens a draft SEV2 of major impact; a pull opens a
// published SEV2 of major impact.
func DefaultConfig() Config {
	return Config{
		Severities: DefaultSeverities(),
		Policy: SeverityPolicy{
			PauseReleases: []Severity{"SEV1", "SEV2"},
			AutoHalt:      AutoHaltAction{Open: true, Publish: false, Severity: "SEV2", Impact: ImpactMajor},
			Pull:          PullAction{Severity: "SEV2", Impact: ImpactMajor},
		},
	}
}

// Validate checks the levels and that the policy names only them.
func (c Config) Validate() error {
	if err := c.Severities.Validate(); err != nil {
		return err
	}
	seen := map[Severity]bool{}
	for _, s := range c.Policy.PauseReleases {
		if _, err := c.Severities.Lookup(s); err != nil {
			return Errorf(EINVALID, "policy pause_releases: %s", err.(*Error).Message)
		}
		if seen[s] {
			return Errorf(EINVALID, "policy pause_releases names %s twice", s)
		}
		seen[s] = true
	}
	if _, err := c.Severities.Lookup(c.Policy.AutoHalt.Severity); err != nil {
		return Errorf(EINVALID, "policy auto_halt: %s", err.(*Error).Message)
	}
	if !c.Policy.AutoHalt.Impact.Valid() {
		return Errorf(EINVALID, "policy auto_halt: unknown impact %q", c.Policy.AutoHalt.Impact)
	}
	if _, err := c.Severities.Lookup(c.Policy.Pull.Severity); err != nil {
		return Errorf(EINVALID, "policy pull: %s", err.(*Error).Message)
	}
	if !c.Policy.Pull.Impact.Valid() {
		return Errorf(EINVALID, "policy pull: unknown impact %q", c.Policy.Pull.Impact)
	}
	return nil
}

// Pauses reports whether an incident of severity s pauses the releases it
// names.
func (p SeverityPolicy) Pauses(s Severity) bool {
	for _, v := range p.PauseReleases {
		if v == s {
			return true
		}
	}
	return false
}
