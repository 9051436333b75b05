package server

import (
	"log/slog"
	"net/http"
	"time"
)

// AccessLog wraps next so that every request is logged once it is answered:
// method, path, status, bytes written, duration and client address, at
// level Info (5xx at Error). Headers, query strings and bodies are never
// logged: they may carry tokens and enrollment keys.
func AccessLog(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &accessRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		level := slog.LevelInfo
		if rec.status >= 500 {
			level = slog.LevelError
		}
		log.LogAttrs(r.Context(), level, "request",
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.Int("status", rec.status),
			slog.Int64("bytes", rec.bytes),
			slog.Float64("duration_seconds", time.Since(start).Seconds()),
			slog.String("remote", r.RemoteAddr))
	})
}

// accessRecorder remembers the status and size of a response.
type accessRecorder struct {
	http.ResponseWriter
	status int
	bytes  int64
	wrote  bool
}

func (s *accessRecorder) WriteHeader(code int) {
	if !s.wrote {
		s.status, s.wrote = code, true
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *accessRecorder) Write(b []byte) (int, error) {
	s.wrote = true
	n, err := s.ResponseWriter.Write(b)
	s.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the underlying writer
// (flushing, deadlines).
func (s *accessRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }
