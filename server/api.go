package server

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ringfence/ringfence/api"
	"github.com/ringfence/ringfence/internal/problem"
	"github.com/ringfence/ringfence/release"
	"github.com/ringfence/ringfence/sign"
)

// Route is one admin API route: who may call it. The route table is the
// single place roles are decided; a test walks all of it.
type Route struct {
	Method string
	Path   string
	// Role is the weakest role allowed.
	Role   release.Role
	handle handlerFunc
}

// handlerFunc serves one authenticated admin route; an error it returns is
// answered as a problem by authorize.
type handlerFunc func(w http.ResponseWriter, r *http.Request, who release.Token) error

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
	return append(append([]Route{
		{"GET", "/api/v1/whoami", viewer, reply(s.whoami)},
		{"GET", "/api/v1/products", viewer, reply(s.listProducts)},
		{"POST", "/api/v1/products", admin, create(s, s.createProduct)},
		{"GET", prod, viewer, reply(s.getProduct)},
		{"PATCH", prod, admin, update(s, s.updateProduct)},
		{"GET", prod + "/rings", viewer, reply(s.listRings)},
		{"POST", prod + "/rings", admin, create(s, s.createRing)},
		{"PATCH", prod + "/rings/{ring}", admin, update(s, s.updateRing)},
		{"GET", prod + "/customers", viewer, reply(s.listCustomers)},
		{"POST", prod + "/customers", admin, create(s, s.createCustomer)},
		{"PATCH", prod + "/customers/{customer}", admin, update(s, s.updateCustomer)},
		{"GET", prod + "/customers/{customer}/keys", admin, reply(s.listKeys)},
		// Offline bundles and exports change no fact of the snapshot.
		{"POST", prod + "/customers/{customer}/bundles", releaser, apply(http.StatusCreated, nil, s.createBundle)},
		{"POST", "/api/v1/exports", releaser, apply(http.StatusOK, nil, s.importExport)},
		{"POST", prod + "/customers/{customer}/keys", admin, create(s, s.createKey)},
		{"DELETE", prod + "/customers/{customer}/keys/{id}", admin, remove(s.changed, s.revokeKey)},
		{"GET", prod + "/releases", viewer, reply(s.listReleases)},
		{"POST", prod + "/releases", releaser, create(s, s.createRelease)},
		{"GET", rel, viewer, reply(s.getRelease)},
		{"POST", rel + "/pause", releaser, update(s, s.pauseRelease)},
		{"POST", rel + "/resume", releaser, update(s, s.resumeRelease)},
		{"POST", rel + "/pull", releaser, update(s, s.pullRelease)},
		{"POST", rel + "/promote", releaser, update(s, s.promoteRelease)},
		{"GET", rel + "/gates", viewer, reply(s.listGates)},
		{"POST", rel + "/gates", releaser, create(s, s.postGate)},
		{"GET", rel + "/holds", viewer, reply(s.listHolds)},
		{"POST", rel + "/holds", viewer, create(s, s.raiseHold)},
		{"POST", prod + "/holds/{id}/resolve", releaser, update(s, s.resolveHold)},
		{"GET", prod + "/status", viewer, reply(s.status)},
		{"GET", prod + "/installations", viewer, reply(s.listInstallations)},
		{"GET", prod + "/installations/{instance}", viewer, reply(s.installationHistory)},
		{"GET", "/api/v1/tokens", admin, reply(s.listTokens)},
		// API tokens are not part of the check-in snapshot: no rebuild.
		{"POST", "/api/v1/tokens", admin, apply(http.StatusCreated, nil, s.createToken)},
		{"DELETE", "/api/v1/tokens/{id}", admin, remove(nil, s.revokeToken)},
		// Console accounts are not part of the check-in snapshot either.
		{"GET", "/api/v1/users", admin, reply(s.listUsers)},
		{"POST", "/api/v1/users", admin, apply(http.StatusCreated, nil, s.createUser)},
		{"DELETE", "/api/v1/users/{name}", admin, remove(nil, s.deleteUser)},
		{"GET", "/api/v1/audit", viewer, reply(s.listAudit)},
		{"POST", "/api/v1/keys/rotate", admin, create(s, s.rotateKey)},
	}, s.incidentRoutes()...), s.subscriberRoutes()...)
}

