package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/ringfence/ringfence/internal/atomicfile"
	"github.com/ringfence/ringfence/pgcheck"
	"github.com/ringfence/ringfence/release"
)

// Where a database's collation baseline lives.
const (
	// BaselineInDatabase: the database's own ringfence schema (recorded by
	// `ringfence pg fingerprint --record` or a repair).
	BaselineInDatabase = "database"
	// BaselineInState: a file in the agent's state directory, recorded by
	// the agent at its first contact with the database.
	BaselineInState = "state"
)

// DatabaseHealth is the last watch of one database.
type DatabaseHealth struct {
	// Name is the database without credentials: user@host:port/dbname.
	Name string `json:"name"`
	// Status is ok, collation_changed, corrupt or unknown (not reachable or
	// not checkable: never ok).
	Status    release.HealthStatus `json:"status"`
	Detail    string               `json:"detail,omitempty"`
	CheckedAt time.Time            `json:"checked_at"`
	// Baseline is where the baseline compared with lives (Baseline*
	// constants); empty when none could be read.
	Baseline string `json:"baseline,omitempty"`
	// DeepCheckAt, DeepStatus and DeepDetail are the last deep check's
	// time and result (DeepStatus empty when it could not run).
	DeepCheckAt time.Time            `json:"deep_check_at,omitzero"`
	DeepStatus  release.HealthStatus `json:"deep_status,omitempty"`
	DeepDetail  string               `json:"deep_detail,omitempty"`
	// Reported is the failing status an integrity_failed event was last
	// queued for, so a lasting failure is reported once, not at every
	// check-in.
	Reported release.HealthStatus `json:"reported,omitempty"`
	// ServerVersionNum is the server's server_version_num (e.g. 150018)
	// as last read; 0 when it could not be read.
	ServerVersionNum int `json:"server_version_num,omitempty"`
}

// dbLabel returns a display name (without password) and a stable file key
// for a DSN.
func dbLabel(dsn string) (name, key string, err error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return "", "", fmt.Errorf("parse --pg connection string: %w", err)
	}
	name = fmt.Sprintf("%s@%s:%d/%s", cfg.User, cfg.Host, cfg.Port, cfg.Database)
	sum := sha256.Sum256([]byte(name))
	return name, hex.EncodeToString(sum[:8]), nil
}

// healthRank orders statuses from best to worst for the aggregate.
func healthRank(s release.HealthStatus) int {
	switch s {
	case release.HealthOK:
		return 0
	case release.HealthCollationChanged:
		return 2
	case release.HealthCorrupt:
		return 3
	}
	return 1 // unknown
}

// watchDatabase compares one database's collation fingerprints with its
// baseline, recording the baseline (in the state directory) at first contact
// when the database holds none, and runs the deep check when due.
func (a *Agent) watchDatabase(ctx context.Context, dsn string, prev *DatabaseHealth) *DatabaseHealth {
	now := a.cfg.Now().UTC()
	name, key, err := dbLabel(dsn)
	h := &DatabaseHealth{Name: name, CheckedAt: now, Status: release.HealthUnknown}
	if prev != nil {
		h.DeepCheckAt, h.DeepStatus, h.DeepDetail, h.Reported = prev.DeepCheckAt, prev.DeepStatus, prev.DeepDetail, prev.Reported
	}
	if err != nil {
		h.Detail = err.Error()
		return h
	}
	srv, err := pgcheck.Open(dsn, pgcheck.ConnOptions{StatementTimeout: a.cfg.DBTimeout, ApplicationName: "ringfence-agent"})
	if err != nil {
		h.Detail = err.Error()
		return h
	}
	fctx, cancel := context.WithTimeout(ctx, a.cfg.DBTimeout)
	defer cancel()
	status, detail, where, file, version := a.fingerprint(fctx, srv, key)
	h.Status, h.Detail, h.Baseline, h.ServerVersionNum = status, detail, where, version

	// The deep check runs at the first contact (a database that drifted
	// before the agent came is caught there) and then on its schedule;
	// while it finds something, at least hourly, and at once when a failing
	// database looks intact again (a repair), so an old verdict does not
	// linger for a week.
	// An incomplete deep check (objects it could not check in time) is
	// tried again hourly too.
	since := now.Sub(h.DeepCheckAt)
	unsettled := h.DeepStatus.Failing() || h.DeepStatus == release.HealthUnknown
	recovered := prev != nil && prev.Status.Failing() && status == release.HealthOK && h.DeepStatus.Failing()
	due := since >= a.cfg.DeepCheck || recovered || (unsettled && since >= time.Hour)
	if a.cfg.DeepCheck > 0 && status != release.HealthUnknown && due {
		deepStatus, deepDetail := a.deepCheck(ctx, dsn, file)
		// A deep check cut short by the caller's deadline (a preflight's
		// timeout, a restart's bound, a gate request) checked nothing: the
		// previous verdict stands, and the check stays due.
		if ctx.Err() == nil {
			h.DeepCheckAt, h.DeepStatus, h.DeepDetail = now, deepStatus, deepDetail
		} else {
			a.log.Warn("deep check cut short by the caller's deadline; the previous verdict stands", "database", name)
		}
	}
	switch {
	case h.DeepStatus.Failing() && healthRank(h.DeepStatus) > healthRank(h.Status):
		h.Status = h.DeepStatus
		h.Detail = joinDetail(h.Detail, "deep check "+h.DeepCheckAt.Format(time.RFC3339)+": "+h.DeepDetail)
	case h.DeepStatus == release.HealthUnknown && h.Status == release.HealthOK:
		// The fingerprints match, but amcheck did not get through: the
		// database is not known to be intact.
		h.Status = release.HealthUnknown
		h.Detail = joinDetail(h.Detail, "deep check "+h.DeepCheckAt.Format(time.RFC3339)+" incomplete: "+h.DeepDetail)
	}
	return h
}

