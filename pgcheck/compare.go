package pgcheck

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// CompareStatus is the comparison status of an index or key column.
type CompareStatus string

// Comparison statuses.
const (
	// CompareSame: both servers order the sampled keys the same way.
	CompareSame CompareStatus = "same"
	// CompareDiffers: the new server orders some sampled keys differently:
	// the index would be out of order there.
	CompareDiffers = "differs"
	// CompareError: the keys could not be sampled or sorted (for example
	// the collation does not exist on the new server).
	CompareError = "error"
	// CompareSkipped: for a column, its order does not depend on an at-risk
	// collation (an int, a C column) or cannot be compared (an expression
	// partition key); for an index or partition key, none of its key
	// columns could be compared although it is at risk (through an
	// expression partition key or a partial index's predicate, say): the
	// report is incomplete.
	CompareSkipped = "skipped"
)

// DefaultCompareSample is the default bound on distinct keys per key column.
const DefaultCompareSample = 100000

// CompareOptions tunes Compare.
type CompareOptions struct {
	// To is the new server (required); its database only needs the
	// collations.
	To *Target
	// Sample bounds the distinct keys read per index key column
	// (DefaultCompareSample when zero).
	Sample int
	// Progress, when set, is called after each index or partition key with
	// the number compared so far (Done) and the total.
	Progress func(Progress)
}

// CompareServer describes one side of a comparison.
type CompareServer struct {
	ServerVersion string `json:"server_version"`
	Database      string `json:"database"`
	// DefaultLocale is the database's default collation locale.
	DefaultLocale string `json:"default_locale"`
}

// CompareReport is the outcome of Compare: per at-risk index and range or
// list partition key, whether the new server would order its keys as the
// old one does.
type CompareReport struct {
	From CompareServer `json:"from"`
	To   CompareServer `json:"to"`
	// Sample is the bound on distinct keys per key column.
	Sample  int               `json:"sample"`
	Indexes []IndexComparison `json:"indexes"`
	// PartitionKeys holds the partitioned tables' keys: a changed order
	// routes rows to other partitions than those holding them.
	PartitionKeys []IndexComparison `json:"partition_keys"`
	Elapsed       Duration          `json:"elapsed_seconds"`
	// Duration is the whole run's, connections included.
	Duration time.Duration `json:"-"`
}

// MarshalJSON renders the report's documented JSON form.
func (r *CompareReport) MarshalJSON() ([]byte, error) {
	type plain CompareReport
	return marshalReport((*plain)(r), r.Duration)
}

// CompareSideError is a failure to reach one side of a comparison.
type CompareSideError struct {
	// Side is "from" (the old server) or "to" (the new one).
	Side string
	Err  error
}

func (e *CompareSideError) Error() string { return e.Side + " server: " + e.Err.Error() }

func (e *CompareSideError) Unwrap() error { return e.Err }

// all returns the indexes and partition keys.
func (r *CompareReport) all() []IndexComparison {
	return append(append([]IndexComparison(nil), r.Indexes...), r.PartitionKeys...)
}

// Differs reports whether any index or partition key would be ordered
// differently.
func (r *CompareReport) Differs() bool {
	for _, ix := range r.all() {
		if ix.Status == CompareDiffers {
			return true
		}
	}
	return false
}

// Incomplete reports whether any index or partition key could not be
// compared (status error, or skipped: every one compared is at risk).
func (r *CompareReport) Incomplete() bool {
	for _, ix := range r.all() {
		if ix.Status == CompareError || ix.Status == CompareSkipped {
			return true
		}
	}
	return false
}

// IndexComparison is the result for one index (or the index behind a
// primary key, unique or exclusion constraint), or one partition key (Type
// partition_key, Name the partitioned table).
type IndexComparison struct {
	Schema string `json:"schema"`
	Table  string `json:"table"`
	Name   string `json:"name"`
	// Type is the inventory's object type (index, primary_key, ...).
	Type   string `json:"type"`
	Unique bool   `json:"unique"`
	Bytes  int64  `json:"bytes"`
	// Status is the worst of its columns' statuses.
	Status  CompareStatus      `json:"status"`
	Columns []ColumnComparison `json:"columns"`
	Error   string             `json:"error,omitempty"`
}

