package cli

import (
	"context"
	"fmt"
	"io"
	"regexp"
	"runtime/debug"
	"strings"

	ucli "github.com/urfave/cli/v3"
)

// buildVersion describes this binary: the module version (a tag with `go
// install ...@vX`, "(devel)" from a checkout) and the VCS revision Go
// stamped into it.
func buildVersion() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown (no build information)"
	}
	v := info.Main.Version
	if v == "" {
		v = "(devel)"
	}
	var rev, at, modified string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = ", modified"
			}
		}
	}
	out := v
	if rev != "" {
		out += fmt.Sprintf(" (revision %s, %s%s)", rev, at, modified)
	}
	return out + " " + info.GoVersion
}

// versionCommand is `ringfence version`.
func versionCommand(stdout io.Writer) *ucli.Command {
	return &ucli.Command{
		Name:  "version",
		Usage: "print the version and VCS revision of this binary",
		Action: func(context.Context, *ucli.Command) error {
			fmt.Fprintf(stdout, "ringfence %s\n", buildVersion())
			return nil
		},
	}
}

// applyConventions gives every command of the tree the habits people
// bring from other tools: a wrong flag or unknown command prints one line,
// a "did you mean", and the usage line (not the whole help); a command
// group run without a subcommand shows its help.
func applyConventions(cmd *ucli.Command) {
	cmd.OnUsageError = usageError
	if len(cmd.Commands) > 0 && cmd.Action == nil {
		cmd.Action = groupAction
	}
	for _, sub := range cmd.Commands {
		applyConventions(sub)
	}
}

// undefinedFlag extracts the flag name from the flag package's error.
var undefinedFlag = regexp.MustCompile(`flag provided but not defined: -+(\S+)`)

func usageError(_ context.Context, cmd *ucli.Command, err error, _ bool) error {
	msg := err.Error()
	if m := undefinedFlag.FindStringSubmatch(msg); m != nil {
		var names []string
		for _, c := range cmd.Lineage() { // persistent flags live on ancestors
			for _, f := range c.Flags {
				names = append(names, f.Names()...)
			}
		}
		if s := closest(m[1], names); s != "" {
			dash := "--"
			if len(s) == 1 {
				dash = "-"
			}
			msg += fmt.Sprintf(" (did you mean %s%s?)", dash, s)
		}
	}
	return withCode(ExitError, fmt.Errorf("%s\n%s", msg, usageLine(cmd)))
}

// groupAction runs for a command group given no subcommand (its help) or
// an unknown one (an error with a suggestion).
func groupAction(_ context.Context, cmd *ucli.Command) error {
	if !cmd.Args().Present() {
		return ucli.ShowSubcommandHelp(cmd)
	}
	name := cmd.Args().First()
	var names []string
	for _, c := range cmd.Commands {
		if !c.Hidden {
			names = append(names, c.Names()...)
		}
	}
	msg := fmt.Sprintf("unknown command %q for %q", name, cmd.FullName())
	if s := closest(name, names); s != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", s)
	}
	return withCode(ExitError, fmt.Errorf("%s\n%s", msg, usageLine(cmd)))
}

// usageLine is the one-line usage of cmd and where to read more.
func usageLine(cmd *ucli.Command) string {
	args := cmd.ArgsUsage
	groups := false
	for _, c := range cmd.Commands {
		groups = groups || (c.Name != "help" && !c.Hidden)
	}
	switch {
	case groups:
		args = "COMMAND"
	case args == "":
		args = "[arguments...]"
	}
	return fmt.Sprintf("usage: %s [options] %s (run '%s --help' for more)", cmd.FullName(), args, cmd.FullName())
}

// closest returns the candidate nearest to s by edit distance, if it is
// near enough to be what was meant.
func closest(s string, candidates []string) string {
	best, bestDist := "", -1
	for _, c := range candidates {
		d := editDistance(strings.ToLower(s), strings.ToLower(c))
		if bestDist < 0 || d < bestDist {
			best, bestDist = c, d
		}
	}
	if bestDist < 0 || bestDist > max(2, len(s)/3) || bestDist >= len(s) {
		return ""
	}
	return best
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur := make([]int, len(rb)+1)
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(rb)]
}
