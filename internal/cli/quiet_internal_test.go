package cli

import (
	"io"
	"strings"
	"testing"

	ucli "github.com/urfave/cli/v3"
)

// TestEveryCommandTakesQuiet: -q/--quiet is accepted by every command
// that prints (its own flag or one inherited from its group).
func TestEveryCommandTakesQuiet(t *testing.T) {
	exempt := map[string]bool{"ringfence version": true}
	walkVisible(newRoot(io.Discard, io.Discard), nil, func(path []string, cmd *ucli.Command) {
		name := strings.Join(path, " ")
		if len(cmd.Commands) > 0 || exempt[name] || len(path) == 1 {
			return
		}
		found := false
		for _, c := range [][]ucli.Flag{cmd.Flags} {
			for _, f := range c {
				for _, n := range f.Names() {
					found = found || n == "quiet"
				}
			}
		}
		for i := len(path) - 1; i > 0 && !found; i-- {
			// Flags of the enclosing groups are inherited.
			grp := findCommand(newRoot(io.Discard, io.Discard), path[1:i])
			for _, f := range grp.Flags {
				for _, n := range f.Names() {
					found = found || n == "quiet"
				}
			}
		}
		if !found {
			t.Errorf("%s has no --quiet", name)
		}
	})
}

func findCommand(root *ucli.Command, path []string) *ucli.Command {
	c := root
	for _, name := range path {
		for _, sub := range c.Commands {
			if sub.Name == name {
				c = sub
				break
			}
		}
	}
	return c
}

// TestEveryServeFlagHasAnEnvironmentVariable: a container is configured by
// environment: every serve flag has its RINGFENCE_* variable.
func TestEveryServeFlagHasAnEnvironmentVariable(t *testing.T) {
	serve := findCommand(newRoot(io.Discard, io.Discard), []string{"serve"})
	for _, f := range serve.Flags {
		d, ok := f.(ucli.DocGenerationFlag)
		want := "RINGFENCE_" + strings.ToUpper(strings.ReplaceAll(f.Names()[0], "-", "_"))
		if !ok || len(d.GetEnvVars()) == 0 || d.GetEnvVars()[0] != want {
			t.Errorf("serve --%s: environment %v, want %s", f.Names()[0], d.GetEnvVars(), want)
		}
	}
}
