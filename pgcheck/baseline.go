package pgcheck

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/jackc/pgx/v5"
)

// baselineFormat is the version of the baseline file and table layout.
const baselineFormat = 1

// BaselineTable is where a database's own collation baseline lives.
const BaselineTable = "ringfence.collation_fingerprint"

// Baseline is a recorded set of collation fingerprints that later runs
// compare with.
type Baseline struct {
	// Format is the layout version (1).
	Format int `json:"format"`
	// RecordedAt is when the baseline was taken.
	RecordedAt time.Time `json:"recorded_at"`
	// Database and ServerVersion say where it was taken.
	Database      string `json:"database"`
	ServerVersion string `json:"server_version"`
	// Fingerprints holds one fingerprint per at-risk collation.
	Fingerprints []CollationFingerprint `json:"fingerprints"`
}

// ReadBaselineFile reads a baseline written by WriteBaselineFile.
func ReadBaselineFile(path string) (*Baseline, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read collation baseline: %w", err)
	}
	var b Baseline
	if err := json.Unmarshal(data, &b); err != nil {
		return nil, fmt.Errorf("read collation baseline %s: %w", path, err)
	}
	if err := b.validate(); err != nil {
		return nil, fmt.Errorf("read collation baseline %s: %w", path, err)
	}
	return &b, nil
}

func (b *Baseline) validate() error {
	if b.Format != baselineFormat {
		return fmt.Errorf("unsupported baseline format %d (this ringfence reads %d)", b.Format, baselineFormat)
	}
	for _, f := range b.Fingerprints {
		if f.Collation == "" || f.Name == "" || f.Schema == "" || len(f.Order) == 0 {
			return fmt.Errorf("fingerprint %q is incomplete", f.Collation)
		}
		if err := f.validate(); err != nil {
			return fmt.Errorf("fingerprint %q: %w: the baseline is corrupt or was edited; record it again", f.Collation, err)
		}
	}
	return nil
}

// validate checks that f's strings are distinct, its ties point inside the
// order in increasing positions, and its hash is theirs: the comparison
// trusts all three.
func (f CollationFingerprint) validate() error {
	seen := make(map[string]bool, len(f.Order))
	for _, s := range f.Order {
		if seen[s] {
			return fmt.Errorf("string %q appears twice", s)
		}
		seen[s] = true
	}
	for i, t := range f.Ties {
		if t < 1 || t >= len(f.Order) || (i > 0 && t <= f.Ties[i-1]) {
			return fmt.Errorf("tie position %d out of order or range", t)
		}
	}
	if got := hashOrder(f.Order, f.Ties); got != f.SHA256 {
		return fmt.Errorf("sha256 %s does not match its strings (%s)", f.SHA256, got)
	}
	return nil
}

