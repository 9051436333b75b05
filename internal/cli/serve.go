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
	"strconv"
	"time"

	ucli "github.com/urfave/cli/v3"
	"golang.org/x/time/rate"

	"github.com/ringfence/ringfence/internal/gcfloor"
	"github.com/ringfence/ringfence/notify"
	"github.com/ringfence/ringfence/server"
	"github.com/ringfence/ringfence/sqlstore"
)

// dbFlag names the store: a SQLite file or a postgres:// URL.
func dbFlag() *ucli.StringFlag {
	return &ucli.StringFlag{Name: "db", Value: "ringfence.db", Sources: ucli.EnvVars("RINGFENCE_DB"),
		Usage: "store: a SQLite file (PATH or sqlite:PATH), or PostgreSQL (postgres://… or postgresql://… URL, or key=value such as \"host=db dbname=ringfence\")"}
}

// serveCommand is `ringfence serve`: the release control plane.
func serveCommand(stdout, stderr io.Writer) *ucli.Command {
	return &ucli.Command{
		Name:  "serve",
		Usage: "run the release control plane (check-ins, admin API, metrics)",
		Description: "Serves POST /v1/checkin and GET /v1/keys for installations, the admin API under\n" +
			"/api/v1 (see docs/api.md), /healthz, /readyz and /metrics. Logs go to stderr (JSON, or\n" +
			"text with --log-format text), with an access log line per request unless --access-log=false.\n" +
			"Several serve processes may share one PostgreSQL database.",
		Flags: append([]ucli.Flag{
			dbFlag(),
			&ucli.StringFlag{Name: "listen", Sources: ucli.EnvVars("RINGFENCE_LISTEN"), Value: ":8080", Usage: "address to listen on"},
			&ucli.StringFlag{Name: "incident-webhook", Sources: ucli.EnvVars("RINGFENCE_INCIDENT_WEBHOOK"),
				Usage: "URL that receives a POST when auto-halt pauses a release"},
			&ucli.BoolFlag{Name: "webhook-allow-private", Sources: ucli.EnvVars("RINGFENCE_WEBHOOK_ALLOW_PRIVATE"),
				Usage: "let the incident webhook reach loopback, private and link-local addresses (refused by default)"},
			&durationFlag{Name: "answer-ttl", Sources: ucli.EnvVars("RINGFENCE_ANSWER_TTL"), Value: time.Hour, Usage: "validity of signed check-in answers"},
			&ucli.FloatFlag{Name: "checkin-rate", Sources: ucli.EnvVars("RINGFENCE_CHECKIN_RATE"), Value: 50, Usage: "check-ins per second allowed per enrollment key"},
			&ucli.IntFlag{Name: "checkin-burst", Sources: ucli.EnvVars("RINGFENCE_CHECKIN_BURST"), Value: 200, Usage: "check-in burst allowed per enrollment key"},
			&durationFlag{Name: "key-overlap", Sources: ucli.EnvVars("RINGFENCE_KEY_OVERLAP"), Value: 30 * 24 * time.Hour,
				Usage: "after keys rotate, how long the previous signing key co-signs answers (negative: not at all)"},
			&ucli.StringFlag{Name: "log-format", Sources: ucli.EnvVars("RINGFENCE_LOG_FORMAT"), Value: "json", Usage: "json or text"},
			&ucli.StringFlag{Name: "log-level", Sources: ucli.EnvVars("RINGFENCE_LOG_LEVEL"), Value: "info", Usage: "debug, info, warn or error"},
			&ucli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Sources: ucli.EnvVars("RINGFENCE_QUIET"), Usage: "log only warnings and errors (--log-level warn, no access log)"},
			&ucli.BoolFlag{Name: "access-log", Sources: ucli.EnvVars("RINGFENCE_ACCESS_LOG"), Value: true, Usage: "log every request (method, path, status, bytes, duration; never headers or query strings); off with --demo unless set"},
			&durationFlag{Name: "retention", Sources: ucli.EnvVars("RINGFENCE_RETENTION"), Value: 90 * 24 * time.Hour, Usage: "how long instance history is kept"},
			&ucli.StringFlag{Name: "public-url", Sources: ucli.EnvVars("RINGFENCE_PUBLIC_URL"),
				Usage: "the public base URL people reach this server at: links in emails, feeds and webhooks; https makes console cookies Secure behind a TLS proxy (default: http://localhost:PORT)"},
			&ucli.StringFlag{Name: "page-title", Value: "Status", Sources: ucli.EnvVars("RINGFENCE_PAGE_TITLE"), Usage: "the status page's name"},
			&ucli.StringFlag{Name: "smtp", Sources: ucli.EnvVars("RINGFENCE_SMTP"),
				Usage: "SMTP server for email subscribers: smtp://[user:pass@]host[:port] (STARTTLS when offered) or smtps://..."},
			&ucli.StringFlag{Name: "smtp-from", Sources: ucli.EnvVars("RINGFENCE_SMTP_FROM"), Usage: "sender address of status emails"},
			&ucli.IntFlag{Name: "gc-floor", Sources: ucli.EnvVars("RINGFENCE_GC_FLOOR"), Value: 64,
				Usage: "MiB the heap may grow above a small live heap before the Go garbage collector runs (0: Go's default; ignored when GOGC is set)"},
			&ucli.BoolFlag{Name: "demo", Sources: ucli.EnvVars("RINGFENCE_DEMO"), Usage: "run a living demo on a throwaway store: a seeded product and simulated installations (prints the console's URL and a login)"},
			&ucli.StringFlag{Name: "metrics-listen", Sources: ucli.EnvVars("RINGFENCE_METRICS_LISTEN"),
				Usage: "serve /metrics, without authentication, on this separate address (e.g. 127.0.0.1:9090); off by default"},
			&ucli.StringFlag{Name: "metrics-token", Sources: ucli.EnvVars("RINGFENCE_METRICS_TOKEN"),
				Usage: "serve /metrics on --listen too, to requests with Authorization: Bearer <token>; off by default"},
			&ucli.IntFlag{Name: "quota-new-instances", Sources: ucli.EnvVars("RINGFENCE_QUOTA_NEW_INSTANCES"), Value: 1000, Usage: "installations one enrollment key may create per hour (-1: no limit)"},
			&ucli.IntFlag{Name: "quota-events", Sources: ucli.EnvVars("RINGFENCE_QUOTA_EVENTS"), Value: 1000, Usage: "events one installation may report per day (-1: no limit)"},
			&ucli.Int64Flag{Name: "quota-stored-bytes", Sources: ucli.EnvVars("RINGFENCE_QUOTA_STORED_BYTES"), Value: 256 << 20, Usage: "bytes of instance history one customer may have in the store (-1: no limit)"},
			&durationFlag{Name: "subscriber-timeout", Sources: ucli.EnvVars("RINGFENCE_SUBSCRIBER_TIMEOUT"), Value: 10 * time.Second, Usage: "time limit of one delivery attempt to a subscriber"},
			&ucli.IntFlag{Name: "subscriber-attempts", Sources: ucli.EnvVars("RINGFENCE_SUBSCRIBER_ATTEMPTS"), Value: 10, Usage: "attempts per delivery before it is dead (replay it with `subscriber replay`)"},
			&durationFlag{Name: "subscriber-backoff", Sources: ucli.EnvVars("RINGFENCE_SUBSCRIBER_BACKOFF"), Value: 10 * time.Second, Usage: "wait after a delivery's first failure; doubles per attempt, at most an hour"},
		}, kekFlags()...),
		Action: func(ctx context.Context, cmd *ucli.Command) error {
			if cmd.Args().Len() > 0 {
				return withCode(ExitError, fmt.Errorf("serve takes no arguments, got %q", cmd.Args().Slice()))
			}
			level := cmd.String("log-level")
			if cmd.Bool("quiet") {
				level = "warn"
			}
			log, err := newLogger(stderr, cmd.String("log-format"), level)
			if err != nil {
				return withCode(ExitError, err)
			}
			return withCode(ExitError, serve(ctx, cmd, log, stdout))
		},
	}
}

