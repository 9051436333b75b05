package server

import (
	"net/http"

	"github.com/ringfence/ringfence/release"
)

// The admin API of installations: the list and one installation's history.

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
