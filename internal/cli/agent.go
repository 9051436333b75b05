package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	ucli "github.com/urfave/cli/v3"

	"github.com/ringfence/ringfence/agent"
	"github.com/ringfence/ringfence/release"
)

// agentCommand is `ringfence agent`: the installation side.
func agentCommand(stdout, stderr io.Writer) *ucli.Command {
	return &ucli.Command{
		Name:  "agent",
		Usage: "run beside an installation: check in, watch its databases, gate and report upgrades",
		Description: "Configuration comes from flags, then RINGFENCE_AGENT_* environment variables (the flag\n" +
			"name upper-cased, dashes as underscores: RINGFENCE_AGENT_KEY_FILE), then the --config\n" +
			"file (\"key = value\" lines named like the flags; pg may repeat). See docs/agent.md.",
		Commands: []*ucli.Command{
			agentRunCommand(stderr),
			agentPreflightCommand(stdout, stderr),
			agentReportCommand(stdout, stderr),
			agentStatusCommand(stdout),
			agentExportCommand(stdout, stderr),
		},
	}
}

// agentEnv is the environment variable of an agent flag.
func agentEnv(name string) ucli.ValueSourceChain {
	return ucli.EnvVars("RINGFENCE_AGENT_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_")))
}

// agentJSONFlag selects JSON output.
func agentJSONFlag() ucli.Flag {
	return &ucli.BoolFlag{Name: "json", Usage: "print JSON instead of a readable report"}
}

// agentStateFlags are the flags every agent command takes.
func agentStateFlags() []ucli.Flag {
	return []ucli.Flag{
		&ucli.StringFlag{Name: "config", Sources: agentEnv("config"), Usage: "configuration `FILE` (key = value lines)"},
		&ucli.StringFlag{Name: "state", Sources: agentEnv("state"), Usage: "state `DIR` (instance id, pinned keys, undelivered events, last answer)"},
		&ucli.StringFlag{Name: "log-format", Value: "text", Sources: agentEnv("log-format"), Usage: "text or json"},
		&ucli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Sources: agentEnv("quiet"), Usage: "log only warnings and errors (what a command prints on stdout is unchanged)"},
	}
}

// agentCheckInFlags are the flags of the commands that check in.
func agentCheckInFlags() []ucli.Flag {
	return append(agentStateFlags(),
		&ucli.StringFlag{Name: "server", Sources: agentEnv("server"), Usage: "ringfence server `URL`"},
		&ucli.StringFlag{Name: "key", Sources: agentEnv("key"), Usage: "enrollment `KEY` (prefer --key-file: arguments are visible to other users)"},
		&ucli.StringFlag{Name: "key-file", Sources: agentEnv("key-file"), Usage: "`FILE` holding the enrollment key"},
		&ucli.StringFlag{Name: "product", Sources: agentEnv("product"), Usage: "product `NAME`"},
		&ucli.StringFlag{Name: "version", Sources: agentEnv("version"), Usage: "the running `VERSION`"},
		&ucli.StringFlag{Name: "version-file", Sources: agentEnv("version-file"), Usage: "`FILE` whose first line is the running version (read at every check-in)"},
		&ucli.StringFlag{Name: "version-command", Sources: agentEnv("version-command"), Usage: "shell `COMMAND` printing the running version (run at every check-in)"},
		&ucli.StringFlag{Name: "trust", Sources: agentEnv("trust"), Usage: "`FILE` of answer-signing public keys in the /v1/keys format: the pinned keys (read at every check-in)"},
		&ucli.BoolFlag{Name: "trust-on-first-use", Sources: agentEnv("trust-on-first-use"), Usage: "with no key pinned yet, pin what the server's /v1/keys presents (unsafe: prefer --trust)"},
		&ucli.StringSliceFlag{Name: "pg", Sources: agentEnv("pg"), Usage: "PostgreSQL `DSN` to watch (repeatable)"},
		&ucli.DurationFlag{Name: "interval", Value: agent.DefaultInterval, Sources: agentEnv("interval"), Usage: "longest time between check-ins (each wait is random in [interval/2, interval])"},
		&ucli.StringFlag{Name: "deep-check", Value: "weekly", Sources: agentEnv("deep-check"), Usage: "deep check (pg check --scope collation) schedule: off, daily, weekly or a duration"},
		&ucli.DurationFlag{Name: "db-timeout", Value: time.Minute, Sources: agentEnv("db-timeout"), Usage: "bound on one database's watch at a check-in"},
		&ucli.DurationFlag{Name: "deep-check-timeout", Value: 30 * time.Minute, Sources: agentEnv("deep-check-timeout"), Usage: "bound on each statement of the deep check (amcheck of one index); what it cannot check in time leaves the database unknown"},
	)
}

