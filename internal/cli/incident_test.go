package cli_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ringfence/ringfence/client"
	"github.com/ringfence/ringfence/incident"
	"github.com/ringfence/ringfence/release"
)

// TestIncidentCommandsEndToEnd drives components, incidents, templates,
// severities, maintenance and the ties to releases through the real CLI
// against the real server.
func TestIncidentCommandsEndToEnd(t *testing.T) {
	url, admin := apiServer(t)
	oncall := apiJSON[client.Token](t, url, admin, "token", "create", "oncall", "--role", "incident").Secret
	viewer := apiJSON[client.Token](t, url, admin, "token", "create", "vera", "--role", "viewer").Secret
	releaser := apiJSON[client.Token](t, url, admin, "token", "create", "rel", "--role", "releaser").Secret

	api(t, url, admin, "product", "create", "acme")
	for _, v := range []string{"3.29.4", "3.30.0", "3.30.1", "3.30.2"} {
		api(t, url, admin, "release", "create", "acme", v)
	}

	// Components in a group; names may hold spaces and slashes.
	api(t, url, oncall, "component", "create", "Check-in API / EU", "--group", "Cloud")
	api(t, url, oncall, "component", "create", "Console", "--group", "Cloud")
	api(t, url, oncall, "component", "create", "Docs")
	apiFails(t, url, viewer, "needs the incident role", "component", "create", "Other")
	apiFails(t, url, releaser, "needs the incident role", "component", "set", "Docs", "major_outage")
	apiFails(t, url, oncall, "unknown component status", "component", "set", "Docs", "down")
	if out := api(t, url, oncall, "component", "set", "Docs", "degraded_performance", "--reason", "CDN slow"); !strings.Contains(out, "degraded_performance") {
		t.Fatalf("component set printed:\n%s", out)
	}
	comps := apiJSON[[]incident.Component](t, url, viewer, "component", "list")
	if len(comps) != 3 || comps[0].Name != "Check-in API / EU" || comps[0].Group != "Cloud" || comps[2].Status != incident.DegradedPerformance {
		t.Fatalf("components %+v", comps)
	}
	// Renamed, regrouped, moved first within its group, then back to the top level.
	api(t, url, oncall, "component", "update", "Docs", "--name", "Documentation", "--group", "Cloud", "--description", "docs site")
	api(t, url, oncall, "component", "update", "Documentation", "--position", "0")
	api(t, url, oncall, "component", "update", "Check-in API / EU", "--position", "2")
	comps = apiJSON[[]incident.Component](t, url, viewer, "component", "list")
	if len(comps) != 3 || comps[0].Name != "Documentation" || comps[0].Group != "Cloud" || comps[0].Description != "docs site" || comps[2].Name != "Check-in API / EU" {
		t.Fatalf("components after updates %+v", comps)
	}
	apiFails(t, url, oncall, "exists", "component", "update", "Documentation", "--name", "Console")
	api(t, url, oncall, "component", "update", "Documentation", "--group", "", "--name", "Docs")
	if comps = apiJSON[[]incident.Component](t, url, viewer, "component", "list"); comps[2].Name != "Docs" || comps[2].Group != "" {
		t.Fatalf("components after moving Docs to the top level %+v", comps)
	}

	// A SEV2 naming a release pauses it; declare prints the id.
	code, out, errOut := runAPI(t, url, oncall, "incident", "declare", "Indexes corrupt after upgrade", "--impact", "major",
		"--severity", "SEV2", "--message", "We are investigating reports of corrupt indexes.",
		"--component", "Check-in API / EU=partial_outage", "--release", "acme@3.30.0")
	if code != 0 || strings.TrimSpace(out) == "" || !strings.Contains(errOut, "paused release acme@3.30.0") {
		t.Fatalf("declare: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	id := strings.TrimSpace(out)
	if r := apiJSON[release.Release](t, url, viewer, "release", "show", "acme", "3.30.0"); r.Status != release.StatusPaused || !strings.Contains(r.Paused.Reason, "incident "+id) {
		t.Fatalf("release after a SEV2 naming it: %+v", r)
	}
	apiFails(t, url, viewer, "needs the incident role", "incident", "declare", "x", "--impact", "minor", "--message", "m")
	apiFails(t, url, oncall, "unknown severity", "incident", "declare", "x", "--impact", "minor", "--message", "m", "--severity", "SEV9")
	apiFails(t, url, oncall, "release acme@9.9.9 not found", "incident", "declare", "x", "--impact", "minor", "--message", "m", "--release", "acme@9.9.9")

	api(t, url, oncall, "incident", "update", id, "--status", "identified", "--message", "A collation change; fix under way.", "--no-notify",
		"--release", "acme@3.30.1")
	if r := apiJSON[release.Release](t, url, viewer, "release", "show", "acme", "3.30.1"); r.Status != release.StatusPaused {
		t.Fatalf("release named by an update of a SEV2: %+v", r)
	}
	apiFails(t, url, oncall, "not found", "incident", "update", id, "--status", "identified", "--message", "m", "--release", "acme@7.0.0")
	api(t, url, oncall, "incident", "update", "--latest", "--status", "monitoring", "--message", "Fixed in 3.30.1.",
		"--component", "Check-in API / EU=degraded_performance")
	apiFails(t, url, oncall, "resolve it before its postmortem", "incident", "postmortem", id, "--file", "/dev/null")
	res := apiJSON[incident.Incident](t, url, oncall, "incident", "resolve", id, "--message", "All installations healthy.")
	if res.Status != incident.StatusResolved || len(res.Updates) != 4 || len(res.Updates[0].Components) != 1 || res.Updates[0].Components[0].NewStatus != incident.Operational {
		t.Fatalf("resolved %+v", res)
	}
	apiFails(t, url, oncall, "not reopened", "incident", "update", id, "--status", "investigating", "--message", "again")
	apiFails(t, url, oncall, "not found", "incident", "resolve", "--latest", "--message", "nothing open")
	pm := filepath.Join(t.TempDir(), "pm.md")
	if err := os.WriteFile(pm, []byte("# Postmortem\n\nA glibc upgrade changed collation."), 0o600); err != nil {
		t.Fatal(err)
	}
	api(t, url, oncall, "incident", "postmortem", id, "--file", pm)
	show := api(t, url, viewer, "incident", "show", id)
	for _, want := range []string{"status: postmortem", "severity: SEV2", "releases: acme@3.30.0", "(subscribers not told)",
		"Check-in API / EU: partial_outage -> degraded_performance", "A glibc upgrade changed collation.", "releases: acme@3.30.0, acme@3.30.1"} {
		if !strings.Contains(show, want) {
			t.Fatalf("incident show lacks %q:\n%s", want, show)
		}
	}

	// Templates, drafts and publication.
	api(t, url, oncall, "incident", "template", "save", "db-slow", "--title", "Database slow", "--body", "Queries are slow; we are investigating.",
		"--impact", "minor", "--severity", "SEV3")
	draftID := strings.TrimSpace(api(t, url, oncall, "incident", "declare", "Slow queries", "--template", "db-slow", "--draft"))
	draft := apiJSON[incident.Incident](t, url, viewer, "incident", "show", draftID)
	if !draft.Draft || draft.Impact != incident.ImpactMinor || draft.Updates[0].Body != "Queries are slow; we are investigating." {
		t.Fatalf("declared from a template: %+v", draft)
	}
	api(t, url, oncall, "incident", "publish", draftID)
	apiFails(t, url, oncall, "already published", "incident", "publish", draftID)
	if out := api(t, url, viewer, "incident", "list", "--unresolved"); !strings.Contains(out, "Slow queries") || strings.Contains(out, "Indexes corrupt") {
		t.Fatalf("unresolved incidents:\n%s", out)
	}

	// Pulling a release links the incident given, or opens one.
	api(t, url, releaser, "release", "pull", "acme", "3.30.0", "--reason", "corrupts indexes", "--upgrade-to", "3.30.2", "--incident", id)
	if inc := apiJSON[incident.Incident](t, url, viewer, "incident", "show", id); len(inc.Releases) != 2 {
		t.Fatalf("linked incident %+v", inc)
	}
	code, _, errOut = runAPI(t, url, releaser, "release", "pull", "acme", "3.30.1", "--reason", "same bug", "--upgrade-to", "3.30.2")
	if code != 0 || !strings.Contains(errOut, "opened") {
		t.Fatalf("pull without an incident: exit %d, stderr %q", code, errOut)
	}
	api(t, url, admin, "release", "create", "acme", "3.30.3")
	api(t, url, releaser, "release", "pull", "acme", "3.30.2", "--reason", "same bug", "--upgrade-to", "3.30.3", "--incident", draftID)
	if inc := apiJSON[incident.Incident](t, url, viewer, "incident", "show", draftID); len(inc.Releases) != 1 || inc.Releases[0].String() != "acme@3.30.2" {
		t.Fatalf("incident linked by a pull: %+v", inc.Releases)
	}
	latest := apiJSON[incident.Incident](t, url, viewer, "incident", "show", "--latest")
	if latest.Title != "Release acme@3.30.1 pulled" || latest.Draft || !strings.Contains(latest.Updates[0].Body, "upgrade to 3.30.2") {
		t.Fatalf("incident a pull opened: %+v", latest)
	}

	// Severities: listed, and configurable by an admin only.
	if out := api(t, url, viewer, "incident", "severity", "list"); !strings.Contains(out, "SEV1") || !strings.Contains(out, "opens a draft SEV2 incident") {
		t.Fatalf("severity list:\n%s", out)
	}
	cfg := incident.DefaultConfig()
	cfg.Severities[3].Description = "Cosmetic."
	cfgFile := filepath.Join(t.TempDir(), "sev.json")
	if err := os.WriteFile(cfgFile, mustJSONBytes(t, cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	apiFails(t, url, oncall, "needs the admin role", "incident", "severity", "set", cfgFile)
	if out := api(t, url, admin, "incident", "severity", "set", cfgFile); !strings.Contains(out, "Cosmetic.") {
		t.Fatalf("severity set:\n%s", out)
	}

	// Maintenance.
	start := time.Now().Add(24 * time.Hour).UTC().Truncate(time.Second)
	mid := strings.TrimSpace(api(t, url, oncall, "maintenance", "schedule", "Database upgrade", "--start", start.Format(time.RFC3339),
		"--end", start.Add(time.Hour).Format(time.RFC3339), "--component", "Console", "--message", "We upgrade PostgreSQL."))
	apiFails(t, url, oncall, "RFC 3339", "maintenance", "schedule", "x", "--start", "tomorrow", "--end", "later", "--message", "m")
	apiFails(t, url, oncall, "ends", "maintenance", "schedule", "x", "--start", start.Format(time.RFC3339),
		"--end", start.Add(-time.Hour).Format(time.RFC3339), "--message", "m")
	if out := api(t, url, viewer, "maintenance", "list", "--pending"); !strings.Contains(out, "Database upgrade") || !strings.Contains(out, "scheduled") {
		t.Fatalf("maintenance list:\n%s", out)
	}
	if out := api(t, url, oncall, "maintenance", "cancel", mid, "--message", "Postponed."); !strings.Contains(out, "cancelled") {
		t.Fatalf("maintenance cancel:\n%s", out)
	}
	apiFails(t, url, oncall, "cannot move from cancelled", "maintenance", "set", mid, "in_progress")
	if out := api(t, url, viewer, "maintenance", "show", mid); !strings.Contains(out, "cancelled by oncall") || !strings.Contains(out, "Postponed.") ||
		!strings.Contains(out, "We upgrade PostgreSQL.") {
		t.Fatalf("maintenance show:\n%s", out)
	}

	// Every change is in the audit log.
	audit := api(t, url, viewer, "audit", "--limit", "200")
	for _, want := range []string{"component.create", "component.set_status", "incident.declare", "release.pause", "incident.update",
		"incident.resolve", "incident.postmortem", "incident_template.save", "incident.publish", "incident.link_release", "release.pull",
		"incident.configure", "maintenance.schedule", "maintenance.cancelled", "component.update"} {
		if !strings.Contains(audit, want) {
			t.Errorf("audit log lacks %s", want)
		}
	}
}

func mustJSONBytes(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestIncidentAssign: `incident assign` records who holds which role,
// several at once, hands over and unassigns; show and list print them, and
// an incident without a commander says how to name one.
func TestIncidentAssign(t *testing.T) {
	url, admin := apiServer(t)
	id := strings.TrimSpace(api(t, url, admin, "incident", "declare", "Upgrades fail", "--impact", "major", "--message", "Looking."))
	if out := api(t, url, admin, "incident", "show", id); !strings.Contains(out, "commander: nobody; name one: ringfence incident assign "+id+" --commander NAME") {
		t.Fatalf("show without a commander:\n%s", out)
	}
	out := api(t, url, admin, "incident", "assign", "--latest", "--commander", "Alice", "--communications", "Bob", "--release-manager", "Rita")
	for _, want := range []string{"commander: Alice (since", "communications: Bob", "release manager: Rita"} {
		if !strings.Contains(out, want) {
			t.Fatalf("assign printed no %q:\n%s", want, out)
		}
	}
	inc := apiJSON[incident.Incident](t, url, admin, "incident", "assign", id, "--commander", "Carol", "--unassign", "release-manager")
	if inc.Holder(incident.RoleCommander) != "Carol" || inc.Holder(incident.RoleCommunications) != "Bob" || len(inc.Roles) != 2 {
		t.Fatalf("roles after the hand-over %+v", inc.Roles)
	}
	if out := api(t, url, admin, "incident", "list"); !strings.Contains(out, "COMMANDER") || !strings.Contains(out, "Carol") {
		t.Fatalf("list:\n%s", out)
	}
	apiFails(t, url, admin, "assign needs a role: --commander", "incident", "assign", id)
	apiFails(t, url, admin, "needs a name", "incident", "assign", id, "--scribe", " ")
	apiFails(t, url, admin, "unknown incident role", "incident", "assign", id, "--unassign", "janitor")
	viewer := apiJSON[client.Token](t, url, admin, "token", "create", "vera", "--role", "viewer").Secret
	apiFails(t, url, viewer, "needs the incident role", "incident", "assign", id, "--scribe", "Vera")
}
