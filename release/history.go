package release

import "time"

// InstallationHistory is one installation (instance id of a product; the
// same id under two customers is two installations) as the server knows
// it: its current record and the events and damage reports it sent, newest
// first, as far back as the retention keeps them.
type InstallationHistory struct {
	Installations []Installation    `json:"installations"`
	Events        []InstanceEvent   `json:"events"`
	Reports       []HealthReportRow `json:"health_reports"`
}

// HealthReportRow is a damage report (corrupt, collation_changed) an
// installation sent, as stored.
type HealthReportRow struct {
	Version Version      `json:"version"`
	Status  HealthStatus `json:"status"`
	Detail  string       `json:"detail,omitempty"`
	At      time.Time    `json:"at"`
}