// configKeys are the keys a config file may hold: the check-in flags.
func configKeys() (known, repeatable map[string]bool) {
	known = map[string]bool{}
	for _, f := range agentCheckInFlags() {
		for _, n := range f.Names() {
			if n != "config" {
				known[n] = true
			}
		}
	}
	known["metrics-listen"] = true
	known["preflight-listen"] = true
	known["bundle-dir"] = true
	return known, map[string]bool{"pg": true}
}

// agentOptions is the merged configuration: flag or environment first,
// then the config file.
type agentOptions struct {
	cmd  *ucli.Command
	file map[string][]string
}

func loadAgentOptions(cmd *ucli.Command) (*agentOptions, error) {
	o := &agentOptions{cmd: cmd, file: map[string][]string{}}
	if path := cmd.String("config"); path != "" {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("read agent config: %w", err)
		}
		defer f.Close()
		known, rep := configKeys()
		o.file, err = agent.ParseConfigFile(f, known, rep)
		if err != nil {
			return nil, fmt.Errorf("agent config %s: %w", path, err)
		}
	}
	return o, nil
}

func (o *agentOptions) set(name string) bool {
	return o.cmd.IsSet(name) || len(o.file[name]) > 0
}

func (o *agentOptions) str(name string) string {
	if o.cmd.IsSet(name) || len(o.file[name]) == 0 {
		return o.cmd.String(name)
	}
	return o.file[name][0]
}

func (o *agentOptions) strs(name string) []string {
	if o.cmd.IsSet(name) || len(o.file[name]) == 0 {
		return o.cmd.StringSlice(name)
	}
	return o.file[name]
}

func (o *agentOptions) boolean(name string) (bool, error) {
	if o.cmd.IsSet(name) || len(o.file[name]) == 0 {
		return o.cmd.Bool(name), nil
	}
	switch strings.ToLower(o.file[name][0]) {
	case "true", "yes", "1", "on":
		return true, nil
	case "false", "no", "0", "off":
		return false, nil
	}
	return false, fmt.Errorf("config %s: %q is not a boolean", name, o.file[name][0])
}

func (o *agentOptions) duration(name string) (time.Duration, error) {
	if o.cmd.IsSet(name) || len(o.file[name]) == 0 {
		return o.cmd.Duration(name), nil
	}
	d, err := time.ParseDuration(o.file[name][0])
	if err != nil {
		return 0, fmt.Errorf("config %s: %w", name, err)
	}
	return d, nil
}

