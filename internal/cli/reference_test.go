package cli_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ringfence/ringfence/internal/cli"
)

// TestCLIReferenceIsCurrent fails when docs/cli.md differs from what the
// command tree generates, so the reference cannot drift from the program.
func TestCLIReferenceIsCurrent(t *testing.T) {
	path := filepath.Join("..", "..", "docs", "cli.md")
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v (generate it with `%s`)", path, err, cli.RegenerateDocs)
	}
	want := cli.Reference()
	if string(got) != want {
		gl, wl := strings.Split(string(got), "\n"), strings.Split(want, "\n")
		line := 0
		for line < len(gl) && line < len(wl) && gl[line] == wl[line] {
			line++
		}
		t.Fatalf("docs/cli.md is out of date with the command tree (first difference at line %d).\n"+
			"Regenerate it from the module root with:\n\n\t%s\n", line+1, cli.RegenerateDocs)
	}
	for _, want := range []string{"#### ringfence pg check", "`--table`, `-t`", "RINGFENCE_LISTEN", "`--dedupe`"} {
		if !strings.Contains(string(got), want) {
			t.Errorf("docs/cli.md lacks %q", want)
		}
	}
	man := cli.ManPage()
	if !strings.HasPrefix(man, ".\\\"") || !strings.Contains(man, ".TH RINGFENCE 1") || !strings.Contains(man, ".SS ringfence pg check") {
		t.Errorf("man page:\n%.400s", man)
	}
}
