package pgcheck

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Object types of a DependentObject. They are part of the stable JSON output.
const (
	ObjectIndex               = "index"
	ObjectUniqueConstraint    = "unique_constraint"
	ObjectPrimaryKey          = "primary_key"
	ObjectExclusionConstraint = "exclusion_constraint"
	ObjectPartitionKey        = "partition_key"
	ObjectCheckConstraint     = "check_constraint"
	ObjectForeignKey          = "foreign_key"
	ObjectMatviewIndex        = "matview_index"
)

// defaultCollationOID is pg_collation's "default": the database's own
// collation. pg_depend never records a dependency on it.
const defaultCollationOID = 100

// minServerVersion is the oldest PostgreSQL the inventory reads (12:
// collisdeterministic).
const minServerVersion = 120000

// DatabaseInventory is every collation a database uses and every object whose
// correctness depends on one.
type DatabaseInventory struct {
	// ServerVersion is the server's version string (server_version).
	ServerVersion string `json:"server_version"`
	// ServerVersionNum is server_version_num, e.g. 150018.
	ServerVersionNum int `json:"server_version_num"`
	// InRecovery is true on a hot standby.
	InRecovery bool `json:"in_recovery"`
	// Database is the database inventoried.
	Database string `json:"database"`
	// DefaultCollation is the database's own collation (pg_database's
	// datcollate or ICU locale), which objects use unless they name another.
	DefaultCollation CollationInfo `json:"default_collation"`
	// Collations lists the default collation and every collation an object
	// depends on, safe ones included, by name.
	Collations []CollationInfo `json:"collations"`
	// Objects lists every object that depends on a collation: all user
	// objects, and system-catalog objects only when at risk.
	Objects []DependentObject `json:"objects"`
}

// CollationInfo describes one collation as the server sees it now.
type CollationInfo struct {
	// OID is the pg_collation row (100 for the database default).
	OID uint32 `json:"oid"`
	// Name is the collation's key in this inventory: its name, qualified
	// with its schema unless it lives in pg_catalog ("default" is the
	// database's own collation).
	Name string `json:"name"`
	// Schema is the collation's schema.
	Schema string `json:"schema"`
	// Provider is "libc", "icu" or "builtin".
	Provider string `json:"provider"`
	// Locale is the libc LC_COLLATE (with "/LC_CTYPE" when it differs) or
	// the ICU locale.
	Locale string `json:"locale"`
	// Deterministic is false for ICU collations that compare unequal
	// strings as equal.
	Deterministic bool `json:"deterministic"`
	// RecordedVersion is the version PostgreSQL stored when the collation
	// (or database) was created or last refreshed; empty when none (musl,
	// C, POSIX).
	RecordedVersion string `json:"recorded_version"`
	// ActualVersion is what the server's library reports now; empty when
	// none.
	ActualVersion string `json:"actual_version"`
	// VersionError is set when the server could not report the actual
	// version (for example a locale missing on this machine).
	VersionError string `json:"version_error,omitempty"`
	// IsDefault marks the database's own collation.
	IsDefault bool `json:"is_default"`
	// AtRisk is false for collations whose order cannot change with the
	// operating system: C, POSIX (ucs_basic is C) and the builtin provider.
	AtRisk bool `json:"at_risk"`
	// CtypeAtRisk is true when the collation's character classes can
	// change with the operating system (libc LC_CTYPE other than C or
	// POSIX, ICU): lower(), upper(), regular expressions and ILIKE depend
	// on them even when the order (LC_COLLATE C) cannot change.
	CtypeAtRisk bool `json:"ctype_at_risk"`
}

// Ident returns the collation's quoted SQL name for a COLLATE clause.
func (c CollationInfo) Ident() string { return QuoteIdent(c.Schema, c.sqlName()) }

func (c CollationInfo) sqlName() string {
	if c.IsDefault {
		return "default"
	}
	return strings.TrimPrefix(c.Name, c.Schema+".")
}

// DependentObject is one index, constraint or partition key whose
// correctness depends on the order or equality of one or more collations.
type DependentObject struct {
	// OID is the index's pg_class row, the constraint's pg_constraint row,
	// or the partitioned table's pg_class row for a partition key.
	OID uint32 `json:"oid"`
	// Type is one of the Object* constants.
	Type   string `json:"type"`
	Schema string `json:"schema"`
	Table  string `json:"table"`
	// Name is the index or constraint name (the table's for a partition key).
	Name string `json:"name"`
	// Collations lists the keys (CollationInfo.Name) of the collations the
	// object depends on.
	Collations []string `json:"collations"`
	// AtRisk is true when any of those collations is at risk.
	AtRisk bool `json:"at_risk"`
	// Unique is true for unique indexes, primary keys and unique constraints.
	Unique bool `json:"unique"`
	// Bytes is the index size, the table size for a constraint, the leaf
	// partitions' total for a partition key.
	Bytes int64 `json:"bytes"`
	// Valid is false for invalid indexes and unvalidated constraints.
	Valid bool `json:"valid"`
	// AccessMethod is the index access method (btree, gist, ...), for indexes.
	AccessMethod string `json:"access_method,omitempty"`
}

