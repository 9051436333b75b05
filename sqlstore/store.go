// Package sqlstore is ringfence's store: one set of hand-written SQL for an
// embedded SQLite file (the default) and for PostgreSQL, with versioned
// migrations embedded per dialect. Public methods own their transaction;
// lower-case helpers take the *sql.Tx.
//
// A SQLite store's files are readable by their owner only (0600; a store
// others may read is refused), and signing keys are stored only sealed with
// a key-encryption key the store does not hold (keys.go).
//
// Several processes may share one PostgreSQL database: every committed change
// is announced with NOTIFY on channel ringfence_changes, and Watch turns those
// announcements (and in-process changes) into a callback so caches can be
// rebuilt.
package sqlstore

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/ringfence/ringfence/sign"
)

//go:embed migrations
var migrations embed.FS

// notifyChannel is the PostgreSQL channel every change is announced on.
const notifyChannel = "ringfence_changes"

// Dialect names a supported SQL database.
type Dialect string

// Supported dialects.
const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// Store is the ringfence store. It is safe for concurrent use.
type Store struct {
	dialect Dialect
	dsn     string
	// db takes writes. On SQLite it has exactly one connection, so writers
	// never contend for the file lock inside one process.
	db *sql.DB
	// rdb serves reads. On SQLite it is a separate pool of read-only
	// connections (WAL lets them run beside the writer); on PostgreSQL it is db.
	rdb *sql.DB
	// stmts are the check-in writer's prepared statements (checkins.go).
	stmts statements
	// queries are the check-in writer's statements in its dialect.
	queries checkInQueries

	// kek seals and opens signing keys (keys.go); nil until
	// UseKeyEncryptionKey.
	kek atomic.Pointer[sign.KeyEncryptionKey]

	mu        sync.Mutex
	listeners map[int]func()
	nextID    int
}

// Open opens the store named by dsn — a postgres:// or postgresql:// URL or
// a key=value connection string for PostgreSQL, sqlite:PATH or a plain file
// path for SQLite, created if missing (see ClassifyDSN) — and
// migrates its schema to the newest version this binary knows. It refuses a
// database whose schema is newer than this binary, and one that holds tables
// but no ringfence schema version (not a ringfence database).
func Open(ctx context.Context, dsn string) (*Store, error) {
	return open(ctx, dsn, true)
}

// OpenExisting opens the store named by dsn like Open but creates and
// migrates nothing: the SQLite file must exist and the database must carry
// exactly the schema version this binary knows (`ringfence serve` creates
// and migrates it). For offline tools, so that a mistyped --db is an error
// rather than a new, empty store.
func OpenExisting(ctx context.Context, dsn string) (*Store, error) {
	return open(ctx, dsn, false)
}

// libpqKeys are the connection parameters libpq (and pgx) take in a
// key=value connection string.
var libpqKeys = []string{"host", "hostaddr", "port", "dbname", "user", "password", "passfile", "connect_timeout",
	"client_encoding", "options", "application_name", "fallback_application_name", "keepalives", "keepalives_idle",
	"keepalives_interval", "keepalives_count", "tcp_user_timeout", "sslmode", "sslcert", "sslkey", "sslrootcert",
	"sslpassword", "sslcrl", "sslsni", "sslnegotiation", "requiressl", "gssencmode", "krbsrvname", "service",
	"target_session_attrs", "channel_binding", "require_auth", "load_balance_hosts"}

// hostPort matches "host:5432" and "host:5432/db", which look like a server
// address, not a file name.
var hostPort = regexp.MustCompile(`^[A-Za-z0-9.-]+:[0-9]+(/|$)`)

