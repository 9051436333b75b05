package pgcheck

import (
	"context"
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// Scope selects which objects Check verifies.
type Scope string

const (
	// ScopeAll checks every B-tree index (and heap with CheckOptions.Heap).
	ScopeAll Scope = "all"
	// ScopeCollation checks only objects whose correctness depends on a
	// collation that is not C, POSIX or ucs_basic.
	ScopeCollation Scope = "collation"
)

// ParseScope parses "all" or "collation".
func ParseScope(s string) (Scope, error) {
	switch Scope(s) {
	case ScopeAll, ScopeCollation:
		return Scope(s), nil
	}
	return "", fmt.Errorf("unknown scope %q (want all or collation)", s)
}

// Filter restricts which relations are checked. Patterns are shell globs
// (path.Match) matched against the unqualified name, or against
// "schema.name" when the pattern contains a dot. Empty include lists
// include everything. Every include pattern must select something: Check
// refuses a run in which one matched nothing (a misspelt name is never a
// clean bill of health).
type Filter struct {
	Schemas, ExcludeSchemas []string
	Tables, ExcludeTables   []string
	Indexes, ExcludeIndexes []string
	// ExcludeCatalogs skips pg_catalog, pg_toast and information_schema.
	ExcludeCatalogs bool

	// hits records the include patterns that selected something (nil:
	// not recorded).
	hits *patternHits
}

// patternHits is the set of include patterns that selected an object.
type patternHits struct {
	mu  sync.Mutex
	hit map[string]bool
}

func (h *patternHits) mark(flag string, patterns []string, schema, name string) {
	if h == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, p := range patterns {
		if matchAny([]string{p}, schema, name) {
			h.hit[flag+" "+p] = true
		}
	}
}

// tracking returns a copy of f that records which include patterns
// select something.
func (f Filter) tracking() Filter {
	f.hits = &patternHits{hit: map[string]bool{}}
	return f
}

// unmatched lists the include patterns that selected nothing, each as its
// field and pattern ("Tables nosuch").
func (f Filter) unmatched() []string {
	if f.hits == nil {
		return nil
	}
	f.hits.mu.Lock()
	defer f.hits.mu.Unlock()
	var out []string
	for _, l := range []struct {
		flag     string
		patterns []string
	}{{"Schemas", f.Schemas}, {"Tables", f.Tables}, {"Indexes", f.Indexes}} {
		for _, p := range l.patterns {
			if !f.hits.hit[l.flag+" "+p] {
				out = append(out, l.flag+" "+p)
			}
		}
	}
	return out
}

// Validate reports a malformed pattern.
func (f Filter) Validate() error {
	for _, list := range [][]string{f.Schemas, f.ExcludeSchemas, f.Tables, f.ExcludeTables, f.Indexes, f.ExcludeIndexes} {
		for _, p := range list {
			if _, err := path.Match(p, ""); err != nil {
				return fmt.Errorf("bad pattern %q: %w", p, err)
			}
		}
	}
	return nil
}

func matchAny(patterns []string, schema, name string) bool {
	for _, p := range patterns {
		subject := name
		if strings.Contains(p, ".") {
			subject = schema + "." + name
		}
		if ok, _ := path.Match(p, subject); ok {
			return true
		}
	}
	return false
}

func (f Filter) schemaOK(schema string) bool {
	if f.ExcludeCatalogs && isCatalogSchema(schema) {
		return false
	}
	if len(f.Schemas) > 0 && !matchAny(f.Schemas, "", schema) {
		return false
	}
	return !matchAny(f.ExcludeSchemas, "", schema)
}

// tableOK reports whether the table is selected, recording the include
// patterns that selected it.
func (f Filter) tableOK(schema, table string) bool {
	if !f.schemaOK(schema) {
		return false
	}
	if len(f.Tables) > 0 && !matchAny(f.Tables, schema, table) {
		return false
	}
	if matchAny(f.ExcludeTables, schema, table) {
		return false
	}
	f.hits.mark("Schemas", f.Schemas, "", schema)
	f.hits.mark("Tables", f.Tables, schema, table)
	return true
}

// indexOK matches the index patterns only; the index's table is matched
// with tableOK (for TOAST indexes: the table owning the TOAST table).
func (f Filter) indexOK(schema, index string) bool {
	if len(f.Indexes) > 0 && !matchAny(f.Indexes, schema, index) {
		return false
	}
	if matchAny(f.ExcludeIndexes, schema, index) {
		return false
	}
	f.hits.mark("Indexes", f.Indexes, schema, index)
	return true
}

// narrowed reports whether any pattern or exclusion was given.
func (f Filter) narrowed() bool {
	return len(f.Schemas)+len(f.Tables)+len(f.Indexes)+len(f.ExcludeSchemas)+len(f.ExcludeTables)+len(f.ExcludeIndexes) > 0 ||
		f.ExcludeCatalogs
}

func isCatalogSchema(s string) bool {
	return s == "pg_catalog" || s == "pg_toast" || s == "information_schema"
}

// CheckOptions configures Check.
type CheckOptions struct {
	// AllDatabases checks every database that accepts connections;
	// otherwise only the DSN's database.
	AllDatabases bool
	// Scope is ScopeAll (default) or ScopeCollation.
	Scope Scope
	// ParentCheck uses bt_index_parent_check, which takes a ShareLock
	// (blocks writes) and cannot run on a hot standby.
	ParentCheck bool
	// HeapAllIndexed also verifies that every heap tuple has an index entry.
	HeapAllIndexed bool
	// Heap runs verify_heapam on tables, materialized views and TOAST tables.
	Heap bool
	// Jobs is the number of concurrent sessions per database (default 1).
	Jobs int
	// Filter restricts the relations checked.
	Filter Filter
	// InstallMissing creates the amcheck extension where it is missing.
	InstallMissing bool
	// BaselineFile is the collation fingerprint baseline to compare with;
	// empty means the baseline recorded in each database's ringfence
	// schema, if any.
	BaselineFile string
	// HeapChunkBlocks splits heap checks of large tables into block ranges
	// of at most this many blocks (0: chosen from the total and Jobs).
	HeapChunkBlocks int64
	// Progress, if set, is called (from several goroutines, serialised)
	// as checks start and finish.
	Progress func(Progress)
}

// CheckReport is the result of Check. Its JSON form is stable
// (docs/pg-check.md).
type CheckReport struct {
	// SchemaVersion versions this JSON form.
	SchemaVersion int         `json:"schema_version"`
	Server        ServerInfo  `json:"server"`
	Databases     []string    `json:"databases"`
	Findings      []Finding   `json:"findings"`
	Checked       Checked     `json:"checked"`
	Skipped       []Skipped   `json:"skipped"`
	Options       ReportFlags `json:"options"`
	StartedAt     time.Time   `json:"started_at"`
	Duration      Duration    `json:"duration_seconds"`
}

func (c *Checked) add(d Checked) {
	c.Indexes += d.Indexes
	c.IndexBytes += d.IndexBytes
	c.HeapRelations += d.HeapRelations
	c.HeapBytes += d.HeapBytes
	c.Partitions += d.Partitions
	c.CheckConstraints += d.CheckConstraints
}

// ServerInfo describes the checked server.
type ServerInfo struct {
	Version    string `json:"version"`
	VersionNum int    `json:"version_num"`
	InRecovery bool   `json:"in_recovery"`
}

// Checked counts what was verified: objects skipped, and databases that
// could not be checked, are listed in Skipped and not counted.
type Checked struct {
	// Databases counts the databases checked.
	Databases        int   `json:"databases"`
	Indexes          int   `json:"indexes"`
	IndexBytes       int64 `json:"index_bytes"`
	HeapRelations    int   `json:"heap_relations"`
	HeapBytes        int64 `json:"heap_bytes"`
	Partitions       int   `json:"partitions"`
	CheckConstraints int   `json:"check_constraints"`
	Collations       int   `json:"collations"`
	// Fingerprint is true when a recorded collation baseline was compared.
	Fingerprint bool `json:"fingerprint_compared"`
}

// Skipped is an object that could not be checked, with why.
type Skipped struct {
	Database string `json:"database"`
	Schema   string `json:"schema"`
	Object   string `json:"object"`
	Reason   string `json:"reason"`
	// Error is true when the object should have been checked but could not
	// be (a timeout, say): the report is then incomplete.
	Error bool `json:"error"`
}

// ReportFlags echoes the options that shape what a report means.
type ReportFlags struct {
	Scope          Scope `json:"scope"`
	ParentCheck    bool  `json:"parent_check"`
	HeapAllIndexed bool  `json:"heapallindexed"`
	Heap           bool  `json:"heap"`
	Jobs           int   `json:"jobs"`
}

// ErrNothingMatched is returned (wrapped) when an include pattern selects
// nothing, or the patterns and exclusions leave nothing to check.
var ErrNothingMatched = errors.New("no relation matched")

// ErrNoAmcheck is returned (wrapped) when amcheck is not installed in a
// database and CheckOptions.InstallMissing is false.
var ErrNoAmcheck = errors.New("the amcheck extension is not installed")

// ErrParentCheckOnStandby is returned when a parent check is asked of a hot
// standby: bt_index_parent_check needs a ShareLock, impossible in recovery.
var ErrParentCheckOnStandby = &OptionError{Options: []string{"ParentCheck"},
	Format: "%s is impossible on a hot standby: bt_index_parent_check takes a ShareLock, which cannot be acquired during recovery; check without it here (bt_index_check works on a standby), or run the parent check on the primary"}

// Check verifies the server's databases and returns what it found. An error
// means the check could not be carried out (connection, permission, missing
// amcheck, cancellation); corruption is reported as findings, not errors.
func Check(ctx context.Context, srv *Target, opts CheckOptions) (*CheckReport, error) {
	if opts.Jobs < 1 {
		opts.Jobs = 1
	}
	if opts.BaselineFile != "" && opts.AllDatabases {
		return nil, &OptionError{Options: []string{"BaselineFile", "AllDatabases"}, Format: "%s holds one database's fingerprints: use it without %s"}
	}
	if opts.Scope == "" {
		opts.Scope = ScopeAll
	}
	if err := opts.Filter.Validate(); err != nil {
		return nil, err
	}
	opts.Filter = opts.Filter.tracking()
	// Names in the SQL the check runs and in the expressions it deparses
	// resolve to built-in objects only, never to a user's look-alike.
	srv = srv.WithOptions(ConnOptions{SearchPath: "pg_catalog, pg_temp", ReadWrite: srv.Options().ReadWrite})
	rep := &CheckReport{
		SchemaVersion: 1,
		StartedAt:     time.Now().UTC(),
		Findings:      []Finding{},
		Skipped:       []Skipped{},
		Options: ReportFlags{Scope: opts.Scope, ParentCheck: opts.ParentCheck,
			HeapAllIndexed: opts.HeapAllIndexed, Heap: opts.Heap, Jobs: opts.Jobs},
	}
	first, err := srv.Connect(ctx, "")
	if err != nil {
		return nil, err
	}
	defer first.Close(context.Background())
	if err := first.QueryRow(ctx, `SELECT current_setting('server_version'), current_setting('server_version_num')::int, pg_is_in_recovery()`).
		Scan(&rep.Server.Version, &rep.Server.VersionNum, &rep.Server.InRecovery); err != nil {
		return nil, fmt.Errorf("read server version: %w", err)
	}
	if rep.Server.VersionNum < 140000 {
		return nil, fmt.Errorf("PostgreSQL %s is not supported: ringfence needs 14 or later (amcheck 1.3)", rep.Server.Version)
	}
	if opts.ParentCheck && rep.Server.InRecovery {
		return nil, ErrParentCheckOnStandby
	}
	rep.Databases = []string{first.Config().Database}
	if opts.AllDatabases {
		if rep.Databases, err = listDatabases(ctx, first); err != nil {
			return nil, err
		}
	}
	planned := 0
	for _, db := range rep.Databases {
		err := checkDatabase(ctx, srv, db, opts, rep, &planned)
		if err != nil && opts.AllDatabases && ctx.Err() == nil {
			// Check the other databases; the report is incomplete.
			object := "database"
			if errors.Is(err, ErrNoAmcheck) {
				object = "amcheck"
			}
			rep.Skipped = append(rep.Skipped, Skipped{Database: db, Object: object, Reason: err.Error(), Error: true})
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("check database %q: %w", db, err)
		}
	}
	sort.SliceStable(rep.Findings, func(i, j int) bool {
		a, b := rep.Findings[i], rep.Findings[j]
		if a.Database != b.Database {
			return a.Database < b.Database
		}
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		if a.Schema != b.Schema {
			return a.Schema < b.Schema
		}
		if a.Table != b.Table {
			return a.Table < b.Table
		}
		return a.Object < b.Object
	})
	if u := opts.Filter.unmatched(); len(u) > 0 {
		for i, p := range u {
			field, pattern, _ := strings.Cut(p, " ")
			u[i] = "{{" + field + "}} " + pattern
		}
		return nil, optionErrorf(ErrNothingMatched, "%s %s in database(s) %s", ErrNothingMatched, strings.Join(u, ", "), strings.Join(rep.Databases, ", "))
	}
	if opts.Scope == ScopeAll && opts.Filter.narrowed() && planned == 0 && rep.Checked.Databases > 0 {
		return nil, fmt.Errorf("%w: the patterns and exclusions leave nothing to check", ErrNothingMatched)
	}
	rep.Duration = Duration(time.Since(rep.StartedAt))
	return rep, nil
}

// checkDatabase plans and runs every check of one database.
func checkDatabase(ctx context.Context, srv *Target, db string, opts CheckOptions, rep *CheckReport, planned *int) error {
	conn, err := srv.Connect(ctx, db)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	amSchema, err := ensureAmcheck(ctx, srv, conn, db, opts.InstallMissing)
	if err != nil {
		return err
	}
	// Workers start on the first tasks while this session plans the rest.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	prog := &progressTracker{fn: opts.Progress, last: Progress{Database: db}}
	p := &dbPlan{amcheckSchema: amSchema, queue: newTaskQueue(ctx, prog)}
	type executed struct {
		found   []Finding
		skipped []Skipped
		checked Checked
		err     error
	}
	ran := make(chan executed, 1)
	go func() {
		found, skipped, checked, err := execute(ctx, srv, db, p, opts, prog)
		ran <- executed{found, skipped, checked, err}
	}()
	if err := plan(ctx, conn, db, opts, rep, p); err != nil {
		cancel()
		<-ran
		return err
	}
	// Collation drift PostgreSQL cannot see: compare with the recorded
	// fingerprints whenever a baseline exists, on this otherwise idle
	// session while the workers run.
	changed, compared, fpErr := checkFingerprint(ctx, conn, opts.BaselineFile, p.inventory)
	res := <-ran
	found, skipped, err := res.found, append(p.skipped, res.skipped...), res.err
	if err != nil {
		return err
	}
	if fpErr != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		// A failure here (a locale that no longer loads, say) must not
		// hide what amcheck found: it makes the report incomplete instead.
		skipped = append(skipped, Skipped{Database: db, Object: "collation fingerprints",
			Reason: fpErr.Error(), Error: true})
	}
	rep.Checked.Fingerprint = rep.Checked.Fingerprint || compared
	rep.Checked.add(res.checked)
	rep.Checked.Collations += p.collations
	rep.Checked.Databases++
	*planned += p.planned
	rep.Findings = append(rep.Findings, changed...)
	rep.Findings = append(rep.Findings, found...)
	rep.Skipped = append(rep.Skipped, skipped...)
	return nil
}

