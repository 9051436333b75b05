package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/ringfence/ringfence/release"
)

const releaseCols = `product, version, notes_url, required_stop, rollback_safe_to, created_at, status, paused, pull, resumed_at, waives, requires_postgres`

// scanRelease reads a release row (without its ring entries).
func scanRelease(row scanner) (release.Release, error) {
	var r release.Release
	var version, safeTo, status string
	var paused, pull sql.NullString
	var resumed sql.NullTime
	var waives string
	if err := row.Scan(&r.Product, &version, &r.NotesURL, &r.RequiredStop, &safeTo, &r.CreatedAt, &status, &paused, &pull, &resumed, &waives, &r.RequiresPostgres); err != nil {
		return release.Release{}, err
	}
	if err := json.Unmarshal([]byte(waives), &r.Waives); err != nil {
		return release.Release{}, fmt.Errorf("stored release %s@%s waives: %w", r.Product, version, err)
	}
	if len(r.Waives) == 0 {
		r.Waives = nil
	}
	r.ResumedAt = timePtr(resumed)
	var err error
	if r.Version, err = release.ParseVersion(version); err != nil {
		return release.Release{}, fmt.Errorf("stored release %s@%s: %w", r.Product, version, err)
	}
	if safeTo != "" {
		if r.RollbackSafeTo, err = release.ParseVersion(safeTo); err != nil {
			return release.Release{}, fmt.Errorf("stored release %s rollback-safe-to: %w", r.ID(), err)
		}
	}
	r.Status = release.Status(status)
	r.CreatedAt = r.CreatedAt.UTC()
	if paused.Valid {
		r.Paused = &release.Pause{}
		if err := json.Unmarshal([]byte(paused.String), r.Paused); err != nil {
			return release.Release{}, fmt.Errorf("stored release %s pause: %w", r.ID(), err)
		}
	}
	if pull.Valid {
		r.Pulled = &release.Pull{}
		if err := json.Unmarshal([]byte(pull.String), r.Pulled); err != nil {
			return release.Release{}, fmt.Errorf("stored release %s pull: %w", r.ID(), err)
		}
	}
	r.Rings = []release.Promotion{}
	return r, nil
}