// ClassifyDSN tells which store a --db value names, and returns what to
// open: postgres:// and postgresql:// URLs and key=value connection strings
// ("host=db dbname=rf") are PostgreSQL; "sqlite:PATH" and a plain file path
// are SQLite. Anything that could be either, or neither (another URL
// scheme, key=value with keys libpq does not know, "host:port"), is
// refused: a server that silently created a SQLite file named after a
// PostgreSQL connection string would serve a store no other server shares.
func ClassifyDSN(dsn string) (Dialect, string, error) {
	trimmed := strings.TrimSpace(dsn)
	switch {
	case trimmed == "":
		return "", "", errors.New("empty store: give a SQLite file path or a PostgreSQL connection string")
	case strings.HasPrefix(trimmed, "postgres://") || strings.HasPrefix(trimmed, "postgresql://"):
		return Postgres, trimmed, nil
	case strings.HasPrefix(trimmed, "sqlite:"):
		path := strings.TrimPrefix(strings.TrimPrefix(trimmed, "sqlite:"), "//")
		if path == "" {
			return "", "", fmt.Errorf("store %q: sqlite: needs a file path (sqlite:/var/lib/ringfence/ringfence.db)", dsn)
		}
		return SQLite, path, nil
	case strings.Contains(trimmed, "://"):
		scheme, _, _ := strings.Cut(trimmed, "://")
		return "", "", fmt.Errorf("store %q: unknown scheme %q: want postgres://…, postgresql://…, a key=value connection string, or sqlite:PATH", dsn, scheme)
	case strings.Contains(trimmed, "="):
		for _, field := range strings.Fields(trimmed) {
			key, _, ok := strings.Cut(field, "=")
			if ok && slices.Contains(libpqKeys, strings.TrimSpace(key)) {
				return Postgres, trimmed, nil
			}
		}
		return "", "", fmt.Errorf("store %q is ambiguous: it has '=' but no PostgreSQL connection parameter (host=, dbname=, user=, …); "+
			"for a SQLite file with '=' in its name write sqlite:PATH", dsn)
	case hostPort.MatchString(trimmed):
		return "", "", fmt.Errorf("store %q is ambiguous: it looks like a server address, not a file; for PostgreSQL write postgres://USER@%s, for a SQLite file sqlite:%s", dsn, trimmed, trimmed)
	}
	return SQLite, dsn, nil
}

func open(ctx context.Context, dsn string, migrate bool) (*Store, error) {
	dialect, target, err := ClassifyDSN(dsn)
	if err != nil {
		return nil, err
	}
	dsn = target
	s := &Store{dsn: dsn, listeners: map[int]func(){}}
	if dialect == Postgres {
		s.dialect = Postgres
		s.db, err = sql.Open("pgx", dsn)
		if err != nil {
			return nil, fmt.Errorf("open postgres store: %w", err)
		}
		s.db.SetMaxOpenConns(16)
		s.db.SetMaxIdleConns(16)
		s.rdb = s.db
	} else {
		s.dialect = SQLite
		if !migrate {
			if _, err := os.Stat(dsn); err != nil {
				return nil, fmt.Errorf("open sqlite store: %w (create it with `ringfence admin token create --db %s --init`, or run `ringfence serve --db %s` once)", err, dsn, dsn)
			}
		}
		if err := privateFiles(dsn, migrate); err != nil {
			return nil, err
		}
		if s.db, err = sql.Open("sqlite", sqliteDSN(dsn, false)); err != nil {
			return nil, fmt.Errorf("open sqlite store %s: %w", dsn, err)
		}
		s.db.SetMaxOpenConns(1)
		s.db.SetConnMaxLifetime(0)
		s.db.SetConnMaxIdleTime(0)
	}
	s.queries = newCheckInQueries(s.dialect)
	if err := s.db.PingContext(ctx); err != nil {
		s.db.Close()
		return nil, fmt.Errorf("connect to %s store: %w", s.dialect, err)
	}
	if err := s.migrate(ctx, migrate); err != nil {
		s.db.Close()
		return nil, err
	}
	if s.dialect == SQLite {
		if s.rdb, err = sql.Open("sqlite", sqliteDSN(dsn, true)); err != nil {
			s.db.Close()
			return nil, fmt.Errorf("open sqlite store %s for reading: %w", dsn, err)
		}
		s.rdb.SetMaxOpenConns(4)
	}
	return s, nil
}

// privateFiles makes sure the SQLite store at path and its -wal and -shm
// files are readable by their owner only: it creates a missing store file
// with mode 0600 (when create is set; SQLite gives the -wal and -shm files
// the mode of the database file) and refuses files that group or others
// may read or write, which would let any local user read the check-in
// history or change it.
func privateFiles(path string, create bool) error {
	if create {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		switch {
		case err == nil:
			if err := f.Close(); err != nil {
				return fmt.Errorf("create sqlite store %s: %w", path, err)
			}
		case !errors.Is(err, fs.ErrExist):
			return fmt.Errorf("create sqlite store %s: %w", path, err)
		}
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) && p != path {
			continue
		}
		if err != nil {
			return fmt.Errorf("check sqlite store %s: %w", p, err)
		}
		if perm := fi.Mode().Perm(); perm&0o077 != 0 {
			return fmt.Errorf("sqlite store file %s has mode %04o: group or other users could read or change it; refusing to use it (chmod 600 %s %s-wal %s-shm, owned by the user running ringfence)",
				p, perm, path, path, path)
		}
	}
	return nil
}