// Ref returns o as an ObjectRef for findings.
func (o DependentObject) Ref() ObjectRef {
	return ObjectRef{Schema: o.Schema, Table: o.Table, Object: o.Name, Type: o.Type}
}

// Collation returns the inventory's collation with key name.
func (inv *DatabaseInventory) Collation(name string) (CollationInfo, bool) {
	for _, c := range inv.Collations {
		if c.Name == name {
			return c, true
		}
	}
	return CollationInfo{}, false
}

// DependentsOf returns the objects that depend on the collation with key name.
func (inv *DatabaseInventory) DependentsOf(name string) []DependentObject {
	var out []DependentObject
	for _, o := range inv.Objects {
		for _, c := range o.Collations {
			if c == name {
				out = append(out, o)
				break
			}
		}
	}
	return out
}

// AtRiskCollations returns the collations in use whose order can change.
func (inv *DatabaseInventory) AtRiskCollations() []CollationInfo {
	var out []CollationInfo
	for _, c := range inv.Collations {
		if c.AtRisk {
			out = append(out, c)
		}
	}
	return out
}

// VersionMismatches reports the collations whose recorded version differs
// from the one the server's library reports now: PostgreSQL's own check. It
// is silent when either version is empty (musl records none) and, on glibc,
// whenever only the locale data changed: see collation_changed for that.
func VersionMismatches(inv *DatabaseInventory) []Finding {
	var out []Finding
	for _, c := range inv.Collations {
		if c.RecordedVersion == "" || c.ActualVersion == "" || c.RecordedVersion == c.ActualVersion {
			continue
		}
		f := Finding{
			Kind:      KindCollationVersionMismatch,
			Database:  inv.Database,
			Schema:    c.Schema,
			Object:    c.sqlName(),
			Collation: c.Name,
			Detail: fmt.Sprintf("collation %s (%s %s) recorded version %s, the server's library now reports %s",
				c.Name, c.Provider, c.Locale, c.RecordedVersion, c.ActualVersion),
		}
		for _, o := range inv.DependentsOf(c.Name) {
			f.AtRisk = append(f.AtRisk, o.Ref())
		}
		out = append(out, f)
	}
	return out
}

// ReadInventory reads the catalogs of conn's database: the collations in use
// and every object depending on one. It only reads catalogs, takes no
// relation locks (pg check runs it on every run, also while other sessions
// hold or wait for ACCESS EXCLUSIVE locks) and works on a hot standby.
// Sizes are the planner's (pg_class.relpages, as of the last VACUUM,
// ANALYZE or CREATE INDEX), not the files' current sizes.
func ReadInventory(ctx context.Context, conn *pgx.Conn) (*DatabaseInventory, error) {
	r, err := newInventoryReader(ctx, conn)
	if err != nil {
		return nil, err
	}
	inv := r.inv
	raws, err := r.readObjects(ctx)
	if err != nil {
		return nil, err
	}
	if err := r.resolveTypes(ctx, raws); err != nil {
		return nil, err
	}
	if err := r.resolveNodes(ctx, raws); err != nil {
		return nil, err
	}
	if err := r.readCollations(ctx, raws); err != nil {
		return nil, err
	}
	r.classify(raws)
	return inv, nil
}

// newInventoryReader reads the server's version and the database's default
// collation.
func newInventoryReader(ctx context.Context, conn *pgx.Conn) (*inventoryReader, error) {
	inv := &DatabaseInventory{}
	err := conn.QueryRow(ctx, `SELECT current_setting('server_version'),
		current_setting('server_version_num')::int, pg_is_in_recovery(), current_database()`).
		Scan(&inv.ServerVersion, &inv.ServerVersionNum, &inv.InRecovery, &inv.Database)
	if err != nil {
		return nil, fmt.Errorf("inventory: read server version: %w", err)
	}
	if inv.ServerVersionNum < minServerVersion {
		return nil, fmt.Errorf("inventory: PostgreSQL %s is not supported (12 or later needed)", inv.ServerVersion)
	}
	r := &inventoryReader{conn: conn, inv: inv, ops: map[uint32]string{}, funcs: map[uint32]string{}}
	if err := r.readDefault(ctx); err != nil {
		return nil, err
	}
	return r, nil
}

