package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/ringfence/ringfence/internal/problem"
	"github.com/ringfence/ringfence/release"
)

// The admin handlers' shapes. Every admin handler is one of three shapes;
// the adapters here hold the shape, so a handler is only the part that
// differs: reading its inputs and calling the store. Shared readers of path
// and query values are here too.

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

// changed rebuilds the snapshot after a change, so the next check-in served
// by this process sees it.
func (s *Server) changed(ctx context.Context) {
	if err := s.refresh(ctx); err != nil {
		s.log.ErrorContext(ctx, "rebuild snapshot after change", "err", err)
		s.markDirty()
	}
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
