package server

import (
	"net/http"
	"strings"

	"github.com/ringfence/ringfence/api"
	"github.com/ringfence/ringfence/release"
)

// checkUpgradeTarget refuses a pull whose upgrade target has not passed
// its product's gates, unless the request forces it with a reason: a pull
// offers its target to every installation on the pulled release at once,
// past the rings.
func (s *Server) checkUpgradeTarget(r *http.Request, req api.PullRequest) error {
	if req.Action != release.ActionUpgrade || strings.TrimSpace(req.ForceReason) != "" {
		return nil
	}
	product := r.PathValue("product")
	if _, err := s.store.GetRelease(r.Context(), product, req.Target); release.ErrorCode(err) == release.ENOTFOUND {
		return nil // the pull itself says the target does not exist
	} else if err != nil {
		return err
	}
	p, err := s.store.GetProduct(r.Context(), product)
	if err != nil {
		return err
	}
	results, err := s.store.ListGateResults(r.Context(), product, req.Target)
	if err != nil {
		return err
	}
	if missing := release.GatesNotPassed(p, results); len(missing) > 0 {
		return release.Errorf(release.ECONFLICT, "upgrade target %s@%s has not passed the gates of %s (%s): pass them first, or force it with a reason (ringfence release pull ... --force --force-reason TEXT)",
			product, req.Target, product, strings.Join(missing, ", "))
	}
	return nil
}
