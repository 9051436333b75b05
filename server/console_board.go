package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"html/template"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/ringfence/ringfence/release"
	"github.com/ringfence/ringfence/sqlstore"
)

// healthCacheTTL is how long the console reuses its count of installations'
// health per release and ring, which scans every installation; the board
// itself is rebuilt from the in-memory snapshot on every request.
const healthCacheTTL = 5 * time.Second

// upgradeFailWindow is how far back the board counts failed upgrades.
const upgradeFailWindow = 24 * time.Hour

// boardModel is one product's releases (rows, newest first) by ring (columns).
type boardModel struct {
	Product string
	Rings   []release.Ring
	Rows    []boardRow
	// HealthAt is when the health counts were taken.
	HealthAt time.Time
}

// boardRow is one release on the board.
type boardRow struct {
	release.ReleaseStatus
	Cells []boardCell
}

// boardCell is a release's standing in one ring with its installations'
// health.
type boardCell struct {
	release.RingStatus
	OK, Corrupt, CollationChanged, Unknown, UpgradeFailed int
	// SoakLeft is the soak time still to run in a soaking ring ("" if none).
	SoakLeft string
}

// healthCache holds the latest health counts, keyed by product, version
// and ring. Requests never wait for a recount once there is a count: a
// stale one is served while one recount runs in the background.
type healthCache struct {
	mu         sync.Mutex
	at         time.Time
	counts     map[[3]string]sqlstore.HealthCount
	recounting bool
}

// get returns the latest counts: the first call counts, later calls start
// a background recount when the counts are older than healthCacheTTL.
func (h *healthCache) get(ctx context.Context, s *Server) (map[[3]string]sqlstore.HealthCount, time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case h.counts == nil:
		if m, err := countHealth(ctx, s); err == nil {
			h.counts, h.at = m, time.Now()
		}
	case time.Since(h.at) >= healthCacheTTL && !h.recounting:
		h.recounting = true
		go func() {
			ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
			defer cancel()
			m, err := countHealth(ctx, s)
			h.mu.Lock()
			defer h.mu.Unlock()
			if err == nil {
				h.counts, h.at = m, time.Now()
			}
			h.recounting = false
		}()
	}
	return h.counts, h.at
}

// countHealth counts installations' health per product, version and ring;
// failures are logged.
func countHealth(ctx context.Context, s *Server) (map[[3]string]sqlstore.HealthCount, error) {
	list, err := s.store.HealthCounts(ctx, time.Now().Add(-upgradeFailWindow))
	if err != nil {
		s.log.ErrorContext(ctx, "count installation health for the console", slog.Any("err", err))
		return nil, err
	}
	m := make(map[[3]string]sqlstore.HealthCount, len(list))
	for _, c := range list {
		m[[3]string{c.Product, c.Version, c.Ring}] = c
	}
	return m, nil
}

// renderedBoard is a product's board rendered once for every request that
// comes while its inputs stay the same.
type renderedBoard struct {
	// The inputs: the snapshot and health counts it was built from, and the
	// time until which every "soak left" it shows still reads the same.
	snap     *release.Snapshot
	healthAt time.Time
	until    time.Time

	model boardModel
	table template.HTML
	etag  string
}

// boardCache holds the latest rendered board per product. The board is
// rebuilt only when the snapshot is (a change, or RefreshInterval), the
// health counts are recounted (healthCacheTTL), or a soak countdown it
// shows ticks over, not on every request: all requests in between share
// one model, one rendered table and one entity tag.
type boardCache struct {
	mu sync.Mutex
	m  map[string]*renderedBoard
	// products are the product names as of snapshot productsOf: products
	// are created through the API, which rebuilds the snapshot.
	products   []string
	productsOf *release.Snapshot
}

// productNames lists the products' names, read from the store once per
// snapshot rather than on every console request.
func (c *console) productNames(ctx context.Context) ([]string, error) {
	snap := c.s.state.Load().snap
	c.boards.mu.Lock()
	names, of := c.boards.products, c.boards.productsOf
	c.boards.mu.Unlock()
	if of == snap {
		return names, nil
	}
	ps, err := c.s.store.ListProducts(ctx)
	if err != nil {
		return nil, err
	}
	names = make([]string, 0, len(ps))
	for _, p := range ps {
		names = append(names, p.Name)
	}
	c.boards.mu.Lock()
	c.boards.products, c.boards.productsOf = names, snap
	c.boards.mu.Unlock()
	return names, nil
}

