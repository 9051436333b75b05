package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/ringfence/ringfence/internal/problem"
	"github.com/ringfence/ringfence/release"
)

// writeProblem answers with a problem body.
func writeProblem(w http.ResponseWriter, code, detail string) {
	status := problem.Status(code)
	if code == release.EINTERNAL || status == http.StatusInternalServerError {
		code = release.EINTERNAL
	}
	p := problem.Details{
		Type:   "https://ringfence.dev/problems/" + code,
		Title:  http.StatusText(status),
		Status: status,
		Detail: detail,
		Code:   code,
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="ringfence"`)
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(p)
}

// fail answers err as a problem: domain errors with their code and message,
// anything else as 500 with the detail only in the log.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	code := release.ErrorCode(err)
	var he *httpError
	if errors.As(err, &he) {
		if he.retryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(he.retryAfter))
		}
		writeProblem(w, he.code, he.msg)
		return
	}
	if code == release.EINTERNAL {
		s.log.ErrorContext(r.Context(), "request failed", slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Any("err", err))
		writeProblem(w, code, "internal error; see the server log")
		return
	}
	writeProblem(w, code, release.ErrorMessage(err))
}

// httpError is a transport-level failure (size, rate, availability) that has
// no domain code.
type httpError struct {
	code       string
	msg        string
	retryAfter int
}

// Error implements error.
func (e *httpError) Error() string { return e.code + ": " + e.msg }

// writeJSON answers v as JSON with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// maxBodyBytes bounds admin API request bodies.
const maxBodyBytes = 1 << 20

// decode reads exactly one JSON object from r's body into v, rejecting
// unknown fields, trailing data and bodies over maxBodyBytes. An empty body
// decodes as {}.
func decode(w http.ResponseWriter, r *http.Request, v any) error {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return &httpError{code: problem.TooLarge, msg: fmt.Sprintf("request body larger than %d bytes", maxBodyBytes)}
	}
	if err != nil {
		return release.Errorf(release.EINVALID, "read request body: %v", err)
	}
	if len(body) == 0 {
		body = []byte("{}")
	}
	if err := release.CheckJSONText(body); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var de *release.Error
		if errors.As(err, &de) {
			return de
		}
		return release.Errorf(release.EINVALID, "request body: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return release.Errorf(release.EINVALID, "request body: unexpected data after the JSON object")
	}
	return nil
}
