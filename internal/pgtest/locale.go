// Package pgtest starts throwaway PostgreSQL clusters for tests and builds
// the locale variants that reproduce a collation change without containers.
//
// A collation change is reproduced with LOCPATH: the cluster is started under
// one compiled en_US.UTF-8, indexes are built, and it is restarted under
// another. PostgreSQL records the same collation version before and after,
// which is exactly the blind spot ringfence exists for.
//
// Clusters run any installed server build (Build): the system's (Debian's
// 15) and the npm builds of every other supported major version, pinned in
// versions.txt and fetched by scripts/deps.sh. ForEachVersion runs a test
// on each major version from MinMajor to MaxMajor, in parallel; under CI a
// missing version fails the test, elsewhere it is left out. ICUUpgrade
// pairs two builds of 15 linked to different ICU versions: RestartWith
// moves a data directory from one to the other. Servers always run as the
// postgres user when the tests run as root. Each cluster starts from a copy
// of a cached, initdb'd template of its build and variant, never from a
// data directory another test used.
package pgtest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
)

// Variant names one compiled en_US.UTF-8 locale.
type Variant string

// The locale variants tests use.
const (
	// Current is the machine's own en_US data (glibc 2.36 on Debian 12).
	Current Variant = "current"
	// Glibc227 is en_US compiled from the real glibc 2.27 sources in
	// shared/testdata: the collation before glibc 2.28 rewrote it.
	Glibc227 Variant = "glibc-2.27"
	// CodePoint is code-point (strcmp) order under the en_US name: what a
	// database sees after moving from Debian to Alpine (musl).
	CodePoint Variant = "codepoint"
	// Synthetic is en_US with 'a' and 'A' moved after 'z'.
	Synthetic Variant = "synthetic"
)

// Variants lists every variant, Current first.
var Variants = []Variant{Current, Glibc227, CodePoint, Synthetic}

// Locale is the locale name every variant is compiled under.
const Locale = "en_US.UTF-8"

// localeSource is a locale definition that copies en_US except LC_COLLATE,
// which is filled in per variant.
const localeSource = `LC_IDENTIFICATION
copy "en_US"
END LC_IDENTIFICATION
LC_CTYPE
copy "en_US"
END LC_CTYPE
LC_COLLATE
%s
END LC_COLLATE
LC_MONETARY
copy "en_US"
END LC_MONETARY
LC_NUMERIC
copy "en_US"
END LC_NUMERIC
LC_TIME
copy "en_US"
END LC_TIME
LC_MESSAGES
copy "en_US"
END LC_MESSAGES
LC_PAPER
copy "en_US"
END LC_PAPER
LC_NAME
copy "en_US"
END LC_NAME
LC_ADDRESS
copy "en_US"
END LC_ADDRESS
LC_TELEPHONE
copy "en_US"
END LC_TELEPHONE
LC_MEASUREMENT
copy "en_US"
END LC_MEASUREMENT
`

// LocaleDir returns a directory to use as LOCPATH for v, compiling the
// variant with localedef the first time. Compiled variants are cached under
// the system temp directory, keyed by variant and glibc, and shared between
// test processes (each is built in a private directory and renamed into place).
func LocaleDir(t testing.TB, v Variant) string {
	t.Helper()
	dir, err := BuildLocale(v)
	if err != nil {
		missing(t, err)
	}
	return dir
}

// BuildLocale compiles variant v (if not cached) and returns its LOCPATH.
func BuildLocale(v Variant) (string, error) {
	localedef, err := exec.LookPath("localedef")
	if err != nil {
		return "", fmt.Errorf("localedef not found (install the Debian package locales): %w", err)
	}
	key := sha256.Sum256([]byte(string(v) + "\x00" + glibcVersion() + "\x00" + localeSource))
	// One cache per user, which must own it: a world-writable /tmp must not
	// let another user plant the locales our servers load.
	root := filepath.Join(os.TempDir(), fmt.Sprintf("ringfence-locales-%d", os.Geteuid()))
	final := filepath.Join(root, string(v)+"-"+hex.EncodeToString(key[:6]))
	if _, err := os.Stat(filepath.Join(final, Locale, "LC_COLLATE")); err == nil {
		return final, nil
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return "", err
	}
	if err := ownedByMe(root); err != nil {
		return "", err
	}
	if err := os.Chmod(root, 0o755); err != nil {
		return "", err
	}
	work, err := os.MkdirTemp(root, "build-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(work)
	out := filepath.Join(work, "out")
	if err := os.Mkdir(out, 0o755); err != nil {
		return "", err
	}
	cmd := exec.Command(localedef, "--no-archive", "-f", "UTF-8", "-i")
	switch v {
	case Current:
		cmd.Args = append(cmd.Args, "en_US")
	case Glibc227:
		src := filepath.Join(SharedDir(), "testdata", "glibc-2.27", "locales")
		if _, err := os.Stat(filepath.Join(src, "en_US")); err != nil {
			return "", fmt.Errorf("glibc 2.27 locale sources: %w", err)
		}
		cmd.Args = append(cmd.Args, "en_US")
		cmd.Env = append(os.Environ(), "I18NPATH="+filepath.Dir(src))
	case CodePoint, Synthetic:
		collate := "codepoint_collation"
		if v == Synthetic {
			collate = "copy \"iso14651_t1\"\nreorder-after <AFTER-Z>\n<S0061>\nreorder-end"
		}
		src := filepath.Join(work, "src")
		if err := os.WriteFile(src, []byte(fmt.Sprintf(localeSource, collate)), 0o644); err != nil {
			return "", err
		}
		cmd.Args = append(cmd.Args, src)
	default:
		return "", fmt.Errorf("unknown locale variant %q", v)
	}
	cmd.Args = append(cmd.Args, filepath.Join(out, Locale))
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("localedef %s: %v: %s", v, err, b)
	}
	// The server runs as another user (postgres): whatever the umask,
	// it must be able to read the compiled locale.
	if err := filepath.WalkDir(out, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		mode := os.FileMode(0o644)
		if d.IsDir() {
			mode = 0o755
		}
		return os.Chmod(path, mode)
	}); err != nil {
		return "", err
	}
	if err := os.Rename(out, final); err != nil {
		if _, statErr := os.Stat(filepath.Join(final, Locale, "LC_COLLATE")); statErr == nil {
			return final, nil // another process won the race
		}
		return "", err
	}
	return final, nil
}

// ownedByMe fails unless dir is a directory owned by the current user.
func ownedByMe(dir string) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !fi.IsDir() || !ok || int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("%s is not a directory owned by uid %d: remove it", dir, os.Geteuid())
	}
	return nil
}

func glibcVersion() string {
	b, _ := exec.Command("ldd", "--version").Output()
	first, _, _ := strings.Cut(string(b), "\n")
	return first
}

// SharedDir is the project's read-only shared folder: $RINGFENCE_SHARED, or
// ../shared beside the repository.
func SharedDir() string {
	if d := os.Getenv("RINGFENCE_SHARED"); d != "" {
		return d
	}
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "shared")
}

// missing fails the test in CI and skips it elsewhere: a missing PostgreSQL
// or locale tool must never turn a CI run green.
func missing(t testing.TB, err error) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("test dependency missing in CI: %v", err)
	}
	t.Skipf("test dependency missing: %v", err)
}
