package pgtest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
)

// template returns a freshly initialised, cleanly stopped data directory of
// c's build under variant v, to copy: initdb costs more than the rest of a
// cluster's start, and the matrix starts hundreds. Templates are cached
// under the system temp directory, keyed by build (its postgres binary's
// path, size and time) and variant, in a directory owned by the current
// user, and shared between test processes like the locale variants.
func (c *Cluster) template(v Variant) string {
	c.t.Helper()
	postgres := filepath.Join(c.Build.BinDir, "postgres")
	fi, err := os.Stat(postgres)
	if err != nil {
		c.t.Fatalf("server binary: %v", err)
	}
	key := sha256.Sum256([]byte(fmt.Sprintf("%s\x00%d\x00%d\x00%s\x00%s\x00template-1",
		postgres, fi.Size(), fi.ModTime().UnixNano(), v, c.Build.Release)))
	root := filepath.Join(os.TempDir(), fmt.Sprintf("ringfence-pgdata-%d", os.Geteuid()))
	final := filepath.Join(root, fmt.Sprintf("%d-%s-%s", c.Build.Major, v, hex.EncodeToString(key[:6])))
	if _, err := os.Stat(filepath.Join(final, "data", "PG_VERSION")); err == nil {
		return filepath.Join(final, "data")
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		c.t.Fatal(err)
	}
	if err := ownedByMe(root); err != nil {
		c.t.Fatal(err)
	}
	if err := os.Chmod(root, 0o755); err != nil {
		c.t.Fatal(err)
	}
	work, err := os.MkdirTemp(root, "build-")
	if err != nil {
		c.t.Fatal(err)
	}
	defer os.RemoveAll(work)
	if err := os.Chmod(work, 0o755); err != nil {
		c.t.Fatal(err)
	}
	tc := &Cluster{Build: c.Build, t: c.t, cred: c.cred, Dir: work}
	tc.chown(work)
	tc.initCluster(v)
	tc.Stop()
	if err := os.Remove(tc.logFile()); err != nil {
		c.t.Fatal(err)
	}
	if err := os.Rename(work, final); err != nil {
		if _, statErr := os.Stat(filepath.Join(final, "data", "PG_VERSION")); statErr != nil {
			c.t.Fatalf("store the data directory template: %v", err)
		} // else another process won the race
	}
	return filepath.Join(final, "data")
}

// copyDataDir copies data directory src to dst as the server's user.
func (c *Cluster) copyDataDir(src, dst string) {
	c.t.Helper()
	cp := exec.Command("cp", "-a", src, dst)
	if c.cred != nil {
		cp.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	}
	if out, err := cp.CombinedOutput(); err != nil {
		c.t.Fatalf("copy data directory %s: %v\n%s", src, err, out)
	}
}
