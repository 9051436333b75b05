package server

import (
	"net/http"

	"github.com/ringfence/ringfence/api"
	"github.com/ringfence/ringfence/release"
)

// The admin API of installations: the list and one installation's history.

// listInstallations answers GET …/installations: most recently seen
// first, filtered in the store (api.InstallationQuery), so the limit counts
// matching installations.
func (s *Server) listInstallations(r *http.Request, _ release.Token) ([]release.Installation, error) {
	q, err := api.ReadInstallationQuery(r.URL.Query())
	if err != nil {
		return nil, err
	}
	if q.Limit, err = queryInt(r, "limit", 100, 10000); err != nil {
		return nil, err
	}
	product, err := s.existingProduct(r)
	if err != nil {
		return nil, err
	}
	return s.store.QueryInstallations(r.Context(), product, release.InstallationFilter(q))
}

// installationHistory answers GET …/installations/{instance}: one
// installation's records, events and damage reports (?limit=, default 100).
func (s *Server) installationHistory(r *http.Request, _ release.Token) (release.InstallationHistory, error) {
	limit, err := queryInt(r, "limit", 100, 10000)
	if err != nil {
		return release.InstallationHistory{}, err
	}
	product, err := s.existingProduct(r)
	if err != nil {
		return release.InstallationHistory{}, err
	}
	return s.store.InstallationHistory(r.Context(), product, r.PathValue("instance"), limit)
}