// logger builds the agent's slog logger on stderr.
func (o *agentOptions) logger(stderr io.Writer) (*slog.Logger, error) {
	opts := &slog.HandlerOptions{}
	if q, err := o.boolean("quiet"); err != nil {
		return nil, err
	} else if q {
		opts.Level = slog.LevelWarn
	}
	switch f := o.str("log-format"); f {
	case "text", "":
		return slog.New(slog.NewTextHandler(stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(stderr, opts)), nil
	default:
		return nil, fmt.Errorf("--log-format %q: want text or json", f)
	}
}

// config builds the agent configuration.
func (o *agentOptions) config(log *slog.Logger) (agent.Config, error) {
	cfg := agent.Config{
		Server: o.str("server"), Key: o.str("key"), Product: o.str("product"),
		Version: o.str("version"), VersionFile: o.str("version-file"), VersionCommand: o.str("version-command"),
		StateDir: o.str("state"), TrustFile: o.str("trust"), DSNs: o.strs("pg"), Logger: log,
	}
	if kf := o.str("key-file"); kf != "" {
		if cfg.Key != "" {
			return cfg, errors.New("give --key or --key-file, not both")
		}
		data, err := os.ReadFile(kf)
		if err != nil {
			return cfg, fmt.Errorf("read key file: %w", err)
		}
		cfg.Key = strings.TrimSpace(string(data))
	}
	var err error
	if cfg.TrustOnFirstUse, err = o.boolean("trust-on-first-use"); err != nil {
		return cfg, err
	}
	if cfg.Interval, err = o.duration("interval"); err != nil {
		return cfg, err
	}
	if cfg.DBTimeout, err = o.duration("db-timeout"); err != nil {
		return cfg, err
	}
	if cfg.DeepCheckTimeout, err = o.duration("deep-check-timeout"); err != nil {
		return cfg, err
	}
	if cfg.DeepCheck, err = agent.ParseDeepCheck(o.str("deep-check")); err != nil {
		return cfg, err
	}
	return cfg, cfg.Validate()
}

// newAgent wires an agent from the command's configuration.
func newAgent(cmd *ucli.Command, stderr io.Writer, reg prometheus.Registerer) (*agent.Agent, *agentOptions, *slog.Logger, error) {
	if cmd.Args().Len() > 0 {
		return nil, nil, nil, fmt.Errorf("unexpected arguments %q", cmd.Args().Slice())
	}
	o, err := loadAgentOptions(cmd)
	if err != nil {
		return nil, nil, nil, err
	}
	log, err := o.logger(stderr)
	if err != nil {
		return nil, nil, nil, err
	}
	cfg, err := o.config(log)
	if err != nil {
		return nil, nil, nil, err
	}
	cfg.RetryFailed = cmd.Bool("retry-failed")
	if reg != nil {
		cfg.Metrics = agent.NewMetrics(reg)
	}
	a, err := agent.New(cfg)
	return a, o, log, err
}

func agentRunCommand(stderr io.Writer) *ucli.Command {
	return &ucli.Command{
		Name:  "run",
		Usage: "check in now and every --interval until stopped",
		Description: "Checks in, verifies every answer with the pinned keys, watches each --pg database's\n" +
			"collation fingerprint at every check-in (and runs the deep check on its schedule),\n" +
			"reports upgrade_succeeded itself when the running version changes, and logs notices\n" +
			"and guidance prominently. Stops on SIGINT/SIGTERM.",
		Flags: append(agentCheckInFlags(),
			&ucli.StringFlag{Name: "metrics-listen", Sources: agentEnv("metrics-listen"), Usage: "serve Prometheus metrics on `ADDR` (e.g. 127.0.0.1:9464)"},
			&ucli.StringFlag{Name: "preflight-listen", Sources: agentEnv("preflight-listen"),
				Usage: "serve GET /preflight?to=VERSION on `ADDR` for deployment webhooks: 200 go, 412 no-go, 503 undecided"},
			bundleDirFlag()),
		Action: func(ctx context.Context, cmd *ucli.Command) error {
			reg := prometheus.NewRegistry()
			reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
			a, o, log, err := newAgent(cmd, stderr, reg)
			if err != nil {
				return withCode(ExitError, err)
			}
			if addr := o.str("metrics-listen"); addr != "" {
				stop, err := serveAgentHTTP(addr, "GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), log)
				if err != nil {
					return withCode(ExitError, err)
				}
				defer stop()
			}
			if dir := o.str("bundle-dir"); dir != "" {
				a.UseBundles(dir)
			}
			if addr := o.str("preflight-listen"); addr != "" {
				stop, err := serveAgentHTTP(addr, "/preflight", agent.PreflightHandler(a, 10*time.Second), log)
				if err != nil {
					return withCode(ExitError, err)
				}
				defer stop()
			}
			if dir := o.str("bundle-dir"); dir != "" {
				return withCode(ExitError, a.RunOffline(ctx, dir, agent.NewBundleMetrics(reg)))
			}
			return withCode(ExitError, a.Run(ctx))
		},
	}
}

// serveAgentHTTP serves h at pattern on addr until the returned function is
// called.
func serveAgentHTTP(addr, pattern string, h http.Handler, log *slog.Logger) (func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle(pattern, h)
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http server", "addr", addr, "err", err)
		}
	}()
	log.Info("serving", "addr", ln.Addr().String(), "path", pattern)
	return func() { _ = hs.Close() }, nil
}

