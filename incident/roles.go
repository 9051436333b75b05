package incident

import (
	"slices"
	"strings"
	"time"
)

// Role is a part someone plays in the response to an incident
// (docs/incident-response.md, "Roles"). Who holds which role is staff-only:
// it is never on the status page nor in what subscribers are sent.
type Role string

// Incident roles, in the order they are shown.
const (
	// RoleCommander owns the incident from declaration to resolution.
	RoleCommander Role = "commander"
	// RoleCommunications writes every public update.
	RoleCommunications Role = "communications"
	// RoleTechnical leads the investigation and the fix.
	RoleTechnical Role = "technical"
	// RoleReleaseManager ships the fixed release through the rings.
	RoleReleaseManager Role = "release_manager"
	// RoleScribe keeps the internal timeline for the postmortem.
	RoleScribe Role = "scribe"
)

// Roles lists every role, in the order they are shown.
var Roles = []Role{RoleCommander, RoleCommunications, RoleTechnical, RoleReleaseManager, RoleScribe}

// ParseRole parses a role name; EINVALID lists the known ones.
func ParseRole(s string) (Role, error) {
	r := Role(strings.ToLower(strings.TrimSpace(s)))
	if !slices.Contains(Roles, r) {
		return "", Errorf(EINVALID, "unknown incident role %q: use %s", s, joinNames(Roles))
	}
	return r, nil
}

// Assignment says who holds a role in an incident, since when, and who
// assigned it.
type Assignment struct {
	Role  Role      `json:"role"`
	Who   string    `json:"who"`
	Since time.Time `json:"since"`
	By    string    `json:"by"`
}

// Assign makes who the holder of role in i, at now, by by, replacing the
// previous holder; an empty who leaves the role unassigned. It returns the
// assignment it replaced (the zero value when the role was free) and
// whether anything changed: assigning the holder again changes nothing.
// UpdatedAt stays: it is public, and who holds a role is not. A
// role can be assigned at any stage, a postmortem's owner after
// resolution included.
func (i *Incident) Assign(role Role, who, by string, now time.Time) (Assignment, bool, error) {
	if _, err := ParseRole(string(role)); err != nil {
		return Assignment{}, false, err
	}
	who = strings.TrimSpace(who)
	if err := validateText("role holder", who, false, maxTitleLen); err != nil {
		return Assignment{}, false, err
	}
	n := slices.IndexFunc(i.Roles, func(a Assignment) bool { return a.Role == role })
	var old Assignment
	if n >= 0 {
		old = i.Roles[n]
		if old.Who == who {
			return old, false, nil
		}
		i.Roles = slices.Delete(slices.Clone(i.Roles), n, n+1)
	} else if who == "" {
		return old, false, nil
	}
	if who != "" {
		i.Roles = append(slices.Clone(i.Roles), Assignment{Role: role, Who: who, Since: now, By: by})
		slices.SortFunc(i.Roles, func(a, b Assignment) int { return slices.Index(Roles, a.Role) - slices.Index(Roles, b.Role) })
	}
	return old, true, nil
}

// Holder returns who holds role in i, "" when nobody does.
func (i Incident) Holder(role Role) string {
	for _, a := range i.Roles {
		if a.Role == role {
			return a.Who
		}
	}
	return ""
}
