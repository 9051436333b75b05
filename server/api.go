package server

import (
	"context"
	"crypto/rand"
	"net/http"
	"strconv"
	"time"

	"github.com/ringfence/ringfence/release"
	"github.com/ringfence/ringfence/sign"
	"github.com/ringfence/ringfence/sqlstore"
)

// Route is one admin API route: who may call it. The route table is the
// single place roles are decided; a test walks all of it.
type Route struct {
	Method string
	Path   string
	// Role is the weakest role allowed.
	Role   release.Role
	handle func(w http.ResponseWriter, r *http.Request, who sqlstore.Token) error
}

// Routes returns the admin API's route table.
func (s *Server) Routes() []Route {
	const (
		viewer   = release.RoleViewer
		releaser = release.RoleReleaser
		admin    = release.RoleAdmin
	)
	const (
		prod = "/api/v1/products/{product}"
		rel  = prod + "/releases/{version}"
	)
	return []Route{
		{"GET", "/api/v1/whoami", viewer, s.whoami},
		{"GET", "/api/v1/products", viewer, s.listProducts},
		{"POST", "/api/v1/products", admin, s.createProduct},
		{"GET", prod, viewer, s.getProduct},
		{"PATCH", prod, admin, s.updateProduct},
		{"GET", prod + "/rings", viewer, s.listRings},
		{"POST", prod + "/rings", admin, s.createRing},
		{"PATCH", prod + "/rings/{ring}", admin, s.updateRing},
		{"GET", prod + "/customers", viewer, s.listCustomers},
		{"POST", prod + "/customers", admin, s.createCustomer},
		{"PATCH", prod + "/customers/{customer}", admin, s.updateCustomer},
		{"GET", prod + "/customers/{customer}/keys", admin, s.listKeys},
		{"POST", prod + "/customers/{customer}/keys", admin, s.createKey},
		{"DELETE", prod + "/customers/{customer}/keys/{id}", admin, s.revokeKey},
		{"GET", prod + "/releases", viewer, s.listReleases},
		{"POST", prod + "/releases", releaser, s.createRelease},
		{"GET", rel, viewer, s.getRelease},
		{"POST", rel + "/pause", releaser, s.pauseRelease},
		{"POST", rel + "/resume", releaser, s.resumeRelease},
		{"POST", rel + "/pull", releaser, s.pullRelease},
		{"POST", rel + "/promote", releaser, s.promoteRelease},
		{"GET", rel + "/gates", viewer, s.listGates},
		{"POST", rel + "/gates", releaser, s.postGate},
		{"GET", rel + "/holds", viewer, s.listHolds},
		{"POST", rel + "/holds", viewer, s.raiseHold},
		{"POST", prod + "/holds/{id}/resolve", releaser, s.resolveHold},
		{"GET", prod + "/status", viewer, s.status},
		{"GET", prod + "/installations", viewer, s.listInstallations},
		{"GET", "/api/v1/tokens", admin, s.listTokens},
		{"POST", "/api/v1/tokens", admin, s.createToken},
		{"DELETE", "/api/v1/tokens/{id}", admin, s.revokeToken},
		{"GET", "/api/v1/audit", viewer, s.listAudit},
		{"POST", "/api/v1/keys/rotate", admin, s.rotateKey},
	}
}

// routes builds the mux: public routes, the check-in, and the admin table
// behind authentication.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", s.ready)
	mux.Handle("GET /metrics", s.Metrics())
	mux.HandleFunc("POST /v1/checkin", s.checkIn)
	mux.HandleFunc("GET /v1/keys", s.publicKeys)
	for _, rt := range s.Routes() {
		mux.Handle(rt.Method+" "+rt.Path, s.authorize(rt))
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, release.ENOTFOUND, "no route "+r.Method+" "+r.URL.Path)
	})
	return s.recoverer(mux)
}

// recoverer turns a handler panic into a 500 problem and a log line.
func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.ErrorContext(r.Context(), "handler panic", "path", r.URL.Path, "panic", v)
				writeProblem(w, release.EINTERNAL, "internal error; see the server log")
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// authorize checks the bearer token and the route's role, then runs it.
func (s *Server) authorize(rt Route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		secret, ok := bearer(r)
		if !ok {
			writeProblem(w, release.EUNAUTHORIZED, "this route needs Authorization: Bearer <API token>")
			return
		}
		tok, err := s.store.Authenticate(r.Context(), secret)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if !tok.Role.AtLeast(rt.Role) {
			writeProblem(w, release.EFORBIDDEN, "this route needs the "+string(rt.Role)+" role; token "+tok.Name+" has "+string(tok.Role))
			return
		}
		if err := rt.handle(w, r, tok); err != nil {
			s.fail(w, r, err)
		}
	})
}

