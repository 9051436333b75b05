package server

import (
	"net/http"

	"github.com/ringfence/ringfence/api"
	"github.com/ringfence/ringfence/release"
)

// The admin API of the audit log.

// listAudit answers GET /api/v1/audit: entries newest first, filtered in
// the store (api.AuditQuery), so the limit counts matching entries.
func (s *Server) listAudit(r *http.Request, _ release.Token) ([]release.AuditEntry, error) {
	q, err := api.ReadAuditQuery(r.URL.Query())
	if err != nil {
		return nil, err
	}
	if q.Limit, err = queryInt(r, "limit", 100, 1000); err != nil {
		return nil, err
	}
	return s.store.QueryAudit(r.Context(), release.AuditFilter(q))
}