func agentPreflightCommand(stdout, stderr io.Writer) *ucli.Command {
	return &ucli.Command{
		Name:  "preflight",
		Usage: "decide now whether upgrading to --to may go ahead",
		Description: "Checks in now (with the database watch) and decides. Exit 0: go. Exit 1: no-go, every\n" +
			"reason printed (not offered, paused, pulled with the guidance, a required stop in\n" +
			"between, a database corrupt or its collation changed). Exit 2: could not decide\n" +
			"(server unreachable, answer not verified or expired, a database not checkable, bad\n" +
			"configuration) — never 0 on doubt. --to the version already running is a restart,\n" +
			"not an upgrade: exit 0, with what speaks against that version as warnings.",
		Flags: append(agentCheckInFlags(),
			&ucli.StringFlag{Name: "to", Usage: "the `VERSION` to upgrade to", Required: true},
			&ucli.StringFlag{Name: "termination-log", Usage: "also write a one-line verdict to `FILE` (Kubernetes: /dev/termination-log)"},
			&ucli.BoolFlag{Name: "retry-failed", Usage: "allow a version whose upgrade failed here before (once the cause is fixed)"},
			&ucli.DurationFlag{Name: "timeout", Value: 5 * time.Minute, Usage: "decide within this time, or exit 2 (timeout): another agent process may hold the state through a long deep check"},
			&ucli.StringFlag{Name: "bundle-dir", Sources: agentEnv("bundle-dir"), Usage: "air-gapped: decide from the bundle the agent accepted from `DIR` (as agent run --bundle-dir), never from the server"},
			agentJSONFlag(), bundleFlag()),
		Action: func(ctx context.Context, cmd *ucli.Command) error {
			to, err := agent.ParseVersion(cmd.String("to"))
			if err != nil {
				return withCode(ExitError, fmt.Errorf("--to: %w", err))
			}
			if tmo := cmd.Duration("timeout"); tmo > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tmo)
				defer cancel()
			}
			var d agent.Decision
			a, o, _, err := newAgent(cmd, stderr, nil)
			if err == nil {
				// An air-gapped site's config names its bundle directory:
				// decide from the bundle the running agent accepted.
				if dir := o.str("bundle-dir"); dir != "" {
					a.UseBundles(dir)
				}
			}
			if err != nil {
				d = agent.Decision{To: to, Decision: agent.Undecided, ExitCode: ExitError, Notices: []release.Notice{},
					Reasons: []agent.Reason{{Code: agent.ReasonConfiguration, Undecided: true, Message: err.Error()}}}
			} else {
				if f := cmd.String("bundle"); f != "" {
					d = a.PreflightBundle(ctx, f, to)
				} else {
					d = a.Preflight(ctx, to)
				}
			}
			if cmd.Bool("json") {
				err = writeJSON(stdout, d)
			} else {
				err = printDecision(stdout, d)
			}
			if tl := cmd.String("termination-log"); tl != "" {
				if werr := os.WriteFile(tl, []byte(verdictLine(d)+"\n"), 0o644); werr != nil {
					fmt.Fprintf(stderr, "ringfence: write termination log: %v\n", werr)
				}
			}
			if err != nil {
				return withCode(ExitError, err)
			}
			switch d.ExitCode {
			case ExitOK:
				return nil
			case ExitFindings:
				return errFindings
			}
			return withCode(ExitError, errors.New("undecided: do not upgrade"))
		},
	}
}