// loadPromotions returns the recorded ring entries per release of product
// ("" for all products), keyed by product and version string.
func loadPromotions(ctx context.Context, q queryer, product string) (map[[2]string][]release.Promotion, error) {
	rows, err := q.QueryContext(ctx, `SELECT product, version, ring, entered_at, forced, by_actor, reason FROM promotions
		WHERE $1 = '' OR product = $1 ORDER BY entered_at, ring`, product)
	if err != nil {
		return nil, fmt.Errorf("load promotions: %w", err)
	}
	defer rows.Close()
	out := map[[2]string][]release.Promotion{}
	for rows.Next() {
		var prod, version string
		var p release.Promotion
		if err := rows.Scan(&prod, &version, &p.Ring, &p.EnteredAt, &p.Forced, &p.By, &p.Reason); err != nil {
			return nil, fmt.Errorf("load promotions: %w", err)
		}
		p.EnteredAt = p.EnteredAt.UTC()
		k := [2]string{prod, version}
		out[k] = append(out[k], p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load promotions: %w", err)
	}
	return out, nil
}

// listReleases returns product's releases ("" for all) with their ring
// entries, ascending by product and version.
func listReleases(ctx context.Context, q queryer, product string) ([]release.Release, error) {
	rels, err := queryAll(ctx, q, scanRelease, "list releases",
		`SELECT `+releaseCols+` FROM releases WHERE $1 = '' OR product = $1`, product)
	if err != nil {
		return nil, err
	}
	proms, err := loadPromotions(ctx, q, product)
	if err != nil {
		return nil, err
	}
	for i := range rels {
		if p := proms[[2]string{rels[i].Product, rels[i].Version.String()}]; p != nil {
			rels[i].Rings = p
		}
	}
	sort.Slice(rels, func(i, j int) bool {
		if rels[i].Product != rels[j].Product {
			return rels[i].Product < rels[j].Product
		}
		return rels[i].Version.Less(rels[j].Version)
	})
	return rels, nil
}

// ListReleases returns a product's releases, newest version first.
func (s *Store) ListReleases(ctx context.Context, product string) ([]release.Release, error) {
	rels, err := listReleases(ctx, s.rdb, product)
	if err != nil {
		return nil, err
	}
	for i, j := 0, len(rels)-1; i < j; i, j = i+1, j-1 {
		rels[i], rels[j] = rels[j], rels[i]
	}
	return rels, nil
}

// getRelease reads one release with its ring entries.
func getRelease(ctx context.Context, q queryer, product string, v release.Version) (release.Release, error) {
	r, err := scanRelease(q.QueryRowContext(ctx, `SELECT `+releaseCols+` FROM releases WHERE product = $1 AND version = $2`, product, v.String()))
	if err != nil {
		return release.Release{}, notFound(err, "release %s@%s", product, v)
	}
	proms, err := queryAll(ctx, q, func(row scanner) (release.Promotion, error) {
		var p release.Promotion
		err := row.Scan(&p.Ring, &p.EnteredAt, &p.Forced, &p.By, &p.Reason)
		p.EnteredAt = p.EnteredAt.UTC()
		return p, err
	}, "load ring entries", `SELECT ring, entered_at, forced, by_actor, reason FROM promotions WHERE product = $1 AND version = $2 ORDER BY entered_at, ring`, product, v.String())
	if err != nil {
		return release.Release{}, err
	}
	r.Rings = proms
	return r, nil
}

// GetRelease returns one release with its ring entries; ENOTFOUND if unknown.
func (s *Store) GetRelease(ctx context.Context, product string, v release.Version) (release.Release, error) {
	return getRelease(ctx, s.rdb, product, v)
}

// CreateRelease creates a release in status ok; ECONFLICT if the version
// exists.
func (s *Store) CreateRelease(ctx context.Context, actor string, r release.Release) (release.Release, error) {
	r.Status, r.Paused, r.Pulled, r.Rings = release.StatusOK, nil, nil, []release.Promotion{}
	r.CreatedAt = now()
	if err := r.Validate(); err != nil {
		return release.Release{}, err
	}
	safeTo := ""
	if !r.RollbackSafeTo.IsZero() {
		safeTo = r.RollbackSafeTo.String()
	}
	err := s.write(ctx, func(tx *sql.Tx) error {
		if err := productExists(ctx, tx, r.Product); err != nil {
			return err
		}
		if ok, err := exists(ctx, tx, `SELECT 1 FROM releases WHERE product = $1 AND version = $2`, r.Product, r.Version.String()); err != nil {
			return fmt.Errorf("create release %s: %w", r.ID(), err)
		} else if ok {
			return release.Errorf(release.ECONFLICT, "release %s already exists", r.ID())
		}
		waives, err := jsonText("release waives", append([]string{}, r.Waives...))
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO releases (product, version, notes_url, required_stop, rollback_safe_to, created_at, status, waives, requires_postgres)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`, r.Product, r.Version.String(), r.NotesURL, r.RequiredStop, safeTo, r.CreatedAt, string(r.Status), waives, r.RequiresPostgres)
		if err != nil {
			return fmt.Errorf("create release %s: %w", r.ID(), err)
		}
		return audit(ctx, tx, actor, "release.create", "release/"+r.ID(), nil, r)
	})
	if err != nil {
		return release.Release{}, err
	}
	return r, nil
}

// ChangeRelease loads a release and the product's other releases, lets
// change apply a domain transition (Pause, Resume, Pull) to it, stores its
// status and records action, with the reason given, in the audit log.
func (s *Store) ChangeRelease(ctx context.Context, actor, action, reason, product string, v release.Version,
	change func(r *release.Release, others []release.Release) error) (release.Release, error) {
	var r release.Release
	err := s.write(ctx, func(tx *sql.Tx) error {
		var err error
		r, err = s.changeRelease(ctx, tx, actor, action, reason, product, v, change)
		return err
	})
	return r, err
}

// changeRelease is ChangeRelease inside tx.
func (s *Store) changeRelease(ctx context.Context, tx *sql.Tx, actor, action, reason, product string, v release.Version,
	change func(r *release.Release, others []release.Release) error) (release.Release, error) {
	before, err := s.lockRelease(ctx, tx, product, v)
	if err != nil {
		return release.Release{}, err
	}
	others, err := listReleases(ctx, tx, product)
	if err != nil {
		return release.Release{}, err
	}
	r := before
	if err := change(&r, others); err != nil {
		return release.Release{}, err
	}
	if err := storeStatus(ctx, tx, before.Status, &r); err != nil {
		return release.Release{}, err
	}
	return r, auditWhy(ctx, tx, actor, action, "release/"+r.ID(), reason, before, r)
}

// lockRelease reads a release with its ring entries for a change of it:
// on PostgreSQL it first locks the rows of all the product's releases
// (SELECT ... FOR UPDATE, always in the same order), so concurrent status
// changes of a product's releases, from any server, run one after the other
// and each sees the ones before — including the status of a pull's target;
// on SQLite, write transactions already exclude each other (BEGIN
// IMMEDIATE). ENOTFOUND if unknown.
func (s *Store) lockRelease(ctx context.Context, tx *sql.Tx, product string, v release.Version) (release.Release, error) {
	if s.dialect == Postgres {
		if _, err := tx.ExecContext(ctx, `SELECT 1 FROM releases WHERE product = $1 ORDER BY version FOR UPDATE`, product); err != nil {
			return release.Release{}, fmt.Errorf("lock releases of %s: %w", product, err)
		}
	}
	return getRelease(ctx, tx, product, v)
}

// storeStatus writes r's status, pause and pull, provided the stored status
// is still was; ECONFLICT otherwise (a second line of defence behind
// lockRelease: a change is never written over one it did not see). A
// change from paused to ok records the time in r.ResumedAt.
func storeStatus(ctx context.Context, tx *sql.Tx, was release.Status, r *release.Release) error {
	if was == release.StatusPaused && r.Status == release.StatusOK {
		t := now()
		r.ResumedAt = &t
	}
	paused, err := jsonOrNull(ptrOrNil(r.Paused))
	if err != nil {
		return fmt.Errorf("encode pause of %s: %w", r.ID(), err)
	}
	pull, err := jsonOrNull(ptrOrNil(r.Pulled))
	if err != nil {
		return fmt.Errorf("encode pull of %s: %w", r.ID(), err)
	}
	var resumed any
	if r.ResumedAt != nil {
		resumed = r.ResumedAt.UTC()
	}
	res, err := tx.ExecContext(ctx, `UPDATE releases SET status = $1, paused = $2, pull = $3, resumed_at = $4
		WHERE product = $5 AND version = $6 AND status = $7`,
		string(r.Status), paused, pull, resumed, r.Product, r.Version.String(), string(was))
	if err != nil {
		return fmt.Errorf("store status of %s: %w", r.ID(), err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("store status of %s: %w", r.ID(), err)
	} else if n == 0 {
		return release.Errorf(release.ECONFLICT, "release %s changed meanwhile; retry", r.ID())
	}
	return nil
}

// AutoHalt pauses release v of product on behalf of auto-halt, with ev as
// the audit log's evidence. It acts only on a release that is ok, was not
// auto-halted since it was last resumed, and was not resumed after the
// evidence window began (ev.Since; the caller may have read a release
// resumed meanwhile) — a conditional update, so among several servers
// exactly one wins — and reports whether this call paused it.
//
// In the same transaction it opens the incident the severity policy says
// auto-halt opens (a draft naming the release, by default).
//
// When notify is not nil, its body for the paused release is queued in the
// outbox (kind "incident") in the same transaction, so the notification is
// delivered even if this process dies right after the commit.
func (s *Store) AutoHalt(ctx context.Context, product string, v release.Version, ev release.Evidence,
	notify func(paused release.Release) ([]byte, error)) (bool, release.Release, error) {
	var halted bool
	var r release.Release
	err := s.write(ctx, func(tx *sql.Tx) error {
		before, err := s.lockRelease(ctx, tx, product, v)
		if err != nil {
			return err
		}
		if before.Status != release.StatusOK {
			return nil // paused or pulled meanwhile: nothing to halt
		}
		r = before
		at := now()
		if err := r.Pause(ActorAutoHalt, "auto-halt: "+ev.Reason, "", at); err != nil {
			return err
		}
		paused, err := jsonOrNull(r.Paused)
		if err != nil {
			return fmt.Errorf("encode pause of %s: %w", r.ID(), err)
		}
		res, err := tx.ExecContext(ctx, `UPDATE releases SET status = 'paused', paused = $1, auto_halted_at = $2
			WHERE product = $3 AND version = $4 AND status = 'ok'
				AND (auto_halted_at IS NULL OR auto_halted_at < resumed_at)
				AND (resumed_at IS NULL OR resumed_at <= $5)`, paused, at, product, v.String(), ev.Since.UTC())
		if err != nil {
			return fmt.Errorf("auto-halt %s: %w", r.ID(), err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("auto-halt %s: %w", r.ID(), err)
		}
		if n == 0 {
			return nil
		}
		halted = true
		// The incident the severity policy opens (a draft by default),
		// naming the release, in the same transaction as the halt.
		if _, err := s.openHaltIncident(ctx, tx, r, ev, at); err != nil {
			return fmt.Errorf("open incident for auto-halt of %s: %w", r.ID(), err)
		}
		if notify != nil {
			body, err := notify(r)
			if err != nil {
				return fmt.Errorf("encode incident notification of %s: %w", r.ID(), err)
			}
			if err := enqueueOutbox(ctx, tx, "incident", body); err != nil {
				return err
			}
		}
		return auditWhy(ctx, tx, ActorAutoHalt, "release.auto_halt", "release/"+r.ID(), ev.Reason, before,
			struct {
				Release  release.Release  `json:"release"`
				Evidence release.Evidence `json:"evidence"`
			}{r, ev})
	})
	if err != nil || !halted {
		return false, release.Release{}, err
	}
	return true, r, nil
}

// RecordPromotions records promotions the rules made (see release.Snapshot's
// Due). Entries already recorded — by this or another server — are left
// alone; each new one is audited. It returns how many it recorded.
func (s *Store) RecordPromotions(ctx context.Context, due []release.Due) (int, error) {
	var n int
	err := s.write(ctx, func(tx *sql.Tx) error {
		for _, d := range due {
			res, err := tx.ExecContext(ctx, `INSERT INTO promotions (product, version, ring, entered_at, forced, by_actor, reason)
				VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (product, version, ring) DO NOTHING`,
				d.Product, d.Version.String(), d.Promotion.Ring, d.Promotion.EnteredAt.UTC().Truncate(time.Microsecond), false, "", d.Promotion.Reason)
			if err != nil {
				return fmt.Errorf("record promotion of %s@%s into %s: %w", d.Product, d.Version, d.Promotion.Ring, err)
			}
			if k, err := res.RowsAffected(); err != nil {
				return fmt.Errorf("record promotion of %s@%s: %w", d.Product, d.Version, err)
			} else if k == 0 {
				continue
			}
			n++
			if err := audit(ctx, tx, ActorSystem, "release.promote", "release/"+d.Product+"@"+d.Version.String(), nil, d.Promotion); err != nil {
				return err
			}
		}
		return nil
	})
	return n, err
}

// ForcePromote records a person's forced promotion p of a release. The ring
// must be one of the product's; ECONFLICT if the release already entered it.
func (s *Store) ForcePromote(ctx context.Context, product string, v release.Version, role release.Role, ring, by, reason string) (release.Release, error) {
	var r release.Release
	err := s.write(ctx, func(tx *sql.Tx) error {
		// Locked: a pull committed meanwhile is seen, not promoted past.
		before, err := s.lockRelease(ctx, tx, product, v)
		if err != nil {
			return err
		}
		p, err := release.ForcePromote(before, ring, by, role, reason, now())
		if err != nil {
			return err
		}
		if err := ringExists(ctx, tx, product, ring); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO promotions (product, version, ring, entered_at, forced, by_actor, reason)
			VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (product, version, ring) DO NOTHING`,
			product, v.String(), p.Ring, p.EnteredAt, true, p.By, p.Reason)
		if err != nil {
			return fmt.Errorf("force-promote %s into %s: %w", before.ID(), ring, err)
		}
		if k, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("force-promote %s: %w", before.ID(), err)
		} else if k == 0 {
			return release.Errorf(release.ECONFLICT, "release %s already entered ring %s", before.ID(), ring)
		}
		r = before
		r.Rings = append(append([]release.Promotion{}, before.Rings...), p)
		return auditWhy(ctx, tx, by, "release.force_promote", "release/"+r.ID(), reason, before, r)
	})
	return r, err
}

