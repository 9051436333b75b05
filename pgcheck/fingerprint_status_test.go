package pgcheck

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ringfence/ringfence/internal/pgtest"
)

// TestFingerprintStatuses covers the statuses besides same and changed: a
// collation whose locale no longer loads (unavailable, a finding), one
// dropped since the baseline (missing) and one added since (new).
func TestFingerprintStatuses(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := pgtest.New(t, pgtest.WithVariant(pgtest.Current))
	c.CreateDatabase("st")
	c.Exec("st", `
		CREATE COLLATION vanish (provider = libc, locale = 'en_US.UTF-8');
		CREATE COLLATION gone (provider = libc, locale = 'en_US.UTF-8');
		CREATE TABLE t (a text COLLATE vanish, b text COLLATE gone, n int);
		CREATE INDEX t_a ON t (a);
		CREATE INDEX t_b ON t (b);
		INSERT INTO t SELECT 'k' || g, 'k' || g, g FROM generate_series(1, 100) g;`)
	conn := c.Connect("st")
	inv, err := ReadInventory(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	base, err := NewBaseline(ctx, conn, inv)
	if err != nil {
		t.Fatal(err)
	}

	// The locale of "vanish" disappears (as when the server moves to a
	// machine without it), "gone" is dropped, "fresh" is new.
	c.Exec("st", `
		UPDATE pg_collation SET collcollate = 'xx_XX.utf8', collctype = 'xx_XX.utf8' WHERE collname = 'vanish';
		DROP INDEX t_b;
		ALTER TABLE t DROP COLUMN b;
		DROP COLLATION gone;
		CREATE COLLATION fresh (provider = libc, locale = 'en_US.UTF-8');
		CREATE INDEX t_fresh ON t ((a::text COLLATE fresh));`)
	conn = c.Connect("st")
	inv, err = ReadInventory(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	results, findings, err := CompareFingerprints(ctx, conn, inv, base)
	if err != nil {
		t.Fatalf("a collation whose locale vanished stopped the comparison: %v", err)
	}
	status := map[string]FingerprintResult{}
	for _, r := range results {
		status[r.Collation] = r
	}
	if r := status["public.vanish"]; r.Status != FingerprintUnavailable || !strings.Contains(r.Error, "xx_XX") {
		t.Errorf("vanished locale: %+v", r)
	}
	if r := status["public.gone"]; r.Status != FingerprintMissing {
		t.Errorf("dropped collation: %+v", r)
	}
	if r := status["public.fresh"]; r.Status != FingerprintNew {
		t.Errorf("new collation: %+v", r)
	}
	if r := status["default"]; r.Status != FingerprintSame {
		t.Errorf("default collation: %+v", r)
	}
	if len(findings) != 1 || findings[0].Kind != KindCollationChanged || findings[0].Collation != "public.vanish" ||
		!strings.Contains(findings[0].Detail, "no longer available") || len(findings[0].AtRisk) != 1 ||
		findings[0].AtRisk[0].Object != "t_a" {
		t.Errorf("findings %+v, want one collation_changed for public.vanish with t_a at risk", findings)
	}
}
