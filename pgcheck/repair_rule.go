package pgcheck

import (
	"errors"
	"fmt"
	"strings"
)

// DedupeRule chooses which row of a duplicate group a repair keeps: the
// newest or oldest by a named column, or (KeepOne) the one stored first.
// The others are moved to the quarantine. Repair never picks a row on its
// own.
type DedupeRule struct {
	// Table limits the rule to one table ("table" or "schema.table", as
	// stored, unquoted); empty applies it to every table.
	Table string `json:"table,omitempty"`
	// KeepNewest keeps the row with the greatest Column value; otherwise the
	// row with the smallest. A row whose value is NULL is never kept over
	// one with a value; a group whose best value is NULL or shared by two
	// rows has no row to keep, and the repair refuses to pick one.
	KeepNewest bool `json:"keep_newest"`
	// Column is the column that orders a group's rows.
	Column string `json:"column,omitempty"`
	// KeepOne keeps the row with the lowest ctid (for a partitioned table:
	// of the partition with the lowest OID first): deterministic, for
	// tables with no timestamp or unique tiebreaker, such as a duplicated
	// text primary key. Column is then empty.
	KeepOne bool `json:"keep_one,omitempty"`
}

// DedupeSyntax is the form of a --dedupe rule, for messages.
const DedupeSyntax = "[TABLE=]keep-newest:COLUMN, [TABLE=]keep-oldest:COLUMN or [TABLE=]keep-one (the row with the lowest ctid)"

// ErrBadDedupeRule is returned (wrapped) when a dedupe rule cannot apply
// to a table it covers: a column that does not exist.
var ErrBadDedupeRule = errors.New("bad dedupe rule")

// ParseDedupeRule parses "[TABLE=]keep-newest:COLUMN",
// "[TABLE=]keep-oldest:COLUMN" or "[TABLE=]keep-one".
func ParseDedupeRule(s string) (DedupeRule, error) {
	var r DedupeRule
	rest := s
	if t, after, ok := strings.Cut(s, "="); ok {
		r.Table, rest = strings.TrimSpace(t), after
		if r.Table == "" {
			return r, fmt.Errorf("dedupe rule %q: empty table name before '='", s)
		}
	}
	if strings.TrimSpace(rest) == "keep-one" {
		r.KeepOne = true
		return r, nil
	}
	how, col, ok := strings.Cut(rest, ":")
	if !ok || strings.TrimSpace(col) == "" {
		return r, fmt.Errorf("dedupe rule %q: want %s", s, DedupeSyntax)
	}
	switch strings.TrimSpace(how) {
	case "keep-newest":
		r.KeepNewest = true
	case "keep-oldest":
	default:
		return r, fmt.Errorf("dedupe rule %q: unknown rule %q (want %s)", s, how, DedupeSyntax)
	}
	r.Column = strings.TrimSpace(col)
	return r, nil
}

// String renders r in the form ParseDedupeRule reads.
func (r DedupeRule) String() string {
	how := "keep-oldest:" + r.Column
	switch {
	case r.KeepOne:
		how = "keep-one"
	case r.KeepNewest:
		how = "keep-newest:" + r.Column
	}
	if r.Table != "" {
		return r.Table + "=" + how
	}
	return how
}

// ruleFor returns the rule for schema.table: a rule naming schema.table
// wins over one naming the bare table (which matches it in every schema),
// which wins over one for every table; among equals the first given wins.
func ruleFor(rules []DedupeRule, schema, table string) *DedupeRule {
	var best *DedupeRule
	bestRank := 0
	for i := range rules {
		rank := 0
		switch rules[i].Table {
		case schema + "." + table:
			rank = 3
		case table:
			rank = 2
		case "":
			rank = 1
		}
		if rank > bestRank {
			best, bestRank = &rules[i], rank
		}
	}
	return best
}