// routes builds the mux: public routes, the check-in, and the admin table
// behind authentication.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", s.ready)
	if s.cfg.MetricsToken != "" {
		mux.Handle("GET /metrics", s.metricsBehindToken())
	}
	mux.HandleFunc("POST /v1/checkin", s.checkIn)
	mux.HandleFunc("GET /v1/keys", s.publicKeys)
	for _, rt := range s.Routes() {
		mux.Handle(rt.Method+" "+rt.Path, s.authorize(rt))
	}
	s.statusRoutes(mux)
	s.console.mount(mux)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if allow := allowed(mux, r); len(allow) > 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			writeProblem(w, problem.MethodNotAllowed, r.Method+" is not allowed on "+r.URL.Path+"; allowed: "+strings.Join(allow, ", "))
			return
		}
		if r.URL.Path == "/metrics" {
			writeProblem(w, release.ENOTFOUND, "metrics are served on serve --metrics-listen, or here with --metrics-token")
			return
		}
		s.servePublic(w, r)
	})
	return s.recoverer(mux)
}

// allowed lists the methods mux has a route for at r's path (the catch-all
// aside), for a 405's Allow header.
func allowed(mux *http.ServeMux, r *http.Request) []string {
	var out []string
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := mux.Handler(probe); pattern != "" && pattern != "/" {
			out = append(out, m)
		}
	}
	return out
}

// metricsBehindToken serves /metrics to requests bearing the metrics
// token only (compared in constant time).
func (s *Server) metricsBehindToken() http.Handler {
	want := sha256.Sum256([]byte(s.cfg.MetricsToken))
	metrics := s.Metrics()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, _ := bearer(r)
		got := sha256.Sum256([]byte(tok))
		if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			writeProblem(w, release.EUNAUTHORIZED, "/metrics needs Authorization: Bearer <metrics token>")
			return
		}
		metrics.ServeHTTP(w, r)
	})
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
		writeProblem(w, problem.Unavailable, "store not reachable")
		return
	}
	if !s.running.Load() {
		writeProblem(w, problem.Unavailable, "background work not running")
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) publicKeys(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, api.PublicKeys{Keys: s.state.Load().ring.PublicKeys()})
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

// --- handler shapes ---
//
// Every admin handler is one of three shapes; the adapters below hold the
// shape, so a handler is only the part that differs: reading its inputs and
// calling the store.

// reply adapts a read: it answers what get returns with 200 OK and its
// ETag, which a PATCH may name in If-Match.
func reply[T any](get func(r *http.Request, who release.Token) (T, error)) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, who release.Token) error {
		v, err := get(r, who)
		if err != nil {
			return err
		}
		writeTagged(w, http.StatusOK, v)
		return nil
	}
}

// writeTagged answers v as JSON with status and an ETag of its encoding.
func writeTagged(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeJSON(w, status, v) // reports nothing either way; keep the answer
		return
	}
	w.Header().Set("ETag", etagOf(b))
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// etagOf is the entity tag of a JSON encoding.
func etagOf(b []byte) string {
	sum := sha256.Sum256(b)
	return `"` + hex.EncodeToString(sum[:12]) + `"`
}

// ifMatch checks a PATCH's If-Match header against the resource v as it is
// now (inside the transaction that changes it): absent or * matches;
// anything else must be v's ETag, or the change is refused with 412, so a
// read-modify-write cannot overwrite a change it did not see.
func ifMatch(r *http.Request, v any) error {
	m := strings.TrimSpace(r.Header.Get("If-Match"))
	if m == "" || m == "*" {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("compute ETag: %w", err)
	}
	tag := etagOf(b)
	for _, t := range strings.Split(m, ",") {
		if strings.TrimPrefix(strings.TrimSpace(t), "W/") == tag {
			return nil
		}
	}
	return &httpError{code: problem.PreconditionFailed, msg: "the resource changed since it was read (If-Match " + m + ", now " + tag + "); read it again"}
}

// apply adapts a change: it decodes the request body into a Req, runs do,
// then refresh (unless nil), so the next check-in served by this process
// sees the change before the caller hears of it, and answers what do
// returns with status.
func apply[Req, T any](status int, refresh func(context.Context), do func(r *http.Request, who release.Token, req Req) (T, error)) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, who release.Token) error {
		var req Req
		if err := decode(w, r, &req); err != nil {
			return err
		}
		v, err := do(r, who, req)
		if err != nil {
			return err
		}
		if refresh != nil {
			refresh(r.Context())
		}
		writeTagged(w, status, v)
		return nil
	}
}

