package pgtest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Cluster is a throwaway PostgreSQL cluster listening on 127.0.0.1.
type Cluster struct {
	// Dir holds the data directory, socket and log.
	Dir string
	// Port is the TCP port on 127.0.0.1.
	Port int
	// Variant is the locale variant the server currently runs under.
	Variant Variant
	// Build is the server build the cluster currently runs with.
	Build Build

	cred    *syscall.Credential
	t       testing.TB
	running bool
}

// Option configures New.
type Option func(*options)

type options struct {
	variant  Variant
	settings []string
	build    *Build
}

// WithVariant starts the cluster under locale variant v (default Current).
func WithVariant(v Variant) Option { return func(o *options) { o.variant = v } }

// WithSetting adds a postgresql.conf line such as "max_connections = 50".
func WithSetting(line string) Option {
	return func(o *options) { o.settings = append(o.settings, line) }
}

// BinDir finds the PostgreSQL server binaries: $PG_BINDIR, or the newest
// /usr/lib/postgresql/*/bin, or initdb's directory in $PATH.
func BinDir() (string, error) {
	builds, err := SystemBuilds()
	if err != nil {
		return "", err
	}
	return builds[0].BinDir, nil
}

func pgMajor(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

// New initialises and starts a cluster with database "postgres", superuser
// "postgres" and trust authentication on 127.0.0.1, of the newest system
// build unless WithBuild names another. Its data directory is a copy of the
// build's initdb'd template (see template). It is stopped when the test
// ends.
func New(t testing.TB, opts ...Option) *Cluster {
	t.Helper()
	o := options{variant: Current}
	for _, opt := range opts {
		opt(&o)
	}
	var build Build
	if o.build != nil {
		build = *o.build
	} else {
		builds, err := SystemBuilds()
		if err != nil {
			missing(t, err)
		}
		build = builds[0]
	}
	c := &Cluster{Build: build, t: t, Variant: o.variant}
	c.cred = postgresCredential(t)
	c.Dir = c.makeDir("ringfence-pg-")
	t.Cleanup(c.cleanup)
	c.copyDataDir(c.template(o.variant), c.dataDir())
	c.appendConf(append([]string{"unix_socket_directories = '" + c.Dir + "'"}, o.settings...)...)
	c.Port = freePort(t)
	c.Start(o.variant)
	return c
}

// initCluster runs initdb into c's data directory, configures it and starts
// it under variant v.
func (c *Cluster) initCluster(v Variant) {
	c.t.Helper()
	initdb := c.command("initdb", "-D", c.dataDir(), "-U", "postgres", "--auth=trust", "--no-sync",
		"-E", "UTF8", "--locale="+Locale, "--lc-messages=C")
	initdb.Env = append(initdb.Env, "LOCPATH="+LocaleDir(c.t, v))
	if out, err := initdb.CombinedOutput(); err != nil {
		c.t.Fatalf("initdb: %v\n%s", err, out)
	}
	c.appendConf(
		"listen_addresses = '127.0.0.1'",
		"unix_socket_directories = '"+c.Dir+"'",
		"fsync = off",
		"synchronous_commit = off",
		"full_page_writes = off",
		"max_connections = 40",
		"shared_buffers = 32MB",
		"logging_collector = off",
		"lc_messages = 'C'",
	)
	c.Port = freePort(c.t)
	c.Start(v)
	// initdb imports collations from `locale -a`, which does not see LOCPATH:
	// create the libc collation a real system would have.
	for _, db := range []string{"template1", "postgres"} {
		c.Exec(db, `CREATE COLLATION IF NOT EXISTS "en_US.utf8" (provider = libc, locale = 'en_US.UTF-8')`)
	}
}

func (c *Cluster) makeDir(prefix string) string {
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		c.t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		c.t.Fatal(err)
	}
	c.chown(dir)
	return dir
}

func (c *Cluster) chown(path string) {
	if c.cred == nil {
		return
	}
	if err := os.Chown(path, int(c.cred.Uid), int(c.cred.Gid)); err != nil {
		c.t.Fatal(err)
	}
}

func (c *Cluster) dataDir() string { return filepath.Join(c.Dir, "data") }
func (c *Cluster) logFile() string { return filepath.Join(c.Dir, "server.log") }

