package pgtest

import (
	"context"
	"testing"
)

// TestVariantsOrderDifferently proves each variant really changes the order
// PostgreSQL uses, while PostgreSQL reports the same collation version.
func TestVariantsOrderDifferently(t *testing.T) {
	c := New(t)
	order := func() (string, string) {
		conn := c.Connect("postgres")
		var got string
		var ver *string
		err := conn.QueryRow(context.Background(), `
			SELECT string_agg(s, '|' ORDER BY s COLLATE "en_US.utf8"),
			       (SELECT datcollversion FROM pg_database WHERE datname = 'postgres')
			FROM unnest(ARRAY['b','A','a','ab','a b','a-b','z','Z']) s`).Scan(&got, &ver)
		if err != nil {
			t.Fatal(err)
		}
		v := "<null>"
		if ver != nil {
			v = *ver
		}
		return got, v
	}
	want := map[Variant]string{
		Current:   "a|A|a b|a-b|ab|b|z|Z",
		Glibc227:  "a|A|ab|a b|a-b|b|z|Z",
		CodePoint: "A|Z|a|a b|a-b|ab|b|z",
		Synthetic: "b|z|Z|a|A|a b|a-b|ab",
	}
	_, version := order()
	for _, v := range Variants {
		c.Restart(v)
		got, ver := order()
		if got != want[v] {
			t.Errorf("%s: order %q, want %q", v, got, want[v])
		}
		if ver != version {
			t.Errorf("%s: datcollversion %q, want unchanged %q", v, ver, version)
		}
	}
}

func TestStandby(t *testing.T) {
	c := New(t)
	c.Exec("postgres", "CREATE TABLE t(x int); INSERT INTO t VALUES (1)")
	s := c.Standby(Current)
	var inRecovery bool
	if err := s.Connect("postgres").QueryRow(context.Background(), "SELECT pg_is_in_recovery()").Scan(&inRecovery); err != nil {
		t.Fatal(err)
	}
	if !inRecovery {
		t.Fatal("standby is not in recovery")
	}
}