// inventoryReader carries the state of one DatabaseInventory call.
type inventoryReader struct {
	conn  *pgx.Conn
	inv   *DatabaseInventory
	colls map[uint32]*CollationInfo
	ops   map[uint32]string // operator OID -> its pg_catalog function's name ("" elsewhere)
	funcs map[uint32]string // function OID -> pg_catalog name ("" elsewhere)
}

// rawObject is a dependent-object candidate before its collations are
// resolved.
type rawObject struct {
	obj      DependentObject
	system   bool
	collOIDs []uint32 // direct: key columns, partition columns, FK columns
	// keyTypes are the key columns' types: composite and range types (and
	// domains and arrays of them) compare with the collations of their
	// attributes and subtypes, which indcollation does not show.
	keyTypes []uint32
	// extensionKey is set when a key type is collatable but not built in
	// (citext): its comparisons may use the character classes (citext
	// lowercases), not only the order.
	extensionKey bool
	hashed       bool     // a hash index: its keys count only by equality
	exprs        []string // pg_node_tree texts: expressions, predicates, CHECK
}

func (r *inventoryReader) readDefault(ctx context.Context) error {
	v := r.inv.ServerVersionNum
	provider, iculocale, recorded, actual := "'c'", "NULL", "NULL", "NULL"
	if v >= 150000 {
		provider, recorded, actual = "datlocprovider", "datcollversion", "pg_database_collation_actual_version(oid)"
		iculocale = "daticulocale"
		if v >= 170000 {
			iculocale = "datlocale"
		}
	}
	q := fmt.Sprintf(`SELECT %s::text, datcollate, datctype, coalesce(%s, ''), coalesce(%s, '')
		FROM pg_database WHERE datname = current_database()`, provider, iculocale, recorded)
	var prov, collate, ctype, icu, rec string
	if err := r.conn.QueryRow(ctx, q).Scan(&prov, &collate, &ctype, &icu, &rec); err != nil {
		return fmt.Errorf("inventory: read database collation: %w", err)
	}
	d := CollationInfo{
		OID: defaultCollationOID, Name: "default", Schema: "pg_catalog", Provider: providerName(prov),
		Deterministic: true, RecordedVersion: rec, IsDefault: true,
	}
	d.Locale = libcLocale(collate, ctype)
	if prov != "c" {
		d.Locale = icu
	}
	d.AtRisk, d.CtypeAtRisk = collationAtRisk(prov, collate), collationAtRisk(prov, ctype)
	if v >= 150000 {
		d.ActualVersion, d.VersionError = r.actualVersion(ctx, fmt.Sprintf(
			`SELECT coalesce(%s, '') FROM pg_database WHERE datname = current_database()`, actual))
	}
	r.inv.DefaultCollation = d
	r.colls = map[uint32]*CollationInfo{defaultCollationOID: &d}
	return nil
}

// actualVersion runs q (one text column) and returns its result, or the
// error's text: a locale missing on this machine must not stop the inventory.
func (r *inventoryReader) actualVersion(ctx context.Context, q string, args ...any) (string, string) {
	var s string
	if err := r.conn.QueryRow(ctx, q, args...).Scan(&s); err != nil {
		if ctx.Err() != nil {
			return "", ctx.Err().Error()
		}
		return "", err.Error()
	}
	return s, ""
}

func providerName(p string) string {
	switch p {
	case "c":
		return "libc"
	case "i":
		return "icu"
	case "b":
		return "builtin"
	case "d":
		return "default"
	}
	return p
}

func libcLocale(collate, ctype string) string {
	if ctype == "" || ctype == collate {
		return collate
	}
	return collate + "/" + ctype
}

// collationAtRisk reports whether a collation's order (given its libc
// LC_COLLATE) or character classes (given its LC_CTYPE) can change under
// the server: everything except libc C/POSIX (ucs_basic is libc C before
// PostgreSQL 17) and the builtin provider, which is PostgreSQL's own code.
func collationAtRisk(provider, locale string) bool {
	switch provider {
	case "b":
		return false
	case "c":
		return locale != "C" && locale != "POSIX"
	}
	return true
}

// patternOpclass is an SQL condition on pg_opclass oc: the key column
// compares bytes (text_pattern_ops and friends, for LIKE prefixes), so its
// collation does not matter.
const patternOpclass = `oc.opcname IN ('text_pattern_ops', 'varchar_pattern_ops', 'bpchar_pattern_ops')
	AND oc.opcnamespace = 'pg_catalog'::regnamespace`