// --- gates ---

func scanGateResult(row scanner) (release.GateResult, error) {
	var g release.GateResult
	var version, status string
	if err := row.Scan(&g.Product, &version, &g.Name, &status, &g.URL, &g.PostedBy, &g.PostedAt); err != nil {
		return release.GateResult{}, err
	}
	v, err := release.ParseVersion(version)
	if err != nil {
		return release.GateResult{}, fmt.Errorf("stored gate result of %s@%s: %w", g.Product, version, err)
	}
	g.Version, g.Status, g.PostedAt = v, release.GateOutcome(status), g.PostedAt.UTC()
	return g, nil
}

const gateCols = `product, version, name, status, url, posted_by, posted_at`

// PostGateResult records a gate result for a release.
func (s *Store) PostGateResult(ctx context.Context, g release.GateResult) (release.GateResult, error) {
	g.PostedAt = now()
	if err := g.Validate(); err != nil {
		return release.GateResult{}, err
	}
	err := s.write(ctx, func(tx *sql.Tx) error {
		if _, err := getRelease(ctx, tx, g.Product, g.Version); err != nil {
			return err
		}
		if err := knownGate(ctx, tx, g.Product, g.Name); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO gate_results (`+gateCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			g.Product, g.Version.String(), g.Name, string(g.Status), g.URL, g.PostedBy, g.PostedAt)
		if err != nil {
			return fmt.Errorf("post gate %s of %s@%s: %w", g.Name, g.Product, g.Version, err)
		}
		return audit(ctx, tx, g.PostedBy, "gate.post", "release/"+g.Product+"@"+g.Version.String()+"/gate/"+g.Name, nil, g)
	})
	return g, err
}

// knownGate refuses a gate name that is not one of product's required
// gates: a misspelt name would be recorded while the release waits for the
// real one forever.
func knownGate(ctx context.Context, tx *sql.Tx, product, name string) error {
	p, err := scanProduct(tx.QueryRowContext(ctx, `SELECT `+productCols+` FROM products WHERE name = $1`, product))
	if err != nil {
		return notFound(err, "product %s", product)
	}
	if slices.Contains(p.RequiredGates, name) {
		return nil
	}
	if len(p.RequiredGates) == 0 {
		return release.Errorf(release.EINVALID, "unknown gate %q: product %s requires no gates (add one with `ringfence product update %s --gate NAME`)", name, product, product)
	}
	return release.Errorf(release.EINVALID, "unknown gate %q: the gates of product %s are %s", name, product, strings.Join(p.RequiredGates, ", "))
}

// ListGateResults returns the latest result of each gate posted for a
// release, by gate name.
func (s *Store) ListGateResults(ctx context.Context, product string, v release.Version) ([]release.GateResult, error) {
	all, err := queryAll(ctx, s.rdb, scanGateResult, "list gate results",
		`SELECT `+gateCols+` FROM gate_results WHERE product = $1 AND version = $2 ORDER BY name, id`, product, v.String())
	if err != nil {
		return nil, err
	}
	out := []release.GateResult{}
	for _, g := range all {
		if n := len(out); n > 0 && out[n-1].Name == g.Name {
			out[n-1] = g
			continue
		}
		out = append(out, g)
	}
	return out, nil
}

// --- holds ---

const holdCols = `id, product, version, reason, raised_by, raised_at, resolved_at, resolved_by, resolution`

func scanHold(row scanner) (release.Hold, error) {
	var h release.Hold
	var version string
	var resolved sql.NullTime
	if err := row.Scan(&h.ID, &h.Product, &version, &h.Reason, &h.RaisedBy, &h.RaisedAt, &resolved, &h.ResolvedBy, &h.Resolution); err != nil {
		return release.Hold{}, err
	}
	v, err := release.ParseVersion(version)
	if err != nil {
		return release.Hold{}, fmt.Errorf("stored hold %s: %w", h.ID, err)
	}
	h.Version, h.RaisedAt, h.ResolvedAt = v, h.RaisedAt.UTC(), timePtr(resolved)
	return h, nil
}

// RaiseHold opens a hold on a release.
func (s *Store) RaiseHold(ctx context.Context, h release.Hold) (release.Hold, error) {
	h.ID, h.RaisedAt, h.ResolvedAt, h.ResolvedBy, h.Resolution = uuid.Must(uuid.NewV7()).String(), now(), nil, "", ""
	if err := h.Validate(); err != nil {
		return release.Hold{}, err
	}
	err := s.write(ctx, func(tx *sql.Tx) error {
		if _, err := getRelease(ctx, tx, h.Product, h.Version); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO holds (id, product, version, reason, raised_by, raised_at) VALUES ($1, $2, $3, $4, $5, $6)`,
			h.ID, h.Product, h.Version.String(), h.Reason, h.RaisedBy, h.RaisedAt)
		if err != nil {
			return fmt.Errorf("raise hold on %s@%s: %w", h.Product, h.Version, err)
		}
		return auditWhy(ctx, tx, h.RaisedBy, "hold.raise", "hold/"+h.ID, h.Reason, nil, h)
	})
	return h, err
}