// WriteBaselineFile writes b to path atomically (a temporary file renamed
// into place).
func WriteBaselineFile(path string, b *Baseline) error {
	data, err := json.MarshalIndent(b, "", "  ")
	if err != nil {
		return fmt.Errorf("encode collation baseline: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".baseline-*")
	if err != nil {
		return fmt.Errorf("write collation baseline: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("write collation baseline: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write collation baseline: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write collation baseline: %w", err)
	}
	return nil
}

// RecordBaseline stores b in the database's ringfence schema, replacing any
// earlier baseline, creating the schema and table when missing. conn must
// be a read-write session (ConnOptions.ReadWrite). The table's key uses
// the C collation, so it is itself safe from collation changes; standbys
// receive the baseline by replication and can compare against it.
//
// An existing schema or table is used only when owned by the current user
// or a superuser, and the table only as the plain table RecordBaseline
// creates (no triggers, rules, row security or column defaults): otherwise
// whoever created it could run code as the recording user, who is often a
// superuser, or forge the baseline.
func RecordBaseline(ctx context.Context, conn *pgx.Conn, b *Baseline) error {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return fmt.Errorf("record collation baseline: %w", err)
	}
	defer tx.Rollback(ctx)
	stmts := []string{
		`CREATE SCHEMA IF NOT EXISTS ringfence AUTHORIZATION CURRENT_USER`,
		`CREATE TABLE IF NOT EXISTS ` + BaselineTable + ` (
			collation_name text COLLATE "C" PRIMARY KEY,
			fingerprint    jsonb NOT NULL,
			format         int NOT NULL,
			server_version text NOT NULL,
			recorded_at    timestamptz NOT NULL)`,
		`LOCK TABLE ` + BaselineTable + ` IN ACCESS EXCLUSIVE MODE`,
	}
	for _, s := range stmts {
		if _, err := tx.Exec(ctx, s); err != nil {
			return fmt.Errorf("record collation baseline: %w", err)
		}
	}
	if err := verifyBaselineTable(ctx, tx, false); err != nil {
		return fmt.Errorf("record collation baseline: %w", err)
	}
	stmts = []string{
		`REVOKE ALL ON SCHEMA ringfence FROM PUBLIC`,
		`REVOKE ALL ON TABLE ` + BaselineTable + ` FROM PUBLIC`,
		`COMMENT ON TABLE ` + BaselineTable + ` IS 'collation fingerprints recorded by ringfence pg fingerprint --record'`,
		`DELETE FROM ` + BaselineTable,
	}
	for _, s := range stmts {
		if _, err := tx.Exec(ctx, s); err != nil {
			return fmt.Errorf("record collation baseline: %w", err)
		}
	}
	for _, f := range b.Fingerprints {
		data, err := json.Marshal(f)
		if err != nil {
			return fmt.Errorf("record collation baseline: encode %s: %w", f.Collation, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO `+BaselineTable+
			` (collation_name, fingerprint, format, server_version, recorded_at) VALUES ($1, $2, $3, $4, $5)`,
			f.Collation, data, b.Format, b.ServerVersion, b.RecordedAt); err != nil {
			return fmt.Errorf("record collation baseline for %s: %w", f.Collation, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("record collation baseline: %w", err)
	}
	return nil
}

// baselineColumns is the baseline table's layout: name and type per column.
const baselineColumns = "collation_name text, fingerprint jsonb, format integer, server_version text, " +
	"recorded_at timestamp with time zone"

// verifyBaselineTable checks that the baseline table and its schema can be
// trusted. Writing (reading false) needs owners that are the current user
// or superusers and the plain table RecordBaseline creates. Reading also
// accepts the database's owner (a monitoring role reads what the owner
// recorded) and needs a plain table.
func verifyBaselineTable(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, reading bool) error {
	var (
		schemaOwner, tableOwner string
		schemaOK, tableOK       bool
		relkind                 string
		code                    bool
		columns                 string
	)
	err := q.QueryRow(ctx, `
		WITH trusted AS (
			SELECT r.oid, r.rolname,
			       r.rolname = current_user OR r.rolsuper
			       OR ($1 AND r.oid = (SELECT datdba FROM pg_database WHERE datname = current_database()))
			         AS ok
			FROM pg_roles r)
		SELECT so.rolname, so.ok, tr.rolname, tr.ok, c.relkind::text,
		       EXISTS (SELECT 1 FROM pg_trigger g WHERE g.tgrelid = c.oid)
		       OR EXISTS (SELECT 1 FROM pg_rewrite w WHERE w.ev_class = c.oid)
		       OR c.relrowsecurity
		       OR EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.atthasdef),
		       (SELECT string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod), ', ' ORDER BY a.attnum)
		          FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped)
		FROM pg_class c
		JOIN pg_namespace n ON n.oid = c.relnamespace
		JOIN trusted so ON so.oid = n.nspowner
		JOIN trusted tr ON tr.oid = c.relowner
		WHERE c.oid = $2::regclass`, reading, BaselineTable).
		Scan(&schemaOwner, &schemaOK, &tableOwner, &tableOK, &relkind, &code, &columns)
	if err != nil {
		return fmt.Errorf("verify %s: %w", BaselineTable, err)
	}
	switch {
	case !schemaOK:
		return fmt.Errorf("schema ringfence is owned by role %s, which ringfence does not trust with the baseline: drop the schema or change its owner", schemaOwner)
	case !tableOK:
		return fmt.Errorf("%s is owned by role %s, which ringfence does not trust with the baseline: drop the table or change its owner", BaselineTable, tableOwner)
	case relkind != "r":
		return fmt.Errorf("%s is not a plain table (relkind %s)", BaselineTable, relkind)
	case !reading && code:
		return fmt.Errorf("%s has triggers, rules, row security or column defaults that ringfence did not create: not writing to it", BaselineTable)
	case !reading && columns != baselineColumns:
		return fmt.Errorf("%s has columns (%s), want (%s)", BaselineTable, columns, baselineColumns)
	}
	return nil
}

// LoadBaseline reads the baseline recorded in conn's database; ok is false
// when none was recorded. It works in read-only sessions and on standbys.
func LoadBaseline(ctx context.Context, conn *pgx.Conn) (b *Baseline, ok bool, err error) {
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, BaselineTable).Scan(&exists); err != nil {
		return nil, false, fmt.Errorf("load collation baseline: %w", err)
	}
	if !exists {
		return nil, false, nil
	}
	if err := verifyBaselineTable(ctx, conn, true); err != nil {
		return nil, false, fmt.Errorf("load collation baseline: %w", err)
	}
	rows, err := conn.Query(ctx, `SELECT fingerprint, format, server_version, recorded_at, current_database()
		FROM `+BaselineTable+` ORDER BY collation_name`)
	if err != nil {
		return nil, false, fmt.Errorf("load collation baseline: %w", err)
	}
	defer rows.Close()
	b = &Baseline{}
	for rows.Next() {
		var data []byte
		var f CollationFingerprint
		if err := rows.Scan(&data, &b.Format, &b.ServerVersion, &b.RecordedAt, &b.Database); err != nil {
			return nil, false, fmt.Errorf("load collation baseline: %w", err)
		}
		if err := json.Unmarshal(data, &f); err != nil {
			return nil, false, fmt.Errorf("load collation baseline: decode fingerprint: %w", err)
		}
		b.Fingerprints = append(b.Fingerprints, f)
	}
	if err := rows.Err(); err != nil {
		return nil, false, fmt.Errorf("load collation baseline: %w", err)
	}
	if len(b.Fingerprints) == 0 {
		return nil, false, nil
	}
	if err := b.validate(); err != nil {
		return nil, false, fmt.Errorf("load collation baseline from %s: %w", BaselineTable, err)
	}
	return b, true, nil
}

// CollationFingerprint is how one collation orders a set of probe strings, as the
// server sorted them. Two fingerprints of the same strings differ exactly
// when the collation orders those strings differently, whatever its version
// says.
type CollationFingerprint struct {
	// Collation is the collation's inventory key (CollationInfo.Name).
	Collation string `json:"collation"`
	// Schema and Name are the collation's SQL name ("pg_catalog",
	// "default" for the database's own collation).
	Schema string `json:"schema"`
	Name   string `json:"name"`
	// Provider and Locale describe the collation when it was taken.
	Provider string `json:"provider"`
	Locale   string `json:"locale"`
	// Version is the version the server's library reported then.
	Version string `json:"version,omitempty"`
	// SHA256 hashes Order and Ties.
	SHA256 string `json:"sha256"`
	// Order is the probe strings in the order the server sorted them.
	Order []string `json:"order"`
	// Ties lists the positions i where Order[i] compared equal to
	// Order[i-1] (nondeterministic collations only).
	Ties []int `json:"ties,omitempty"`
	// SampledKeys counts the database's own keys added to the probe
	// corpus by AddKeySample.
	SampledKeys int `json:"sampled_keys,omitempty"`
}

// ident is the collation's quoted SQL name.
func (f CollationFingerprint) ident() string { return QuoteIdent(f.Schema, f.Name) }