const indexQuery = `
SELECT i.indexrelid, n.nspname, t.relname, c.relname, am.amname, t.relkind::text,
       coalesce(con.contype::text, ''), i.indisunique,
       i.indisvalid AND i.indisready AND i.indislive,
       greatest(c.relpages, 0)::bigint * current_setting('block_size')::bigint,
       ARRAY(SELECT CASE WHEN ` + patternOpclass + ` THEN 0::oid ELSE i.indcollation[k.n] END
               FROM generate_series(0, i.indnkeyatts - 1) AS k(n)
               LEFT JOIN pg_opclass oc ON oc.oid = i.indclass[k.n]
              ORDER BY k.n),
       ARRAY(SELECT a.atttypid FROM pg_attribute a
              WHERE a.attrelid = i.indexrelid AND a.attnum BETWEEN 1 AND i.indnkeyatts),
       coalesce(i.indexprs::text, ''), coalesce(i.indpred::text, ''),
       n.nspname IN ('pg_catalog', 'information_schema')
FROM pg_index i
JOIN pg_class c ON c.oid = i.indexrelid
JOIN pg_class t ON t.oid = i.indrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_am am ON am.oid = c.relam
LEFT JOIN pg_constraint con ON con.conindid = i.indexrelid AND con.conrelid = i.indrelid
     AND con.contype IN ('p', 'u', 'x')
WHERE c.relkind = 'i' AND c.relpersistence <> 't' AND n.nspname <> 'pg_toast'
  AND n.nspname NOT LIKE 'pg\_temp\_%' AND n.nspname NOT LIKE 'pg\_toast\_temp\_%'`

const partitionQuery = `
SELECT p.partrelid, n.nspname, c.relname, p.partstrat::text, p.partcollation::oid[],
       ARRAY(SELECT a.atttypid FROM pg_attribute a
              WHERE a.attrelid = p.partrelid AND a.attnum = ANY (p.partattrs::int2[])),
       coalesce(p.partexprs::text, ''),
       (WITH RECURSIVE tree(relid) AS (
            SELECT p.partrelid
          UNION ALL
            SELECT i.inhrelid FROM pg_inherits i JOIN tree ON i.inhparent = tree.relid)
        SELECT coalesce(sum(greatest(l.relpages, 0)), 0)::bigint * current_setting('block_size')::bigint
          FROM tree JOIN pg_class l ON l.oid = tree.relid WHERE l.relkind NOT IN ('p', 'I')),
       n.nspname IN ('pg_catalog', 'information_schema')
FROM pg_partitioned_table p
JOIN pg_class c ON c.oid = p.partrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relpersistence <> 't'`

const constraintQuery = `
WITH RECURSIVE domain_types(domain, typ, depth) AS (
    SELECT con.contypid, con.contypid, 0 FROM pg_constraint con WHERE con.contype = 'c' AND con.contypid <> 0
  UNION
    SELECT d.domain, t.oid, d.depth + 1
    FROM domain_types d
    JOIN pg_type t ON (t.typtype = 'd' AND t.typbasetype = d.typ) OR (t.typelem = d.typ AND t.typlen = -1)
    WHERE d.depth < 16)
SELECT con.oid, n.nspname, t.relname, con.conname, con.contype::text, coalesce(con.conbin::text, ''),
       coalesce((SELECT array_agg(a.attcollation) FROM pg_attribute a
                  WHERE a.attrelid = con.conrelid AND a.attnum = ANY (con.conkey) AND a.attcollation <> 0),
                '{}')::oid[],
       coalesce((SELECT array_agg(a.attcollation) FROM pg_attribute a
                  WHERE a.attrelid = con.confrelid AND a.attnum = ANY (con.confkey) AND a.attcollation <> 0),
                '{}')::oid[],
       ARRAY(SELECT a.atttypid FROM pg_attribute a
              WHERE a.attrelid = con.conrelid AND a.attnum = ANY (con.conkey)),
       greatest(t.relpages, 0)::bigint * current_setting('block_size')::bigint, con.convalidated,
       n.nspname IN ('pg_catalog', 'information_schema')
FROM pg_constraint con
JOIN pg_class t ON t.oid = con.conrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
WHERE con.contype IN ('c', 'f') AND t.relpersistence <> 't'
UNION ALL
-- Domain CHECK constraints (conrelid 0), once per table with a column of
-- the domain, of a domain over it, or of an array of those.
SELECT DISTINCT con.oid, n.nspname, t.relname, con.conname, 'c', coalesce(con.conbin::text, ''),
       '{}'::oid[], '{}'::oid[], '{}'::oid[],
       greatest(t.relpages, 0)::bigint * current_setting('block_size')::bigint, con.convalidated,
       n.nspname IN ('pg_catalog', 'information_schema')
FROM pg_constraint con
JOIN domain_types d ON d.domain = con.contypid
JOIN pg_attribute a ON a.atttypid = d.typ AND a.attnum > 0 AND NOT a.attisdropped
JOIN pg_class t ON t.oid = a.attrelid AND t.relkind IN ('r', 'p') AND NOT t.relispartition
JOIN pg_namespace n ON n.oid = t.relnamespace
WHERE con.contype = 'c' AND con.contypid <> 0 AND t.relpersistence <> 't'`