// changed rebuilds the snapshot after a change, so the next check-in served
// by this process sees it.
func (s *Server) changed(ctx context.Context) {
	if err := s.refresh(ctx); err != nil {
		s.log.ErrorContext(ctx, "rebuild snapshot after change", "err", err)
		s.markDirty()
	}
}

func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		writeProblem(w, codeUnavailable, "store not reachable")
		return
	}
	if !s.running.Load() {
		writeProblem(w, codeUnavailable, "background work not running")
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) publicKeys(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"keys": s.state.Load().ring.PublicKeys()})
}

// version parses the {version} path value.
func version(r *http.Request) (release.Version, error) {
	return release.ParseVersion(r.PathValue("version"))
}

// queryInt reads an integer query parameter within [1, max], def if absent.
func queryInt(r *http.Request, name string, def, max int) (int, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > max {
		return 0, release.Errorf(release.EINVALID, "%s must be an integer from 1 to %d", name, max)
	}
	return n, nil
}

// --- handlers ---

func (s *Server) whoami(w http.ResponseWriter, r *http.Request, who sqlstore.Token) error {
	writeJSON(w, http.StatusOK, map[string]string{"token_id": who.ID, "name": who.Name, "role": string(who.Role)})
	return nil
}

func (s *Server) listProducts(w http.ResponseWriter, r *http.Request, _ sqlstore.Token) error {
	ps, err := s.store.ListProducts(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, ps)
	return nil
}

func (s *Server) createProduct(w http.ResponseWriter, r *http.Request, who sqlstore.Token) error {
	var req struct {
		Name          string          `json:"name"`
		RequiredGates []string        `json:"required_gates"`
		Halt          *release.Policy `json:"halt"`
	}
	if err := decode(w, r, &req); err != nil {
		return err
	}
	p := release.Product{Name: req.Name, RequiredGates: req.RequiredGates}
	if req.Halt != nil {
		p.Policy = *req.Halt
	}
	p, err := s.store.CreateProduct(r.Context(), who.Name, p)
	if err != nil {
		return err
	}
	s.changed(r.Context())
	writeJSON(w, http.StatusCreated, p)
	return nil
}

