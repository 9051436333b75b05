package pgcheck

// Progress reports how far a long run has come: every capability's options
// take a func(Progress), called from one goroutine at a time. Which fields
// are set depends on the capability: Check sets them all but Event;
// Compare and Duplicates set Database, Done and Total (Duplicates also
// Current, the index it starts on); Repair sets Database and Event.
type Progress struct {
	Database string
	// Worker is the session (0..Jobs-1) the event belongs to.
	Worker int
	// Current describes the work the worker just started ("" when idle).
	Current string
	// Done and Total count the units of work in the current database.
	Done, Total int
	// BytesDone and BytesTotal weigh Check's work by relation size.
	BytesDone, BytesTotal int64
	// Event is the repair action that started or ended.
	Event *RepairEvent
}

// RepairStep is a step of a repair, as journaled in
// ringfence.repair_log.step.
type RepairStep string

// Repair steps.
const (
	StepDropLeftover RepairStep = "drop_leftover"
	StepDedupe                  = "dedupe"
	StepReroute                 = "reroute"
	StepRebuild                 = "rebuild"
	StepInstall                 = "install_amcheck"
	StepVerify                  = "verify"
	StepRefresh                 = "refresh_version"
	StepBaseline                = "record_baseline"
)

// RepairStatus is the status of a RepairEvent and of a journal row.
type RepairStatus string

// Repair statuses.
const (
	StatusStarted RepairStatus = "started"
	StatusDone                 = "done"
	StatusRetry                = "retry"
	StatusFailed               = "failed"
	StatusSkipped              = "skipped"
)

// RepairEvent is one action of a repair, reported as it starts and ends.
type RepairEvent struct {
	Step   RepairStep   `json:"step"`
	Target string       `json:"target"`
	Status RepairStatus `json:"status"`
	SQL    string       `json:"sql,omitempty"`
	// Rows counts the rows the action deleted or moved.
	Rows    int64    `json:"rows,omitempty"`
	Attempt int      `json:"attempt,omitempty"`
	Error   string   `json:"error,omitempty"`
	Elapsed Duration `json:"elapsed,omitempty"`
}