// ResolveHold resolves an open hold of product. The hold's row is locked
// (PostgreSQL) and the update conditional, so of two concurrent resolutions
// one wins and the other gets the domain's error for a resolved hold.
func (s *Store) ResolveHold(ctx context.Context, product, id, by, resolution string) (release.Hold, error) {
	var h release.Hold
	err := s.write(ctx, func(tx *sql.Tx) error {
		q := `SELECT ` + holdCols + ` FROM holds WHERE id = $1 AND product = $2`
		if s.dialect == Postgres {
			q += ` FOR UPDATE` // two resolutions of one hold: the second sees the first
		}
		before, err := scanHold(tx.QueryRowContext(ctx, q, id, product))
		if err != nil {
			return notFound(err, "hold %s of %s", id, product)
		}
		h = before
		if err := h.Resolve(by, resolution, now()); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `UPDATE holds SET resolved_at = $1, resolved_by = $2, resolution = $3 WHERE id = $4 AND resolved_at IS NULL`,
			*h.ResolvedAt, h.ResolvedBy, h.Resolution, id)
		if err != nil {
			return fmt.Errorf("resolve hold %s: %w", id, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("resolve hold %s: %w", id, err)
		} else if n == 0 {
			return release.Errorf(release.ECONFLICT, "hold %s was resolved meanwhile", id)
		}
		return auditWhy(ctx, tx, by, "hold.resolve", "hold/"+id, resolution, before, h)
	})
	return h, err
}

