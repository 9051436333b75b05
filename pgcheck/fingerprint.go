package pgcheck

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// TakeFingerprints sorts the built-in probe corpus under every at-risk
// collation in inv, one query per collation.
func TakeFingerprints(ctx context.Context, conn *pgx.Conn, inv *DatabaseInventory) ([]CollationFingerprint, error) {
	var out []CollationFingerprint
	for _, c := range inv.AtRiskCollations() {
		f := CollationFingerprint{Collation: c.Name, Schema: c.Schema, Name: c.sqlName(), Provider: c.Provider,
			Locale: c.Locale, Version: c.ActualVersion}
		order, ties, err := sortUnder(ctx, conn, f.ident(), probeCorpus)
		if err != nil {
			return nil, fmt.Errorf("fingerprint collation %s: %w", c.Name, err)
		}
		f.Order, f.Ties = order, ties
		f.SHA256 = hashOrder(order, ties)
		out = append(out, f)
	}
	return out, nil
}

// AddKeySample adds to each of b's fingerprints up to n distinct keys of
// the database's own data, read from the text key columns of the at-risk
// indexes using the collation (a random sample of pages on large tables),
// and sorts the fingerprint again. Real keys catch changes in characters the
// built-in corpus lacks; they also put the database's data in the baseline,
// which matters when the baseline is a file.
func AddKeySample(ctx context.Context, conn *pgx.Conn, inv *DatabaseInventory, b *Baseline, n int) error {
	if n <= 0 {
		return nil
	}
	c := &comparer{from: conn, inv: inv}
	for i := range b.Fingerprints {
		f := &b.Fingerprints[i]
		have := map[string]bool{}
		for _, s := range f.Order {
			have[s] = true
		}
		added := 0
		for _, o := range inv.DependentsOf(f.Collation) {
			if added >= n || !o.AtRisk || o.Type == ObjectCheckConstraint || o.Type == ObjectForeignKey ||
				o.Type == ObjectPartitionKey {
				continue
			}
			cols, err := keyColumns(ctx, c.from, o.OID)
			if err != nil {
				return fmt.Errorf("sample keys of %s.%s: %w", o.Schema, o.Name, err)
			}
			for _, k := range cols {
				coll, ok := c.collation(k.collation)
				if added >= n || !ok || coll.Name != f.Collation {
					continue
				}
				if err := c.resolveSortType(ctx, &k); err != nil {
					return fmt.Errorf("sample keys of %s.%s: %w", o.Schema, o.Name, err)
				}
				if !textSortTypes[k.sortType] {
					continue
				}
				// Sample as many as wanted from each column, so the
				// fraction of a large table read stays useful; the loop
				// below keeps what still fits.
				c.sample = n
				keys, err := c.sampleKeys(ctx, o, k)
				if err != nil {
					return fmt.Errorf("sample keys of %s.%s: %w", o.Schema, o.Name, err)
				}
				for _, s := range keys {
					if !have[s] && added < n {
						have[s] = true
						f.Order = append(f.Order, s)
						added++
					}
				}
			}
		}
		if added == 0 {
			continue
		}
		order, ties, err := sortUnder(ctx, conn, f.ident(), f.Order)
		if err != nil {
			return fmt.Errorf("fingerprint collation %s with sampled keys: %w", f.Collation, err)
		}
		f.Order, f.Ties, f.SampledKeys = order, ties, added
		f.SHA256 = hashOrder(order, ties)
	}
	return nil
}

// FingerprintStatus is the result of comparing one collation with its
// baseline.
type FingerprintStatus string

// Fingerprint comparison statuses.
const (
	// FingerprintSame: the collation orders the baseline's strings as then.
	FingerprintSame FingerprintStatus = "same"
	// FingerprintChanged: the order changed: finding collation_changed.
	FingerprintChanged = "changed"
	// FingerprintMissing: the baseline's collation no longer exists.
	FingerprintMissing = "missing"
	// FingerprintNew: an at-risk collation in use has no baseline yet.
	FingerprintNew = "new"
	// FingerprintUnavailable: the collation exists but the server cannot
	// sort with it (its locale no longer loads, say): finding
	// collation_changed, since every object using it is unusable.
	FingerprintUnavailable = "unavailable"
)

