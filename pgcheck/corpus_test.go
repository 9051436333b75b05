package pgcheck

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestProbeCorpusIsUsable(t *testing.T) {
	seen := map[string]bool{}
	for _, s := range probeCorpus {
		if seen[s] {
			t.Errorf("duplicate probe string %q", s)
		}
		seen[s] = true
		if !utf8.ValidString(s) || strings.ContainsRune(s, 0) {
			t.Errorf("probe string %q is not valid PostgreSQL text", s)
		}
	}
	// The documented glibc 2.28 trio must stay in the corpus.
	for _, s := range []string{"ab", "a b", "a-b", "O'Brien", "co-op", "ß", "ẞ", "e\u0301", "😀"} {
		if !seen[s] {
			t.Errorf("corpus lacks %q", s)
		}
	}
}

func TestOrderFlips(t *testing.T) {
	was := []string{"ab", "a b", "a-b", "b"}
	cases := []struct {
		name    string
		now     []string
		nowTies []int
		n       int
		first   OrderFlip
	}{
		{"same", []string{"ab", "a b", "a-b", "b"}, nil, 0, OrderFlip{}},
		{"glibc 2.28", []string{"a b", "a-b", "ab", "b"}, nil, 1, OrderFlip{A: "ab", B: "a b", Was: relBefore, Now: relAfter}},
		{"reversed", []string{"b", "a-b", "a b", "ab"}, nil, 3, OrderFlip{A: "ab", B: "a b", Was: relBefore, Now: relAfter}},
		{"tie", []string{"ab", "a b", "a-b", "b"}, []int{2}, 1, OrderFlip{A: "a b", B: "a-b", Was: relBefore, Now: relEqual}},
	}
	for _, c := range cases {
		n, ex := orderFlips(was, nil, c.now, c.nowTies)
		if n != c.n {
			t.Errorf("%s: %d flips, want %d (%v)", c.name, n, c.n, ex)
			continue
		}
		if n > 0 && ex[0] != c.first {
			t.Errorf("%s: first flip %v, want %v", c.name, ex[0], c.first)
		}
	}
	if hashOrder(was, nil) == hashOrder(was, []int{1}) {
		t.Error("hash ignores ties")
	}
	if hashOrder([]string{"a", "b"}, nil) == hashOrder([]string{"b", "a"}, nil) {
		t.Error("hash ignores order")
	}
}
