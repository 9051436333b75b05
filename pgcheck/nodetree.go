// Node-tree parsing: what pg_node_tree text (index expressions,
// predicates, constraint and partition expressions) says about the
// collations it uses, and which built-in functions and operators use a
// collation's order or only its character classes. Pure: no SQL.

package pgcheck

import (
	"fmt"
	"strings"
)

// hashKeyMarker encodes a hash index's key collations as pseudo node-tree
// text using equality: they count only for nondeterministic collations.
func hashKeyMarker(colls []uint32) string {
	var b strings.Builder
	for _, c := range colls {
		if c != 0 {
			fmt.Fprintf(&b, "{HASHKEY :opno 0 :inputcollid %d}", c)
		}
	}
	return b.String()
}

// collationUse is one collation-sensitive call found in a node tree.
type collationUse struct {
	node  string // OPEXPR, FUNCEXPR, ...
	opno  uint32 // operator, for operator nodes
	funcn uint32 // function, for FUNCEXPR
	coll  uint32
}

// parseNodeTree finds every node carrying an input collation in a
// pg_node_tree's text form. Expressions and predicates record their
// collations there, including the database default that pg_depend omits:
// ":inputcollid N" on operators and functions, ":inputcollids (o N ...)" on
// row comparisons, which always order.
func parseNodeTree(tree string) []collationUse {
	const field = ":inputcollid"
	var uses []collationUse
	for {
		i := strings.Index(tree, field)
		if i < 0 {
			return uses
		}
		start := strings.LastIndexByte(tree[:i], '{')
		header := tree[max(start, 0):i]
		rest := tree[i+len(field):]
		tree = rest
		u := collationUse{}
		if start >= 0 {
			u.node, _, _ = strings.Cut(header[1:], " ")
		}
		if list, ok := strings.CutPrefix(rest, "s (o "); ok {
			list, _, _ = strings.Cut(list, ")")
			for _, f := range strings.Fields(list) {
				if _, err := fmt.Sscan(f, &u.coll); err == nil && u.coll != 0 {
					uses = append(uses, u)
				}
			}
			continue
		}
		if _, err := fmt.Sscan(rest, &u.coll); err != nil || u.coll == 0 {
			continue
		}
		u.opno = nodeField(header, ":opno ")
		u.funcn = nodeField(header, ":funcid ")
		uses = append(uses, u)
	}
}

func nodeField(header, field string) uint32 {
	i := strings.Index(header, field)
	if i < 0 {
		return 0
	}
	var v uint32
	if _, err := fmt.Sscan(header[i+len(field):], &v); err != nil {
		return 0
	}
	return v
}

// equalityOperators are the functions of pg_catalog's operators that
// compare bytes under a deterministic collation (=, <>, LIKE, NOT LIKE on
// text, varchar, char and name): their result cannot change with the
// collation. Composite and array equality compare their elements this way.
var equalityOperators = map[string]bool{
	"texteq": true, "textne": true, "bpchareq": true, "bpcharne": true, "nameeq": true, "namene": true,
	"nameeqtext": true, "namenetext": true, "texteqname": true, "textnename": true,
	"textlike": true, "textnlike": true, "bpcharlike": true, "bpcharnlike": true, "namelike": true, "namenlike": true,
	"record_eq": true, "record_ne": true, "array_eq": true, "array_ne": true,
}

// collationFreeFunctions are pg_catalog functions that take an input
// collation but do not use it for deterministic collations.
var collationFreeFunctions = map[string]bool{
	"length": true, "char_length": true, "character_length": true, "octet_length": true,
	"bit_length": true, "md5": true, "sha224": true, "sha256": true, "sha384": true, "sha512": true,
	"substr": true, "substring": true, "left": true, "right": true, "strpos": true,
	"position": true, "replace": true, "concat": true, "concat_ws": true, "btrim": true,
	"ltrim": true, "rtrim": true, "lpad": true, "rpad": true, "repeat": true, "reverse": true,
	"textlen": true, "textcat": true, "split_part": true, "translate": true, "to_char": true,
	"text": true, "varchar": true, "bpchar": true, "format": true, "quote_literal": true,
	"quote_ident": true, "quote_nullable": true, "starts_with": true,
}

// ctypeFunction reports whether the pg_catalog function fn depends on the
// collation's character classes (LC_CTYPE): case mapping, regular
// expressions, ILIKE.
func ctypeFunction(fn string) bool {
	switch fn {
	case "lower", "upper", "initcap":
		return true
	}
	return strings.Contains(fn, "regex") || strings.Contains(fn, "iclike") || strings.Contains(fn, "icnlike")
}
