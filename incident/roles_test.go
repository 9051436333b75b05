package incident

import (
	"strings"
	"testing"
	"time"
)

// TestAssign: a role has one holder; assigning another replaces it, the
// same one changes nothing, an empty name frees it; roles keep their order.
func TestAssign(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 3, 0, 0, 0, time.UTC)
	var i Incident
	i.UpdatedAt = t0
	step := func(role Role, who string, wantChanged bool, wantOld string) {
		t.Helper()
		old, changed, err := i.Assign(role, who, "oncall", t0.Add(time.Minute))
		if err != nil || changed != wantChanged || old.Who != wantOld {
			t.Fatalf("Assign(%s, %q) = %+v, %v, %v; want changed %v, old %q", role, who, old, changed, err, wantChanged, wantOld)
		}
	}
	step(RoleScribe, "carol", true, "")
	step(RoleCommander, " alice ", true, "")
	step(RoleCommander, "alice", false, "alice")
	step(RoleCommander, "bob", true, "alice")
	if len(i.Roles) != 2 || i.Roles[0].Role != RoleCommander || i.Roles[0].Who != "bob" || i.Roles[1].Role != RoleScribe || i.Roles[0].By != "oncall" {
		t.Fatalf("roles %+v", i.Roles)
	}
	if i.Holder(RoleCommander) != "bob" || i.Holder(RoleCommunications) != "" {
		t.Errorf("holders: commander %q, communications %q", i.Holder(RoleCommander), i.Holder(RoleCommunications))
	}
	step(RoleScribe, "", true, "carol")
	step(RoleTechnical, "", false, "")
	if len(i.Roles) != 1 || !i.UpdatedAt.Equal(t0) {
		t.Fatalf("roles %+v, updated %s (roles are not public: updated_at stays)", i.Roles, i.UpdatedAt)
	}
	for _, bad := range []struct {
		role Role
		who  string
	}{{"janitor", "x"}, {RoleCommander, strings.Repeat("x", maxTitleLen+1)}} {
		if _, _, err := i.Assign(bad.role, bad.who, "oncall", t0); ErrorCode(err) != EINVALID {
			t.Errorf("Assign(%q, %d bytes): %v, want invalid", bad.role, len(bad.who), err)
		}
	}
	if r, err := ParseRole(" Release_Manager "); err != nil || r != RoleReleaseManager {
		t.Errorf("ParseRole: %q, %v", r, err)
	}
	if _, err := ParseRole("boss"); err == nil || !strings.Contains(err.Error(), "commander, communications") {
		t.Errorf("ParseRole(boss): %v", err)
	}
}
