package release

import "time"

// AuditFilter selects audit entries: up to Limit of those that match every
// field set, newest first. Zero fields select everything.
type AuditFilter struct {
	// Before keeps entries with ids below it: the last id of a page asks
	// for the next one.
	Before int64
	// Limit is how many entries at most.
	Limit int
	// Product keeps entries about the product: targets product/P,
	// product/P/…, release/P@…, customer/P/… and installation/P/….
	Product string
	// Release keeps entries about the release with this version
	// (release/…@V and release/…@V/…), of Product when that is set too.
	Release string
	// Action keeps the action and the actions below it ("gate" keeps
	// "gate.post").
	Action string
	// Actor keeps entries whose actor (name and token id) contains it.
	Actor string
	// Since keeps entries recorded at or after it.
	Since time.Time
}

// InstallationFilter selects a product's installations: the page of
// those that match every field set, most recently seen first. Zero fields
// select everything.
type InstallationFilter struct {
	// Limit is how many at most; Offset how many matching ones to pass
	// over first (the next page: Offset + Limit).
	Limit, Offset int
	// Version keeps installations last seen on it.
	Version string
	// Customer keeps the customer's installations.
	Customer string
	// Ring keeps installations of customers in the ring.
	Ring string
	// Health keeps installations whose last health report had this status.
	Health HealthStatus
}