// ListHolds returns a release's holds, open and resolved, oldest first.
func (s *Store) ListHolds(ctx context.Context, product string, v release.Version) ([]release.Hold, error) {
	return queryAll(ctx, s.rdb, scanHold, "list holds",
		`SELECT `+holdCols+` FROM holds WHERE product = $1 AND version = $2 ORDER BY raised_at, id`, product, v.String())
}

// --- facts ---

// LoadFacts reads everything release.NewSnapshot needs but adoption:
// products, rings, customers, releases with ring entries, gate results and
// open holds. Adoption is a scan of every installation, counted apart
// (CountAdoption) and reused across rebuilds.
func (s *Store) LoadFacts(ctx context.Context) (release.Facts, error) {
	var f release.Facts
	var err error
	if f.Products, err = s.ListProducts(ctx); err != nil {
		return f, err
	}
	if f.Rings, err = queryAll(ctx, s.rdb, scanRing, "load rings", `SELECT `+ringCols+` FROM rings`); err != nil {
		return f, err
	}
	if f.Customers, err = queryAll(ctx, s.rdb, scanCustomer, "load customers", `SELECT `+customerCols+` FROM customers`); err != nil {
		return f, err
	}
	if f.Releases, err = listReleases(ctx, s.rdb, ""); err != nil {
		return f, err
	}
	if f.GateResults, err = queryAll(ctx, s.rdb, scanGateResult, "load gate results", `SELECT `+gateCols+` FROM gate_results ORDER BY id`); err != nil {
		return f, err
	}
	if f.Holds, err = queryAll(ctx, s.rdb, scanHold, "load holds", `SELECT `+holdCols+` FROM holds WHERE resolved_at IS NULL`); err != nil {
		return f, err
	}
	return f, nil
}