// ColumnComparison is the result for one key column: its
// distinct values sampled on the old server, sorted under the column's
// collation on both.
type ColumnComparison struct {
	// Position is the 1-based key column number.
	Position int `json:"position"`
	// Expression is the column name or index expression.
	Expression string        `json:"expression"`
	Collation  string        `json:"collation,omitempty"`
	Type       string        `json:"type"`
	Status     CompareStatus `json:"status"`
	// Keys is the number of distinct keys compared.
	Keys int `json:"keys"`
	// ChangedPairs counts the pairs of neighbouring keys (in the old order)
	// whose order differs on the new server; Examples shows a few.
	ChangedPairs int         `json:"changed_pairs,omitempty"`
	Examples     []OrderFlip `json:"examples,omitempty"`
	Error        string      `json:"error,omitempty"`
}

// Compare is the upgrade rehearsal: for every at-risk index and partition
// key of from's database it samples the distinct values of each key column
// on an at-risk collation (at most opts.Sample, a random sample of pages on
// larger tables, a bounded number of rows read), sorts them in the key's
// type (a domain's base type) under the column's collation on both servers
// and compares the orders. to only needs the collations (the same provider
// and locale under the same name; see newServer.ident for the default) and
// non-built-in key types: it can be an empty server of the new image.
//
// Multi-column keys are compared column by column: a changed order of any
// key column is reported as a difference, which is exact for the leading
// column and conservative for later ones (their values only matter among
// rows with equal leading keys).
//
// Both servers are read in read-only sessions.
func Compare(ctx context.Context, from *Target, opts CompareOptions) (*CompareReport, error) {
	start := time.Now()
	if opts.To == nil {
		return nil, &OptionError{Options: []string{"To"}, Format: "%s, the new server, is required"}
	}
	fromConn, err := from.Connect(ctx, "")
	if err != nil {
		return nil, &CompareSideError{Side: "from", Err: err}
	}
	defer fromConn.Close(context.WithoutCancel(ctx))
	toConn, err := opts.To.Connect(ctx, "")
	if err != nil {
		return nil, &CompareSideError{Side: "to", Err: err}
	}
	defer toConn.Close(context.WithoutCancel(ctx))
	rep, err := compareConns(ctx, fromConn, toConn, opts)
	if err != nil {
		return nil, err
	}
	rep.Duration = time.Since(start)
	return rep, nil
}

// compareConns is Compare on open sessions to both servers.
func compareConns(ctx context.Context, from, to *pgx.Conn, opts CompareOptions) (*CompareReport, error) {
	start := time.Now()
	if opts.Sample <= 0 {
		opts.Sample = DefaultCompareSample
	}
	inv, err := ReadInventory(ctx, from)
	if err != nil {
		return nil, fmt.Errorf("compare: old server: %w", err)
	}
	tgt, err := readNewServer(ctx, to)
	if err != nil {
		return nil, fmt.Errorf("compare: new server: %w", err)
	}
	rep := &CompareReport{
		From:   CompareServer{inv.ServerVersion, inv.Database, inv.DefaultCollation.Locale},
		To:     CompareServer{tgt.inv.ServerVersion, tgt.inv.Database, tgt.inv.DefaultCollation.Locale},
		Sample: opts.Sample,
	}
	c := &comparer{from: from, to: to, inv: inv, toSide: tgt, sample: opts.Sample,
		samples: map[string][]string{}, sorted: map[string]sortedKeys{}}
	var targets []DependentObject
	for _, o := range inv.Objects {
		switch o.Type {
		case ObjectIndex, ObjectPrimaryKey, ObjectUniqueConstraint, ObjectExclusionConstraint, ObjectMatviewIndex,
			ObjectPartitionKey:
			if o.AtRisk {
				targets = append(targets, o)
			}
		}
	}
	rep.Indexes, rep.PartitionKeys = []IndexComparison{}, []IndexComparison{}
	for i, o := range targets {
		ix, err := c.compareIndex(ctx, o)
		if err != nil {
			return nil, err
		}
		if o.Type == ObjectPartitionKey {
			rep.PartitionKeys = append(rep.PartitionKeys, ix)
		} else {
			rep.Indexes = append(rep.Indexes, ix)
		}
		if opts.Progress != nil {
			opts.Progress(Progress{Database: inv.Database, Done: i + 1, Total: len(targets)})
		}
	}
	rep.Elapsed = Duration(time.Since(start))
	return rep, nil
}