// verdictLine is a decision in one line.
func verdictLine(d agent.Decision) string {
	s := strings.ToUpper(d.Decision) + ": upgrade to " + d.To.String()
	if d.Restart {
		s = "GO: " + d.To.String() + " already runs here (a restart, not an upgrade)"
	}
	for _, r := range d.Reasons {
		s += "; " + r.Code + ": " + r.Message
	}
	for _, r := range d.Warnings {
		s += "; warning " + r.Code + ": " + r.Message
	}
	if len(s) > 4000 {
		s = s[:4000] + "..."
	}
	return s
}

func printReason(w io.Writer, prefix string, r agent.Reason) {
	fmt.Fprintf(w, "%s%s: %s", prefix, r.Code, r.Message)
	if r.URL != "" {
		fmt.Fprintf(w, " (%s)", r.URL)
	}
	fmt.Fprintln(w)
}

func printDecision(w io.Writer, d agent.Decision) error {
	switch {
	case d.Restart:
		fmt.Fprintf(w, "GO: %s already runs here: a restart, not an upgrade\n", d.To)
	case d.Decision == agent.Go:
		fmt.Fprintf(w, "GO: the upgrade from %s to %s may proceed\n", d.Current, d.To)
	case d.Decision == agent.NoGo:
		fmt.Fprintf(w, "NO-GO: do not upgrade to %s\n", d.To)
	default:
		fmt.Fprintf(w, "UNDECIDED: could not decide on the upgrade to %s; do not upgrade\n", d.To)
	}
	for _, r := range d.Reasons {
		printReason(w, "  - ", r)
	}
	for _, r := range d.Warnings {
		printReason(w, "  WARNING ", r)
	}
	if d.Guidance != "" {
		fmt.Fprintf(w, "guidance: %s\n", d.Guidance)
	}
	for _, n := range d.Notices {
		fmt.Fprintf(w, "notice (%s): %s\n", n.Kind, n.Message)
	}
	_, err := fmt.Fprint(w)
	return err
}

func agentReportCommand(stdout, stderr io.Writer) *ucli.Command {
	sub := func(name string, kind release.EventKind, usage string) *ucli.Command {
		return &ucli.Command{
			Name:  name,
			Usage: usage,
			Flags: append(agentCheckInFlags(),
				&ucli.StringFlag{Name: "from", Usage: "the `VERSION` upgraded from", Required: true},
				&ucli.StringFlag{Name: "to", Usage: "the `VERSION` upgraded to", Required: true},
				&ucli.StringFlag{Name: "detail", Usage: "what happened, in a few words (up to 4096 bytes)"},
				&ucli.BoolFlag{Name: "now", Usage: "check in at once to deliver it (needs the full configuration)"}),
			Action: func(ctx context.Context, cmd *ucli.Command) error {
				return runReport(ctx, cmd, kind, stdout, stderr)
			},
		}
	}
	return &ucli.Command{
		Name:  "report",
		Usage: "record an upgrade outcome on disk (fsynced) for delivery with the next check-in",
		Commands: []*ucli.Command{
			sub("upgrade-started", release.EventUpgradeStarted, "an upgrade began"),
			sub("upgrade-succeeded", release.EventUpgradeSucceeded, "an upgrade finished and the installation runs --to"),
			sub("upgrade-failed", release.EventUpgradeFailed, "an upgrade failed"),
		},
	}
}

