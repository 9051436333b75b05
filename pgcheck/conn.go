package pgcheck

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgpassfile"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
)

// ConnOptions sets the session limits of every connection ringfence opens.
type ConnOptions struct {
	// StatementTimeout bounds every statement (default 10 minutes).
	StatementTimeout time.Duration
	// LockTimeout bounds every lock wait (default 5 seconds).
	LockTimeout time.Duration
	// ReadWrite allows writes; sessions are read-only otherwise.
	ReadWrite bool
	// ApplicationName is shown in pg_stat_activity (default "ringfence").
	ApplicationName string
	// SearchPath, if set, is the sessions' search_path.
	SearchPath string
}

// Target is a PostgreSQL server to check, reached through a parsed DSN: a
// connection factory (credentials, default database, session limits), not
// a running server or a connection.
// It connects to any of the server's databases with the same credentials.
type Target struct {
	config *pgx.ConnConfig
	opts   ConnOptions
}

// Open parses dsn (a URL or key=value string; empty means libpq's PG*
// environment variables) without connecting.
func Open(dsn string, opts ConnOptions) (*Target, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("parse connection string: %w", err)
	}
	if opts.StatementTimeout == 0 {
		opts.StatementTimeout = 10 * time.Minute
	}
	if opts.LockTimeout == 0 {
		opts.LockTimeout = 5 * time.Second
	}
	if opts.ApplicationName == "" {
		opts.ApplicationName = "ringfence"
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = 10 * time.Second
	}
	if cfg.Password == "" {
		cfg.Password = socketPassword(cfg)
	}
	return &Target{config: cfg, opts: opts}, nil
}

// defaultSocketDirs are the socket directories libpq's password file
// lookup treats as "localhost".
var defaultSocketDirs = []string{"/var/run/postgresql", "/run/postgresql", "/tmp"}

// socketPassword looks up the password file the way libpq does for a Unix
// socket in a directory of one's own: by the directory's path in the host
// field (pgx only tries "localhost", which libpq uses for the default
// socket directory alone).
func socketPassword(cfg *pgx.ConnConfig) string {
	if !strings.HasPrefix(cfg.Host, "/") || slices.Contains(defaultSocketDirs, strings.TrimSuffix(cfg.Host, "/")) {
		return ""
	}
	file := os.Getenv("PGPASSFILE")
	if file == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return ""
		}
		file = filepath.Join(home, ".pgpass")
	}
	pf, err := pgpassfile.ReadPassfile(file)
	if err != nil {
		return ""
	}
	return pf.FindPassword(cfg.Host, strconv.Itoa(int(cfg.Port)), cfg.Database, cfg.User)
}

// WithPassword returns a copy of s that authenticates with password.
func (s *Target) WithPassword(password string) *Target {
	n := *s
	n.config = s.config.Copy()
	n.config.Password = password
	return &n
}

// ForDatabase returns a copy of s whose default database is db.
func (s *Target) ForDatabase(db string) *Target {
	n := *s
	n.config = s.config.Copy()
	n.config.Database = db
	return &n
}

// User is the role the DSN connects as.
func (s *Target) User() string { return s.config.User }

// Database is the database named by the DSN.
func (s *Target) Database() string { return s.config.Database }

// Options returns the session limits in force.
func (s *Target) Options() ConnOptions { return s.opts }

// WithOptions returns a copy of s whose sessions use opts (zero fields keep
// the current values).
func (s *Target) WithOptions(opts ConnOptions) *Target {
	n := *s
	if opts.StatementTimeout != 0 {
		n.opts.StatementTimeout = opts.StatementTimeout
	}
	if opts.LockTimeout != 0 {
		n.opts.LockTimeout = opts.LockTimeout
	}
	if opts.ApplicationName != "" {
		n.opts.ApplicationName = opts.ApplicationName
	}
	if opts.SearchPath != "" {
		n.opts.SearchPath = opts.SearchPath
	}
	n.opts.ReadWrite = opts.ReadWrite
	return &n
}

// Connect opens a session to database (empty: the DSN's database) with the
// server's session limits.
func (s *Target) Connect(ctx context.Context, database string) (*pgx.Conn, error) {
	cfg := s.config.Copy()
	if database != "" {
		cfg.Database = database
	}
	params := map[string]string{}
	for k, v := range cfg.RuntimeParams {
		params[k] = v
	}
	params["application_name"] = s.opts.ApplicationName
	params["statement_timeout"] = strconv.FormatInt(s.opts.StatementTimeout.Milliseconds(), 10)
	params["lock_timeout"] = strconv.FormatInt(s.opts.LockTimeout.Milliseconds(), 10)
	params["idle_in_transaction_session_timeout"] = "60000"
	if !s.opts.ReadWrite {
		params["default_transaction_read_only"] = "on"
	}
	if s.opts.SearchPath != "" {
		params["search_path"] = s.opts.SearchPath
	}
	cfg.RuntimeParams = params
	// On cancellation ask the server to cancel the running statement at once
	// (a closed socket alone leaves a long amcheck running server-side), and
	// drop the connection shortly after as a fallback.
	cfg.BuildContextWatcherHandler = func(pc *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.CancelRequestContextWatcherHandler{Conn: pc, DeadlineDelay: 2 * time.Second}
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, connectError(cfg, err)
	}
	return conn, nil
}

// connectError says why a connection failed, the server's own answer
// first: with sslmode=prefer a failed login is reported after the refused
// TLS attempt, which hides that the password was missing or wrong.
func connectError(cfg *pgx.ConnConfig, err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && strings.HasPrefix(pgErr.Code, "28") {
		hint := ""
		if cfg.Password == "" {
			hint = ": no password was given: put it in ~/.pgpass, PGPASSWORD or the connection string, or ask for it with -W"
		}
		return fmt.Errorf("connect to database %q as %q: %w%s", cfg.Database, cfg.User, pgErr, hint)
	}
	return fmt.Errorf("connect to database %q: %w", cfg.Database, err)
}

// QuoteIdent quotes a possibly qualified identifier's parts.
func QuoteIdent(parts ...string) string {
	return pgx.Identifier(parts).Sanitize()
}

func trimFloat(f float64) string {
	s := strconv.FormatFloat(f, 'f', 3, 64)
	s = strings.TrimRight(s, "0")
	return strings.TrimSuffix(s, ".")
}