func (r *inventoryReader) readObjects(ctx context.Context) ([]*rawObject, error) {
	var raws []*rawObject
	rows, err := r.conn.Query(ctx, indexQuery)
	if err != nil {
		return nil, fmt.Errorf("inventory: read indexes: %w", err)
	}
	for rows.Next() {
		var (
			ro               rawObject
			relkind, contype string
			colls            []uint32
			exprs, pred      string
		)
		o := &ro.obj
		if err := rows.Scan(&o.OID, &o.Schema, &o.Table, &o.Name, &o.AccessMethod, &relkind, &contype,
			&o.Unique, &o.Valid, &o.Bytes, &colls, &ro.keyTypes, &exprs, &pred, &ro.system); err != nil {
			rows.Close()
			return nil, fmt.Errorf("inventory: read indexes: %w", err)
		}
		o.Type = indexType(relkind, contype)
		// Hash indexes on deterministic collations hash the bytes: their
		// keys' collation does not matter (nondeterministic ones are kept).
		if o.AccessMethod == "hash" {
			ro.hashed = true
			ro.exprs = append(ro.exprs, hashKeyMarker(colls))
		} else {
			ro.collOIDs = colls
		}
		ro.exprs = append(ro.exprs, exprs, pred)
		raws = append(raws, &ro)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("inventory: read indexes: %w", err)
	}

	rows, err = r.conn.Query(ctx, partitionQuery)
	if err != nil {
		return nil, fmt.Errorf("inventory: read partition keys: %w", err)
	}
	for rows.Next() {
		var ro rawObject
		var strategy, exprs string
		o := &ro.obj
		if err := rows.Scan(&o.OID, &o.Schema, &o.Table, &strategy, &ro.collOIDs, &ro.keyTypes, &exprs, &o.Bytes,
			&ro.system); err != nil {
			rows.Close()
			return nil, fmt.Errorf("inventory: read partition keys: %w", err)
		}
		o.Type, o.Name, o.Valid = ObjectPartitionKey, o.Table, true
		ro.exprs = []string{exprs}
		// Hash partitioning, like hash indexes, hashes the bytes under
		// deterministic collations: only nondeterministic ones count.
		if strategy == "h" {
			ro.hashed = true
			ro.exprs = append(ro.exprs, hashKeyMarker(ro.collOIDs))
			ro.collOIDs = nil
		}
		raws = append(raws, &ro)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("inventory: read partition keys: %w", err)
	}

	rows, err = r.conn.Query(ctx, constraintQuery)
	if err != nil {
		return nil, fmt.Errorf("inventory: read constraints: %w", err)
	}
	for rows.Next() {
		var ro rawObject
		var contype, bin string
		var local, foreign []uint32
		o := &ro.obj
		if err := rows.Scan(&o.OID, &o.Schema, &o.Table, &o.Name, &contype, &bin, &local, &foreign,
			&ro.keyTypes, &o.Bytes, &o.Valid, &ro.system); err != nil {
			rows.Close()
			return nil, fmt.Errorf("inventory: read constraints: %w", err)
		}
		if contype == "f" {
			// A foreign key is checked through the referenced unique
			// index: it is as sound as the order of both sides' keys.
			o.Type = ObjectForeignKey
			ro.collOIDs = append(local, foreign...)
		} else {
			o.Type = ObjectCheckConstraint
			ro.exprs = []string{bin}
		}
		raws = append(raws, &ro)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("inventory: read constraints: %w", err)
	}
	return raws, nil
}

func indexType(relkind, contype string) string {
	switch {
	case contype == "p":
		return ObjectPrimaryKey
	case contype == "u":
		return ObjectUniqueConstraint
	case contype == "x":
		return ObjectExclusionConstraint
	case relkind == "m":
		return ObjectMatviewIndex
	}
	return ObjectIndex
}

