// Package notifytest runs the real receivers status notifications go to, for
// tests and benchmarks: a webhook receiver on loopback that verifies every
// request with the Standard Webhooks reference library, and an SMTP server
// (github.com/emersion/go-smtp) that keeps what it is sent. Both stop when
// the test ends.
package notifytest

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// Hook is one request the receiver got.
type Hook struct {
	Path string
	// ID is the webhook-id header.
	ID     string
	Header http.Header
	Body   []byte
	// Verified is nil when the Standard Webhooks library accepted the
	// signature with the secret set for Path.
	Verified error
	// Answered is the status the receiver answered.
	Answered int
}

// Receiver is a webhook receiver on loopback.
type Receiver struct {
	// URL is the receiver's base URL (http://127.0.0.1:port).
	URL string

	mu      sync.Mutex
	secrets map[string]string
	hooks   []Hook
	// fail answers this many more requests with 500.
	fail atomic.Int64
	// block, when set, holds requests to paths it names until closed.
	block map[string]chan struct{}
	count atomic.Int64
	// Keep, when false, records only the count (for benchmarks).
	keep  bool
	delay atomic.Int64
}

// Delay makes the receiver take d to answer each request.
func (r *Receiver) Delay(d time.Duration) { r.delay.Store(int64(d)) }

// NewReceiver starts a receiver for t, stopped when t ends.
func NewReceiver(t testing.TB) *Receiver {
	r, stop := StartReceiver()
	t.Cleanup(stop)
	return r
}

// StartReceiver starts a receiver (for programs such as benchmarks); stop
// stops it.
func StartReceiver() (r *Receiver, stop func()) {
	r = &Receiver{secrets: map[string]string{}, block: map[string]chan struct{}{}, keep: true}
	srv := httptest.NewServer(http.HandlerFunc(r.serve))
	r.URL = srv.URL
	return r, func() {
		r.mu.Lock()
		for _, ch := range r.block {
			select {
			case <-ch:
			default:
				close(ch)
			}
		}
		r.mu.Unlock()
		srv.Close()
	}
}

// CountOnly makes the receiver keep no requests, only count and verify them.
func (r *Receiver) CountOnly() { r.keep = false }

// Secret sets the secret requests to path are verified with ("*": every
// path without a secret of its own).
func (r *Receiver) Secret(path, secret string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.secrets[path] = secret
}

// FailNext answers the next n requests with 500.
func (r *Receiver) FailNext(n int64) { r.fail.Store(n) }

// Block holds requests to path until the returned function is called (or
// the test ends).
func (r *Receiver) Block(path string) (release func()) {
	ch := make(chan struct{})
	r.mu.Lock()
	r.block[path] = ch
	r.mu.Unlock()
	var once sync.Once
	return func() { once.Do(func() { close(ch) }) }
}

// Hooks returns the requests received so far.
func (r *Receiver) Hooks() []Hook {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Hook(nil), r.hooks...)
}

// Count returns how many requests were verified and accepted (2xx).
func (r *Receiver) Count() int64 { return r.count.Load() }

func (r *Receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	secret, ok := r.secrets[req.URL.Path]
	if !ok {
		secret, ok = r.secrets["*"]
	}
	block := r.block[req.URL.Path]
	r.mu.Unlock()
	if d := time.Duration(r.delay.Load()); d > 0 {
		time.Sleep(d)
	}
	if block != nil {
		select {
		case <-block:
		case <-req.Context().Done():
			return
		}
	}
	h := Hook{Path: req.URL.Path, ID: req.Header.Get("webhook-id"), Header: req.Header.Clone(), Body: body, Answered: http.StatusNoContent}
	if !ok {
		h.Verified = errors.New("no secret set for " + req.URL.Path)
	} else if wh, err := standardwebhooks.NewWebhook(secret); err != nil {
		h.Verified = err
	} else {
		h.Verified = wh.Verify(body, req.Header)
	}
	accepted := false
	switch {
	case h.Verified != nil:
		h.Answered = http.StatusUnauthorized
	case r.fail.Add(-1) >= 0:
		h.Answered = http.StatusInternalServerError
	default:
		accepted = true
	}
	if r.keep {
		r.mu.Lock()
		r.hooks = append(r.hooks, h)
		r.mu.Unlock()
	}
	if accepted { // counted after it is kept: who waits for Count reads Hooks
		r.count.Add(1)
	}
	w.WriteHeader(h.Answered)
}

// Mail is one message the SMTP server accepted.
type Mail struct {
	From string
	To   []string
	Data []byte
}

// SMTP is an SMTP server on loopback.
type SMTP struct {
	// URL is the server's address as serve --smtp takes it.
	URL string
	mu  sync.Mutex
	got []Mail
}

// NewSMTP starts an SMTP server for t.
func NewSMTP(t testing.TB) *SMTP {
	s := &SMTP{}
	srv := smtp.NewServer(backend{s})
	srv.Domain = "localhost"
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("smtp listen: %v", err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	s.URL = "smtp://" + ln.Addr().String()
	return s
}

// Mails returns the messages accepted so far.
func (s *SMTP) Mails() []Mail {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Mail(nil), s.got...)
}

type backend struct{ s *SMTP }

func (b backend) NewSession(*smtp.Conn) (smtp.Session, error) { return &session{s: b.s}, nil }

type session struct {
	s *SMTP
	m Mail
}

func (x *session) Reset()        { x.m = Mail{} }
func (x *session) Logout() error { return nil }
func (x *session) Mail(from string, _ *smtp.MailOptions) error {
	x.m.From = from
	return nil
}
func (x *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	x.m.To = append(x.m.To, to)
	return nil
}
func (x *session) Data(r io.Reader) error {
	var b bytes.Buffer
	if _, err := io.Copy(&b, r); err != nil {
		return err
	}
	x.m.Data = b.Bytes()
	x.s.mu.Lock()
	x.s.got = append(x.s.got, x.m)
	x.s.mu.Unlock()
	return nil
}