// newLogger builds the server's logger: JSON (default) or text lines on w,
// from level on.
func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want json or text", format)
}

// listenAddr checks a --listen value: a bare port number is the most
// common slip, and net.Listen would only say "missing port in address".
func listenAddr(s string) (string, error) {
	if _, err := strconv.Atoi(s); err == nil {
		return "", fmt.Errorf("--listen %s: give an address with a colon: :%s (every interface) or 127.0.0.1:%s (this machine only)", s, s, s)
	}
	if _, _, err := net.SplitHostPort(s); err != nil {
		return "", fmt.Errorf("--listen %s: want HOST:PORT or :PORT (e.g. :8080): %w", s, err)
	}
	return s, nil
}

func serve(ctx context.Context, cmd *ucli.Command, log *slog.Logger, stdout io.Writer) error {
	addr, err := listenAddr(cmd.String("listen"))
	if err != nil {
		return err
	}
	dsn := cmd.String("db")
	if cmd.Bool("demo") {
		dir, path, err := demoStore(cmd)
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		dsn = path
	}
	if _, _, err := sqlstore.ClassifyDSN(dsn); err != nil {
		return err
	}
	if cmd.Int("gc-floor") < 0 {
		return fmt.Errorf("--gc-floor %d: want 0 (Go's default) or more MiB", cmd.Int("gc-floor"))
	}
	if cmd.String("smtp") != "" && cmd.String("smtp-from") == "" {
		return fmt.Errorf("--smtp needs --smtp-from: the sender address of status emails")
	}
	// Bind before creating anything: a busy port must not leave a new
	// store and signing key behind.
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	defer ln.Close()
	switch floor := cmd.Int("gc-floor"); {
	case floor > 0 && gcfloor.EnvSet():
		log.Info("GOGC is set: --gc-floor does not apply", slog.String("GOGC", os.Getenv("GOGC")))
	case floor > 0:
		// A check-in server's live heap is small and its allocation
		// rate high: without a floor Go collects dozens of times a
		// second (internal/gcfloor).
		gcCtx, stopGC := context.WithCancel(ctx)
		defer stopGC()
		go gcfloor.Run(gcCtx, uint64(floor)<<20, time.Second)
	}
	store, err := sqlstore.Open(ctx, dsn)
	if err != nil {
		return err
	}
	defer store.Close()
	kek, err := keyEncryptionKey(ctx, cmd, dsn, store, log)
	if err != nil {
		return err
	}
	publicURL := cmd.String("public-url")
	if publicURL == "" {
		publicURL = "http://localhost:" + strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	}
	srv, err := server.New(ctx, server.Config{
		Store:               store,
		KeyEncryptionKey:    kek,
		MetricsToken:        cmd.String("metrics-token"),
		Logger:              log,
		AnswerTTL:           cmd.Duration("answer-ttl"),
		CheckInRate:         rate.Limit(cmd.Float("checkin-rate")),
		CheckInBurst:        int(cmd.Int("checkin-burst")),
		IncidentWebhook:     cmd.String("incident-webhook"),
		WebhookAllowPrivate: cmd.Bool("webhook-allow-private"),
		Retention:           cmd.Duration("retention"),
		KeyOverlap:          cmd.Duration("key-overlap"),
		PublicURL:           publicURL,
		PageTitle:           cmd.String("page-title"),
		SMTP:                cmd.String("smtp"),
		SMTPFrom:            cmd.String("smtp-from"),
		AdoptionInterval:    demoAdoptionInterval(cmd),
		QuotaNewInstances:   int(cmd.Int("quota-new-instances")),
		QuotaEvents:         int(cmd.Int("quota-events")),
		QuotaStoredBytes:    cmd.Int64("quota-stored-bytes"),
		Notify: notify.Config{Timeout: cmd.Duration("subscriber-timeout"), MaxAttempts: int(cmd.Int("subscriber-attempts")),
			Backoff: cmd.Duration("subscriber-backoff")},
	})
	if err != nil {
		ln.Close()
		return err
	}
	handler := srv.Handler()
	// The demo's simulated installations check in several times a second:
	// their access log would scroll the login it printed out of sight.
	demoQuiet := cmd.Bool("demo") && !cmd.IsSet("access-log")
	if cmd.Bool("access-log") && !cmd.Bool("quiet") && !demoQuiet {
		handler = server.AccessLog(log, handler)
	}
	hs := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	var metricsServer *http.Server
	if addr := cmd.String("metrics-listen"); addr != "" {
		mln, err := net.Listen("tcp", addr)
		if err != nil {
			ln.Close()
			return fmt.Errorf("listen for metrics on %s: %w", addr, err)
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", srv.Metrics())
		metricsServer = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second,
			ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
		go func() { _ = metricsServer.Serve(mln) }()
		defer metricsServer.Close()
		log.Info("serving metrics", slog.String("addr", mln.Addr().String()))
	} else if cmd.String("metrics-token") == "" {
		log.Info("metrics are not exposed: give --metrics-listen (a private address) or --metrics-token")
	}
	runCtx, stopRun := context.WithCancel(context.WithoutCancel(ctx))
	demoCtx, stopDemo := context.WithCancel(runCtx)
	defer stopDemo()
	demoDone := func() {}
	if cmd.Bool("demo") {
		if demoDone, err = startDemo(demoCtx, store, ln.Addr(), dsn, stdout, log); err != nil {
			stopRun()
			ln.Close()
			return err
		}
	}
	runDone := make(chan error, 1)
	go func() { runDone <- srv.Run(runCtx) }()
	serveDone := make(chan error, 1)
	go func() { serveDone <- hs.Serve(ln) }()
	log.Info("serving", slog.String("addr", ln.Addr().String()), slog.String("store", string(store.Dialect())))

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-serveDone:
	}
	// Stop taking requests and let those in flight finish, then stop the
	// background work, which writes what is still queued.
	stopDemo()
	demoDone()
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer cancel()
	if err := hs.Shutdown(shutdownCtx); err != nil {
		log.Warn("shutdown", slog.Any("err", err))
	}
	stopRun()
	<-runDone
	log.Info("stopped")
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", serveErr)
	}
	return nil
}