// comparer carries one Compare call's connections and caches: indexes on
// the same column share one sample and one sort per collation.
type comparer struct {
	from, to *pgx.Conn
	inv      *DatabaseInventory
	toSide   *newServer
	sample   int
	maxRead  int                   // rows read per sample; 0: chosen by sampleQuery
	samples  map[string][]string   // table OID + expression -> keys
	sorted   map[string]sortedKeys // sample key + collation -> result
}

type sortedKeys struct {
	status   CompareStatus
	changed  int
	examples []OrderFlip
	err      string
}

// compareIndex compares one index or partition key. Errors confined to it
// (a missing collation, a statement timeout) are recorded in the result;
// only a cancelled context or a broken connection stops the whole
// comparison.
func (c *comparer) compareIndex(ctx context.Context, o DependentObject) (IndexComparison, error) {
	ix := IndexComparison{Schema: o.Schema, Table: o.Table, Name: o.Name, Type: o.Type, Unique: o.Unique,
		Bytes: o.Bytes, Status: CompareSame, Columns: []ColumnComparison{}}
	var cols []keyColumn
	var err error
	if o.Type == ObjectPartitionKey {
		cols, err = partitionKeyColumns(ctx, c.from, o.OID)
	} else {
		cols, err = keyColumns(ctx, c.from, o.OID)
	}
	if err != nil {
		if fatal(ctx, c.from, err) {
			return ix, fmt.Errorf("compare index %s.%s: %w", o.Schema, o.Name, err)
		}
		ix.Status, ix.Error = CompareError, err.Error()
		return ix, nil
	}
	compared := 0
	for _, k := range cols {
		cc := ColumnComparison{Position: k.pos, Expression: k.expr, Type: k.typ}
		coll, known := c.collation(k.collation)
		if known {
			cc.Collation = coll.Name
		}
		if k.collation == 0 && k.typeOID != 0 {
			// A composite or range type compares with the collations
			// nested in it: compare it when one of those is at risk.
			nested, err := c.nestedAtRisk(ctx, k.typeOID)
			if err != nil {
				if fatal(ctx, c.from, err) {
					return ix, fmt.Errorf("compare index %s.%s: %w", o.Schema, o.Name, err)
				}
				cc.Status, cc.Error = CompareError, err.Error()
			} else if len(nested) > 0 {
				coll, known = nested[0], true
				cc.Collation = coll.Name
			}
		}
		switch {
		case cc.Status == CompareError:
		case k.collation == 0 && !known:
			cc.Status = CompareSkipped
		case !known:
			cc.Status, cc.Error = CompareError, "collation not in the inventory (dropped meanwhile?)"
		case !coll.AtRisk:
			cc.Status = CompareSkipped
		case k.expr == "":
			cc.Status, cc.Error = CompareSkipped, "expression partition key: order not compared"
		default:
			if err := c.resolveSortType(ctx, &k); err != nil {
				if fatal(ctx, c.from, err) {
					return ix, fmt.Errorf("compare index %s.%s: %w", o.Schema, o.Name, err)
				}
				cc.Status, cc.Error = CompareError, err.Error()
				break
			}
			if err := c.compareColumn(ctx, o, k, coll, &cc); err != nil {
				return ix, err
			}
			compared++
		}
		ix.Columns = append(ix.Columns, cc)
		switch {
		case cc.Status == CompareDiffers:
			ix.Status = CompareDiffers
		case cc.Status == CompareError && ix.Status != CompareDiffers:
			ix.Status = CompareError
		}
	}
	if compared == 0 && ix.Status == CompareSame {
		ix.Status = CompareSkipped
		ix.Error = "at risk, but no key column could be compared: the collation is used by an expression or predicate"
	}
	return ix, nil
}