// FingerprintResult compares one collation with its baseline.
type FingerprintResult struct {
	Collation string            `json:"collation"`
	Status    FingerprintStatus `json:"status"`
	// Provider and Locale are the collation's now; BaselineLocale when it
	// differs from the locale recorded.
	Provider       string `json:"provider,omitempty"`
	Locale         string `json:"locale,omitempty"`
	BaselineLocale string `json:"baseline_locale,omitempty"`
	// BaselineVersion and Version are the library versions PostgreSQL
	// reported when the baseline was taken and now.
	BaselineVersion string `json:"baseline_version,omitempty"`
	Version         string `json:"version,omitempty"`
	BaselineSHA256  string `json:"baseline_sha256,omitempty"`
	SHA256          string `json:"sha256,omitempty"`
	// Strings is how many strings were sorted.
	Strings int `json:"strings,omitempty"`
	// ChangedPairs counts the baseline's neighbouring pairs whose order
	// changed; Examples shows the first few.
	ChangedPairs int         `json:"changed_pairs,omitempty"`
	Examples     []OrderFlip `json:"examples,omitempty"`
	// Error is the server's error for a missing or unavailable collation.
	Error string `json:"error,omitempty"`
}

// CompareFingerprints re-sorts each baseline fingerprint's strings under its
// collation now and reports which collations changed. Each changed one is a
// KindCollationChanged finding listing the inventory's objects that depend
// on it. Collations in use without a baseline are reported as new.
func CompareFingerprints(ctx context.Context, conn *pgx.Conn, inv *DatabaseInventory, base *Baseline) ([]FingerprintResult, []Finding, error) {
	if base.Database != "" && base.Database != inv.Database {
		return nil, nil, fmt.Errorf("compare fingerprints: the baseline was recorded in database %q, not %q: a baseline describes one database's collations and objects",
			base.Database, inv.Database)
	}
	var results []FingerprintResult
	var findings []Finding
	seen := map[string]bool{}
	for _, bf := range base.Fingerprints {
		seen[bf.Collation] = true
		r := FingerprintResult{Collation: bf.Collation, BaselineVersion: bf.Version,
			BaselineSHA256: bf.SHA256, Strings: len(bf.Order), Provider: bf.Provider, Locale: bf.Locale}
		if c, ok := inv.Collation(bf.Collation); ok {
			r.Provider, r.Locale, r.Version = c.Provider, c.Locale, c.ActualVersion
		}
		if r.Locale != bf.Locale {
			r.BaselineLocale = bf.Locale
		}
		order, ties, err := sortUnder(ctx, conn, bf.ident(), bf.Order)
		if err != nil {
			// An error of this one collation (dropped, or its locale no
			// longer loads) is its result; only a cancelled context or a
			// broken connection stops the comparison.
			var pgErr *pgconn.PgError
			if !errors.As(err, &pgErr) || ctx.Err() != nil || conn.IsClosed() {
				return nil, nil, fmt.Errorf("compare fingerprint of collation %s: %w", bf.Collation, err)
			}
			r.Error = pgErr.Message
			if _, inUse := inv.Collation(bf.Collation); pgErr.Code == "42704" && !inUse { // undefined_object
				r.Status = FingerprintMissing
			} else {
				r.Status = FingerprintUnavailable
				findings = append(findings, unavailableFinding(inv, r))
			}
			results = append(results, r)
			continue
		}
		r.SHA256 = hashOrder(order, ties)
		r.ChangedPairs, r.Examples = orderFlips(bf.Order, bf.Ties, order, ties)
		r.Status = FingerprintSame
		if r.ChangedPairs > 0 || r.SHA256 != bf.SHA256 {
			r.Status = FingerprintChanged
			findings = append(findings, changedFinding(inv, base, r))
		}
		results = append(results, r)
	}
	for _, c := range inv.AtRiskCollations() {
		if !seen[c.Name] {
			results = append(results, FingerprintResult{Collation: c.Name, Status: FingerprintNew,
				Provider: c.Provider, Locale: c.Locale, Version: c.ActualVersion})
		}
	}
	return results, findings, nil
}