// nestedCollationsQuery finds, for each type in $1, the collations its
// values compare with beyond its own typcollation: the attributes of
// composite types and the subtypes of range types, through domains,
// arrays and nesting. %s adds multiranges (PostgreSQL 14).
const nestedCollationsQuery = `
WITH RECURSIVE walk(root, typ, depth) AS (
    SELECT t, t, 0 FROM unnest($1::oid[]) AS t
  UNION ALL
    SELECT w.root, x.typ, w.depth + 1
    FROM walk w
    JOIN pg_type ty ON ty.oid = w.typ
    CROSS JOIN LATERAL (
        SELECT ty.typbasetype WHERE ty.typtype = 'd'
      UNION ALL
        SELECT ty.typelem WHERE ty.typelem <> 0 AND ty.typlen = -1
      UNION ALL
        SELECT a.atttypid FROM pg_attribute a
         WHERE ty.typtype = 'c' AND a.attrelid = ty.typrelid AND a.attnum > 0 AND NOT a.attisdropped
      UNION ALL
        SELECT r.rngsubtype FROM pg_range r WHERE r.rngtypid = ty.oid
      %s
    ) AS x(typ)
    WHERE w.depth < 16)
SELECT DISTINCT w.root, c.coll
FROM walk w
JOIN pg_type ty ON ty.oid = w.typ
CROSS JOIN LATERAL (
    SELECT a.attcollation FROM pg_attribute a
     WHERE ty.typtype = 'c' AND a.attrelid = ty.typrelid AND a.attnum > 0 AND NOT a.attisdropped
       AND a.attcollation <> 0
  UNION ALL
    SELECT r.rngcollation FROM pg_range r WHERE r.rngtypid = ty.oid AND r.rngcollation <> 0
) AS c(coll)`

// extensionTypesQuery returns the types of $1 whose base type (through
// domains) is collatable and not in pg_catalog: citext, arrays of it.
const extensionTypesQuery = `
WITH RECURSIVE base(root, typ, depth) AS (
    SELECT t, t, 0 FROM unnest($1::oid[]) AS t
  UNION ALL
    SELECT b.root, ty.typbasetype, b.depth + 1
    FROM base b JOIN pg_type ty ON ty.oid = b.typ
    WHERE ty.typtype = 'd' AND b.depth < 16)
SELECT DISTINCT b.root
FROM base b JOIN pg_type ty ON ty.oid = b.typ
WHERE ty.typtype <> 'd' AND ty.typcollation <> 0 AND ty.typnamespace <> 'pg_catalog'::regnamespace`

// resolveTypes adds the collations nested in the key columns' composite
// and range types to their objects.
func (r *inventoryReader) resolveTypes(ctx context.Context, raws []*rawObject) error {
	seen := map[uint32]bool{}
	var types []uint32
	for _, ro := range raws {
		for _, t := range ro.keyTypes {
			if !seen[t] {
				seen[t] = true
				types = append(types, t)
			}
		}
	}
	if len(types) == 0 {
		return nil
	}
	nested, err := nestedCollations(ctx, r.conn, r.inv.ServerVersionNum, types)
	if err != nil {
		return fmt.Errorf("inventory: %w", err)
	}
	rows, err := r.conn.Query(ctx, extensionTypesQuery, types)
	if err != nil {
		return fmt.Errorf("inventory: read key types: %w", err)
	}
	extension, err := pgx.CollectRows(rows, pgx.RowTo[uint32])
	if err != nil {
		return fmt.Errorf("inventory: read key types: %w", err)
	}
	for _, ro := range raws {
		for _, t := range ro.keyTypes {
			ro.extensionKey = ro.extensionKey || slices.Contains(extension, t)
			if ro.hashed {
				ro.exprs = append(ro.exprs, hashKeyMarker(nested[t]))
			} else {
				ro.collOIDs = append(ro.collOIDs, nested[t]...)
			}
		}
	}
	return nil
}

// nestedCollations returns, per type in types, the collations nested in it
// (nestedCollationsQuery) on a server of version serverVersionNum.
func nestedCollations(ctx context.Context, conn *pgx.Conn, serverVersionNum int, types []uint32) (map[uint32][]uint32, error) {
	multirange := ""
	if serverVersionNum >= 140000 {
		multirange = "UNION ALL SELECT r.rngtypid FROM pg_range r WHERE r.rngmultitypid = ty.oid"
	}
	rows, err := conn.Query(ctx, fmt.Sprintf(nestedCollationsQuery, multirange), types)
	if err != nil {
		return nil, fmt.Errorf("read composite and range types: %w", err)
	}
	defer rows.Close()
	nested := map[uint32][]uint32{}
	for rows.Next() {
		var typ, coll uint32
		if err := rows.Scan(&typ, &coll); err != nil {
			return nil, fmt.Errorf("read composite and range types: %w", err)
		}
		nested[typ] = append(nested[typ], coll)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read composite and range types: %w", err)
	}
	return nested, nil
}