// create adapts a change that makes something: 201 Created.
func create[Req, T any](s *Server, do func(r *http.Request, who release.Token, req Req) (T, error)) handlerFunc {
	return apply(http.StatusCreated, s.changed, do)
}

// update adapts a change to something that exists: 200 OK.
func update[Req, T any](s *Server, do func(r *http.Request, who release.Token, req Req) (T, error)) handlerFunc {
	return apply(http.StatusOK, s.changed, do)
}

// remove adapts a deletion, which has no body either way: it runs do, then
// refresh (unless nil), and answers 204 No Content.
func remove(refresh func(context.Context), do func(r *http.Request, who release.Token) error) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, who release.Token) error {
		if err := do(r, who); err != nil {
			return err
		}
		if refresh != nil {
			refresh(r.Context())
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}

// existingRelease parses the {version} path value and checks that the
// release exists, so a listing under an unknown release is a 404, not [].
func (s *Server) existingRelease(r *http.Request) (release.Version, error) {
	v, err := version(r)
	if err != nil {
		return release.Version{}, err
	}
	if _, err := s.store.GetRelease(r.Context(), r.PathValue("product"), v); err != nil {
		return release.Version{}, err
	}
	return v, nil
}

// existingProduct checks that the {product} path value names a product and
// returns the name, so a listing under an unknown product is a 404, not [].
func (s *Server) existingProduct(r *http.Request) (string, error) {
	product := r.PathValue("product")
	if _, err := s.store.GetProduct(r.Context(), product); err != nil {
		return "", err
	}
	return product, nil
}

// --- handlers ---

func (s *Server) whoami(_ *http.Request, who release.Token) (api.Identity, error) {
	return api.Identity{TokenID: who.ID, Name: who.Name, Role: who.Role}, nil
}

func (s *Server) listProducts(r *http.Request, _ release.Token) ([]release.Product, error) {
	return s.store.ListProducts(r.Context())
}

func (s *Server) createProduct(r *http.Request, who release.Token, req api.NewProduct) (release.Product, error) {
	p := release.Product{Name: req.Name, RequiredGates: req.RequiredGates}
	if req.Halt != nil {
		p.Policy = *req.Halt
	}
	return s.store.CreateProduct(r.Context(), who.Actor(), p)
}

func (s *Server) getProduct(r *http.Request, _ release.Token) (release.Product, error) {
	return s.store.GetProduct(r.Context(), r.PathValue("product"))
}

func (s *Server) updateProduct(r *http.Request, who release.Token, req api.ProductPatch) (release.Product, error) {
	return s.store.UpdateProduct(r.Context(), who.Actor(), r.PathValue("product"), func(p *release.Product) error {
		if err := ifMatch(r, *p); err != nil {
			return err
		}
		if req.RequiredGates != nil {
			p.RequiredGates = *req.RequiredGates
		}
		if req.Halt != nil {
			return p.Policy.PatchJSON(req.Halt)
		}
		return nil
	})
}

func (s *Server) listRings(r *http.Request, _ release.Token) ([]release.Ring, error) {
	product, err := s.existingProduct(r)
	if err != nil {
		return nil, err
	}
	return s.store.ListRings(r.Context(), product)
}

func (s *Server) createRing(r *http.Request, who release.Token, ring release.Ring) (release.Ring, error) {
	product := r.PathValue("product")
	if ring.Product != "" && ring.Product != product {
		return release.Ring{}, release.Errorf(release.EINVALID, "ring body names product %s, the path %s", ring.Product, product)
	}
	ring.Product = product
	return s.store.CreateRing(r.Context(), who.Actor(), ring)
}

func (s *Server) updateRing(r *http.Request, who release.Token, req api.RingPatch) (release.Ring, error) {
	return s.store.UpdateRing(r.Context(), who.Actor(), r.PathValue("product"), r.PathValue("ring"), func(ring *release.Ring) error {
		if err := ifMatch(r, *ring); err != nil {
			return err
		}
		if req.Position != nil {
			ring.Position = *req.Position
		}
		if req.Soak != nil {
			d, err := release.ParseDuration(*req.Soak)
			if err != nil {
				return release.Errorf(release.EINVALID, "soak: %s", release.ErrorMessage(err))
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
}

func (s *Server) listCustomers(r *http.Request, _ release.Token) ([]release.Customer, error) {
	product, err := s.existingProduct(r)
	if err != nil {
		return nil, err
	}
	return s.store.ListCustomers(r.Context(), product)
}

func (s *Server) createCustomer(r *http.Request, who release.Token, req api.NewCustomer) (release.Customer, error) {
	return s.store.CreateCustomer(r.Context(), who.Actor(), release.Customer{Product: r.PathValue("product"), Name: req.Name, Ring: req.Ring})
}

func (s *Server) updateCustomer(r *http.Request, who release.Token, req api.CustomerPatch) (release.Customer, error) {
	return s.store.MoveCustomer(r.Context(), who.Actor(), r.PathValue("product"), r.PathValue("customer"), req.Ring)
}

func (s *Server) listKeys(r *http.Request, _ release.Token) ([]release.EnrollmentKey, error) {
	product, err := s.existingProduct(r)
	if err != nil {
		return nil, err
	}
	customer := r.PathValue("customer")
	if ok, err := s.store.CustomerExists(r.Context(), product, customer); err != nil {
		return nil, err
	} else if !ok {
		return nil, release.Errorf(release.ENOTFOUND, "customer %s of %s not found", customer, product)
	}
	return s.store.ListEnrollmentKeys(r.Context(), product, customer)
}

func (s *Server) createKey(r *http.Request, who release.Token, _ api.Empty) (api.EnrollmentKey, error) {
	k, secret, err := s.store.CreateEnrollmentKey(r.Context(), who.Actor(), r.PathValue("product"), r.PathValue("customer"))
	return api.EnrollmentKey{EnrollmentKey: k, Key: secret}, err
}

func (s *Server) revokeKey(r *http.Request, who release.Token) error {
	return s.store.RevokeEnrollmentKey(r.Context(), who.Actor(), r.PathValue("product"), r.PathValue("customer"), r.PathValue("id"))
}

func (s *Server) listReleases(r *http.Request, _ release.Token) ([]release.Release, error) {
	product, err := s.existingProduct(r)
	if err != nil {
		return nil, err
	}
	return s.store.ListReleases(r.Context(), product)
}

func (s *Server) createRelease(r *http.Request, who release.Token, req api.NewRelease) (release.Release, error) {
	return s.store.CreateRelease(r.Context(), who.Actor(), release.Release{Product: r.PathValue("product"), Version: req.Version,
		NotesURL: req.NotesURL, RequiredStop: req.RequiredStop, RollbackSafeTo: req.RollbackSafeTo})
}

func (s *Server) getRelease(r *http.Request, _ release.Token) (release.Release, error) {
	v, err := version(r)
	if err != nil {
		return release.Release{}, err
	}
	return s.store.GetRelease(r.Context(), r.PathValue("product"), v)
}

// changeRelease applies a status transition to the release in the path,
// recording action with reason in the audit log.
func (s *Server) changeRelease(r *http.Request, who release.Token, action, reason string,
	change func(rel *release.Release, others []release.Release) error) (release.Release, error) {
	v, err := version(r)
	if err != nil {
		return release.Release{}, err
	}
	return s.store.ChangeRelease(r.Context(), who.Actor(), action, reason, r.PathValue("product"), v, change)
}

func (s *Server) pauseRelease(r *http.Request, who release.Token, req api.Pause) (release.Release, error) {
	return s.changeRelease(r, who, "release.pause", req.Reason, func(rel *release.Release, _ []release.Release) error {
		return rel.Pause(who.Actor(), req.Reason, req.IncidentURL, storeTime())
	})
}

func (s *Server) resumeRelease(r *http.Request, who release.Token, req api.Resume) (release.Release, error) {
	return s.changeRelease(r, who, "release.resume", req.Reason, func(rel *release.Release, _ []release.Release) error {
		return rel.Resume()
	})
}

func (s *Server) promoteRelease(r *http.Request, who release.Token, req api.Promote) (release.Release, error) {
	v, err := version(r)
	if err != nil {
		return release.Release{}, err
	}
	return s.store.ForcePromote(r.Context(), r.PathValue("product"), v, who.Role, req.Ring, who.Actor(), req.Reason)
}

func (s *Server) listGates(r *http.Request, _ release.Token) ([]release.GateResult, error) {
	v, err := s.existingRelease(r)
	if err != nil {
		return nil, err
	}
	return s.store.ListGateResults(r.Context(), r.PathValue("product"), v)
}

func (s *Server) postGate(r *http.Request, who release.Token, req api.NewGateResult) (release.GateResult, error) {
	v, err := version(r)
	if err != nil {
		return release.GateResult{}, err
	}
	return s.store.PostGateResult(r.Context(), release.GateResult{Product: r.PathValue("product"), Version: v,
		Name: req.Name, Status: req.Status, URL: req.URL, PostedBy: who.Actor()})
}

func (s *Server) listHolds(r *http.Request, _ release.Token) ([]release.Hold, error) {
	v, err := s.existingRelease(r)
	if err != nil {
		return nil, err
	}
	return s.store.ListHolds(r.Context(), r.PathValue("product"), v)
}

func (s *Server) raiseHold(r *http.Request, who release.Token, req api.NewHold) (release.Hold, error) {
	v, err := version(r)
	if err != nil {
		return release.Hold{}, err
	}
	return s.store.RaiseHold(r.Context(), release.Hold{Product: r.PathValue("product"), Version: v, Reason: req.Reason, RaisedBy: who.Actor()})
}

func (s *Server) resolveHold(r *http.Request, who release.Token, req api.HoldResolution) (release.Hold, error) {
	return s.store.ResolveHold(r.Context(), r.PathValue("product"), r.PathValue("id"), who.Actor(), req.Resolution)
}

func (s *Server) status(r *http.Request, _ release.Token) (api.Status, error) {
	product := r.PathValue("product")
	st, err := s.state.Load().snap.Status(product)
	if err != nil {
		return api.Status{}, err
	}
	// Newest first, as people read it.
	for i, j := 0, len(st)-1; i < j; i, j = i+1, j-1 {
		st[i], st[j] = st[j], st[i]
	}
	if st == nil {
		st = []release.ReleaseStatus{}
	}
	quotas := s.quotas.usage(product, s.state.Load().keyCustomers(), time.Now())
	return api.Status{Product: product, Releases: st, Quotas: quotas}, nil
}

func (s *Server) listInstallations(r *http.Request, _ release.Token) ([]release.Installation, error) {
	limit, err := queryInt(r, "limit", 100, 10000)
	if err != nil {
		return nil, err
	}
	product, err := s.existingProduct(r)
	if err != nil {
		return nil, err
	}
	return s.store.ListInstallations(r.Context(), product, limit)
}

func (s *Server) listTokens(r *http.Request, _ release.Token) ([]release.Token, error) {
	return s.store.ListTokens(r.Context())
}

func (s *Server) createToken(r *http.Request, who release.Token, req api.NewToken) (api.Token, error) {
	t, secret, err := s.store.CreateToken(r.Context(), who.Actor(), req.Name, req.Role)
	return api.Token{Token: t, Secret: secret}, err
}

func (s *Server) revokeToken(r *http.Request, who release.Token) error {
	return s.store.RevokeToken(r.Context(), who.Actor(), r.PathValue("id"))
}

func (s *Server) listAudit(r *http.Request, _ release.Token) ([]release.AuditEntry, error) {
	limit, err := queryInt(r, "limit", 100, 1000)
	if err != nil {
		return nil, err
	}
	var before int64
	if b := r.URL.Query().Get("before"); b != "" {
		if before, err = strconv.ParseInt(b, 10, 64); err != nil || before < 1 {
			return nil, release.Errorf(release.EINVALID, "before must be a positive audit entry id")
		}
	}
	return s.store.ListAudit(r.Context(), before, limit)
}

func (s *Server) rotateKey(r *http.Request, who release.Token, _ api.Empty) (sign.PublicKey, error) {
	k, err := sign.GenerateKey(rand.Reader, storeTime())
	if err != nil {
		return sign.PublicKey{}, err
	}
	if _, err := s.store.AddSigningKey(r.Context(), who.Actor(), k, false); err != nil {
		return sign.PublicKey{}, err
	}
	return k.Public(), nil
}