// ensureAmcheck returns the schema amcheck is installed in, installing it
// when asked.
func ensureAmcheck(ctx context.Context, srv *Target, conn *pgx.Conn, db string, install bool) (string, error) {
	const q = `SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'amcheck'`
	var schema string
	err := conn.QueryRow(ctx, q).Scan(&schema)
	if err == nil {
		return schema, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return "", fmt.Errorf("look for amcheck: %w", err)
	}
	if !install {
		// The message names the CLI flag: with AllDatabases it becomes a
		// Skipped reason in the report, which the CLI prints as it is.
		return "", fmt.Errorf("%w in database %q: run with --install-missing as a superuser (CREATE EXTENSION amcheck SCHEMA pg_catalog), or install it yourself", ErrNoAmcheck, db)
	}
	rw, err := srv.WithOptions(ConnOptions{ReadWrite: true}).Connect(ctx, db)
	if err != nil {
		return "", err
	}
	defer rw.Close(context.Background())
	if _, err := rw.Exec(ctx, `CREATE EXTENSION IF NOT EXISTS amcheck SCHEMA pg_catalog`); err != nil {
		return "", fmt.Errorf("install amcheck: %w", err)
	}
	if err := rw.QueryRow(ctx, q).Scan(&schema); err != nil {
		return "", fmt.Errorf("look for amcheck: %w", err)
	}
	return schema, nil
}

// progressTracker serialises Progress callbacks.
type progressTracker struct {
	mu   sync.Mutex
	fn   func(Progress)
	last Progress
}

func (p *progressTracker) update(f func(*Progress)) {
	if p.fn == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	f(&p.last)
	p.fn(p.last)
}