// sqliteDSN turns a file path into a modernc.org/sqlite DSN: WAL, a busy
// timeout, foreign keys, and on the writing connection synchronous=FULL:
// every commit fsyncs the WAL, so a committed (and answered) check-in
// survives an OS crash or power loss, not only a crash of the process
// (NORMAL would only sync at checkpoints). Group commit spreads the fsync
// over a batch of check-ins. The one writing connection may keep up to
// 256 MiB of pages (SQLite's default is 2 MiB): with a million
// installations the writer's lookups and upserts land all over the
// installations and events B-trees, and reading those pages back from the
// OS for every batch cost a quarter of its throughput (bench/README.md).
// Pages are cached as they are read, so a small store uses little of it.
func sqliteDSN(path string, readOnly bool) string {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	if readOnly {
		q.Add("_pragma", "synchronous(NORMAL)") // readers commit nothing
	} else {
		q.Add("_pragma", "synchronous(FULL)")
		q.Add("_pragma", "cache_size(-262144)")
	}
	q.Add("_pragma", "foreign_keys(1)")
	q.Set("_txlock", "immediate")
	if readOnly {
		q.Add("_pragma", "query_only(1)")
		q.Set("_txlock", "deferred")
	}
	return "file:" + path + "?" + q.Encode()
}

// versionTable is goose's table of applied migrations.
const versionTable = "goose_db_version"

// tables reports whether the database has goose's version table and how
// many other tables it has (in the current schema on PostgreSQL).
func (s *Store) tables(ctx context.Context) (hasVersion bool, others int, err error) {
	q := `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'`
	if s.dialect == Postgres {
		q = `SELECT tablename FROM pg_tables WHERE schemaname = current_schema()`
	}
	names, err := queryAll(ctx, s.db, func(row scanner) (string, error) {
		var n string
		return n, row.Scan(&n)
	}, "list tables", q)
	if err != nil {
		return false, 0, err
	}
	for _, n := range names {
		if n == versionTable {
			hasVersion = true
		} else {
			others++
		}
	}
	return hasVersion, others, nil
}

// migrate checks the schema of the store's database and, with apply,
// applies the embedded migrations of its dialect. It refuses a schema newer
// than this binary and a database with tables but no version table; without
// apply also a missing or older schema.
func (s *Store) migrate(ctx context.Context, apply bool) error {
	hasVersion, others, err := s.tables(ctx)
	if err != nil {
		return err
	}
	if !hasVersion && others > 0 {
		return fmt.Errorf("the %s database has %d tables but no ringfence schema version: not a ringfence store; refusing to use it", s.dialect, others)
	}
	if !apply {
		return s.checkVersion(ctx, hasVersion)
	}
	sub, err := fs.Sub(migrations, "migrations/"+string(s.dialect))
	if err != nil {
		return fmt.Errorf("load %s migrations: %w", s.dialect, err)
	}
	gd := goose.DialectSQLite3
	var opts []goose.ProviderOption
	if s.dialect == Postgres {
		gd = goose.DialectPostgres
		// Several servers may start at once on one database: one migrates,
		// the others wait for its advisory lock.
		locker, err := lock.NewPostgresSessionLocker()
		if err != nil {
			return fmt.Errorf("create migration lock: %w", err)
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	}
	p, err := goose.NewProvider(gd, s.db, sub, opts...)
	if err != nil {
		return fmt.Errorf("prepare %s migrations: %w", s.dialect, err)
	}
	var known int64
	for _, src := range p.ListSources() {
		known = max(known, src.Version)
	}
	current, err := p.GetDBVersion(ctx)
	if err != nil && !errors.Is(err, goose.ErrVersionNotFound) {
		return fmt.Errorf("read schema version: %w", err)
	}
	if current > known {
		return fmt.Errorf("database schema version %d is newer than this ringfence knows (%d): refusing to start; upgrade ringfence", current, known)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrate %s schema to version %d: %w", s.dialect, known, err)
	}
	return nil
}

// checkVersion requires the database's schema version to be the one this
// binary knows, without changing anything.
func (s *Store) checkVersion(ctx context.Context, hasVersion bool) error {
	known, err := SchemaVersion(s.dialect)
	if err != nil {
		return err
	}
	if !hasVersion {
		return fmt.Errorf("the %s database has no ringfence schema: run `ringfence serve` on it once to create it", s.dialect)
	}
	var current sql.NullInt64
	if err := s.db.QueryRowContext(ctx, `SELECT MAX(version_id) FROM `+versionTable+` WHERE is_applied`).Scan(&current); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	switch {
	case current.Int64 > known:
		return fmt.Errorf("database schema version %d is newer than this ringfence knows (%d); upgrade ringfence", current.Int64, known)
	case current.Int64 < known:
		return fmt.Errorf("database schema version %d is older than this ringfence's (%d): run `ringfence serve` once to migrate it", current.Int64, known)
	}
	return nil
}

// SchemaVersion is the newest migration version this binary knows for d.
func SchemaVersion(d Dialect) (int64, error) {
	entries, err := fs.ReadDir(migrations, "migrations/"+string(d))
	if err != nil {
		return 0, fmt.Errorf("list %s migrations: %w", d, err)
	}
	var v int64
	for _, e := range entries {
		var n int64
		if _, err := fmt.Sscanf(e.Name(), "%d_", &n); err == nil {
			v = max(v, n)
		}
	}
	return v, nil
}

// Now is the store's clock: the current time in UTC at microsecond
// precision (what PostgreSQL keeps), so a value the store stamps, read
// back, equals the value written. Callers that show a time the store will
// also record use it so both agree.
func Now() time.Time { return now() }

// Dialect reports which database the store runs on.
func (s *Store) Dialect() Dialect { return s.dialect }

// Close closes the store's connections.
func (s *Store) Close() error {
	err := errors.Join(s.stmts.close(), s.db.Close())
	if s.rdb != s.db && s.rdb != nil {
		err = errors.Join(err, s.rdb.Close())
	}
	return err
}

// Ping checks that the store answers.
func (s *Store) Ping(ctx context.Context) error {
	var one int
	if err := s.rdb.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("ping %s store: %w", s.dialect, err)
	}
	return nil
}

