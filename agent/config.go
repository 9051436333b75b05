package agent

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/ringfence/ringfence/release"
)

// Defaults.
const (
	// DefaultInterval is the longest time between two check-ins.
	DefaultInterval = 5 * time.Minute
	// DefaultDeepCheck is how often the deep check (amcheck on every
	// collation-dependent index) runs.
	DefaultDeepCheck = 7 * 24 * time.Hour
	// MaxBackoff caps the wait after failed check-ins (unless the interval
	// is longer).
	MaxBackoff = time.Hour
)

// Config configures an Agent. Server, Key, Product, StateDir and one
// version source are required.
type Config struct {
	// Server is the base URL of ringfence serve.
	Server string
	// Key is the enrollment key (a secret).
	Key string
	// Product is the product name the installation runs.
	Product string
	// Version, VersionFile or VersionCommand (exactly one) give the running
	// version; the file and the command are read at every check-in.
	Version        string
	VersionFile    string
	VersionCommand string
	// StateDir is the state directory.
	StateDir string
	// TrustFile holds public keys in the /v1/keys format; when set, it is
	// read at every check-in and its keys are the pinned keys.
	TrustFile string
	// TrustOnFirstUse pins whatever /v1/keys serves when no key is pinned
	// yet. Only an answer that verifies with a pinned key is believed.
	TrustOnFirstUse bool
	// DSNs are the installation's PostgreSQL databases to watch.
	DSNs []string
	// Interval is the longest time between check-ins (DefaultInterval).
	// Each wait is drawn uniformly from [Interval/2, Interval].
	Interval time.Duration
	// DeepCheck is how often the deep check runs (DefaultDeepCheck);
	// negative turns it off.
	DeepCheck time.Duration
	// RetryFailed lets Preflight approve an upgrade to a version whose
	// upgrade failed here before (once its cause is fixed).
	RetryFailed bool
	// DBTimeout bounds one database's watch (connect and fingerprint):
	// default 1 minute.
	DBTimeout time.Duration
	// DeepCheckTimeout bounds each statement of the deep check (amcheck of
	// one index, a scan): default 30 minutes. An object it cannot check in
	// time leaves the deep check incomplete, and the database unknown.
	DeepCheckTimeout time.Duration
	// HTTPClient is used for the server (default: 30 s timeout).
	HTTPClient *http.Client
	// Logger receives structured logs (default: discarded).
	Logger *slog.Logger
	// Metrics, if set, is updated on every check-in.
	Metrics *Metrics
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Validate checks the configuration for check-ins.
func (c *Config) Validate() error {
	var missing []string
	if c.Server == "" {
		missing = append(missing, "--server")
	}
	if c.Key == "" {
		missing = append(missing, "--key or --key-file")
	}
	if c.Product == "" {
		missing = append(missing, "--product")
	}
	if c.StateDir == "" {
		missing = append(missing, "--state")
	}
	if len(missing) > 0 {
		return fmt.Errorf("configuration incomplete: missing %s", strings.Join(missing, ", "))
	}
	if err := release.ValidateName("product", c.Product); err != nil {
		return errors.New(release.ErrorMessage(err))
	}
	n := 0
	for _, s := range []string{c.Version, c.VersionFile, c.VersionCommand} {
		if s != "" {
			n++
		}
	}
	if n != 1 {
		return fmt.Errorf("give exactly one of --version, --version-file and --version-command (got %d)", n)
	}
	if c.Version != "" {
		if _, err := ParseVersion(c.Version); err != nil {
			return err
		}
	}
	if c.Interval < 0 || (c.Interval > 0 && c.Interval < 100*time.Millisecond) {
		return fmt.Errorf("--interval %s: must be at least 100ms", c.Interval)
	}
	for i, d := range c.DSNs {
		if strings.TrimSpace(d) == "" {
			return fmt.Errorf("--pg %d is empty", i+1)
		}
	}
	return nil
}

func (c *Config) defaults() {
	if c.Interval == 0 {
		c.Interval = DefaultInterval
	}
	if c.DeepCheck == 0 {
		c.DeepCheck = DefaultDeepCheck
	}
	if c.DBTimeout <= 0 {
		c.DBTimeout = time.Minute
	}
	if c.DeepCheckTimeout <= 0 {
		c.DeepCheckTimeout = 30 * time.Minute
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// ParseVersion parses a version as an installation states it: a semantic
// version, with an optional leading "v" and surrounding space tolerated.
func ParseVersion(s string) (release.Version, error) {
	s = strings.TrimPrefix(strings.TrimSpace(s), "v")
	v, err := release.ParseVersion(s)
	if err != nil {
		return release.Version{}, fmt.Errorf("running version %q: %s", s, release.ErrorMessage(err))
	}
	return v, nil
}

// readVersion returns the running version from the configured source.
func (c *Config) readVersion(ctx context.Context) (release.Version, error) {
	switch {
	case c.VersionFile != "":
		data, err := os.ReadFile(c.VersionFile)
		if err != nil {
			return release.Version{}, fmt.Errorf("read version file: %w", err)
		}
		line, _, _ := strings.Cut(string(data), "\n")
		return ParseVersion(line)
	case c.VersionCommand != "":
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, "/bin/sh", "-c", c.VersionCommand)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return release.Version{}, fmt.Errorf("version command %q: %w: %s", c.VersionCommand, err, strings.TrimSpace(stderr.String()))
		}
		line, _, _ := strings.Cut(string(out), "\n")
		return ParseVersion(line)
	}
	return ParseVersion(c.Version)
}

// ParseDeepCheck parses a --deep-check schedule: "off", "daily", "weekly"
// or a Go duration of at least a minute. Off is a negative duration.
func ParseDeepCheck(s string) (time.Duration, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "weekly":
		return DefaultDeepCheck, nil
	case "daily":
		return 24 * time.Hour, nil
	case "off", "never", "0":
		return -1, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < time.Second {
		return 0, fmt.Errorf("--deep-check %q: want off, daily, weekly or a duration such as 72h", s)
	}
	return d, nil
}

// ParseConfigFile reads an agent configuration file: one "key = value" per
// line, keys named like the long flags without dashes ("server",
// "key-file", "pg", ...), "#" starting a comment line; "pg" may repeat,
// other keys may not. Values are taken literally (no quotes, no
// expansion). Unknown keys are errors.
func ParseConfigFile(r io.Reader, known map[string]bool, repeatable map[string]bool) (map[string][]string, error) {
	out := map[string][]string{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("config line %d: want key = value", n)
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !known[k] {
			return nil, fmt.Errorf("config line %d: unknown key %q", n, k)
		}
		if len(out[k]) > 0 && !repeatable[k] {
			return nil, fmt.Errorf("config line %d: %s given twice", n, k)
		}
		out[k] = append(out[k], v)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return out, nil
}
