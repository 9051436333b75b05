// Package pgcheck proves a PostgreSQL database intact: amcheck on every
// B-tree, heap checks, rows that a collation change moved outside their
// partition or CHECK constraint, and the collation drift PostgreSQL itself
// cannot see. It never prints: long work reports progress through callbacks
// and results come back as values for the caller to render.
//
// Every capability has one shape, X(ctx, *Target, XOptions) (*XReport,
// error): Check, Inventory, Fingerprint, Compare, Duplicates and Repair.
// Options take one func(Progress); each report marshals to its documented
// JSON form (schema_version first, duration_seconds last); errors about
// options name option fields (OptionError), never a caller's flags.
//
// Everything here is read-only unless a function says otherwise: sessions are
// opened with default_transaction_read_only, a statement_timeout and a
// lock_timeout, and no check takes a lock stronger than AccessShareLock unless
// the caller asks for amcheck's parent check.
package pgcheck

import "time"

// Kind classifies a Finding. Kinds are part of the stable JSON output.
type Kind string

// Finding kinds.
const (
	// KindIndexCorrupt: amcheck reported a B-tree index as corrupt.
	KindIndexCorrupt Kind = "index_corrupt"
	// KindHeapCorrupt: verify_heapam reported corruption in a table.
	KindHeapCorrupt Kind = "heap_corrupt"
	// KindPartitionBoundViolation: rows lie outside their partition's bounds.
	KindPartitionBoundViolation Kind = "partition_bound_violation"
	// KindCheckConstraintViolation: stored rows violate a CHECK constraint.
	KindCheckConstraintViolation Kind = "check_constraint_violation"
	// KindCollationVersionMismatch: PostgreSQL's recorded collation version
	// differs from the version the operating system reports now.
	KindCollationVersionMismatch Kind = "collation_version_mismatch"
	// KindCollationChanged: a collation sorts the probe corpus differently
	// from the recorded baseline, whatever the version columns say.
	KindCollationChanged Kind = "collation_changed"
	// KindDuplicateKey: a unique index or constraint is violated by stored rows.
	KindDuplicateKey Kind = "duplicate_key"
)

// Finding is one problem found in a database. Its JSON form is a documented,
// stable contract (docs/pg-check.md).
type Finding struct {
	Kind     Kind   `json:"kind"`
	Database string `json:"database"`
	Schema   string `json:"schema"`
	Table    string `json:"table"`
	// Object is the unqualified index, constraint, partition or collation name.
	Object string `json:"object"`
	// Collation names the collation involved, where one is.
	Collation string `json:"collation,omitempty"`
	Detail    string `json:"detail"`
	// Rows counts offending rows where the check counts them.
	Rows int64 `json:"rows,omitempty"`
	// AtRisk lists the objects depending on a changed collation.
	AtRisk []ObjectRef `json:"at_risk,omitempty"`
}

// ObjectRef names a database object.
type ObjectRef struct {
	Schema string `json:"schema"`
	Table  string `json:"table,omitempty"`
	Object string `json:"object"`
	// Type is the object's kind: index, constraint, partition, ...
	Type string `json:"type"`
}

// Duration is a time.Duration that marshals to JSON as seconds.
type Duration time.Duration

// MarshalJSON renders d as a number of seconds.
func (d Duration) MarshalJSON() ([]byte, error) {
	return []byte(formatSeconds(time.Duration(d))), nil
}

func formatSeconds(d time.Duration) string {
	s := d.Seconds()
	return trimFloat(s)
}