// resolveNodes looks up the operators and functions named in node trees.
func (r *inventoryReader) resolveNodes(ctx context.Context, raws []*rawObject) error {
	var ops, funcs []uint32
	for _, ro := range raws {
		for _, e := range ro.exprs {
			for _, u := range parseNodeTree(e) {
				if u.opno != 0 {
					ops = append(ops, u.opno)
				}
				if u.funcn != 0 {
					funcs = append(funcs, u.funcn)
				}
			}
		}
	}
	if len(ops) > 0 {
		// An operator is known by its function, and only in pg_catalog:
		// an extension's "=" (citext's lowercases) is not byte equality.
		rows, err := r.conn.Query(ctx, `SELECT o.oid, CASE WHEN n.nspname = 'pg_catalog' THEN p.proname ELSE '' END
			FROM pg_operator o JOIN pg_proc p ON p.oid = o.oprcode JOIN pg_namespace n ON n.oid = p.pronamespace
			WHERE o.oid = ANY ($1) AND o.oprnamespace = 'pg_catalog'::regnamespace`, ops)
		if err != nil {
			return fmt.Errorf("inventory: read operators: %w", err)
		}
		for rows.Next() {
			var oid uint32
			var name string
			if err := rows.Scan(&oid, &name); err != nil {
				rows.Close()
				return fmt.Errorf("inventory: read operators: %w", err)
			}
			r.ops[oid] = name
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("inventory: read operators: %w", err)
		}
	}
	if len(funcs) > 0 {
		rows, err := r.conn.Query(ctx, `SELECT p.oid, CASE WHEN n.nspname = 'pg_catalog' THEN p.proname ELSE '' END
			FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE p.oid = ANY ($1)`, funcs)
		if err != nil {
			return fmt.Errorf("inventory: read functions: %w", err)
		}
		for rows.Next() {
			var oid uint32
			var name string
			if err := rows.Scan(&oid, &name); err != nil {
				rows.Close()
				return fmt.Errorf("inventory: read functions: %w", err)
			}
			r.funcs[oid] = name
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("inventory: read functions: %w", err)
		}
	}
	return nil
}

// dependence reports whether a node's use of its collation depends on the
// collation's order and on its character classes.
func (r *inventoryReader) dependence(u collationUse) (order, ctype bool) {
	if c, ok := r.colls[u.coll]; ok && !c.Deterministic {
		return true, true
	}
	fn, known := "", false
	switch {
	case u.node == "HASHKEY":
		return false, false
	case u.opno != 0:
		fn = r.ops[u.opno]
		if equalityOperators[fn] {
			return false, false
		}
		known = fn != ""
	case u.funcn != 0:
		fn = r.funcs[u.funcn]
		if collationFreeFunctions[fn] {
			return false, false
		}
		// Unknown functions may do anything with their collation.
		return !ctypeFunction(fn), true
	default:
		return true, false // row comparisons, sorts: order only
	}
	if !known {
		return true, true // an extension's operator (citext lowercases)
	}
	return !ctypeFunction(fn), ctypeFunction(fn)
}

func (r *inventoryReader) readCollations(ctx context.Context, raws []*rawObject) error {
	var oids []uint32
	for _, ro := range raws {
		oids = append(oids, ro.collOIDs...)
		for _, e := range ro.exprs {
			for _, u := range parseNodeTree(e) {
				oids = append(oids, u.coll)
			}
		}
	}
	found, err := r.collationRows(ctx, "c.oid = ANY ($1)", oids)
	if err != nil {
		return err
	}
	for _, c := range found {
		c.ActualVersion, c.VersionError = r.actualVersion(ctx,
			`SELECT coalesce(pg_collation_actual_version($1), '')`, c.OID)
		r.colls[c.OID] = c
	}
	return nil
}

