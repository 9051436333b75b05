// Package client talks to a ringfence server: the admin API under /api/v1
// (with an API token) for the CLI and for vendors' own tooling, and the
// check-in protocol (with an enrollment key) for installations, verifying
// every signed answer before anyone acts on it.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ringfence/ringfence/internal/problem"
	"github.com/ringfence/ringfence/release"
)

// DefaultTimeout bounds every request of a Client made without
// WithHTTPClient.
const DefaultTimeout = 30 * time.Second

// maxResponseBytes bounds the response bodies the client reads.
const maxResponseBytes = 16 << 20

// Client is a connection to one ringfence server with one credential: an
// API token for the admin API, or an enrollment key for check-ins. It is safe
// for concurrent use.
type Client struct {
	base  *url.URL
	token string
	http  *http.Client
	now   func() time.Time
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient makes the client use hc (which should have a timeout)
// instead of its own client with DefaultTimeout.
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.http = hc } }

// WithClock makes the client read the time from now when it verifies
// answers (tests; agents with a trusted clock source).
func WithClock(now func() time.Time) Option { return func(c *Client) { c.now = now } }

// New returns a client of the server at serverURL (e.g.
// "https://releases.acme.example") authenticating with token.
func New(serverURL, token string, opts ...Option) (*Client, error) {
	if serverURL == "" {
		return nil, errors.New("client: no server URL")
	}
	u, err := url.Parse(serverURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("client: server %q is not an http(s) URL", serverURL)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	c := &Client{base: u, token: token, http: &http.Client{Timeout: DefaultTimeout}, now: time.Now}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// Error is an error answer of the server: an RFC 9457 problem. Its Code is
// one of release's codes (release.ENOTFOUND, ...) or too_large,
// rate_limited, unavailable; release.ErrorCode(err) reads it through any
// wrapping.
type Error struct {
	Status int
	Code   string
	Title  string
	Detail string
	// RetryAfter is the server's Retry-After, if it sent one (429, 503).
	RetryAfter time.Duration
}

// Error implements error.
func (e *Error) Error() string {
	msg := e.Detail
	if msg == "" {
		msg = e.Title
	}
	s := fmt.Sprintf("server: %s (%d %s)", msg, e.Status, e.Code)
	if e.RetryAfter > 0 {
		s += fmt.Sprintf(", retry after %s", e.RetryAfter)
	}
	return s
}

// Unwrap exposes the problem as a *release.Error, so release.ErrorCode and
// release.ErrorMessage work on client errors.
func (e *Error) Unwrap() error { return &release.Error{Code: e.Code, Message: e.Detail} }

// do sends a request with body (JSON-encoded unless nil) to path and decodes
// a 2xx answer into out (unless nil). Other answers become *Error.
func (c *Client) do(ctx context.Context, method, path string, query url.Values, body, out any) error {
	_, err := c.doHeader(ctx, method, path, query, body, out, nil)
	return err
}

// doHeader is do with extra request headers, returning the answer's
// headers.
func (c *Client) doHeader(ctx context.Context, method, path string, query url.Values, body, out any, header http.Header) (http.Header, error) {
	u := *c.base
	// path holds escaped segments (esc): keep them escaped, so a '/' or '%'
	// inside a name stays part of its segment.
	raw := u.EscapedPath() + path
	unescaped, err := url.PathUnescape(raw)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	u.Path, u.RawPath = unescaped, raw
	u.RawQuery = query.Encode()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("%s %s: encode request: %w", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return nil, fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.Header, responseError(resp, data)
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		return resp.Header, nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return nil, fmt.Errorf("%s %s: decode answer: %w", method, path, err)
	}
	return resp.Header, nil
}

// responseError builds the *Error of a non-2xx answer, from its problem body
// when it has one.
func responseError(resp *http.Response, data []byte) *Error {
	e := &Error{Status: resp.StatusCode, Title: http.StatusText(resp.StatusCode)}
	var p problem.Details
	if json.Unmarshal(data, &p) == nil && p.Code != "" {
		e.Code, e.Detail = p.Code, p.Detail
		if p.Title != "" {
			e.Title = p.Title
		}
	} else {
		e.Code = problem.Code(resp.StatusCode)
		detail := strings.TrimSpace(string(data))
		if len(detail) > 200 {
			detail = detail[:200] + "..."
		}
		e.Detail = detail
	}
	if ra := resp.Header.Get("Retry-After"); ra != "" {
		if secs, err := strconv.Atoi(ra); err == nil && secs >= 0 {
			e.RetryAfter = time.Duration(secs) * time.Second
		}
	}
	return e
}

// listQuery is the query of a list: limit when > 0, then each name and
// value of pairs whose value is not empty.
func listQuery(limit int, pairs ...string) url.Values {
	q := url.Values{}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	for i := 0; i+1 < len(pairs); i += 2 {
		if pairs[i+1] != "" {
			q.Set(pairs[i], pairs[i+1])
		}
	}
	return q
}

// onlyTrue is a boolean query parameter that is sent only when true.
func onlyTrue(b bool) string {
	if b {
		return "true"
	}
	return ""
}

// esc escapes one path segment.
func esc(s string) string { return url.PathEscape(s) }
