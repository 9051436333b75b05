// Package archtest holds the test that keeps the package graph the shape
// docs/architecture.md draws: each package of ours may import only the
// packages of ours listed for it here.
package archtest

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/ringfence/ringfence/"

// allowed lists, for every package of the module, the packages of ours it
// may import (non-test files). A package missing from this table fails the
// test: add it here and give it a paragraph in docs/architecture.md. The
// "*" entry allows any package of ours.
var allowed = map[string][]string{
	// Pure domains and small libraries import nothing of ours, but for the
	// domains the leaf that holds their one error type (it imports nothing).
	"internal/fault": {},
	"release":        {"internal/fault"},
	"incident":       {"internal/fault"},
	"sign":           {},
	"pgcheck":        {},

	"internal/problem":     {"release"},
	"api":                  {"release", "incident", "sign"},
	"sqlstore":             {"release", "sign", "incident"},
	"client":               {"api", "release", "sign", "internal/problem", "incident", "internal/fault"},
	"server":               {"api", "release", "sign", "sqlstore", "internal/problem", "incident", "notify", "internal/netguard", "internal/fault"},
	"notify":               {"incident"},
	"internal/netguard":    {},
	"internal/notifytest":  {},
	"agent":                {"client", "pgcheck", "release", "sign", "internal/atomicfile"},
	"internal/cli":         {"*"},
	"cmd/ringfence":        {"internal/cli"},
	"internal/cli/gendoc":  {"internal/cli"},
	"internal/pgtest":      {},
	"internal/browsertest": {},
	"internal/servertest":  {"release", "server", "sign", "sqlstore"},
	"internal/archtest":    {},
	"internal/atomicfile":  {},
	"internal/gcfloor":     {},
	"bench/amcheck":        {"*"},
	"bench/checkin":        {"*"},
	"bench/agent":          {"*"},
	"internal/demo":        {"release", "sign", "client", "incident"},
	"bench/console":        {"*"},
	"bench/status":         {"*"},
}

func TestImportsFollowTheArchitecture(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, module+"...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) < 10 {
		t.Fatalf("go list found only %d packages of ours; the test would check nothing", len(lines))
	}
	for _, v := range violations(lines) {
		t.Error(v)
	}
}

// violations checks lines of "package import import ..." against allowed.
func violations(lines []string) []string {
	var out []string
	for _, line := range lines {
		fields := strings.Fields(line)
		pkg := strings.TrimPrefix(fields[0], module)
		rule, ok := allowed[pkg]
		if !ok {
			out = append(out, "package "+pkg+" has no import rule: add it to the table in internal/archtest and describe it in docs/architecture.md")
			continue
		}
		if slices.Contains(rule, "*") {
			continue
		}
		for _, imp := range fields[1:] {
			if dep, ours := strings.CutPrefix(imp, module); ours && !slices.Contains(rule, dep) {
				out = append(out, pkg+" imports "+dep+", which docs/architecture.md does not allow (allowed: "+strings.Join(rule, ", ")+")")
			}
		}
	}
	return out
}

// TestViolationsAreFound proves the check can fail: a domain package
// importing the store, and a package without a rule, are reported; the
// standard library and allowed imports are not.
func TestViolationsAreFound(t *testing.T) {
	got := violations([]string{
		module + "release fmt " + module + "sqlstore",
		module + "newpkg fmt",
		module + "server net/http " + module + "sqlstore " + module + "release",
	})
	if len(got) != 2 || !strings.Contains(got[0], "release imports sqlstore") || !strings.Contains(got[1], "newpkg has no import rule") {
		t.Fatalf("violations = %q", got)
	}
}

// TestDomainsShareOnlyTheirLeaf proves the rule that keeps the domains pure:
// release and incident may import internal/fault, not each other, and
// internal/fault imports nothing of ours.
func TestDomainsShareOnlyTheirLeaf(t *testing.T) {
	got := violations([]string{
		module + "release errors " + module + "internal/fault",
		module + "incident " + module + "internal/fault " + module + "release",
		module + "internal/fault errors fmt " + module + "release",
	})
	if len(got) != 2 || !strings.Contains(got[0], "incident imports release") || !strings.Contains(got[1], "internal/fault imports release") {
		t.Fatalf("violations = %q", got)
	}
}