func (s *Server) getProduct(w http.ResponseWriter, r *http.Request, _ sqlstore.Token) error {
	p, err := s.store.GetProduct(r.Context(), r.PathValue("product"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, p)
	return nil
}

func (s *Server) updateProduct(w http.ResponseWriter, r *http.Request, who sqlstore.Token) error {
	var req struct {
		RequiredGates *[]string       `json:"required_gates"`
		Halt          *release.Policy `json:"halt"`
	}
	if err := decode(w, r, &req); err != nil {
		return err
	}
	p, err := s.store.UpdateProduct(r.Context(), who.Name, r.PathValue("product"), func(p *release.Product) error {
		if req.RequiredGates != nil {
			p.RequiredGates = *req.RequiredGates
		}
		if req.Halt != nil {
			p.Policy = *req.Halt
		}
		return nil
	})
	if err != nil {
		return err
	}
	s.changed(r.Context())
	writeJSON(w, http.StatusOK, p)
	return nil
}

func (s *Server) listRings(w http.ResponseWriter, r *http.Request, _ sqlstore.Token) error {
	rings, err := s.store.ListRings(r.Context(), r.PathValue("product"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, rings)
	return nil
}

func (s *Server) createRing(w http.ResponseWriter, r *http.Request, who sqlstore.Token) error {
	var ring release.Ring
	if err := decode(w, r, &ring); err != nil {
		return err
	}
	product := r.PathValue("product")
	if ring.Product != "" && ring.Product != product {
		return release.Errorf(release.EINVALID, "ring body names product %s, the path %s", ring.Product, product)
	}
	ring.Product = product
	ring, err := s.store.CreateRing(r.Context(), who.Name, ring)
	if err != nil {
		return err
	}
	s.changed(r.Context())
	writeJSON(w, http.StatusCreated, ring)
	return nil
}

func (s *Server) updateRing(w http.ResponseWriter, r *http.Request, who sqlstore.Token) error {
	var req struct {
		Position       *int     `json:"position"`
		Soak           *string  `json:"soak"`
		RolloutPercent *float64 `json:"rollout_percent"`
		MinHealthy     *int     `json:"min_healthy"`
	}
	if err := decode(w, r, &req); err != nil {
		return err
	}
	ring, err := s.store.UpdateRing(r.Context(), who.Name, r.PathValue("product"), r.PathValue("ring"), func(ring *release.Ring) error {
		if req.Position != nil {
			ring.Position = *req.Position
		}
		if req.Soak != nil {
			d, err := time.ParseDuration(*req.Soak)
			if err != nil {
				return release.Errorf(release.EINVALID, "soak %q: %v", *req.Soak, err)
			}
			ring.SoakTime = d
		}
		if req.RolloutPercent != nil {
			ring.RolloutPercent = *req.RolloutPercent
		}
		if req.MinHealthy != nil {
			ring.MinHealthy = *req.MinHealthy
		}
		return nil
	})
	if err != nil {
		return err
	}
	s.changed(r.Context())
	writeJSON(w, http.StatusOK, ring)
	return nil
}

func (s *Server) listCustomers(w http.ResponseWriter, r *http.Request, _ sqlstore.Token) error {
	cs, err := s.store.ListCustomers(r.Context(), r.PathValue("product"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, cs)
	return nil
}

func (s *Server) createCustomer(w http.ResponseWriter, r *http.Request, who sqlstore.Token) error {
	var req struct {
		Name string `json:"name"`
		Ring string `json:"ring"`
	}
	if err := decode(w, r, &req); err != nil {
		return err
	}
	c, err := s.store.CreateCustomer(r.Context(), who.Name, release.Customer{Product: r.PathValue("product"), Name: req.Name, Ring: req.Ring})
	if err != nil {
		return err
	}
	s.changed(r.Context())
	writeJSON(w, http.StatusCreated, c)
	return nil
}

func (s *Server) updateCustomer(w http.ResponseWriter, r *http.Request, who sqlstore.Token) error {
	var req struct {
		Ring string `json:"ring"`
	}
	if err := decode(w, r, &req); err != nil {
		return err
	}
	c, err := s.store.MoveCustomer(r.Context(), who.Name, r.PathValue("product"), r.PathValue("customer"), req.Ring)
	if err != nil {
		return err
	}
	s.changed(r.Context())
	writeJSON(w, http.StatusOK, c)
	return nil
}

func (s *Server) listKeys(w http.ResponseWriter, r *http.Request, _ sqlstore.Token) error {
	ks, err := s.store.ListEnrollmentKeys(r.Context(), r.PathValue("product"), r.PathValue("customer"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, ks)
	return nil
}

func (s *Server) createKey(w http.ResponseWriter, r *http.Request, who sqlstore.Token) error {
	var req struct{}
	if err := decode(w, r, &req); err != nil {
		return err
	}
	k, secret, err := s.store.CreateEnrollmentKey(r.Context(), who.Name, r.PathValue("product"), r.PathValue("customer"))
	if err != nil {
		return err
	}
	s.changed(r.Context())
	writeJSON(w, http.StatusCreated, struct {
		sqlstore.EnrollmentKey
		Key string `json:"key"`
	}{k, secret})
	return nil
}

func (s *Server) revokeKey(w http.ResponseWriter, r *http.Request, who sqlstore.Token) error {
	if err := s.store.RevokeEnrollmentKey(r.Context(), who.Name, r.PathValue("product"), r.PathValue("customer"), r.PathValue("id")); err != nil {
		return err
	}
	s.changed(r.Context())
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) listReleases(w http.ResponseWriter, r *http.Request, _ sqlstore.Token) error {
	if _, err := s.store.GetProduct(r.Context(), r.PathValue("product")); err != nil {
		return err
	}
	rels, err := s.store.ListReleases(r.Context(), r.PathValue("product"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, rels)
	return nil
}

func (s *Server) createRelease(w http.ResponseWriter, r *http.Request, who sqlstore.Token) error {
	var req struct {
		Version        release.Version `json:"version"`
		NotesURL       string          `json:"notes_url"`
		RequiredStop   bool            `json:"required_stop"`
		RollbackSafeTo release.Version `json:"rollback_safe_to"`
	}
	if err := decode(w, r, &req); err != nil {
		return err
	}
	rel, err := s.store.CreateRelease(r.Context(), who.Name, release.Release{Product: r.PathValue("product"), Version: req.Version,
		NotesURL: req.NotesURL, RequiredStop: req.RequiredStop, RollbackSafeTo: req.RollbackSafeTo})
	if err != nil {
		return err
	}
	s.changed(r.Context())
	writeJSON(w, http.StatusCreated, rel)
	return nil
}

func (s *Server) getRelease(w http.ResponseWriter, r *http.Request, _ sqlstore.Token) error {
	v, err := version(r)
	if err != nil {
		return err
	}
	rel, err := s.store.GetRelease(r.Context(), r.PathValue("product"), v)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, rel)
	return nil
}

// changeRelease applies a status transition and answers the release.
func (s *Server) changeRelease(w http.ResponseWriter, r *http.Request, who sqlstore.Token, action, reason string,
	change func(rel *release.Release, others []release.Release) error) error {
	v, err := version(r)
	if err != nil {
		return err
	}
	rel, err := s.store.ChangeRelease(r.Context(), who.Name, action, reason, r.PathValue("product"), v, change)
	if err != nil {
		return err
	}
	s.changed(r.Context())
	writeJSON(w, http.StatusOK, rel)
	return nil
}

func (s *Server) pauseRelease(w http.ResponseWriter, r *http.Request, who sqlstore.Token) error {
	var req struct {
		Reason      string `json:"reason"`
		IncidentURL string `json:"incident_url"`
	}
	if err := decode(w, r, &req); err != nil {
		return err
	}
	return s.changeRelease(w, r, who, "release.pause", req.Reason, func(rel *release.Release, _ []release.Release) error {
		return rel.Pause(who.Name, req.Reason, req.IncidentURL, storeTime())
	})
}

func (s *Server) resumeRelease(w http.ResponseWriter, r *http.Request, who sqlstore.Token) error {
	var req struct {
		Reason string `json:"reason"`
	}
	if err := decode(w, r, &req); err != nil {
		return err
	}
	return s.changeRelease(w, r, who, "release.resume", req.Reason, func(rel *release.Release, _ []release.Release) error {
		return rel.Resume()
	})
}

func (s *Server) pullRelease(w http.ResponseWriter, r *http.Request, who sqlstore.Token) error {
	var req struct {
		Reason      string          `json:"reason"`
		IncidentURL string          `json:"incident_url"`
		Action      release.Action  `json:"action"`
		Target      release.Version `json:"target"`
	}
	if err := decode(w, r, &req); err != nil {
		return err
	}
	return s.changeRelease(w, r, who, "release.pull", req.Reason, func(rel *release.Release, others []release.Release) error {
		return rel.Pull(release.Pull{Reason: req.Reason, IncidentURL: req.IncidentURL, Action: req.Action, Target: req.Target, By: who.Name},
			others, storeTime())
	})
}

func (s *Server) promoteRelease(w http.ResponseWriter, r *http.Request, who sqlstore.Token) error {
	var req struct {
		Ring   string `json:"ring"`
		Reason string `json:"reason"`
	}
	if err := decode(w, r, &req); err != nil {
		return err
	}
	v, err := version(r)
	if err != nil {
		return err
	}
	rel, err := s.store.ForcePromote(r.Context(), r.PathValue("product"), v, who.Role, req.Ring, who.Name, req.Reason)
	if err != nil {
		return err
	}
	s.changed(r.Context())
	writeJSON(w, http.StatusOK, rel)
	return nil
}

func (s *Server) listGates(w http.ResponseWriter, r *http.Request, _ sqlstore.Token) error {
	v, err := version(r)
	if err != nil {
		return err
	}
	if _, err := s.store.GetRelease(r.Context(), r.PathValue("product"), v); err != nil {
		return err
	}
	gs, err := s.store.ListGateResults(r.Context(), r.PathValue("product"), v)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, gs)
	return nil
}

func (s *Server) postGate(w http.ResponseWriter, r *http.Request, who sqlstore.Token) error {
	var req struct {
		Name   string              `json:"name"`
		Status release.GateOutcome `json:"status"`
		URL    string              `json:"url"`
	}
	if err := decode(w, r, &req); err != nil {
		return err
	}
	v, err := version(r)
	if err != nil {
		return err
	}
	g, err := s.store.PostGateResult(r.Context(), release.GateResult{Product: r.PathValue("product"), Version: v,
		Name: req.Name, Status: req.Status, URL: req.URL, PostedBy: who.Name})
	if err != nil {
		return err
	}
	s.changed(r.Context())
	writeJSON(w, http.StatusCreated, g)
	return nil
}

func (s *Server) listHolds(w http.ResponseWriter, r *http.Request, _ sqlstore.Token) error {
	v, err := version(r)
	if err != nil {
		return err
	}
	if _, err := s.store.GetRelease(r.Context(), r.PathValue("product"), v); err != nil {
		return err
	}
	hs, err := s.store.ListHolds(r.Context(), r.PathValue("product"), v)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, hs)
	return nil
}

func (s *Server) raiseHold(w http.ResponseWriter, r *http.Request, who sqlstore.Token) error {
	var req struct {
		Reason string `json:"reason"`
	}
	if err := decode(w, r, &req); err != nil {
		return err
	}
	v, err := version(r)
	if err != nil {
		return err
	}
	h, err := s.store.RaiseHold(r.Context(), release.Hold{Product: r.PathValue("product"), Version: v, Reason: req.Reason, RaisedBy: who.Name})
	if err != nil {
		return err
	}
	s.changed(r.Context())
	writeJSON(w, http.StatusCreated, h)
	return nil
}

func (s *Server) resolveHold(w http.ResponseWriter, r *http.Request, who sqlstore.Token) error {
	var req struct {
		Resolution string `json:"resolution"`
	}
	if err := decode(w, r, &req); err != nil {
		return err
	}
	h, err := s.store.ResolveHold(r.Context(), r.PathValue("product"), r.PathValue("id"), who.Name, req.Resolution)
	if err != nil {
		return err
	}
	s.changed(r.Context())
	writeJSON(w, http.StatusOK, h)
	return nil
}

func (s *Server) status(w http.ResponseWriter, r *http.Request, _ sqlstore.Token) error {
	product := r.PathValue("product")
	st, err := s.state.Load().snap.Status(product)
	if err != nil {
		return err
	}
	// Newest first, as people read it.
	for i, j := 0, len(st)-1; i < j; i, j = i+1, j-1 {
		st[i], st[j] = st[j], st[i]
	}
	if st == nil {
		st = []release.ReleaseStatus{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"product": product, "releases": st})
	return nil
}

func (s *Server) listInstallations(w http.ResponseWriter, r *http.Request, _ sqlstore.Token) error {
	limit, err := queryInt(r, "limit", 100, 10000)
	if err != nil {
		return err
	}
	if _, err := s.store.GetProduct(r.Context(), r.PathValue("product")); err != nil {
		return err
	}
	is, err := s.store.ListInstallations(r.Context(), r.PathValue("product"), limit)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, is)
	return nil
}

func (s *Server) listTokens(w http.ResponseWriter, r *http.Request, _ sqlstore.Token) error {
	ts, err := s.store.ListTokens(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, ts)
	return nil
}

func (s *Server) createToken(w http.ResponseWriter, r *http.Request, who sqlstore.Token) error {
	var req struct {
		Name string       `json:"name"`
		Role release.Role `json:"role"`
	}
	if err := decode(w, r, &req); err != nil {
		return err
	}
	t, secret, err := s.store.CreateToken(r.Context(), who.Name, req.Name, req.Role)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, struct {
		sqlstore.Token
		Secret string `json:"token"`
	}{t, secret})
	return nil
}

func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request, who sqlstore.Token) error {
	if err := s.store.RevokeToken(r.Context(), who.Name, r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) listAudit(w http.ResponseWriter, r *http.Request, _ sqlstore.Token) error {
	limit, err := queryInt(r, "limit", 100, 1000)
	if err != nil {
		return err
	}
	var before int64
	if b := r.URL.Query().Get("before"); b != "" {
		if before, err = strconv.ParseInt(b, 10, 64); err != nil || before < 1 {
			return release.Errorf(release.EINVALID, "before must be a positive audit entry id")
		}
	}
	es, err := s.store.ListAudit(r.Context(), before, limit)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, es)
	return nil
}

func (s *Server) rotateKey(w http.ResponseWriter, r *http.Request, who sqlstore.Token) error {
	var req struct{}
	if err := decode(w, r, &req); err != nil {
		return err
	}
	k, err := sign.GenerateKey(rand.Reader, storeTime())
	if err != nil {
		return err
	}
	if _, err := s.store.AddSigningKey(r.Context(), who.Name, k, false); err != nil {
		return err
	}
	s.changed(r.Context())
	writeJSON(w, http.StatusCreated, k.Public())
	return nil
}