// boardFor returns product's board, rendered from the current snapshot and
// health counts, reusing the last rendering while its inputs are unchanged.
func (c *console) boardFor(ctx context.Context, product string) (*renderedBoard, error) {
	snap := c.s.state.Load().snap
	health, at := c.health.get(ctx, c.s)
	now := time.Now()
	c.boards.mu.Lock()
	b := c.boards.m[product]
	c.boards.mu.Unlock()
	if b != nil && b.snap == snap && b.healthAt.Equal(at) && now.Before(b.until) {
		return b, nil
	}
	model, until, err := c.board(ctx, snap, product, health, at, now)
	if err != nil {
		return nil, err
	}
	table, etag, err := c.renderBoard(model)
	if err != nil {
		return nil, err
	}
	b = &renderedBoard{snap: snap, healthAt: at, until: until, model: model, table: table, etag: etag}
	c.boards.mu.Lock()
	if c.boards.m == nil {
		c.boards.m = map[string]*renderedBoard{}
	}
	c.boards.m[product] = b
	c.boards.mu.Unlock()
	return b, nil
}

// board builds product's board from snap, the product's rings and the
// health counts taken at at, as of now. until is when the first soak
// countdown it shows would read differently.
func (c *console) board(ctx context.Context, snap *release.Snapshot, product string, health map[[3]string]sqlstore.HealthCount, at, now time.Time) (b boardModel, until time.Time, err error) {
	st, err := snap.Status(product)
	if err != nil {
		return boardModel{}, time.Time{}, err
	}
	rings, err := c.s.store.ListRings(ctx, product)
	if err != nil {
		return boardModel{}, time.Time{}, err
	}
	rings = release.SortRings(rings)
	soak := make(map[string]time.Duration, len(rings))
	for _, r := range rings {
		soak[r.Name] = r.SoakTime
	}
	b = boardModel{Product: product, Rings: rings, Rows: make([]boardRow, 0, len(st)), HealthAt: at}
	until = now.Add(healthCacheTTL)
	for i := len(st) - 1; i >= 0; i-- { // newest first
		rs := st[i]
		row := boardRow{ReleaseStatus: rs, Cells: make([]boardCell, len(rs.Rings))}
		for j, ring := range rs.Rings {
			cell := boardCell{RingStatus: ring}
			if ring.State == release.RingBlocked && len(rs.Holds) > 0 && strings.HasPrefix(ring.Reason, "hold ") {
				// The row names the holds already; say it short per ring.
				cell.Reason = "held back by an open flag"
			}
			h := health[[3]string{product, rs.Version.String(), ring.Ring}]
			cell.OK, cell.Corrupt, cell.CollationChanged, cell.Unknown, cell.UpgradeFailed = h.OK, h.Corrupt, h.CollationChanged, h.Unknown, h.UpgradeFailed
			if ring.State == release.RingSoaking && ring.EnteredAt != nil {
				from := *ring.EnteredAt
				if r := rs.Release.ResumedAt; r != nil && r.After(from) {
					from = *r
				}
				if left := from.Add(soak[ring.Ring]).Sub(now); left > 0 {
					cell.SoakLeft = fmtDuration(left)
					if next := now.Add(untilTick(left)); next.Before(until) {
						until = next
					}
				}
			}
			row.Cells[j] = cell
		}
		b.Rows = append(b.Rows, row)
	}
	return b, until, nil
}

// untilTick is how long until fmtDuration(left) first reads differently as
// left counts down: it shows whole seconds under a minute, whole minutes
// under a day, whole hours beyond, so it changes once left drops below the
// whole unit it shows.
func untilTick(left time.Duration) time.Duration {
	unit := time.Second
	switch {
	case left >= 24*time.Hour:
		unit = time.Hour
	case left >= time.Minute:
		unit = time.Minute
	}
	return left%unit + time.Nanosecond
}

// boardView is the board page's data: the board and its table, rendered
// once and shared by the page and the live refresh.
type boardView struct {
	Board boardModel
	Table template.HTML
	ETag  string
}

// renderBoard renders the board's table and its entity tag. The table is
// the same for every caller (actions are on the release pages).
func (c *console) renderBoard(b boardModel) (template.HTML, string, error) {
	var buf bytes.Buffer
	if err := c.pages["board"].ExecuteTemplate(&buf, "board-table", struct{ Board boardModel }{b}); err != nil {
		return "", "", err
	}
	sum := sha256.Sum256(buf.Bytes())
	return template.HTML(buf.String()), `"` + hex.EncodeToString(sum[:12]) + `"`, nil
}

// boardPage serves a product's board; with ?part=table only the table, for
// the page's live refresh (304 when unchanged since If-None-Match).
func (c *console) boardPage(w http.ResponseWriter, r *http.Request, v *view) error {
	if err := c.require(v, routeStatus); err != nil {
		return err
	}
	b, err := c.boardFor(r.Context(), v.Product)
	if err != nil {
		return err
	}
	if r.URL.Query().Get("part") == "table" {
		w.Header().Set("ETag", b.etag)
		w.Header().Set("Cache-Control", "no-cache")
		if r.Header.Get("If-None-Match") == b.etag {
			w.WriteHeader(http.StatusNotModified)
			return nil
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(b.table))
		return nil
	}
	v.Title, v.Data = "Releases of "+v.Product, boardView{Board: b.model, Table: b.table, ETag: b.etag}
	c.render(w, r, http.StatusOK, "board", v)
	return nil
}
