package server

import (
	"context"
	"net/http"
	"strings"

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
	if err := s.filterNamesExist(r.Context(), product, q); err != nil {
		return nil, err
	}
	return s.store.QueryInstallations(r.Context(), product, release.InstallationFilter(q))
}

// filterNamesExist refuses a filter on a customer or ring the product does
// not have: it would match nothing, and an empty list would read as "no
// installations there" rather than "misspelt".
func (s *Server) filterNamesExist(ctx context.Context, product string, q api.InstallationQuery) error {
	if q.Customer != "" {
		ok, err := s.store.CustomerExists(ctx, product, q.Customer)
		if err != nil {
			return err
		}
		if !ok {
			return release.Errorf(release.ENOTFOUND, "customer %q of %s not found", q.Customer, product)
		}
	}
	if q.Ring == "" {
		return nil
	}
	rings, err := s.store.ListRings(ctx, product)
	if err != nil {
		return err
	}
	names := make([]string, len(rings))
	for i, ring := range rings {
		if ring.Name == q.Ring {
			return nil
		}
		names[i] = ring.Name
	}
	return release.Errorf(release.ENOTFOUND, "ring %q of %s not found; its rings: %s", q.Ring, product, strings.Join(names, ", "))
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
