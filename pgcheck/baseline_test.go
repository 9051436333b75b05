package pgcheck

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestBaselineFileRejectsTampering: a baseline whose hash, strings or ties
// do not agree is refused instead of giving confusing comparisons.
func TestBaselineFileRejectsTampering(t *testing.T) {
	good := CollationFingerprint{Collation: "default", Schema: "pg_catalog", Name: "default",
		Order: []string{"a", "A", "b"}, Ties: []int{1}}
	good.SHA256 = hashOrder(good.Order, good.Ties)
	path := filepath.Join(t.TempDir(), "b.json")
	write := func(f CollationFingerprint) error {
		t.Helper()
		if err := WriteBaselineFile(path, &Baseline{Format: baselineFormat, Database: "db", Fingerprints: []CollationFingerprint{f}}); err != nil {
			t.Fatal(err)
		}
		_, err := ReadBaselineFile(path)
		return err
	}
	if err := write(good); err != nil {
		t.Fatalf("valid baseline refused: %v", err)
	}
	bad := map[string]CollationFingerprint{}
	f := good
	f.SHA256 = hashOrder([]string{"a", "b"}, nil)
	bad["sha256"] = f
	f = good
	f.Order = []string{"a", "A", "a"}
	f.SHA256 = hashOrder(f.Order, f.Ties)
	bad["twice"] = f
	f = good
	f.Ties = []int{3}
	f.SHA256 = hashOrder(f.Order, f.Ties)
	bad["tie position"] = f
	for want, f := range bad {
		if err := write(f); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("tampered baseline (%s): err %v", want, err)
		}
	}
}

// TestOrderFlipsTies: strings a nondeterministic collation tied in the
// baseline and no longer ties (or the reverse) are changed pairs.
func TestOrderFlipsTies(t *testing.T) {
	was, wasTies := []string{"a", "A", "b"}, []int{1}
	if n, _ := orderFlips(was, wasTies, []string{"a", "A", "b"}, []int{1}); n != 0 {
		t.Errorf("same ties: %d flips", n)
	}
	n, ex := orderFlips(was, wasTies, []string{"A", "a", "b"}, nil)
	if n != 1 || len(ex) != 1 || ex[0] != (OrderFlip{A: "a", B: "A", Was: relEqual, Now: relAfter}) {
		t.Errorf("tie broken: %d flips %+v", n, ex)
	}
	n, ex = orderFlips([]string{"a", "b"}, nil, []string{"a", "b"}, []int{1})
	if n != 1 || ex[0].Was != relBefore || ex[0].Now != relEqual {
		t.Errorf("new tie: %d flips %+v", n, ex)
	}
}
