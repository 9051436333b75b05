// Command amcheck-bench compares `ringfence pg check --heap --jobs N` with
// `pg_amcheck --jobs N` (which checks heap and B-tree indexes by default) on
// one database: interleaved runs, median wall time, the ratio, and whether
// both report the same corrupt relations. It also times `--scope collation`
// and, when a fingerprint baseline exists, `pg fingerprint`.
//
// Run it through bench/amcheck/run.sh, which builds a cluster and a database
// of the requested size; see bench/README.md.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "amcheck-bench:", err)
		os.Exit(1)
	}
}

type tool struct {
	name string
	args []string
	// okExit lists exit codes that mean "ran, found corruption".
	okExit []int
	times  []time.Duration
	found  []string
}

func run() error {
	dsn := flag.String("dsn", "", "database to check (URL form)")
	ringfence := flag.String("ringfence", "ringfence", "ringfence binary")
	pgAmcheck := flag.String("pg-amcheck", "pg_amcheck", "pg_amcheck binary")
	runs := flag.Int("runs", 5, "runs per tool")
	jobs := flag.Int("jobs", 2, "jobs for both tools")
	flag.Parse()
	cfg, err := pgx.ParseConfig(*dsn)
	if err != nil {
		return err
	}
	ctx := context.Background()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	var size, heap, index int64
	var version string
	err = conn.QueryRow(ctx, `SELECT pg_database_size(current_database()),
		(SELECT sum(pg_relation_size(oid)) FROM pg_class WHERE relkind IN ('r','m','t')),
		(SELECT sum(pg_relation_size(oid)) FROM pg_class WHERE relkind = 'i'),
		current_setting('server_version')`).Scan(&size, &heap, &index, &version)
	conn.Close(ctx)
	if err != nil {
		return err
	}
	fmt.Printf("database %s: %.2f GB (heap %.2f GB, indexes %.2f GB), PostgreSQL %s\n",
		cfg.Database, gb(size), gb(heap), gb(index), version)

	j := fmt.Sprint(*jobs)
	amcheck := &tool{name: "pg_amcheck --jobs " + j, args: []string{*pgAmcheck, "--jobs", j,
		"-h", cfg.Host, "-p", fmt.Sprint(cfg.Port), "-U", cfg.User, "-d", cfg.Database}, okExit: []int{2}}
	ours := &tool{name: "ringfence pg check --heap --jobs " + j, args: []string{*ringfence, "pg", "check",
		"--heap", "--jobs", j, "--json", "-q", *dsn}, okExit: []int{1}}
	scope := &tool{name: "ringfence pg check --scope collation --jobs " + j, args: []string{*ringfence, "pg", "check",
		"--scope", "collation", "--jobs", j, "--json", "-q", *dsn}, okExit: []int{1}}
	fingerprint := &tool{name: "ringfence pg fingerprint", args: []string{*ringfence, "pg", "fingerprint", *dsn}, okExit: []int{1}}
	tools := []*tool{amcheck, ours, scope, fingerprint}
	for i := range *runs {
		// Alternate which of the two compared tools goes first.
		order := tools
		if i%2 == 1 {
			order = []*tool{ours, amcheck, scope, fingerprint}
		}
		for _, t := range order {
			d, out, err := timed(t.args, t.okExit...)
			if err != nil {
				return fmt.Errorf("%s: %w\n%s", t.name, err, out)
			}
			t.times = append(t.times, d)
			switch t {
			case amcheck:
				t.found = amcheckFound(out)
			case ours, scope:
				t.found, err = ringfenceFound(out)
				if err != nil {
					return fmt.Errorf("%s: %w", t.name, err)
				}
			}
			fmt.Fprintf(os.Stderr, "run %d %-45s %8.2fs\n", i+1, t.name, d.Seconds())
		}
	}
	fmt.Printf("\n%-48s %10s %10s %10s\n", "command", "median s", "min s", "max s")
	for _, t := range tools {
		s := slices.Clone(t.times)
		slices.Sort(s)
		fmt.Printf("%-48s %10.2f %10.2f %10.2f\n", t.name, s[len(s)/2].Seconds(), s[0].Seconds(), s[len(s)-1].Seconds())
	}
	ratio := median(ours.times).Seconds() / median(amcheck.times).Seconds()
	fmt.Printf("\nratio ringfence / pg_amcheck (median wall time): %.2f\n", ratio)
	fmt.Printf("findings: pg_amcheck %v, ringfence %v, identical: %v\n", amcheck.found, ours.found, slices.Equal(amcheck.found, ours.found))
	return nil
}

// timed runs args and returns the wall time and output. Exit codes in ok
// (a tool's "found corruption") are not errors.
func timed(args []string, ok ...int) (time.Duration, []byte, error) {
	cmd := exec.Command(args[0], args[1:]...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	d := time.Since(start)
	if ee, isExit := err.(*exec.ExitError); isExit && slices.Contains(ok, ee.ExitCode()) {
		err = nil
	}
	return d, out.Bytes(), err
}

var amcheckLine = regexp.MustCompile(`(?m)^(btree index|heap table) "[^.]+\.([^"]+)"`)

func amcheckFound(out []byte) []string {
	var found []string
	for _, m := range amcheckLine.FindAllSubmatch(out, -1) {
		found = append(found, string(m[2]))
	}
	slices.Sort(found)
	return slices.Compact(found)
}

func ringfenceFound(out []byte) ([]string, error) {
	var rep struct {
		Findings []struct{ Kind, Schema, Object string }
	}
	if err := json.Unmarshal(out, &rep); err != nil {
		return nil, fmt.Errorf("parse --json: %w", err)
	}
	found := []string{}
	for _, f := range rep.Findings {
		if f.Kind == "index_corrupt" || f.Kind == "heap_corrupt" {
			found = append(found, f.Schema+"."+f.Object)
		}
	}
	slices.Sort(found)
	return slices.Compact(found), nil
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

func gb(n int64) float64 { return float64(n) / (1 << 30) }
