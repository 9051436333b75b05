// The collation-order core: how keys and probe strings are sorted on the
// server, hashed and compared. Fingerprints, the upgrade rehearsal and the
// key samples all sort through sortAs, and read an index's key columns with
// keyColumns.

package pgcheck

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"unicode"

	"github.com/jackc/pgx/v5"
)

// sortUnder asks the server to sort strs as text under the collation
// ident. Strings the collation considers equal are ordered by their bytes,
// so the result is deterministic, and reported as ties.
func sortUnder(ctx context.Context, conn *pgx.Conn, ident string, strs []string) ([]string, []int, error) {
	return sortAs(ctx, conn, sortKeyExpr("", true, ident), strs)
}

// sortKeyExpr is the SQL sort key of the text s: s cast to typ (text when
// empty), under the collation ident when typ is collatable (composite and
// range types carry their own collations).
func sortKeyExpr(typ string, collatable bool, ident string) string {
	key := "s"
	if typ != "" && typ != "pg_catalog.text" {
		key = "(s::" + typ + ")"
	}
	if collatable {
		key += " COLLATE " + ident
	}
	return key
}

// sortAs sorts strs by the SQL expression key (of s, see sortKeyExpr) on
// the server, ties broken by the strings' bytes and reported.
func sortAs(ctx context.Context, conn *pgx.Conn, key string, strs []string) ([]string, []int, error) {
	q := fmt.Sprintf(`SELECT s, coalesce(%[1]s = lag(%[1]s) OVER w, false)
		FROM unnest($1::text[]) AS u(s)
		WINDOW w AS (ORDER BY %[1]s, s COLLATE "C")
		ORDER BY %[1]s, s COLLATE "C"`, key)
	rows, err := conn.Query(ctx, q, strs)
	if err != nil {
		return nil, nil, err
	}
	order := make([]string, 0, len(strs))
	var ties []int
	for rows.Next() {
		var s string
		var tie bool
		if err := rows.Scan(&s, &tie); err != nil {
			rows.Close()
			return nil, nil, err
		}
		if tie {
			ties = append(ties, len(order))
		}
		order = append(order, s)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	return order, ties, nil
}

// hashOrder hashes an order: each string preceded by '<' or '=' (tied with
// the previous one) and followed by NUL, which text cannot contain.
func hashOrder(order []string, ties []int) string {
	h := sha256.New()
	t := 0
	for i, s := range order {
		sep := "<"
		if t < len(ties) && ties[t] == i {
			sep = "="
			t++
		}
		h.Write([]byte(sep))
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// OrderFlip is a pair of strings whose relative order changed: A sorted
// Was ("before" or "equal") B and now sorts Now ("before", "equal" or
// "after").
type OrderFlip struct {
	A   string `json:"a"`
	B   string `json:"b"`
	Was string `json:"was"`
	Now string `json:"now"`
}

// String renders the flip with Go quoting, so spaces and invisible
// characters show.
func (f OrderFlip) String() string {
	return fmt.Sprintf("%q sorted %s %q, now %s", f.A, f.Was, f.B, f.Now)
}

// Relations of the strings of an OrderFlip.
const (
	relBefore = "before"
	relEqual  = "equal"
	relAfter  = "after"
)

// maxExamples bounds the example pairs a comparison keeps.
const maxExamples = 5

// orderFlips compares the baseline's order with the order now: for each
// neighbouring pair of the baseline it checks the pair's relation now. When
// every neighbouring relation holds, the two orders are the same.
func orderFlips(was []string, wasTies []int, now []string, nowTies []int) (int, []OrderFlip) {
	rank := make(map[string]int, len(now))
	g, t := 0, 0
	for i, s := range now {
		if t < len(nowTies) && nowTies[t] == i {
			t++
		} else {
			g++
		}
		rank[s] = g
	}
	var n int
	// Examples between Latin words read better than between punctuation
	// marks or other scripts: keep those first, then fill up with others.
	var examples, others []OrderFlip
	t = 0
	for i := 1; i < len(was); i++ {
		rel := relBefore
		for t < len(wasTies) && wasTies[t] < i {
			t++
		}
		if t < len(wasTies) && wasTies[t] == i {
			rel = relEqual
		}
		a, b := was[i-1], was[i]
		cur := relBefore
		switch {
		case rank[a] == rank[b]:
			cur = relEqual
		case rank[a] > rank[b]:
			cur = relAfter
		}
		if cur != rel {
			n++
			f := OrderFlip{A: a, B: b, Was: rel, Now: cur}
			switch {
			case hasLetter(a) && hasLetter(b) && len(examples) < maxExamples:
				examples = append(examples, f)
			case len(others) < maxExamples:
				others = append(others, f)
			}
		}
	}
	for _, f := range others {
		if len(examples) == maxExamples {
			break
		}
		examples = append(examples, f)
	}
	return n, examples
}

func hasLetter(s string) bool {
	return strings.IndexFunc(s, func(r rune) bool { return r < unicode.MaxASCII && unicode.IsLetter(r) }) >= 0
}

// textSortTypes are the base types whose values sort the same as their
// text form: the fingerprint corpus can take their keys.
var textSortTypes = map[string]bool{`pg_catalog.text`: true, `pg_catalog."varchar"`: true,
	`pg_catalog.bpchar`: true, `pg_catalog.name`: true}

type keyColumn struct {
	pos       int
	expr      string
	typ       string // the declared type, for display
	typeOID   uint32
	collation uint32
	tableOID  uint32
	relTuples float64
	pred      string // a partial index's predicate
	// sortType is the type the keys are sorted as (a domain's base type;
	// arrays of domains as arrays of the base type), qualified.
	sortType   string
	collatable bool
}

func keyColumns(ctx context.Context, conn *pgx.Conn, indexOID uint32) ([]keyColumn, error) {
	return readKeyColumns(ctx, conn, `
		SELECT k.n, coalesce(pg_get_indexdef(i.indexrelid, k.n, true), a.attname), format_type(a.atttypid, NULL),
		       a.atttypid,
		       CASE WHEN `+patternOpclass+` THEN 0 ELSE coalesce(i.indcollation[k.n - 1], 0) END, i.indrelid,
		       -- never analyzed: assume small rows, so the sample stays bounded
		       CASE WHEN t.reltuples >= 0 THEN t.reltuples::float8
		            ELSE coalesce(pg_relation_size(t.oid), 0) / 32.0 END,
		       coalesce(pg_get_expr(i.indpred, i.indrelid, true), '')
		FROM pg_index i
		JOIN pg_class t ON t.oid = i.indrelid
		CROSS JOIN generate_series(1, i.indnkeyatts) AS k(n)
		JOIN pg_attribute a ON a.attrelid = i.indexrelid AND a.attnum = k.n
		LEFT JOIN pg_opclass oc ON oc.oid = i.indclass[k.n - 1]
		WHERE i.indexrelid = $1
		ORDER BY k.n`, indexOID)
}

// partitionKeyColumns reads a partitioned table's key columns; expression
// keys have an empty expr. The row estimate is the leaf partitions' total.
func partitionKeyColumns(ctx context.Context, conn *pgx.Conn, tableOID uint32) ([]keyColumn, error) {
	return readKeyColumns(ctx, conn, `
		SELECT k.n, coalesce(quote_ident(a.attname), ''), coalesce(format_type(a.atttypid, NULL), 'expression'),
		       coalesce(a.atttypid, 0), coalesce(p.partcollation[k.n - 1], 0), p.partrelid,
		       (SELECT coalesce(sum(CASE WHEN l.reltuples >= 0 THEN l.reltuples::float8
		                                 ELSE coalesce(pg_relation_size(l.oid), 0) / 32.0 END), 0)
		          FROM pg_partition_tree(p.partrelid) pt JOIN pg_class l ON l.oid = pt.relid
		         WHERE pt.isleaf)::float8, ''
		FROM pg_partitioned_table p
		CROSS JOIN generate_series(1, p.partnatts) AS k(n)
		LEFT JOIN pg_attribute a ON a.attrelid = p.partrelid AND a.attnum = p.partattrs[k.n - 1]
		     AND p.partattrs[k.n - 1] <> 0
		WHERE p.partrelid = $1
		ORDER BY k.n`, tableOID)
}

// readKeyColumns runs a key-column query: position, expression, type name,
// type OID, collation, table OID, estimated rows, predicate.
func readKeyColumns(ctx context.Context, conn *pgx.Conn, q string, oid uint32) ([]keyColumn, error) {
	rows, err := conn.Query(ctx, q, oid)
	if err != nil {
		return nil, fmt.Errorf("read key columns: %w", err)
	}
	defer rows.Close()
	var cols []keyColumn
	for rows.Next() {
		var k keyColumn
		if err := rows.Scan(&k.pos, &k.expr, &k.typ, &k.typeOID, &k.collation, &k.tableOID, &k.relTuples,
			&k.pred); err != nil {
			return nil, fmt.Errorf("read key columns: %w", err)
		}
		cols = append(cols, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read key columns: %w", err)
	}
	return cols, nil
}
