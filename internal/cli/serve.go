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

	"github.com/ringfence/ringfence/notify"
	"github.com/ringfence/ringfence/server"
	"github.com/ringfence/ringfence/sqlstore"
)

// dbFlag names the store: a SQLite file or a postgres:// URL.
func dbFlag() *ucli.StringFlag {
	return &ucli.StringFlag{Name: "db", Value: "ringfence.db", Sources: ucli.EnvVars("RINGFENCE_DB"),
		Usage: "store: a SQLite file path, or a postgres:// URL"}
}

// serveCommand is `ringfence serve`: the release control plane.
func serveCommand(stdout, stderr io.Writer) *ucli.Command {
	return &ucli.Command{
		Name:  "serve",
		Usage: "run the release control plane (check-ins, admin API, metrics)",
		Description: "Serves POST /v1/checkin and GET /v1/keys for installations, the admin API under\n" +
			"/api/v1 (see docs/api.md), /healthz, /readyz and /metrics. Logs are JSON on stderr.\n" +
			"Several serve processes may share one PostgreSQL database.",
		Flags: []ucli.Flag{
			dbFlag(),
			&ucli.StringFlag{Name: "listen", Value: ":8080", Usage: "address to listen on"},
			&ucli.StringFlag{Name: "incident-webhook", Sources: ucli.EnvVars("RINGFENCE_INCIDENT_WEBHOOK"),
				Usage: "URL that receives a POST when auto-halt pauses a release"},
			&ucli.BoolFlag{Name: "webhook-allow-private", Sources: ucli.EnvVars("RINGFENCE_WEBHOOK_ALLOW_PRIVATE"),
				Usage: "let the incident webhook reach loopback, private and link-local addresses (refused by default)"},
			&ucli.DurationFlag{Name: "answer-ttl", Value: time.Hour, Usage: "validity of signed check-in answers"},
			&ucli.FloatFlag{Name: "checkin-rate", Value: 50, Usage: "check-ins per second allowed per enrollment key"},
			&ucli.IntFlag{Name: "checkin-burst", Value: 200, Usage: "check-in burst allowed per enrollment key"},
			&ucli.DurationFlag{Name: "key-overlap", Value: 30 * 24 * time.Hour,
				Usage: "after keys rotate, how long the previous signing key co-signs answers (negative: not at all)"},
			&ucli.DurationFlag{Name: "retention", Value: 90 * 24 * time.Hour, Usage: "how long instance history is kept"},
			&ucli.StringFlag{Name: "public-url", Sources: ucli.EnvVars("RINGFENCE_PUBLIC_URL"),
				Usage: "the status page's public base URL, for links in emails, feeds and webhooks (default: http://localhost:PORT)"},
			&ucli.StringFlag{Name: "page-title", Value: "Status", Sources: ucli.EnvVars("RINGFENCE_PAGE_TITLE"), Usage: "the status page's name"},
			&ucli.StringFlag{Name: "smtp", Sources: ucli.EnvVars("RINGFENCE_SMTP"),
				Usage: "SMTP server for email subscribers: smtp://[user:pass@]host[:port] (STARTTLS when offered) or smtps://..."},
			&ucli.StringFlag{Name: "smtp-from", Sources: ucli.EnvVars("RINGFENCE_SMTP_FROM"), Usage: "sender address of status emails"},
			&ucli.DurationFlag{Name: "subscriber-timeout", Value: 10 * time.Second, Usage: "time limit of one delivery attempt to a subscriber"},
			&ucli.IntFlag{Name: "subscriber-attempts", Value: 10, Usage: "attempts per delivery before it is dead (replay it with `subscriber replay`)"},
			&ucli.DurationFlag{Name: "subscriber-backoff", Value: 10 * time.Second, Usage: "wait after a delivery's first failure; doubles per attempt, at most an hour"},
		},
		Action: func(ctx context.Context, cmd *ucli.Command) error {
			if cmd.Args().Len() > 0 {
				return withCode(ExitError, fmt.Errorf("serve takes no arguments, got %q", cmd.Args().Slice()))
			}
			log := slog.New(slog.NewJSONHandler(stderr, nil))
			return withCode(ExitError, serve(ctx, cmd, log))
		},
	}
}

func serve(ctx context.Context, cmd *ucli.Command, log *slog.Logger) error {
	store, err := sqlstore.Open(ctx, cmd.String("db"))
	if err != nil {
		return err
	}
	defer store.Close()
	ln, err := net.Listen("tcp", cmd.String("listen"))
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cmd.String("listen"), err)
	}
	publicURL := cmd.String("public-url")
	if publicURL == "" {
		publicURL = "http://localhost:" + strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	}
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
		PublicURL:           publicURL,
		PageTitle:           cmd.String("page-title"),
		SMTP:                cmd.String("smtp"),
		SMTPFrom:            cmd.String("smtp-from"),
		Notify: notify.Config{Timeout: cmd.Duration("subscriber-timeout"), MaxAttempts: int(cmd.Int("subscriber-attempts")),
			Backoff: cmd.Duration("subscriber-backoff")},
	})
	if err != nil {
		ln.Close()
		return err
	}
	hs := &http.Server{
		Handler:           srv.Handler(),
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
