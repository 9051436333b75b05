package client

import "github.com/ringfence/ringfence/api"

// The request and response bodies of the admin API are package api's
// types, which the server decodes and answers too; these aliases name them
// here for the client's callers.
type (
	// Identity is who the client's API token belongs to.
	Identity = api.Identity

	// NewProduct is a product to create. A nil Halt gets the server's default
	// auto-halt policy.
	NewProduct = api.NewProduct

	// ProductPatch changes a product; nil fields stay as they are.
	ProductPatch = api.ProductPatch

	// RingPatch changes a ring; nil fields stay as they are.
	RingPatch = api.RingPatch

	// EnrollmentKey is a customer's key for its installations' check-ins. Key,
	// the secret, is only set in the answer to CreateEnrollmentKey.
	EnrollmentKey = api.EnrollmentKey

	// NewRelease is a release to create.
	NewRelease = api.NewRelease

	// PullRequest is a pull: why, the incident, and the guidance for
	// installations already on the release.
	PullRequest = api.PullRequest

	// Status is where every release of a product stands, newest first.
	Status = api.Status

	// InstallationQuery filters and pages a product's installations.
	InstallationQuery = api.InstallationQuery

	// Token is an API token. Secret is only set in the answer to CreateToken.
	Token = api.Token

	// AuditQuery filters and pages the audit log.
	AuditQuery = api.AuditQuery

	// NewComponent is a component to create on the status page.
	NewComponent = api.NewComponent

	// ComponentStatus names a component and the status an incident update sets.
	ComponentStatus = api.ComponentStatus

	// ComponentPatch changes the fields it sets; an empty Group moves the
	// component to the top level.
	ComponentPatch = api.ComponentPatch

	// Declaration is an incident to declare. Template names a template that
	// fills the fields left empty; Notify nil means true.
	Declaration = api.Declaration

	// Declared is a declared incident and the releases its severity paused.
	Declared = api.Declared

	// IncidentUpdate is an update to post; Notify nil means true.
	IncidentUpdate = api.IncidentUpdate

	// NewMaintenance is a maintenance to schedule.
	NewMaintenance = api.NewMaintenance

	// PulledRelease is the answer to a pull: the release and the incident the
	// pull linked or opened.
	PulledRelease = api.PulledRelease

	// NewSubscriber is a status page subscriber to create: a webhook (with its
	// Standard Webhooks secret, or one is generated) or an email address (sent
	// an opt-in link first), scoped to components by name (none: everything).
	NewSubscriber = api.NewSubscriber

	// CreatedSubscriber is a new subscriber with its webhook signing secret,
	// which is shown only now.
	CreatedSubscriber = api.CreatedSubscriber
)
