package pgtest

import (
	"context"
	"os"
	"testing"
	"time"
)

// TestVariantsOrderDifferently proves each variant really changes the order
// PostgreSQL uses, while PostgreSQL reports the same collation version.
func TestVariantsOrderDifferently(t *testing.T) { ForEachVersion(t, testVariantsOrderDifferently) }

func testVariantsOrderDifferently(t *testing.T, b Build) {
	c := New(t, WithBuild(b))
	order := func() (string, string) {
		conn := c.Connect("postgres")
		var got string
		var ver *string
		// PostgreSQL 14 records no database collation version.
		err := conn.QueryRow(context.Background(), `
			SELECT string_agg(s, '|' ORDER BY s COLLATE "en_US.utf8"),
			       (SELECT collversion FROM pg_collation WHERE collname = 'en_US.utf8')
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
			t.Errorf("%s: collation version %q, want unchanged %q", v, ver, version)
		}
	}
}

func TestStandby(t *testing.T) { ForEachVersion(t, testStandby) }

func testStandby(t *testing.T, b Build) {
	c := New(t, WithBuild(b))
	c.Exec("postgres", "CREATE TABLE t(x int); INSERT INTO t VALUES (1)")
	s := c.Standby(Current)
	var inRecovery bool
	if err := s.Connect("postgres").QueryRow(context.Background(), "SELECT pg_is_in_recovery()").Scan(&inRecovery); err != nil {
		t.Fatal(err)
	}
	if !inRecovery {
		t.Fatal("standby is not in recovery")
	}
	// It replicates what the primary writes after the copy.
	c.Exec("postgres", "INSERT INTO t VALUES (2)")
	conn := s.Connect("postgres")
	for {
		var n int
		if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM t").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 2 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestVersionMatrix proves every build of the matrix runs the major version
// it claims, with amcheck.
func TestVersionMatrix(t *testing.T) {
	builds := MatrixBuilds(t)
	if os.Getenv("CI") != "" && len(builds) != MaxMajor-MinMajor+1 {
		t.Fatalf("matrix %v, want every major from %d to %d", builds, MinMajor, MaxMajor)
	}
	ForEachVersion(t, func(t *testing.T, b Build) {
		c := New(t, WithBuild(b))
		c.Exec("postgres", "CREATE EXTENSION amcheck")
		var num int
		err := c.Connect("postgres").QueryRow(context.Background(),
			`SELECT current_setting('server_version_num')::int`).Scan(&num)
		if err != nil {
			t.Fatal(err)
		}
		if num/10000 != b.Major {
			t.Errorf("%s runs server_version_num %d", b, num)
		}
	})
}
