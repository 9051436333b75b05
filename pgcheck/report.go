package pgcheck

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// SchemaVersion versions the JSON form of every report: each one begins
// with "schema_version" and ends with "duration_seconds" (docs/pg-check.md).
const SchemaVersion = 1

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

// NotChecked is a database an AllDatabases run could not cover, with why.
type NotChecked struct {
	Database string `json:"database"`
	Error    string `json:"error"`
}

// OptionError is an invalid combination of options, named by their field
// names; a caller with other names for them (the CLI's flags) words the same
// message with Phrase.
type OptionError struct {
	// Options are the fields involved, e.g. "BaselineFile", "AllDatabases".
	Options []string
	// Format is the message, with one %s per option, in order.
	Format string
	// Err, if set, is the sentinel error this one is a case of.
	Err error
}

func (e *OptionError) Error() string { return e.Phrase(func(field string) string { return field }) }

// Unwrap returns Err.
func (e *OptionError) Unwrap() error { return e.Err }

// Phrase words the message with name(field) for each option.
func (e *OptionError) Phrase(name func(field string) string) string {
	args := make([]any, len(e.Options))
	for i, o := range e.Options {
		args[i] = name(o)
	}
	return fmt.Sprintf(e.Format, args...)
}

// forEachDatabase runs fn with t for its own database or, when all is set,
// once per database of the server (ListDatabases). A database whose fn fails
// is listed and the others still run; an error is returned when the
// databases cannot be listed, the context ends, or (without all) fn fails.
func forEachDatabase(ctx context.Context, t *Target, all bool, fn func(*Target) error) ([]NotChecked, error) {
	if !all {
		return nil, fn(t)
	}
	dbs, err := ListDatabases(ctx, t)
	if err != nil {
		return nil, err
	}
	failed := []NotChecked{}
	for _, db := range dbs {
		if err := fn(t.ForDatabase(db)); err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			failed = append(failed, NotChecked{Database: db, Error: err.Error()})
		}
	}
	return failed, nil
}

// marshalReport renders v (whose JSON form is an object) as a report:
// "schema_version" first unless v has its own, then v's fields, then
// "duration_seconds" unless v has its own.
func marshalReport(v any, d time.Duration) ([]byte, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil || len(raw) < 2 {
		return nil, fmt.Errorf("render report: %T is not a JSON object", v)
	}
	body := bytes.TrimSpace(raw[1 : len(raw)-1])
	var b bytes.Buffer
	b.WriteByte('{')
	if _, ok := fields["schema_version"]; !ok {
		fmt.Fprintf(&b, `"schema_version":%d`, SchemaVersion)
		if len(body) > 0 {
			b.WriteByte(',')
		}
	}
	b.Write(body)
	if _, ok := fields["duration_seconds"]; !ok {
		b.WriteString(`,"duration_seconds":`)
		b.WriteString(formatSeconds(d))
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}
