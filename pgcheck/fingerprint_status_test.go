package pgcheck

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ringfence/ringfence/internal/pgtest"
)

// TestFingerprintStatuses covers the statuses besides same and changed: a
// collation whose locale no longer loads (unavailable, a finding), one
// dropped since the baseline (missing) and one added since (new).
func TestFingerprintStatuses(t *testing.T) { pgtest.ForEachVersion(t, testFingerprintStatuses) }

func testFingerprintStatuses(t *testing.T, b pgtest.Build) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := pgtest.New(t, pgtest.WithBuild(b), pgtest.WithVariant(pgtest.Current))
	c.CreateDatabase("st")
	c.Exec("st", `
		CREATE COLLATION vanish (provider = libc, locale = 'en_US.UTF-8');
		CREATE COLLATION gone (provider = libc, locale = 'en_US.UTF-8');
		CREATE TABLE t (a text COLLATE vanish, b text COLLATE gone, n int);
		CREATE INDEX t_a ON t (a);
		CREATE INDEX t_b ON t (b);
		INSERT INTO t SELECT 'k' || g, 'k' || g, g FROM generate_series(1, 100) g;`)
	conn := c.Connect("st")
	inv, base := takeBaseline(t, ctx, conn)

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
	inv, err := ReadInventory(ctx, conn)
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

	// pg check's entry point returns the finding, and an error naming the
	// collation the baseline does not cover.
	file := filepath.Join(t.TempDir(), "st.json")
	if err := WriteBaselineFile(file, base); err != nil {
		t.Fatal(err)
	}
	checked, ok, err := CheckFingerprint(ctx, conn, file)
	if len(checked) != 1 || !ok || err == nil || !strings.Contains(err.Error(), "public.fresh") {
		t.Errorf("CheckFingerprint: findings %+v ok %v err %v, want one finding and an error naming public.fresh", checked, ok, err)
	}
	// A baseline of another database is refused.
	base.Database = "other"
	if err := WriteBaselineFile(file, base); err != nil {
		t.Fatal(err)
	}
	if _, _, err := CheckFingerprint(ctx, conn, file); err == nil || !strings.Contains(err.Error(), `"other"`) {
		t.Errorf("baseline of database other accepted for st: err %v", err)
	}

	checkForgedBaseline(t, c)
}

// checkForgedBaseline: a ringfence schema prepared by an unprivileged role
// (with a trigger that would run as the recording superuser) is neither
// written to nor read from.
func checkForgedBaseline(t *testing.T, c *pgtest.Cluster) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c.CreateDatabase("forged")
	c.Exec("forged", `CREATE ROLE mallory LOGIN; CREATE SCHEMA ringfence AUTHORIZATION mallory`)
	mallory, err := pgx.Connect(ctx, c.UserDSN("mallory", "forged"))
	if err != nil {
		t.Fatal(err)
	}
	defer mallory.Close(ctx)
	if _, err := mallory.Exec(ctx, `
		CREATE TABLE ringfence.collation_fingerprint (
			collation_name text COLLATE "C" PRIMARY KEY, fingerprint jsonb NOT NULL, format int NOT NULL,
			server_version text NOT NULL, recorded_at timestamptz NOT NULL);
		CREATE TABLE ringfence.ran (who text);
		CREATE FUNCTION ringfence.spy() RETURNS trigger LANGUAGE plpgsql AS
			$$BEGIN INSERT INTO ringfence.ran VALUES (current_user); RETURN NULL; END$$;
		CREATE TRIGGER spy AFTER INSERT OR DELETE ON ringfence.collation_fingerprint
			FOR EACH STATEMENT EXECUTE FUNCTION ringfence.spy();
		INSERT INTO ringfence.collation_fingerprint VALUES
			('default', '{"collation": "default", "schema": "pg_catalog", "name": "default", "order": ["a"]}', 1, '15', now());
		TRUNCATE ringfence.ran;`); err != nil {
		t.Fatal(err)
	}
	conn := c.Connect("forged")
	_, base := takeBaseline(t, ctx, conn)
	if err := RecordBaseline(ctx, conn, base); err == nil || !strings.Contains(err.Error(), "mallory") {
		t.Errorf("recording into mallory's schema: err %v, want a refusal naming mallory", err)
	}
	var ran int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM ringfence.ran`).Scan(&ran); err != nil || ran != 0 {
		t.Errorf("mallory's trigger ran %d times (err %v)", ran, err)
	}
	if _, ok, err := LoadBaseline(ctx, conn); ok || err == nil || !strings.Contains(err.Error(), "mallory") {
		t.Errorf("loading mallory's baseline: ok %v err %v, want a refusal", ok, err)
	}
	if _, _, err := CheckFingerprint(ctx, conn, ""); err == nil {
		t.Error("pg check's fingerprint comparison accepted mallory's baseline")
	}
}