func runReport(ctx context.Context, cmd *ucli.Command, kind release.EventKind, stdout, stderr io.Writer) error {
	if cmd.Args().Len() > 0 {
		return withCode(ExitError, fmt.Errorf("unexpected arguments %q", cmd.Args().Slice()))
	}
	from, err := agent.ParseVersion(cmd.String("from"))
	if err != nil {
		return withCode(ExitError, fmt.Errorf("--from: %w", err))
	}
	to, err := agent.ParseVersion(cmd.String("to"))
	if err != nil {
		return withCode(ExitError, fmt.Errorf("--to: %w", err))
	}
	o, err := loadAgentOptions(cmd)
	if err != nil {
		return withCode(ExitError, err)
	}
	e := release.Event{Kind: kind, From: from, To: to, At: time.Now().UTC(), Detail: cmd.String("detail")}
	// Queued first, with nothing but the state directory: a configuration
	// problem of --now must not lose the report.
	sd, err := agent.OpenStateDir(o.str("state"))
	if err != nil {
		return withCode(ExitError, err)
	}
	name, err := agent.Report(sd, e)
	if err != nil {
		return withCode(ExitError, err)
	}
	fmt.Fprintf(stdout, "queued %s %s -> %s (%s)\n", kind, from, to, name)
	if !cmd.Bool("now") {
		fmt.Fprintln(stdout, "the next check-in delivers it")
		return nil
	}
	a, _, _, err := newAgent(cmd, stderr, nil)
	if err != nil {
		return withCode(ExitError, fmt.Errorf("not delivered yet (kept on disk for the next check-in): %w", err))
	}
	// Check in until this report went out: older events may fill the
	// first check-ins.
	delivered := 0
	for {
		res, err := a.CheckIn(ctx)
		if err != nil {
			return withCode(ExitError, fmt.Errorf("not delivered yet (kept on disk for the next check-in): %w", err))
		}
		delivered += res.Delivered
		queued, err := sd.Outbox()
		if err != nil {
			return withCode(ExitError, err)
		}
		if !slices.ContainsFunc(queued, func(q agent.QueuedEvent) bool { return q.Name == name }) {
			break
		}
		if !res.More {
			return withCode(ExitError, fmt.Errorf("not delivered yet (kept on disk for the next check-in): the check-in did not carry it"))
		}
	}
	rejected, err := sd.Rejected()
	if err != nil {
		return withCode(ExitError, err)
	}
	if i := slices.IndexFunc(rejected, func(r agent.RejectedEvent) bool { return r.Name == name }); i >= 0 {
		return withCode(ExitError, fmt.Errorf("not delivered: the server refused it; set aside in outbox/rejected: %s", rejected[i].Why))
	}
	fmt.Fprintf(stdout, "delivered %d events\n", delivered)
	return nil
}

func agentStatusCommand(stdout io.Writer) *ucli.Command {
	return &ucli.Command{
		Name:  "status",
		Usage: "show the last verified answer, guidance, database health and undelivered events",
		Flags: append(agentStateFlags(), agentJSONFlag()),
		Action: func(ctx context.Context, cmd *ucli.Command) error {
			o, err := loadAgentOptions(cmd)
			if err != nil {
				return withCode(ExitError, err)
			}
			dir := o.str("state")
			if fi, err := os.Stat(dir); dir != "" && (err != nil || !fi.IsDir()) {
				return withCode(ExitError, fmt.Errorf("no state directory %s: has the agent run with --state %s?", dir, dir))
			}
			sd, err := agent.OpenStateDir(dir)
			if err != nil {
				return withCode(ExitError, err)
			}
			st, err := agent.ReadStatus(sd, time.Now())
			if err != nil {
				return withCode(ExitError, err)
			}
			if cmd.Bool("json") {
				return withCode(ExitError, writeJSON(stdout, st))
			}
			return withCode(ExitError, printAgentStatus(stdout, st, time.Now()))
		},
	}
}