func (c *comparer) collation(oid uint32) (CollationInfo, bool) {
	for _, col := range c.inv.Collations {
		if col.OID == oid {
			return col, true
		}
	}
	return CollationInfo{}, false
}

// fatal reports whether err ends the whole comparison: the context is done
// or the connection is no longer usable.
func fatal(ctx context.Context, conn *pgx.Conn, err error) bool {
	var pgErr *pgconn.PgError
	return ctx.Err() != nil || conn.IsClosed() || !errors.As(err, &pgErr)
}

// resolveSortType sets k's sort type: the base type of a domain (a domain
// need not exist on the new server and its order is its base type's), the
// same for the elements of an array; other types (citext, composite and
// range types) are sorted as themselves and must exist on the new server.
func (c *comparer) resolveSortType(ctx context.Context, k *keyColumn) error {
	name, collatable, err := c.baseType(ctx, k.typeOID, 0)
	if err != nil {
		return fmt.Errorf("resolve key type %s: %w", k.typ, err)
	}
	k.sortType, k.collatable = name, collatable
	return nil
}

// nestedAtRisk returns the at-risk collations nested in a composite or
// range type (through domains and arrays), the database default first.
func (c *comparer) nestedAtRisk(ctx context.Context, typeOID uint32) ([]CollationInfo, error) {
	nested, err := nestedCollations(ctx, c.from, c.inv.ServerVersionNum, []uint32{typeOID})
	if err != nil {
		return nil, err
	}
	var out []CollationInfo
	for _, oid := range nested[typeOID] {
		if coll, ok := c.collation(oid); ok && coll.AtRisk {
			out = append(out, coll)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].IsDefault != out[j].IsDefault {
			return out[i].IsDefault
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}

// maxTypeDepth bounds the domain and array nesting baseType follows.
const maxTypeDepth = 16

func (c *comparer) baseType(ctx context.Context, oid uint32, depth int) (string, bool, error) {
	if depth > maxTypeDepth {
		return "", false, fmt.Errorf("type %d: domains and arrays nested too deep", oid)
	}
	var (
		typtype    string
		base, elem uint32
		typlen     int16
		collatable bool
		qualified  string
	)
	err := c.from.QueryRow(ctx, `SELECT t.typtype::text, t.typbasetype, t.typelem, t.typlen, t.typcollation <> 0,
			format('%I.%I', n.nspname, t.typname)
		FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE t.oid = $1`, oid).
		Scan(&typtype, &base, &elem, &typlen, &collatable, &qualified)
	if err != nil {
		return "", false, err
	}
	switch {
	case typtype == "d":
		return c.baseType(ctx, base, depth+1)
	case elem != 0 && typlen == -1: // a true array
		name, _, err := c.baseType(ctx, elem, depth+1)
		return name + "[]", collatable, err
	}
	return qualified, collatable, nil
}

func (c *comparer) compareColumn(ctx context.Context, o DependentObject, k keyColumn, coll CollationInfo, cc *ColumnComparison) error {
	sampleKey := fmt.Sprintf("%d\x00%s\x00%s", k.tableOID, k.expr, k.pred)
	keys, ok := c.samples[sampleKey]
	if !ok {
		var err error
		keys, err = c.sampleKeys(ctx, o, k)
		if err != nil {
			if fatal(ctx, c.from, err) {
				return fmt.Errorf("sample keys of %s.%s: %w", o.Schema, o.Name, err)
			}
			cc.Status, cc.Error = CompareError, "sample keys on the old server: "+err.Error()
			return nil
		}
		c.samples[sampleKey] = keys
	}
	cc.Keys = len(keys)
	sortKey := sampleKey + "\x00" + coll.Name + "\x00" + k.sortType
	res, ok := c.sorted[sortKey]
	if !ok {
		var err error
		res, err = c.sortBoth(ctx, coll, k, keys)
		if err != nil {
			return err
		}
		c.sorted[sortKey] = res
	}
	cc.Status, cc.ChangedPairs, cc.Examples, cc.Error = res.status, res.changed, res.examples, res.err
	return nil
}

// wholeTableRows is the table size (in estimated rows) up to which keys are
// sampled from the whole table: reading that much takes about a second.
const wholeTableRows = 1000000

// sampleKeys reads at most c.sample distinct non-null values of a key column
// on the old server.
func (c *comparer) sampleKeys(ctx context.Context, o DependentObject, k keyColumn) ([]string, error) {
	rows, err := c.from.Query(ctx, c.sampleQuery(o, k))
	if err != nil {
		return nil, err
	}
	keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	return keys, nil
}

// sampleQuery is sampleKeys' query. Tables estimated larger than both
// wholeTableRows and four times the bound are read through TABLESAMPLE
// SYSTEM, with the fraction that yields about four times the bound. The
// estimate can be far off (statistics taken before a bulk load), so the rows
// read are also bounded by a LIMIT below the DISTINCT: the cost stays
// bounded on any table whatever its statistics say. Only rows a partial
// index covers are read, and keys are deduplicated by their bytes, so a
// nondeterministic collation does not fold keys it considers equal.
func (c *comparer) sampleQuery(o DependentObject, k keyColumn) string {
	from := QuoteIdent(o.Schema, o.Table)
	limit := 4 * c.sample
	read := max(limit, wholeTableRows)
	if k.relTuples > float64(read) {
		from += fmt.Sprintf(" TABLESAMPLE SYSTEM (%g)", 100*float64(limit)/k.relTuples)
		read = limit
	}
	if c.maxRead > 0 {
		read = c.maxRead
	}
	where := fmt.Sprintf("(%s) IS NOT NULL", k.expr)
	if k.pred != "" {
		where += " AND (" + k.pred + ")"
	}
	return fmt.Sprintf(`SELECT DISTINCT k FROM (SELECT (%s)::text COLLATE "C" AS k FROM %s WHERE %s LIMIT %d) AS s LIMIT %d`,
		k.expr, from, where, read, c.sample)
}

// sortBoth sorts keys as k's sort type under coll on both servers and
// compares the orders.
func (c *comparer) sortBoth(ctx context.Context, coll CollationInfo, k keyColumn, keys []string) (sortedKeys, error) {
	if len(keys) < 2 {
		return sortedKeys{status: CompareSame}, nil
	}
	old, oldTies, err := sortAs(ctx, c.from, sortKeyExpr(k.sortType, k.collatable, coll.Ident()), keys)
	if err != nil {
		if fatal(ctx, c.from, err) {
			return sortedKeys{}, fmt.Errorf("sort keys on the old server under %s: %w", coll.Name, err)
		}
		return sortedKeys{status: CompareError, err: "sort on the old server: " + err.Error()}, nil
	}
	toIdent, err := c.toSide.ident(coll)
	if err == nil && !k.collatable && coll.IsDefault && !sameCollation(coll, c.toSide.inv.DefaultCollation) {
		// A composite or range type's default collation is the new
		// database's own: no stand-in can replace it.
		err = fmt.Errorf("collation differs on --to: the default there is %s %s, not %s %s",
			c.toSide.inv.DefaultCollation.Provider, c.toSide.inv.DefaultCollation.Locale, coll.Provider, coll.Locale)
	}
	if err != nil {
		return sortedKeys{status: CompareError, err: err.Error()}, nil
	}
	now, nowTies, err := sortAs(ctx, c.to, sortKeyExpr(k.sortType, k.collatable, toIdent), keys)
	if err != nil {
		if fatal(ctx, c.to, err) {
			return sortedKeys{}, fmt.Errorf("sort keys on the new server under %s: %w", coll.Name, err)
		}
		return sortedKeys{status: CompareError, err: "sort on the new server: " + err.Error()}, nil
	}
	n, ex := orderFlips(old, oldTies, now, nowTies)
	if n > 0 {
		return sortedKeys{status: CompareDiffers, changed: n, examples: ex}, nil
	}
	return sortedKeys{status: CompareSame}, nil
}

// newServer is the new server's side of a comparison: its database default
// and collations, read from the catalogs in two queries (no inventory, no
// locks: it may be a production server).
type newServer struct {
	inv   *DatabaseInventory // server, database and default collation only
	colls []*CollationInfo
}

func readNewServer(ctx context.Context, conn *pgx.Conn) (*newServer, error) {
	r, err := newInventoryReader(ctx, conn)
	if err != nil {
		return nil, err
	}
	colls, err := r.collationRows(ctx, "true")
	if err != nil {
		return nil, err
	}
	return &newServer{inv: r.inv, colls: colls}, nil
}

// ident returns the name to sort under on the new server for the old
// server's collation coll. A named collation must exist there under the
// same name with the same provider, locale and determinism. The database
// default stands for whatever the database was created with: when the new
// database's default differs, a collation with the old default's provider
// and locale stands in for it, and without one the keys cannot be compared.
func (t *newServer) ident(coll CollationInfo) (string, error) {
	if coll.IsDefault {
		if sameCollation(coll, t.inv.DefaultCollation) {
			return coll.Ident(), nil
		}
		for _, c := range t.colls {
			if sameCollation(coll, *c) {
				return c.Ident(), nil
			}
		}
		d := t.inv.DefaultCollation
		return "", fmt.Errorf("collation differs on --to: the default there is %s %s, not %s %s, and no collation there has %s %s",
			d.Provider, d.Locale, coll.Provider, coll.Locale, coll.Provider, coll.Locale)
	}
	for _, c := range t.colls {
		if c.Name != coll.Name {
			continue
		}
		if !sameCollation(coll, *c) {
			return "", fmt.Errorf("collation differs on --to: %s is %s %s (deterministic %v) there, %s %s (deterministic %v) here",
				coll.Name, c.Provider, c.Locale, c.Deterministic, coll.Provider, coll.Locale, coll.Deterministic)
		}
		return c.Ident(), nil
	}
	return "", fmt.Errorf("collation %s does not exist on --to", coll.Name)
}

// sameCollation reports whether a and b have the same provider, locale and
// determinism. libc locale names are compared with their codesets
// normalised as glibc does ("en_US.UTF-8" is "en_US.utf8").
func sameCollation(a, b CollationInfo) bool {
	return a.Provider == b.Provider && a.Deterministic == b.Deterministic &&
		normalizeLocale(a.Provider, a.Locale) == normalizeLocale(b.Provider, b.Locale)
}

// normalizeLocale normalises the codesets of a libc locale ("collate" or
// "collate/ctype"): lower case, letters and digits only.
func normalizeLocale(provider, locale string) string {
	if provider != "libc" {
		return locale
	}
	parts := strings.Split(locale, "/")
	for i, p := range parts {
		name, mod, hasMod := strings.Cut(p, "@")
		if lang, cs, ok := strings.Cut(name, "."); ok {
			cs = strings.Map(func(r rune) rune {
				switch {
				case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
					return r
				case r >= 'A' && r <= 'Z':
					return r + 'a' - 'A'
				}
				return -1
			}, cs)
			name = lang + "." + cs
		}
		if hasMod {
			name += "@" + mod
		}
		parts[i] = name
	}
	if len(parts) == 2 && parts[0] == parts[1] {
		return parts[0]
	}
	return strings.Join(parts, "/")
}
