package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"
	"time"

	"github.com/ringfence/ringfence/api"
	"github.com/ringfence/ringfence/internal/problem"
	"github.com/ringfence/ringfence/release"
)

// This file is the admin API's route table, with the role each route needs,
// and the mux around it: authentication, the public and health routes, 405s
// and panics. The handlers are in a file per resource (products_api.go,
// releases_api.go, incidents.go, ...), their shapes in adapters.go.

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
		inc      = release.RoleIncident
		admin    = release.RoleAdmin
	)
	const (
		prod = "/api/v1/products/{product}"
		rel  = prod + "/releases/{version}"
	)
	return []Route{
		{"GET", "/api/v1/whoami", viewer, reply(s.whoami)},
		{"GET", "/api/v1/products", viewer, reply(s.listProducts)},
		{"POST", "/api/v1/products", admin, create(s, s.createProduct)},
		{"GET", prod, viewer, reply(s.getProduct)},
		{"PATCH", prod, admin, update(s, s.updateProduct)},
		{"GET", prod + "/rings", viewer, reply(s.listRings)},
		{"POST", prod + "/rings", admin, create(s, s.createRing)},
		{"GET", prod + "/rings/{ring}", viewer, reply(s.getRing)},
		{"PATCH", prod + "/rings/{ring}", admin, update(s, s.updateRing)},
		{"GET", prod + "/customers", viewer, reply(s.listCustomers)},
		{"POST", prod + "/customers", admin, create(s, s.createCustomer)},
		{"GET", prod + "/customers/{customer}", viewer, reply(s.getCustomer)},
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

		// The status page: components, incidents, templates, the severity
		// configuration, maintenance.
		{"GET", "/api/v1/components", viewer, reply(s.listComponents)},
		{"POST", "/api/v1/components", inc, apply(http.StatusCreated, nil, s.createComponent)},
		{"PATCH", "/api/v1/components/{name}", inc, apply(http.StatusOK, nil, s.updateComponent)},
		{"POST", "/api/v1/components/{name}/status", inc, apply(http.StatusOK, nil, s.setComponentStatus)},
		{"GET", "/api/v1/incidents", viewer, reply(s.listIncidents)},
		{"POST", "/api/v1/incidents", inc, create(s, s.declareIncident)},
		{"GET", "/api/v1/incidents/{id}", viewer, reply(s.getIncident)},
		// An update may raise the severity and so pause releases: the snapshot is rebuilt before answering.
		{"POST", "/api/v1/incidents/{id}/updates", inc, create(s, s.updateIncident)},
		{"POST", "/api/v1/incidents/{id}/resolve", inc, apply(http.StatusOK, nil, s.resolveIncident)},
		{"POST", "/api/v1/incidents/{id}/publish", inc, apply(http.StatusOK, nil, s.publishIncident)},
		{"PUT", "/api/v1/incidents/{id}/postmortem", inc, apply(http.StatusOK, nil, s.setPostmortem)},
		{"PUT", "/api/v1/incidents/{id}/roles/{role}", inc, apply(http.StatusOK, nil, s.assignRole)},
		{"DELETE", "/api/v1/incidents/{id}/roles/{role}", inc, remove(nil, s.unassignRole)},
		{"GET", "/api/v1/incident-templates", viewer, reply(s.listTemplates)},
		{"PUT", "/api/v1/incident-templates/{name}", inc, apply(http.StatusOK, nil, s.saveTemplate)},
		{"GET", "/api/v1/incident-config", viewer, reply(s.incidentConfig)},
		{"PUT", "/api/v1/incident-config", admin, apply(http.StatusOK, nil, s.setIncidentConfig)},
		{"GET", "/api/v1/maintenances", viewer, reply(s.listMaintenances)},
		{"POST", "/api/v1/maintenances", inc, apply(http.StatusCreated, nil, s.scheduleMaintenance)},
		{"GET", "/api/v1/maintenances/{id}", viewer, reply(s.getMaintenance)},
		{"POST", "/api/v1/maintenances/{id}/status", inc, apply(http.StatusOK, nil, s.moveMaintenance)},

		// Subscribers are not part of the check-in snapshot: no rebuild.
		{"GET", "/api/v1/subscribers", viewer, reply(s.listSubscribers)},
		{"POST", "/api/v1/subscribers", inc, apply(http.StatusCreated, nil, s.createSubscriber)},
		{"DELETE", "/api/v1/subscribers/{id}", inc, remove(nil, s.deleteSubscriber)},
		{"GET", "/api/v1/deliveries", viewer, reply(s.listDeliveries)},
		{"POST", "/api/v1/deliveries/{id}/replay", inc, apply(http.StatusOK, nil, s.replayDelivery)},
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
			writeProblem(w, release.ENOTFOUND, "metrics are not served on this address: they are on the server's metrics address, or here to a bearer of the metrics token")
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