func printAgentStatus(w io.Writer, st agent.Status, now time.Time) error {
	fmt.Fprintf(w, "installation %s, version %s (state %s)\n", orDash(st.InstanceID), orDash(st.Version.String()), st.StateDir)
	switch a := st.Answer; {
	case a == nil:
		fmt.Fprintln(w, "answer:      none verified yet: no upgrade")
	case !a.Verified:
		fmt.Fprintf(w, "answer:      the kept answer does NOT verify (%s): no upgrade\n", a.Error)
	default:
		when := "valid until " + a.Answer.ExpiresAt.UTC().Format(time.RFC3339)
		if a.Expired {
			when = "EXPIRED at " + a.Answer.ExpiresAt.UTC().Format(time.RFC3339) + ": no upgrade until the next verified answer"
		}
		fmt.Fprintf(w, "answer:      verified, issued %s, %s\n", a.Answer.IssuedAt.UTC().Format(time.RFC3339), when)
		fmt.Fprintf(w, "guidance:    %s\n", st.Guidance)
		for _, n := range a.Answer.Notices {
			fmt.Fprintf(w, "notice:      (%s) %s", n.Kind, n.Message)
			if n.URL != "" {
				fmt.Fprintf(w, " %s", n.URL)
			}
			fmt.Fprintln(w)
		}
	}
	if len(st.Databases) == 0 {
		fmt.Fprintln(w, "databases:   none watched")
	}
	for _, d := range st.Databases {
		fmt.Fprintf(w, "database:    %s: %s (checked %s, baseline in %s): %s\n", d.Name, strings.ToUpper(string(d.Status)),
			d.CheckedAt.UTC().Format(time.RFC3339), orDash(d.Baseline), d.Detail)
		if !d.DeepCheckAt.IsZero() {
			fmt.Fprintf(w, "             deep check %s: %s %s\n", d.DeepCheckAt.UTC().Format(time.RFC3339), orDash(string(d.DeepStatus)), d.DeepDetail)
		}
	}
	printBundleStatus(w, st.Bundle, now)
	fmt.Fprintf(w, "undelivered: %d events\n", len(st.Undelivered))
	for _, q := range st.Undelivered {
		fmt.Fprintf(w, "             %s %s -> %s at %s\n", q.Event.Kind, orDash(q.Event.From.String()), q.Event.To, q.Event.At.UTC().Format(time.RFC3339))
	}
	for _, r := range st.Rejected {
		fmt.Fprintf(w, "REJECTED EVENT: %s (in outbox/rejected): %s\n", r.Name, r.Why)
	}
	for _, e := range st.FailedUpgrades {
		fmt.Fprintf(w, "failed here: the upgrade %s -> %s failed at %s %s (preflight refuses it without --retry-failed)\n",
			e.From, e.To, e.At.UTC().Format(time.RFC3339), e.Detail)
	}
	if st.LastError != "" {
		fmt.Fprintf(w, "last error:  %s (%s)\n", st.LastError, st.LastAttempt.UTC().Format(time.RFC3339))
	}
	if !st.NextDue.IsZero() {
		fmt.Fprintf(w, "next check-in due %s (in %s)\n", st.NextDue.UTC().Format(time.RFC3339), st.NextDue.Sub(now).Round(time.Second))
	}
	fmt.Fprintf(w, "pinned keys: %s (%s)\n", orDash(strings.Join(st.PinnedKeys, ", ")), orDash(st.PinnedFrom))
	if st.HandoverError != "" {
		fmt.Fprintf(w, "KEY ROTATION: %s\n", st.HandoverError)
	}
	for _, l := range st.LearnedKeys {
		fmt.Fprintf(w, "learned key: %s (vouched for by %s, %s): ship it in the trust file\n", l.Key.ID, l.VouchedBy, l.LearnedAt.Format(time.RFC3339))
	}
	if len(st.UnpinnedSigners) > 0 {
		fmt.Fprintf(w, "KEY ROTATION: answers are also signed by %s, not pinned: add the vendor's new key to the trust file\n", strings.Join(st.UnpinnedSigners, ", "))
	}
	_, err := fmt.Fprint(w)
	return err
}
