package sqlstore

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"time"
)

// Conversions between Go values and column values every file of the store
// shares: JSON text columns, nullable timestamps and typed nil pointers.

// jsonText encodes v for a JSON column.
func jsonText(what string, v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("encode %s: %w", what, err)
	}
	return string(b), nil
}

// ptrOrNil turns a typed nil pointer into an untyped nil.
func ptrOrNil[T any](p *T) any {
	if p == nil {
		return nil
	}
	return p
}

// timePtr turns a nullable timestamp into a UTC time, or nil.
func timePtr(t sql.NullTime) *time.Time {
	if !t.Valid {
		return nil
	}
	u := t.Time.UTC()
	return &u
}
