package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/ringfence/ringfence/internal/pgtest"
)

// postgresCluster is a throwaway PostgreSQL cluster for -store postgres.
// Unlike internal/pgtest's test clusters (fsync off), it keeps PostgreSQL's
// default durability (fsync on, synchronous_commit on): a committed
// check-in must be on disk, as on the SQLite side.
type postgresCluster struct {
	dir, bin string
	port     int
	cred     *syscall.Credential
}

// startPostgres initialises a cluster in a temporary directory with the
// newest system build (or $PG_BINDIR) and starts it on a free loopback port.
func startPostgres() (*postgresCluster, error) {
	build, err := pgtest.BinDir()
	if err != nil {
		return nil, fmt.Errorf("find PostgreSQL: %w", err)
	}
	c := &postgresCluster{bin: build}
	if os.Geteuid() == 0 { // PostgreSQL refuses to run as root
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running as root needs a postgres user: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		c.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	if c.dir, err = os.MkdirTemp("", "ringfence-bench-pg-"); err != nil {
		return nil, err
	}
	if c.cred != nil {
		if err := os.Chown(c.dir, int(c.cred.Uid), int(c.cred.Gid)); err != nil {
			os.RemoveAll(c.dir)
			return nil, err
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		os.RemoveAll(c.dir)
		return nil, err
	}
	c.port = ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	data := filepath.Join(c.dir, "data")
	if err := c.run("initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C"); err != nil {
		os.RemoveAll(c.dir)
		return nil, err
	}
	if err := c.run("pg_ctl", "start", "-w", "-t", "60", "-D", data, "-l", filepath.Join(c.dir, "server.log"),
		"-o", fmt.Sprintf("-p %d -c listen_addresses=127.0.0.1 -c unix_socket_directories=%s -c max_connections=100", c.port, c.dir)); err != nil {
		os.RemoveAll(c.dir)
		return nil, err
	}
	return c, nil
}

// dsn is the connection string of database postgres.
func (c *postgresCluster) dsn() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", c.port)
}

// stop stops the server and removes its files.
func (c *postgresCluster) stop() {
	_ = c.run("pg_ctl", "stop", "-w", "-m", "fast", "-D", filepath.Join(c.dir, "data"))
	os.RemoveAll(c.dir)
}

func (c *postgresCluster) run(name string, args ...string) error {
	cmd := exec.Command(filepath.Join(c.bin, name), args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C", "PGDATA=")
	if c.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
		cmd.Env = append(cmd.Env, "HOME=/tmp")
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %w\n%s", name, err, out)
	}
	return nil
}
