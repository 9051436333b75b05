package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	ucli "github.com/urfave/cli/v3"
	"golang.org/x/time/rate"

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
		Flags: []ucli.Flag{
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
			&ucli.BoolFlag{Name: "access-log", Sources: ucli.EnvVars("RINGFENCE_ACCESS_LOG"), Value: true, Usage: "log every request (method, path, status, bytes, duration; never headers or query strings)"},
			&durationFlag{Name: "retention", Sources: ucli.EnvVars("RINGFENCE_RETENTION"), Value: 90 * 24 * time.Hour, Usage: "how long instance history is kept"},
		},
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
			return withCode(ExitError, serve(ctx, cmd, log))
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

func serve(ctx context.Context, cmd *ucli.Command, log *slog.Logger) error {
	addr, err := listenAddr(cmd.String("listen"))
	if err != nil {
		return err
	}
	if _, _, err := sqlstore.ClassifyDSN(cmd.String("db")); err != nil {
		return err
	}
	// Bind before creating anything: a busy port must not leave a new
	// store and signing key behind.
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	defer ln.Close()
	store, err := sqlstore.Open(ctx, cmd.String("db"))
	if err != nil {
		return err
	}
	defer store.Close()
	srv, err := server.New(ctx, server.Config{
		Store:               store,
		Logger:              log,
		AnswerTTL:           cmd.Duration("answer-ttl"),
		CheckInRate:         rate.Limit(cmd.Float("checkin-rate")),
		CheckInBurst:        int(cmd.Int("checkin-burst")),
		IncidentWebhook:     cmd.String("incident-webhook"),
		WebhookAllowPrivate: cmd.Bool("webhook-allow-private"),
		Retention:           cmd.Duration("retention"),
		KeyOverlap:          cmd.Duration("key-overlap"),
	})
	if err != nil {
		return err
	}
	handler := srv.Handler()
	if cmd.Bool("access-log") && !cmd.Bool("quiet") {
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
	runCtx, stopRun := context.WithCancel(context.WithoutCancel(ctx))
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
