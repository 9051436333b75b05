package cli_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/ringfence/ringfence/internal/cli"
	"github.com/ringfence/ringfence/internal/pgtest"
	"github.com/ringfence/ringfence/pgcheck"
)

func TestPgCompare(t *testing.T) {
	old := pgtest.New(t, pgtest.WithVariant(pgtest.Current))
	old.CreateDatabase("app")
	old.Exec("app", collationSchema)
	neu := pgtest.New(t, pgtest.WithVariant(pgtest.Current))
	from, to := old.DSN("app"), neu.DSN("postgres")

	code, out, errOut := ringfence(t, "pg", "compare", "--from", from, "--to", to)
	if code != cli.ExitOK || !strings.Contains(out, "0 of 2 indexes would be out of order") ||
		!strings.Contains(errOut, "compare: 2/2 indexes and partition keys") {
		t.Fatalf("same locale: exit %d\n%s%s", code, out, errOut)
	}

	neu.Restart(pgtest.Synthetic)
	code, out, errOut = ringfence(t, "pg", "compare", "--from", from, "--to", to, "--sample", "1000")
	if code != cli.ExitFindings {
		t.Fatalf("synthetic locale: exit %d, want 1\n%s%s", code, out, errOut)
	}
	for _, want := range []string{"differs  public.users_name_key (unique)", "differs  public.users_title",
		"2 of 2 indexes would be out of order", "on the old server, after on the new"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	code, out, _ = ringfence(t, "pg", "compare", "--json", "--from", from, "--to", to)
	var rep struct {
		Indexes []pgcheck.IndexComparison `json:"indexes"`
		Elapsed *float64                  `json:"elapsed_seconds"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("--json: %v\n%s", err, out)
	}
	if code != cli.ExitFindings || len(rep.Indexes) != 2 || rep.Elapsed == nil {
		t.Fatalf("--json: exit %d %+v", code, rep)
	}
	keys := map[string]int{"users_name_key": 500, "users_title": 7}
	for _, ix := range rep.Indexes {
		if ix.Status != pgcheck.CompareDiffers || ix.Columns[0].Keys != keys[ix.Name] || ix.Columns[0].Examples[0].Now != "after" {
			t.Errorf("--json: %+v", ix)
		}
	}

	if code, _, errOut = ringfence(t, "pg", "compare", "--from", from, "--to", neu.DSN("missing")); code != cli.ExitError ||
		!strings.Contains(errOut, "--to") {
		t.Errorf("unreachable --to: exit %d, stderr %s", code, errOut)
	}
	if code, _, _ = ringfence(t, "pg", "compare", "--from", from); code != cli.ExitError {
		t.Errorf("without --to: exit %d, want 2", code)
	}
}