func (c *Cluster) appendConf(lines ...string) {
	f, err := os.OpenFile(filepath.Join(c.dataDir(), "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		c.t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString("\n" + strings.Join(lines, "\n") + "\n"); err != nil {
		c.t.Fatal(err)
	}
}

// Start starts the server under locale variant v.
func (c *Cluster) Start(v Variant) {
	c.t.Helper()
	locpath := LocaleDir(c.t, v)
	c.Variant = v
	cmd := c.command("pg_ctl", "start", "-w", "-t", "60", "-D", c.dataDir(), "-l", c.logFile(),
		"-o", fmt.Sprintf("-p %d", c.Port))
	cmd.Env = append(cmd.Env, "LOCPATH="+locpath)
	if out, err := cmd.CombinedOutput(); err != nil {
		log, _ := os.ReadFile(c.logFile())
		c.t.Fatalf("pg_ctl start: %v\n%s\nserver log:\n%s", err, out, log)
	}
	c.running = true
}

// Stop stops the server (fast shutdown).
func (c *Cluster) Stop() {
	c.t.Helper()
	c.run("pg_ctl", "stop", "-w", "-m", "fast", "-D", c.dataDir())
	c.running = false
}

// Restart stops the server and starts it under locale variant v: the
// collation change a database sees after an OS or image upgrade.
func (c *Cluster) Restart(v Variant) {
	c.t.Helper()
	c.Stop()
	c.Start(v)
}

// RestartWith stops the server and starts the same data directory with
// build b under locale variant v: a minor-version or packaging change of the
// server, such as a build linked to another ICU.
func (c *Cluster) RestartWith(b Build, v Variant) {
	c.t.Helper()
	c.Stop()
	c.Build = b
	c.Start(v)
}

// Standby takes a base backup of c and starts it as a hot standby under
// locale variant v. Builds without a pg_basebackup that can copy from them
// (the npm builds ship none, and an older pg_basebackup cannot copy a newer
// server) get a copy of the cleanly stopped primary instead, which restarts
// c: connections to it are lost.
func (c *Cluster) Standby(v Variant) *Cluster {
	c.t.Helper()
	s := &Cluster{Build: c.Build, t: c.t, cred: c.cred, Variant: v}
	s.Dir = s.makeDir("ringfence-standby-")
	c.t.Cleanup(s.cleanup)
	if tool := c.Tool("pg_basebackup"); c.toolMajor(tool) >= c.Build.Major {
		s.run("pg_basebackup", "-D", s.dataDir(), "-h", "127.0.0.1", "-p", strconv.Itoa(c.Port),
			"-U", "postgres", "-R", "-X", "stream", "--no-sync", "--checkpoint=fast")
	} else {
		c.Stop()
		c.copyDataDir(c.dataDir(), s.dataDir())
		c.Start(c.Variant)
		signal := filepath.Join(s.dataDir(), "standby.signal")
		if err := os.WriteFile(signal, nil, 0o600); err != nil {
			c.t.Fatal(err)
		}
		s.chown(signal)
		s.appendConf(fmt.Sprintf("primary_conninfo = 'host=127.0.0.1 port=%d user=postgres'", c.Port))
	}
	s.appendConf("unix_socket_directories = '"+s.Dir+"'", "hot_standby = on")
	s.Port = freePort(c.t)
	s.Start(v)
	return s
}

// toolMajor is the major version of the build a program belongs to.
func (c *Cluster) toolMajor(path string) int {
	if filepath.Dir(path) == c.Build.BinDir {
		return c.Build.Major
	}
	return pgMajor(filepath.Dir(path))
}

func (c *Cluster) cleanup() {
	// Stop the server whenever one may be running: also after a start that
	// timed out although the postmaster came up.
	if _, err := os.Stat(filepath.Join(c.dataDir(), "postmaster.pid")); c.running || err == nil {
		_ = c.command("pg_ctl", "stop", "-w", "-m", "immediate", "-D", c.dataDir()).Run()
	}
	if !c.t.Failed() || os.Getenv("PGTEST_KEEP") == "" {
		os.RemoveAll(c.Dir)
	}
}

// DSN returns a connection string for database db as the superuser.
func (c *Cluster) DSN(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", c.Port, db)
}

// UserDSN returns a connection string for database db as role user.
func (c *Cluster) UserDSN(user, db string) string {
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", user, c.Port, db)
}

// Connect opens a superuser connection to db, closed when the test ends.
func (c *Cluster) Connect(db string) *pgx.Conn {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.DSN(db))
	if err != nil {
		c.t.Fatalf("connect %s: %v", db, err)
	}
	c.t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// Exec runs SQL (several statements allowed) in db as the superuser.
func (c *Cluster) Exec(db, sql string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.DSN(db))
	if err != nil {
		c.t.Fatalf("connect %s: %v", db, err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, sql); err != nil {
		if len(sql) > 400 {
			sql = sql[:400] + "..."
		}
		c.t.Fatalf("exec in %s: %v\n%s", db, err, sql)
	}
}

// CreateDatabase creates database name from template1 (UTF8, en_US.UTF-8,
// with the "en_US.utf8" collation).
func (c *Cluster) CreateDatabase(name string) {
	c.t.Helper()
	c.Exec("postgres", fmt.Sprintf("CREATE DATABASE %s TEMPLATE template1", pgx.Identifier{name}.Sanitize()))
}

func (c *Cluster) command(name string, args ...string) *exec.Cmd {
	path := c.Tool(name)
	cmd := exec.Command(path, args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C", "PGDATA=")
	if c.Build.LibDir != "" && filepath.Dir(path) == c.Build.BinDir {
		cmd.Env = append(cmd.Env, "LD_LIBRARY_PATH="+c.Build.LibDir)
	}
	if c.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
		cmd.Env = append(cmd.Env, "HOME=/tmp")
	}
	return cmd
}

// Tool returns the path of a PostgreSQL program for this cluster: the
// build's own, else the newest system build's (the npm builds ship only
// initdb, pg_ctl and postgres; pg_amcheck and the other clients of a system
// build connect to other major versions too).
func (c *Cluster) Tool(name string) string {
	own := filepath.Join(c.Build.BinDir, name)
	if _, err := os.Stat(own); err == nil {
		return own
	}
	if builds, err := SystemBuilds(); err == nil {
		for _, b := range builds {
			if p := filepath.Join(b.BinDir, name); fileExists(p) {
				return p
			}
		}
	}
	return own
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func (c *Cluster) run(name string, args ...string) {
	c.t.Helper()
	if out, err := c.command(name, args...).CombinedOutput(); err != nil {
		c.t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// postgresCredential returns the postgres user's credential when running as
// root (PostgreSQL refuses to run as root), nil otherwise.
func postgresCredential(t testing.TB) *syscall.Credential {
	t.Helper()
	if os.Geteuid() != 0 {
		return nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		missing(t, fmt.Errorf("running as root needs a postgres user: %w", err))
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
