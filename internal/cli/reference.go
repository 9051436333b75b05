package cli

import (
	"fmt"
	"io"
	"strings"

	ucli "github.com/urfave/cli/v3"
)

// RegenerateDocs is the command that rewrites the generated CLI reference
// and is named wherever it is checked.
const RegenerateDocs = "go run ./internal/cli/gendoc -o docs/cli.md"

// Reference renders the CLI reference (docs/cli.md) from the command tree
// in Markdown: every visible command with its usage, description and
// flags (aliases, default, environment variables).
func Reference() string {
	var b strings.Builder
	b.WriteString("# ringfence command line reference\n\n")
	b.WriteString("<!-- Generated from the command tree: do not edit. Regenerate with `" + RegenerateDocs + "`. -->\n\n")
	b.WriteString("Exit codes everywhere: 0 success (nothing found), 1 findings, 2 could not do the work.\n")
	b.WriteString("`ringfence completion bash|zsh|fish` prints a shell completion script; `--help` on any command prints its help.\n")
	b.WriteString("`--json` on the pg and API commands prints one JSON object: `\"schema_version\"` first, `\"duration_seconds\"` last; " +
		"a command that lists things puts them in `\"items\"` (`{\"schema_version\":1,\"items\":[…],\"duration_seconds\":0.012}`).\n")
	walkVisible(newRoot(io.Discard, io.Discard), nil, func(path []string, cmd *ucli.Command) {
		fmt.Fprintf(&b, "\n%s %s\n\n", strings.Repeat("#", min(len(path), 4)+1), strings.Join(path, " "))
		if cmd.Usage != "" {
			fmt.Fprintf(&b, "%s.\n\n", strings.TrimSuffix(cmd.Usage, "."))
		}
		fmt.Fprintf(&b, "```\n%s\n```\n", synopsis(path, cmd))
		if cmd.Description != "" {
			fmt.Fprintf(&b, "\n%s\n", strings.TrimSpace(cmd.Description))
		}
		if subs := visibleCommands(cmd); len(subs) > 0 {
			b.WriteString("\n| command | what it does |\n|---|---|\n")
			for _, s := range subs {
				fmt.Fprintf(&b, "| `%s` | %s |\n", s.Name, mdCell(s.Usage))
			}
		}
		if flags := visibleFlags(cmd); len(flags) > 0 {
			b.WriteString("\n| flag | default | environment | meaning |\n|---|---|---|---|\n")
			for _, f := range flags {
				fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", flagNames(f), mdCell(flagDefault(f)), mdCell(flagEnv(f)), mdCell(flagUsage(f)))
			}
		}
	})
	return b.String()
}

// ManPage renders the same reference as a roff man page, ringfence(1).
func ManPage() string {
	var b strings.Builder
	b.WriteString(".\\\" Generated from the command tree: do not edit (go run ./internal/cli/gendoc -man).\n")
	b.WriteString(".TH RINGFENCE 1\n.SH NAME\nringfence \\- keep bad releases from breaking self-hosted installations\n")
	b.WriteString(".SH SYNOPSIS\n.B ringfence\n[options] COMMAND ...\n.SH EXIT STATUS\n0 success (nothing found), 1 findings, 2 could not do the work.\n.SH COMMANDS\n")
	walkVisible(newRoot(io.Discard, io.Discard), nil, func(path []string, cmd *ucli.Command) {
		if len(path) == 1 {
			return
		}
		fmt.Fprintf(&b, ".SS %s\n%s\n.PP\n.nf\n%s\n.fi\n", roff(strings.Join(path, " ")), roff(cmd.Usage), roff(synopsis(path, cmd)))
		if cmd.Description != "" {
			fmt.Fprintf(&b, ".PP\n%s\n", roff(strings.TrimSpace(cmd.Description)))
		}
		for _, f := range visibleFlags(cmd) {
			fmt.Fprintf(&b, ".TP\n.B %s\n%s", roff(strings.ReplaceAll(flagNames(f), "`", "")), roff(flagUsage(f)))
			if d := flagDefault(f); d != "" {
				fmt.Fprintf(&b, " (default %s)", roff(d))
			}
			if e := flagEnv(f); e != "" {
				fmt.Fprintf(&b, " [%s]", roff(e))
			}
			b.WriteString("\n")
		}
	})
	return b.String()
}

// walkVisible calls fn for cmd and its visible subcommands, depth first,
// with the command's path from the root ("ringfence pg check").
func walkVisible(cmd *ucli.Command, parent []string, fn func([]string, *ucli.Command)) {
	path := append(append([]string{}, parent...), cmd.Name)
	fn(path, cmd)
	for _, c := range visibleCommands(cmd) {
		walkVisible(c, path, fn)
	}
}

func visibleCommands(cmd *ucli.Command) []*ucli.Command {
	var out []*ucli.Command
	for _, c := range cmd.Commands {
		if !c.Hidden && c.Name != "help" {
			out = append(out, c)
		}
	}
	return out
}

func visibleFlags(cmd *ucli.Command) []ucli.Flag {
	var out []ucli.Flag
	for _, f := range cmd.Flags {
		if v, ok := f.(ucli.VisibleFlag); ok && !v.IsVisible() {
			continue
		}
		out = append(out, f)
	}
	return out
}

// synopsis is the command's usage line.
func synopsis(path []string, cmd *ucli.Command) string {
	if cmd.UsageText != "" {
		return cmd.UsageText
	}
	s := strings.Join(path, " ")
	if len(cmd.Flags) > 0 {
		s += " [options]"
	}
	switch {
	case len(visibleCommands(cmd)) > 0:
		s += " COMMAND"
	case cmd.ArgsUsage != "":
		s += " " + cmd.ArgsUsage
	}
	return s
}

func flagNames(f ucli.Flag) string {
	var parts []string
	for _, n := range f.Names() {
		dash := "--"
		if len(n) == 1 {
			dash = "-"
		}
		parts = append(parts, "`"+dash+n+"`")
	}
	return strings.Join(parts, ", ")
}

func flagUsage(f ucli.Flag) string {
	if d, ok := f.(ucli.DocGenerationFlag); ok {
		return d.GetUsage()
	}
	return ""
}

func flagDefault(f ucli.Flag) string {
	d, ok := f.(ucli.DocGenerationFlag)
	if !ok || !d.TakesValue() {
		return ""
	}
	if t := d.GetDefaultText(); t != "" {
		return t
	}
	v := d.GetValue()
	if v == `""` || v == "[]" {
		return ""
	}
	return v
}

func flagEnv(f ucli.Flag) string {
	if d, ok := f.(ucli.DocGenerationFlag); ok {
		return strings.Join(d.GetEnvVars(), ", ")
	}
	return ""
}

// mdCell escapes text for a Markdown table cell.
func mdCell(s string) string {
	return strings.NewReplacer("|", "\\|", "\n", " ").Replace(s)
}

// roff escapes text for a man page.
func roff(s string) string {
	s = strings.ReplaceAll(s, "\\", "\\e")
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, ".") || strings.HasPrefix(l, "'") {
			lines[i] = "\\&" + l
		}
	}
	return strings.Join(lines, "\n")
}
