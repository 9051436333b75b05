package demo

import (
	"context"
	"fmt"
	"slices"
	"strconv"

	"github.com/ringfence/ringfence/client"
	"github.com/ringfence/ringfence/incident"
	"github.com/ringfence/ringfence/release"
)

// Components of the demo's status page, by group.
const (
	// Upgrades is where installations get their answers and releases.
	Upgrades = "Upgrades"
	// Downloads serves the release images.
	Downloads = "Release downloads"
	portal    = "Customer portal"
	support   = "Support desk"
)

// components creates the status page's components and the incident
// templates on-call starts from.
func (d *Demo) components(ctx context.Context) error {
	for _, c := range []client.NewComponent{
		{Name: Upgrades, Group: "Release delivery", Description: "Update answers to installations (check-in)"},
		{Name: Downloads, Group: "Release delivery", Description: "Release images and packages"},
		{Name: portal, Group: "Customer services", Description: "Licences, downloads and documentation"},
		{Name: support, Group: "Customer services", Description: "Tickets and the support phone line"},
	} {
		if _, err := d.admin.CreateComponent(ctx, c); err != nil {
			return fmt.Errorf("create component %s: %w", c.Name, err)
		}
	}
	for _, t := range []incident.Template{
		{Name: "bad-release", Title: "A release is being withdrawn", Impact: incident.ImpactMajor, Severity: "SEV2",
			Body: "A problem was found in a release. No installation is offered it any more; installations already on it will be told what to do."},
		{Name: "downloads-slow", Title: "Release downloads are slow", Impact: incident.ImpactMinor, Severity: "SEV3",
			Body: "Downloads of release images are slower than usual. Upgrades in progress may take longer; nothing needs to be done."},
	} {
		if _, err := d.admin.SaveTemplate(ctx, t); err != nil {
			return fmt.Errorf("save incident template %s: %w", t.Name, err)
		}
	}
	return nil
}

// resolvePulled closes the incident the pull of Pulled opened, as on-call
// would once its fix was out, with a postmortem.
func (d *Demo) resolvePulled(ctx context.Context, id int64) error {
	ref := strconv.FormatInt(id, 10)
	if _, err := d.admin.UpdateIncident(ctx, ref, client.IncidentUpdate{Status: incident.StatusMonitoring,
		Message: Fixed + " fixes migration 0412 and is rolling out; installations on " + Pulled + " are told to upgrade to it."}); err != nil {
		return fmt.Errorf("update the incident of the pull: %w", err)
	}
	if _, err := d.admin.ResolveIncident(ctx, ref, client.IncidentUpdate{
		Message: "Every installation that was on " + Pulled + " has upgraded to " + Fixed + "."}); err != nil {
		return fmt.Errorf("resolve the incident of the pull: %w", err)
	}
	_, err := d.admin.SetPostmortem(ctx, ref, "## What happened\n\nMigration 0412 of "+Pulled+" stored an audit row count in a 32-bit integer. "+
		"Databases with more than 2^31 audit rows failed the upgrade.\n\n## What we changed\n\n"+
		"The migration uses 64-bit counts; the upgrade test now runs against a database of that size.")
	if err != nil {
		return fmt.Errorf("write the postmortem of the pull: %w", err)
	}
	return nil
}

// haltIncident makes the incident of Halted's auto-halt public and carries
// it on, as on-call would: the draft auto-halt opened is published, gets
// an update naming the affected components and a commander, a
// communications lead and a release manager; without a draft (a policy
// that opens none) one is declared.
func (d *Demo) haltIncident(ctx context.Context) error {
	open, err := d.admin.Incidents(ctx, true, 100)
	if err != nil {
		return fmt.Errorf("list open incidents: %w", err)
	}
	ref := release.Release{Product: Product, Version: v(Halted)}
	id := ""
	for _, inc := range open {
		if slices.Contains(inc.Releases, incident.ReleaseRef{Product: ref.Product, Version: Halted}) {
			id = strconv.FormatInt(inc.ID, 10)
			if inc.Draft {
				if _, err := d.admin.PublishIncident(ctx, id); err != nil {
					return fmt.Errorf("publish the auto-halt's incident: %w", err)
				}
			}
			break
		}
	}
	if id == "" {
		dec, err := d.admin.DeclareIncident(ctx, client.Declaration{Title: "Release " + ref.ID() + " paused by auto-halt",
			Impact: incident.ImpactMajor, Severity: "SEV2", Releases: []string{ref.ID()},
			Message: "Auto-halt paused " + ref.ID() + " after insiders reported a changed collation order."})
		if err != nil {
			return fmt.Errorf("declare the auto-halt's incident: %w", err)
		}
		id = strconv.FormatInt(dec.ID, 10)
	}
	_, err = d.admin.UpdateIncident(ctx, id, client.IncidentUpdate{Status: incident.StatusIdentified,
		Message: Halted + " moved the database image from Debian (glibc) to Alpine (musl), which sorts text differently: " +
			"unique indexes built under the old order are no longer trustworthy. The three insiders on it are asked to hold; " +
			"nobody else is offered it, and its images are withdrawn from downloads. A fixed image is being prepared.",
		Components: []client.ComponentStatus{{Name: Upgrades, Status: incident.PartialOutage}, {Name: Downloads, Status: incident.DegradedPerformance}}})
	if err != nil {
		return fmt.Errorf("update the auto-halt's incident: %w", err)
	}
	// Who leads the response (staff-only: the console shows it, the status
	// page does not).
	for role, who := range map[incident.Role]string{incident.RoleCommander: "Dana (on-call)", incident.RoleCommunications: "Sam",
		incident.RoleReleaseManager: "Rita"} {
		if _, err := d.admin.AssignRole(ctx, id, role, who); err != nil {
			return fmt.Errorf("assign the auto-halt incident's %s: %w", role, err)
		}
	}
	return nil
}