// fingerprint does the per-check-in comparison; file is the agent-owned
// baseline file when that is the baseline in use, version the server's
// server_version_num (0 when not read).
func (a *Agent) fingerprint(ctx context.Context, srv *pgcheck.Target, key string) (status release.HealthStatus, detail, where, file string, version int) {
	conn, err := srv.Connect(ctx, "")
	if err != nil {
		return release.HealthUnknown, "cannot reach the database: " + err.Error(), "", "", 0
	}
	defer conn.Close(context.WithoutCancel(ctx))
	inv, err := pgcheck.ReadInventory(ctx, conn)
	if err != nil {
		return release.HealthUnknown, "cannot read the inventory: " + err.Error(), "", "", 0
	}
	status, detail, where, file = a.compareBaseline(ctx, conn, inv, key)
	return status, detail, where, file, inv.ServerVersionNum
}

// compareBaseline compares the database's collations with its baseline
// (recording or extending the agent's own).
func (a *Agent) compareBaseline(ctx context.Context, conn *pgx.Conn, inv *pgcheck.DatabaseInventory, key string) (status release.HealthStatus, detail, where, file string) {
	base, ok, err := pgcheck.LoadBaseline(ctx, conn)
	if err != nil {
		return release.HealthUnknown, err.Error(), "", ""
	}
	where = BaselineInDatabase
	if !ok {
		where, file = BaselineInState, a.state.baselinePath(key)
		base, err = pgcheck.ReadBaselineFile(file)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			base, err = pgcheck.NewBaseline(ctx, conn, inv)
			if err == nil {
				err = writeBaseline(file, base)
			}
			if err != nil {
				return release.HealthUnknown, "record the collation baseline: " + err.Error(), where, file
			}
			a.log.Info("recorded the collation baseline at first contact", "database", inv.Database, "collations", len(base.Fingerprints), "file", file)
			return release.HealthOK, fmt.Sprintf("baseline of %d at-risk collations recorded now", len(base.Fingerprints)), where, file
		case err != nil:
			return release.HealthUnknown, err.Error(), where, file
		}
	}
	results, findings, err := pgcheck.CompareFingerprints(ctx, conn, inv, base)
	if err != nil {
		return release.HealthUnknown, err.Error(), where, file
	}
	if len(findings) > 0 {
		return release.HealthCollationChanged, changedDetail(results, findings), where, file
	}
	if err := pgcheck.Uncovered(results); err != nil {
		if file == "" {
			return release.HealthUnknown, err.Error(), where, file
		}
		// The agent's own baseline: collations that came into use since
		// are recorded at their first contact too.
		if err := a.extendBaseline(ctx, conn, inv, base, results, file); err != nil {
			return release.HealthUnknown, err.Error(), where, file
		}
	}
	return release.HealthOK, fmt.Sprintf("%d collations order as in the baseline", len(results)), where, file
}

// extendBaseline adds fingerprints of at-risk collations new since the
// baseline to the agent-owned baseline file.
func (a *Agent) extendBaseline(ctx context.Context, conn *pgx.Conn, inv *pgcheck.DatabaseInventory, base *pgcheck.Baseline, results []pgcheck.FingerprintResult, file string) error {
	fresh, err := pgcheck.NewBaseline(ctx, conn, inv)
	if err != nil {
		return err
	}
	isNew := map[string]bool{}
	for _, r := range results {
		if r.Status == pgcheck.FingerprintNew {
			isNew[r.Collation] = true
		}
	}
	for _, f := range fresh.Fingerprints {
		if isNew[f.Collation] {
			base.Fingerprints = append(base.Fingerprints, f)
		}
	}
	return writeBaseline(file, base)
}

