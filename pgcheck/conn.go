package pgcheck

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
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
	if err := socketPassword(dsn, cfg); err != nil {
		return nil, err
	}
	return &Target{config: cfg, opts: opts}, nil
}

// socketDirCandidates are the directories pgx connects to, the first that
// exists, when no host is given: that is ringfence's default socket
// directory, as DEFAULT_PGSOCKET_DIR is libpq's.
var socketDirCandidates = []string{"/var/run/postgresql", "/private/tmp", "/tmp"}

// defaultSocketDir is the socket directory used when no host is given.
func defaultSocketDir() string {
	for _, d := range socketDirCandidates {
		if _, err := os.Stat(d); err == nil {
			return d
		}
	}
	return ""
}

// passfileHost is the host field of the password file that a connection to
// host matches, by libpq's rule: a Unix socket in the default socket
// directory (the very path, compared as written) matches "localhost" and
// not its path; a socket anywhere else matches its path and not
// "localhost"; a TCP host matches its name.
func passfileHost(host, defaultDir string) string {
	if host == "" || (strings.HasPrefix(host, "/") && host == defaultDir) {
		return "localhost"
	}
	return host
}

// socketPassword corrects pgx's password file lookup, which takes any Unix
// socket for "localhost", to libpq's rule (passfileHost) when the socket is
// not in the default directory. A password given in the DSN or PGPASSWORD
// is kept; so is pgx's lookup when the DSN names its own passfile.
func socketPassword(dsn string, cfg *pgx.ConnConfig) error {
	if !strings.HasPrefix(cfg.Host, "/") || passfileHost(cfg.Host, defaultSocketDir()) == "localhost" ||
		strings.Contains(dsn, "passfile") {
		return nil
	}
	// Parsed again with the password file switched off, what is left is
	// the password given explicitly.
	explicit, err := pgx.ParseConfig(withoutPassfile(dsn))
	if err != nil {
		return fmt.Errorf("parse connection string: %w", err)
	}
	if explicit.Password != "" {
		return nil
	}
	cfg.Password = ""
	file := os.Getenv("PGPASSFILE")
	if file == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return nil
		}
		file = filepath.Join(home, ".pgpass")
	}
	pf, err := pgpassfile.ReadPassfile(file)
	if err != nil {
		return nil // no password file: no password, as with libpq
	}
	cfg.Password = pf.FindPassword(cfg.Host, strconv.Itoa(int(cfg.Port)), cfg.Database, cfg.User)
	return nil
}

// withoutPassfile returns dsn with an empty passfile setting, which makes
// pgx skip the password file.
func withoutPassfile(dsn string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		if u, err := url.Parse(dsn); err == nil {
			q := u.Query()
			q.Set("passfile", "")
			u.RawQuery = q.Encode()
			return u.String()
		}
		return dsn
	}
	return strings.TrimSpace(dsn + " passfile=''")
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

// ListDatabases lists, by name, the databases of srv's server that accept
// connections and that its role may connect to: what AllDatabases
// covers.
func ListDatabases(ctx context.Context, srv *Target) ([]string, error) {
	conn, err := srv.Connect(ctx, "")
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	return listDatabases(ctx, conn)
}

func listDatabases(ctx context.Context, conn *pgx.Conn) ([]string, error) {
	rows, _ := conn.Query(ctx, `SELECT datname FROM pg_database
		WHERE datallowconn AND datconnlimit <> -2 AND has_database_privilege(datname, 'CONNECT')
		ORDER BY datname`)
	dbs, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("list databases: %w", err)
	}
	return dbs, nil
}
