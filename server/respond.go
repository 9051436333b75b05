package server

// This file holds how the server answers (JSON, problem details, errors)
// and reads request bodies (JSON only, bounded, unknown fields refused).

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"

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
	code string
	msg  string
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
	} else if err := jsonContentType(r); err != nil {
		return err
	}
	return release.DecodeJSON(body, v, "request body")
}

// jsonContentType requires a request body's Content-Type to be
// application/json (charset, if given, utf-8).
func jsonContentType(r *http.Request) error {
	ct := r.Header.Get("Content-Type")
	mt, params, err := mime.ParseMediaType(ct)
	if err == nil && mt == "application/json" {
		if cs, ok := params["charset"]; !ok || strings.EqualFold(cs, "utf-8") {
			return nil
		}
	}
	if ct == "" {
		ct = "none"
	}
	return &httpError{code: problem.UnsupportedMediaType, msg: "request bodies are JSON: Content-Type must be application/json, got " + ct}
}