// CountAdoption counts installations per product, version and their customer's
// ring: how many run it, how many of those are healthy (last health ok) and
// failed (last health failing); and how many installations each ring has.
//
// Healthy, the promotion evidence, counts only installations first seen
// before the release was created: instance ids are chosen by agents, so a
// customer's enrollment key could otherwise invent healthy installations to
// push a release into the next ring.
//
// On PostgreSQL it is one statement. On SQLite, whose statements run on the
// caller's goroutine, a count over every installation in one go takes one
// of the machine's cores from the check-in handlers and the writer for as
// long as it runs, and contends with the writer for SQLite's page cache:
// the check-ins slower than 20 ms came in clusters at each recount. So it
// counts one customer at a time, each in its own read transaction, and,
// paced, rests after each as long as that count took, so that it never
// takes more than half a core (bench/README.md); unpaced is for when no
// check-ins are served yet. Each customer's counts are of one state of the
// store; different customers' may be a moment apart, as any count is of a
// fleet that keeps checking in.
func (s *Store) CountAdoption(ctx context.Context, paced bool) ([]release.Adoption, []release.RingSize, error) {
	counted := map[adoptionKey]*release.Adoption{}
	var order []adoptionKey
	count := func(where string, args ...any) error {
		rows, err := s.rdb.QueryContext(ctx, `SELECT i.product, i.version, c.ring, COUNT(*),
				SUM(CASE WHEN i.health = 'ok' AND r.created_at IS NOT NULL AND i.first_seen < r.created_at THEN 1 ELSE 0 END),
				SUM(CASE WHEN i.health IN ('corrupt', 'collation_changed') THEN 1 ELSE 0 END),
				SUM(CASE WHEN i.health = 'ok' AND NOT (r.created_at IS NOT NULL AND i.first_seen < r.created_at) THEN 1 ELSE 0 END)
			FROM installations i JOIN customers c ON c.product = i.product AND c.name = i.customer
				LEFT JOIN releases r ON r.product = i.product AND r.version = i.version
			`+where+` GROUP BY i.product, i.version, c.ring`, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var k adoptionKey
			var n release.Adoption
			if err := rows.Scan(&k.product, &k.version, &k.ring, &n.Installations, &n.Healthy, &n.Failed, &n.HealthyUncounted); err != nil {
				return err
			}
			a := counted[k]
			if a == nil {
				a = &release.Adoption{Product: k.product, Ring: k.ring}
				counted[k] = a
				order = append(order, k)
			}
			a.Installations += n.Installations
			a.Healthy += n.Healthy
			a.Failed += n.Failed
			a.HealthyUncounted += n.HealthyUncounted
		}
		return rows.Err()
	}
	if s.dialect == Postgres {
		if err := count(""); err != nil {
			return nil, nil, fmt.Errorf("count adoption: %w", err)
		}
	} else {
		customers, err := queryAll(ctx, s.rdb, func(row scanner) ([2]string, error) {
			var c [2]string
			return c, row.Scan(&c[0], &c[1])
		}, "count adoption", `SELECT product, name FROM customers ORDER BY product, name`)
		if err != nil {
			return nil, nil, err
		}
		for _, c := range customers {
			start := time.Now()
			if err := count(`WHERE i.product = $1 AND i.customer = $2`, c[0], c[1]); err != nil {
				return nil, nil, fmt.Errorf("count adoption of %s: %w", c[1], err)
			}
			if !paced {
				continue
			}
			if err := rest(ctx, time.Since(start)); err != nil {
				return nil, nil, err
			}
		}
	}
	adoption := []release.Adoption{}
	sizes := map[[2]string]int{}
	for _, k := range order {
		a := counted[k]
		sizes[[2]string{a.Product, a.Ring}] += a.Installations
		v, err := release.ParseVersion(k.version)
		if err != nil {
			continue // installations report versions that are no release; they count toward ring size only
		}
		a.Version = v
		adoption = append(adoption, *a)
	}
	ringSizes := make([]release.RingSize, 0, len(sizes))
	for k, n := range sizes {
		ringSizes = append(ringSizes, release.RingSize{Product: k[0], Ring: k[1], Installations: n})
	}
	return adoption, ringSizes, nil
}

// rest sleeps for d, or until ctx ends.
func rest(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// adoptionKey is what adoption counts by.
type adoptionKey struct{ product, version, ring string }