func changedFinding(inv *DatabaseInventory, base *Baseline, r FingerprintResult) Finding {
	var b strings.Builder
	fmt.Fprintf(&b, "collation %s (%s %s) orders %d of %d neighbouring probe strings differently from the baseline",
		r.Collation, r.Provider, r.Locale, r.ChangedPairs, r.Strings-1)
	if !base.RecordedAt.IsZero() {
		fmt.Fprintf(&b, " recorded %s", base.RecordedAt.UTC().Format(time.RFC3339))
	}
	if len(r.Examples) > 0 {
		fmt.Fprintf(&b, ", e.g. %s", r.Examples[0])
	}
	switch {
	case r.BaselineVersion == r.Version:
		fmt.Fprintf(&b, "; PostgreSQL reports the same collation version (%s) before and after", orNone(r.Version))
	default:
		fmt.Fprintf(&b, "; collation version %s then, %s now", orNone(r.BaselineVersion), orNone(r.Version))
	}
	if r.BaselineLocale != "" {
		fmt.Fprintf(&b, "; locale was %s", r.BaselineLocale)
	}
	return collationChanged(inv, r.Collation, b.String())
}

// collationChanged is a KindCollationChanged finding on collation name,
// listing the inventory's objects that depend on it.
func collationChanged(inv *DatabaseInventory, name, detail string) Finding {
	f := Finding{Kind: KindCollationChanged, Database: inv.Database, Object: name, Collation: name, Detail: detail}
	if c, ok := inv.Collation(name); ok {
		f.Schema, f.Object = c.Schema, c.sqlName()
	}
	for _, o := range inv.DependentsOf(name) {
		f.AtRisk = append(f.AtRisk, o.Ref())
	}
	return f
}