// write runs fn in a transaction, announces the change to every watcher and
// commits. fn's error rolls everything back.
func (s *Store) write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	return s.tx(ctx, true, fn)
}

// writeSilent runs fn in a transaction without announcing it: for writes no
// cache depends on (installation last-seen, events).
func (s *Store) writeSilent(ctx context.Context, fn func(tx *sql.Tx) error) error {
	return s.tx(ctx, false, fn)
}

// tx runs fn in a write transaction and, when announce is set, tells every
// watcher (in this process directly, in others through NOTIFY) after commit.
func (s *Store) tx(ctx context.Context, announce bool, fn func(tx *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	if announce && s.dialect == Postgres {
		// Delivered to listeners only when the transaction commits.
		if _, err := tx.ExecContext(ctx, "SELECT pg_notify($1, '')", notifyChannel); err != nil {
			return fmt.Errorf("announce change: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit transaction: %w", err)
	}
	if announce {
		s.fire()
	}
	return nil
}

// serialize makes tx wait for every other transaction that serializes on
// name, across processes: on PostgreSQL with a transaction-scoped advisory
// lock; on SQLite write transactions already exclude each other (BEGIN
// IMMEDIATE).
func (s *Store) serialize(ctx context.Context, tx *sql.Tx, name string) error {
	if s.dialect != Postgres {
		return nil
	}
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtext($1))`, "ringfence."+name); err != nil {
		return fmt.Errorf("lock %s: %w", name, err)
	}
	return nil
}

// fire calls every in-process listener.
func (s *Store) fire() {
	s.mu.Lock()
	fns := make([]func(), 0, len(s.listeners))
	for _, fn := range s.listeners {
		fns = append(fns, fn)
	}
	s.mu.Unlock()
	for _, fn := range fns {
		fn()
	}
}

// Watch calls onChange (which must not block) after every change committed
// through this store and, on PostgreSQL, after every change any other process
// commits to the same database. It returns when ctx is done; on PostgreSQL it
// reports a failed listening session to onError, reconnects a second later
// and calls onChange after each reconnect, because announcements may have
// been missed meanwhile.
func (s *Store) Watch(ctx context.Context, onChange func(), onError func(error)) error {
	s.mu.Lock()
	id := s.nextID
	s.nextID++
	s.listeners[id] = onChange
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, id)
		s.mu.Unlock()
	}()
	if s.dialect != Postgres {
		<-ctx.Done()
		return nil
	}
	for {
		err := s.listen(ctx, onChange)
		if ctx.Err() != nil {
			return nil
		}
		onError(err) // the caller keeps serving from its cache meanwhile
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
	}
}

// listen holds one LISTEN session until it fails or ctx ends.
func (s *Store) listen(ctx context.Context, onChange func()) error {
	conn, err := pgx.Connect(ctx, s.dsn)
	if err != nil {
		return fmt.Errorf("connect listener: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+notifyChannel); err != nil {
		return fmt.Errorf("listen on %s: %w", notifyChannel, err)
	}
	onChange()
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return fmt.Errorf("wait for notification: %w", err)
		}
		onChange()
	}
}