// writeBaseline writes an agent-owned baseline durably.
func writeBaseline(path string, b *pgcheck.Baseline) error {
	data, err := json.MarshalIndent(b, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(path, data, 0o600)
}

// deepCheck runs pgcheck's check with scope collation (amcheck on every
// collation-dependent index, partition bounds, CHECK constraints), each
// statement bounded by DeepCheckTimeout. A check that cannot run leaves
// the status empty and says why; one that found nothing but could not
// check some objects (a timeout, a lock held) is unknown, never ok.
func (a *Agent) deepCheck(ctx context.Context, dsn, baselineFile string) (release.HealthStatus, string) {
	// Locks are waited for up to a minute (pgcheck's default is 5 s): a
	// migration's ALTER queued behind a long query must not make the
	// database unknown for an hour.
	srv, err := pgcheck.Open(dsn, pgcheck.ConnOptions{StatementTimeout: a.cfg.DeepCheckTimeout,
		LockTimeout: min(time.Minute, a.cfg.DeepCheckTimeout), ApplicationName: "ringfence-agent"})
	if err != nil {
		return "", "could not run: " + err.Error()
	}
	a.log.Info("deep check starting", "database", srv.Database())
	rep, err := pgcheck.Check(ctx, srv, pgcheck.CheckOptions{Scope: pgcheck.ScopeCollation, BaselineFile: baselineFile})
	if err != nil {
		a.log.Warn("deep check could not run", "database", srv.Database(), "err", err)
		return "", "could not run: " + err.Error()
	}
	checked := rep.Checked.Indexes + rep.Checked.Partitions + rep.Checked.CheckConstraints
	var missed []string
	for _, sk := range rep.Skipped {
		if sk.Error {
			missed = append(missed, sk.Schema+"."+sk.Object+" ("+sk.Reason+")")
		}
	}
	if len(rep.Findings) == 0 && len(missed) > 0 {
		a.log.Warn("deep check incomplete: database health unknown", "database", srv.Database(), "not_checked", len(missed))
		return release.HealthUnknown, fmt.Sprintf("%d objects checked, %d could not be: %s; it runs again within the hour",
			checked, len(missed), clip(strings.Join(missed, ", "), 500))
	}
	if len(rep.Findings) == 0 {
		return release.HealthOK, fmt.Sprintf("%d indexes checked, nothing found", rep.Checked.Indexes)
	}
	status := release.HealthCollationChanged
	byKind := map[pgcheck.Kind][]string{}
	var kinds []pgcheck.Kind
	for _, f := range rep.Findings {
		if f.Kind != pgcheck.KindCollationChanged && f.Kind != pgcheck.KindCollationVersionMismatch {
			status = release.HealthCorrupt
		}
		if byKind[f.Kind] == nil {
			kinds = append(kinds, f.Kind)
		}
		byKind[f.Kind] = append(byKind[f.Kind], f.Schema+"."+f.Object)
	}
	parts := make([]string, 0, len(kinds))
	for _, k := range kinds {
		parts = append(parts, fmt.Sprintf("%d %s (%s)", len(byKind[k]), k, clip(strings.Join(byKind[k], ", "), 300)))
	}
	return status, fmt.Sprintf("%d objects checked: %s; details: ringfence pg check --scope collation",
		checked, strings.Join(parts, "; "))
}

// changedDetail summarises changed collations in one line each.
func changedDetail(results []pgcheck.FingerprintResult, findings []pgcheck.Finding) string {
	atRisk := map[string]int{}
	for _, f := range findings {
		atRisk[f.Collation] = len(f.AtRisk)
	}
	var parts []string
	for _, r := range results {
		switch r.Status {
		case pgcheck.FingerprintChanged:
			p := fmt.Sprintf("collation %s (%s %s) orders %d of %d probe pairs differently", r.Collation, r.Provider, r.Locale, r.ChangedPairs, r.Strings-1)
			if len(r.Examples) > 0 {
				p += ", e.g. " + r.Examples[0].String()
			}
			if r.Version == r.BaselineVersion {
				p += fmt.Sprintf(", with the same reported version %q", r.Version)
			}
			parts = append(parts, p+fmt.Sprintf("; %d objects at risk", atRisk[r.Collation]))
		case pgcheck.FingerprintUnavailable:
			parts = append(parts, fmt.Sprintf("collation %s can no longer be used (%s); %d objects at risk", r.Collation, r.Error, atRisk[r.Collation]))
		}
	}
	return strings.Join(parts, ". ")
}

// joinDetail joins two details.
func joinDetail(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

// clip shortens s to at most n bytes on a rune boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n-3]
	for !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s + "..."
}

// aggregate is the worst health of the databases, with every failing
// database's detail; nil when no database is watched.
func aggregate(dbs []*DatabaseHealth) *release.Health {
	if len(dbs) == 0 {
		return nil
	}
	h := &release.Health{Status: release.HealthOK}
	var details []string
	for _, d := range dbs {
		if healthRank(d.Status) > healthRank(h.Status) {
			h.Status = d.Status
		}
		if d.Status != release.HealthOK {
			details = append(details, d.Name+": "+string(d.Status)+": "+d.Detail)
		}
	}
	if len(details) == 0 {
		details = append(details, fmt.Sprintf("%d databases ok", len(dbs)))
	}
	h.Detail = clip(strings.Join(details, " | "), 4096)
	return h
}