// unavailableFinding reports a collation the server can no longer sort
// with: the objects depending on it fail on every comparison.
func unavailableFinding(inv *DatabaseInventory, r FingerprintResult) Finding {
	return collationChanged(inv, r.Collation, fmt.Sprintf(
		"collation %s (%s %s) can no longer be used, locale no longer available: %s",
		r.Collation, r.Provider, r.Locale, r.Error))
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// checkFingerprint compares conn's database with its collation baseline:
// the file baselineFile, or when empty the baseline recorded in the
// database's ringfence schema. It returns a KindCollationChanged finding per
// changed collation and whether a baseline existed (no baseline: no
// findings, nothing to compare). pg check calls it on every run; it takes
// one catalog read (none when inv is given) and one small sort per
// collation. At-risk collations in use that the baseline lacks cannot be
// vouched for: they are returned as an *UncoveredError next to the findings.
func checkFingerprint(ctx context.Context, conn *pgx.Conn, baselineFile string, inv *DatabaseInventory) ([]Finding, bool, error) {
	var base *Baseline
	if baselineFile != "" {
		b, err := ReadBaselineFile(baselineFile)
		if err != nil {
			return nil, false, err
		}
		base = b
	} else {
		b, ok, err := LoadBaseline(ctx, conn)
		if err != nil || !ok {
			return nil, false, err
		}
		base = b
	}
	if inv == nil {
		var err error
		if inv, err = ReadInventory(ctx, conn); err != nil {
			return nil, true, err
		}
	}
	results, findings, err := CompareFingerprints(ctx, conn, inv, base)
	if err != nil {
		return nil, true, err
	}
	return findings, true, Uncovered(results)
}

// Uncovered returns an *UncoveredError naming the collations of results
// that have no baseline (status new), or nil.
func Uncovered(results []FingerprintResult) error {
	var names []string
	for _, r := range results {
		if r.Status == FingerprintNew {
			names = append(names, r.Collation)
		}
	}
	if len(names) == 0 {
		return nil
	}
	return &UncoveredError{Collations: names}
}

// UncoveredError names at-risk collations in use that the baseline lacks:
// their changes cannot be seen until the baseline is recorded again.
type UncoveredError struct {
	Collations []string
}

func (e *UncoveredError) Error() string {
	return "at-risk collations in use are not in the baseline, so their changes cannot be seen: " +
		strings.Join(e.Collations, ", ") + "; record the baseline again"
}

// FingerprintOptions configures Fingerprint.
type FingerprintOptions struct {
	// AllDatabases compares every database the role may connect to.
	AllDatabases bool
	// Record takes the fingerprints as the new baseline instead of
	// comparing with it (not with AllDatabases: templates must not get one).
	Record bool
	// BaselineFile keeps the baseline in a file instead of the database's
	// ringfence schema (one database's: not with AllDatabases).
	BaselineFile string
	// SampleKeys, with Record, adds up to this many of the database's own
	// index keys per collation (AddKeySample).
	SampleKeys int
}

// FingerprintSummary is one fingerprint without its strings.
type FingerprintSummary struct {
	Collation string `json:"collation"`
	Provider  string `json:"provider"`
	Locale    string `json:"locale"`
	Version   string `json:"version,omitempty"`
	Strings   int    `json:"strings"`
	// SampledKeys is how many of Strings are the database's own keys.
	SampledKeys int    `json:"sampled_keys,omitempty"`
	SHA256      string `json:"sha256"`
}

// DatabaseFingerprint is one database's fingerprint run: the baseline
// recorded, or the comparison with it.
type DatabaseFingerprint struct {
	Database string `json:"database"`
	// Baseline is where the baseline is (a file or BaselineTable).
	Baseline string `json:"baseline"`
	// Recorded is true when this run recorded the baseline.
	Recorded bool `json:"recorded"`
	// BaselineFound is false when there was no baseline to compare with.
	BaselineFound      bool                 `json:"baseline_found"`
	BaselineRecordedAt *time.Time           `json:"baseline_recorded_at,omitempty"`
	Fingerprints       []FingerprintSummary `json:"fingerprints,omitempty"`
	Results            []FingerprintResult  `json:"results,omitempty"`
	Findings           []Finding            `json:"findings"`
	Elapsed            Duration             `json:"elapsed_seconds"`
}

// FingerprintReport is the result of Fingerprint. Its JSON form is one
// database's DatabaseFingerprint, or with AllDatabases the list of them,
// every finding and the databases not checked (docs/pg-check.md).
type FingerprintReport struct {
	// AllDatabases selects the JSON form.
	AllDatabases bool
	Databases    []DatabaseFingerprint
	NotChecked   []NotChecked
	Duration     time.Duration
}

// Findings returns the findings of every database.
func (r *FingerprintReport) Findings() []Finding {
	findings := []Finding{}
	for _, d := range r.Databases {
		findings = append(findings, d.Findings...)
	}
	return findings
}

// Uncovered returns the first database's *UncoveredError (wrapped with the
// database's name), or nil.
func (r *FingerprintReport) Uncovered() error {
	for _, d := range r.Databases {
		if err := Uncovered(d.Results); err != nil {
			return fmt.Errorf("database %s: %w", d.Database, err)
		}
	}
	return nil
}

// MarshalJSON renders the report's documented JSON form.
func (r *FingerprintReport) MarshalJSON() ([]byte, error) {
	if !r.AllDatabases && len(r.Databases) == 1 {
		return marshalReport(r.Databases[0], r.Duration)
	}
	return marshalReport(struct {
		Databases  []DatabaseFingerprint `json:"databases"`
		Findings   []Finding             `json:"findings"`
		NotChecked []NotChecked          `json:"not_checked"`
	}{r.Databases, r.Findings(), r.NotChecked}, r.Duration)
}

// Fingerprint detects collation changes PostgreSQL cannot see: it records
// the fingerprints of every at-risk collation as the baseline (Record), or
// compares them with the baseline recorded (in the database's ringfence
// schema, or BaselineFile). Recording in the database opens a read-write
// session; everything else is read-only.
func Fingerprint(ctx context.Context, t *Target, opts FingerprintOptions) (*FingerprintReport, error) {
	start := time.Now()
	switch {
	case opts.SampleKeys < 0 || (opts.SampleKeys > 0 && !opts.Record):
		return nil, &OptionError{Options: []string{"SampleKeys", "Record"}, Format: "%s takes a positive number and needs %s"}
	case opts.AllDatabases && opts.BaselineFile != "":
		return nil, &OptionError{Options: []string{"BaselineFile", "AllDatabases"}, Format: "%s holds one database's fingerprints: use it without %s"}
	case opts.AllDatabases && opts.Record:
		// It would also record into template1, and so into every database
		// created from it later.
		return nil, &OptionError{Options: []string{"Record", "AllDatabases"},
			Format: "%s %s is refused: record each database's baseline on its own (templates must not get one)"}
	}
	if opts.Record && opts.BaselineFile == "" {
		t = t.WithOptions(ConnOptions{ReadWrite: true})
	}
	rep := &FingerprintReport{AllDatabases: opts.AllDatabases}
	var err error
	rep.Databases, rep.NotChecked, err = perDatabase(ctx, t, opts.AllDatabases, func(conn *pgx.Conn) (DatabaseFingerprint, error) {
		return fingerprintDatabase(ctx, conn, opts, time.Now())
	})
	if err != nil {
		return nil, err
	}
	rep.Duration = time.Since(start)
	return rep, nil
}

// fingerprintDatabase records conn's database's baseline, or compares with
// it (the database's, or opts.BaselineFile).
func fingerprintDatabase(ctx context.Context, conn *pgx.Conn, opts FingerprintOptions, start time.Time) (DatabaseFingerprint, error) {
	var rep DatabaseFingerprint
	inv, err := ReadInventory(ctx, conn)
	if err != nil {
		return rep, err
	}
	file := opts.BaselineFile
	rep = DatabaseFingerprint{Database: inv.Database, Baseline: file, Findings: []Finding{}}
	if file == "" {
		rep.Baseline = BaselineTable
	}

	var base *Baseline
	switch {
	case opts.Record:
		base, err = NewBaseline(ctx, conn, inv)
		if err == nil {
			err = AddKeySample(ctx, conn, inv, base, opts.SampleKeys)
		}
		if err == nil {
			if file != "" {
				err = WriteBaselineFile(file, base)
			} else {
				err = RecordBaseline(ctx, conn, base)
			}
		}
		if err != nil {
			return rep, err
		}
		rep.Recorded, rep.BaselineFound = true, true
	case file != "":
		base, err = ReadBaselineFile(file)
		if err != nil {
			return rep, err
		}
		rep.BaselineFound = true
	default:
		base, rep.BaselineFound, err = LoadBaseline(ctx, conn)
		if err != nil {
			return rep, err
		}
	}

	switch {
	case opts.Record:
		rep.Fingerprints = summarize(base.Fingerprints)
	case rep.BaselineFound:
		rep.Results, rep.Findings, err = CompareFingerprints(ctx, conn, inv, base)
		if err != nil {
			return rep, err
		}
		if rep.Findings == nil {
			rep.Findings = []Finding{}
		}
	default:
		fps, err := TakeFingerprints(ctx, conn, inv)
		if err != nil {
			return rep, err
		}
		rep.Fingerprints = summarize(fps)
	}
	if base != nil && !base.RecordedAt.IsZero() {
		at := base.RecordedAt
		rep.BaselineRecordedAt = &at
	}
	rep.Elapsed = Duration(time.Since(start))
	return rep, nil
}

func summarize(fps []CollationFingerprint) []FingerprintSummary {
	out := make([]FingerprintSummary, 0, len(fps))
	for _, f := range fps {
		out = append(out, FingerprintSummary{Collation: f.Collation, Provider: f.Provider, Locale: f.Locale,
			Version: f.Version, Strings: len(f.Order), SampledKeys: f.SampledKeys, SHA256: f.SHA256})
	}
	return out
}

// NewBaseline fingerprints every at-risk collation of conn's database.
func NewBaseline(ctx context.Context, conn *pgx.Conn, inv *DatabaseInventory) (*Baseline, error) {
	fps, err := TakeFingerprints(ctx, conn, inv)
	if err != nil {
		return nil, err
	}
	return &Baseline{Format: baselineFormat, RecordedAt: time.Now().UTC().Truncate(time.Second),
		Database: inv.Database, ServerVersion: inv.ServerVersion, Fingerprints: fps}, nil
}

// RecordFingerprints takes the fingerprints of every at-risk collation the
// database uses now and records them as its baseline (RecordBaseline): what
// `pg fingerprint --record` does, and what a repair does once the indexes
// follow the current order.
func RecordFingerprints(ctx context.Context, conn *pgx.Conn) error {
	inv, err := ReadInventory(ctx, conn)
	if err != nil {
		return err
	}
	b, err := NewBaseline(ctx, conn, inv)
	if err != nil {
		return err
	}
	return RecordBaseline(ctx, conn, b)
}
