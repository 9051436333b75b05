package pgcheck

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// SchemaVersion versions the JSON form of every report: each one begins
// with "schema_version" and ends with "duration_seconds" (docs/pg-check.md).
const SchemaVersion = 1

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

// optionErrorf builds an OptionError, a case of sentinel (nil: none), from
// a message formatted with format and args in which each option appears
// as {{Field}}.
func optionErrorf(sentinel error, format string, args ...any) *OptionError {
	text := strings.ReplaceAll(fmt.Sprintf(format, args...), "%", "%%")
	e := &OptionError{Err: sentinel}
	for {
		before, rest, ok := strings.Cut(text, "{{")
		field, after, ok2 := strings.Cut(rest, "}}")
		if !ok || !ok2 {
			e.Format += text
			return e
		}
		e.Options = append(e.Options, field)
		e.Format += before + "%[" + strconv.Itoa(len(e.Options)) + "]s"
		text = after
	}
}

// perDatabase runs read on a session to t's database or, when all is set,
// to each database of the server (ListDatabases), and collects the results.
// A database whose read fails is listed in the NotChecked and the others
// still run; an error is returned when the databases cannot be listed, the
// context ends, or (without all) read fails.
func perDatabase[T any](ctx context.Context, t *Target, all bool, read func(*pgx.Conn) (T, error)) ([]T, []NotChecked, error) {
	var out []T
	readOne := func(t *Target) error {
		conn, err := t.Connect(ctx, "")
		if err != nil {
			return err
		}
		defer conn.Close(context.WithoutCancel(ctx))
		v, err := read(conn)
		if err == nil {
			out = append(out, v)
		}
		return err
	}
	if !all {
		if err := readOne(t); err != nil {
			return nil, nil, err
		}
		return out, nil, nil
	}
	dbs, err := ListDatabases(ctx, t)
	if err != nil {
		return nil, nil, err
	}
	failed := []NotChecked{}
	for _, db := range dbs {
		if err := readOne(t.ForDatabase(db)); err != nil {
			if ctx.Err() != nil {
				return nil, nil, ctx.Err()
			}
			failed = append(failed, NotChecked{Database: db, Error: err.Error()})
		}
	}
	return out, failed, nil
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