// collationRows reads the pg_collation rows (the database default
// excluded) matching the SQL condition where on c, without their actual
// versions.
func (r *inventoryReader) collationRows(ctx context.Context, where string, args ...any) ([]*CollationInfo, error) {
	locale := "NULL"
	switch v := r.inv.ServerVersionNum; {
	case v >= 170000:
		locale = "c.colllocale"
	case v >= 150000:
		locale = "c.colliculocale"
	}
	rows, err := r.conn.Query(ctx, fmt.Sprintf(`
		SELECT c.oid, n.nspname, c.collname, c.collprovider::text, c.collisdeterministic,
		       coalesce(c.collcollate, ''), coalesce(c.collctype, ''), coalesce(%s, ''),
		       coalesce(c.collversion, '')
		FROM pg_collation c JOIN pg_namespace n ON n.oid = c.collnamespace
		WHERE (%s) AND c.oid <> %d`, locale, where, defaultCollationOID), args...)
	if err != nil {
		return nil, fmt.Errorf("inventory: read collations: %w", err)
	}
	defer rows.Close()
	var found []*CollationInfo
	for rows.Next() {
		var c CollationInfo
		var prov, collate, ctype, icu string
		if err := rows.Scan(&c.OID, &c.Schema, &c.Name, &prov, &c.Deterministic, &collate, &ctype, &icu,
			&c.RecordedVersion); err != nil {
			return nil, fmt.Errorf("inventory: read collations: %w", err)
		}
		if c.Schema != "pg_catalog" {
			c.Name = c.Schema + "." + c.Name
		}
		c.Provider = providerName(prov)
		c.Locale = libcLocale(collate, ctype)
		if prov != "c" && icu != "" {
			c.Locale = icu
		}
		c.AtRisk, c.CtypeAtRisk = collationAtRisk(prov, collate), collationAtRisk(prov, ctype)
		found = append(found, &c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("inventory: read collations: %w", err)
	}
	return found, nil
}

// classify resolves each candidate's collations, keeps those that depend on
// one, and fills the inventory's lists.
func (r *inventoryReader) classify(raws []*rawObject) {
	used := map[uint32]bool{defaultCollationOID: true}
	for _, ro := range raws {
		// set maps each collation the object depends on to whether that
		// dependence is at risk.
		set := map[uint32]bool{}
		add := func(oid uint32, order, ctype bool) {
			c, ok := r.colls[oid]
			if !ok || oid == 0 || !(order || ctype) {
				return // none, or dropped concurrently
			}
			set[oid] = set[oid] || (order && c.AtRisk) || (ctype && c.CtypeAtRisk)
		}
		for _, c := range ro.collOIDs {
			add(c, true, ro.extensionKey)
		}
		for _, e := range ro.exprs {
			for _, u := range parseNodeTree(e) {
				order, ctype := r.dependence(u)
				add(u.coll, order, ctype)
			}
		}
		if len(set) == 0 {
			continue
		}
		o := ro.obj
		for oid, risky := range set {
			o.Collations = append(o.Collations, r.colls[oid].Name)
			o.AtRisk = o.AtRisk || risky
		}
		if len(o.Collations) == 0 || (ro.system && !o.AtRisk) {
			continue
		}
		sort.Strings(o.Collations)
		for oid := range set {
			used[oid] = true
		}
		r.inv.Objects = append(r.inv.Objects, o)
	}
	for oid := range used {
		if c, ok := r.colls[oid]; ok {
			r.inv.Collations = append(r.inv.Collations, *c)
		}
	}
	sort.Slice(r.inv.Collations, func(i, j int) bool {
		a, b := r.inv.Collations[i], r.inv.Collations[j]
		if a.IsDefault != b.IsDefault {
			return a.IsDefault
		}
		return a.Name < b.Name
	})
	sort.Slice(r.inv.Objects, func(i, j int) bool {
		a, b := r.inv.Objects[i], r.inv.Objects[j]
		if a.Schema != b.Schema {
			return a.Schema < b.Schema
		}
		if a.Table != b.Table {
			return a.Table < b.Table
		}
		if a.Type != b.Type {
			return a.Type < b.Type
		}
		return a.Name < b.Name
	})
}

// InventoryOptions configures Inventory.
type InventoryOptions struct {
	// AllDatabases reads every database the role may connect to
	// (ListDatabases), not only the target's.
	AllDatabases bool
}

// InventoryReport is the result of Inventory. Its JSON form is one
// database's inventory, or with AllDatabases the list of them and the
// databases that could not be read (docs/pg-check.md).
type InventoryReport struct {
	// AllDatabases is set when the report covers every database; it
	// selects the JSON form.
	AllDatabases bool
	Databases    []*DatabaseInventory
	// NotChecked lists the databases an AllDatabases run could not read.
	NotChecked []NotChecked
	Duration   time.Duration
}

// MarshalJSON renders the report's documented JSON form.
func (r *InventoryReport) MarshalJSON() ([]byte, error) {
	if !r.AllDatabases && len(r.Databases) == 1 {
		return marshalReport(r.Databases[0], r.Duration)
	}
	return marshalReport(struct {
		Databases  []*DatabaseInventory `json:"databases"`
		NotChecked []NotChecked         `json:"not_checked"`
	}{r.Databases, r.NotChecked}, r.Duration)
}

// Inventory reads the collations in use and the objects depending on them,
// in the target's database or every database. Read-only; works on a hot
// standby.
func Inventory(ctx context.Context, t *Target, opts InventoryOptions) (*InventoryReport, error) {
	start := time.Now()
	rep := &InventoryReport{AllDatabases: opts.AllDatabases}
	var err error
	rep.Databases, rep.NotChecked, err = perDatabase(ctx, t, opts.AllDatabases, func(conn *pgx.Conn) (*DatabaseInventory, error) {
		return ReadInventory(ctx, conn)
	})
	if err != nil {
		return nil, err
	}
	rep.Duration = time.Since(start)
	return rep, nil
}
