package notify

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"html/template"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"net/url"
	"strings"
	"time"
)

// Mailer sends email through one SMTP server.
type Mailer struct {
	addr     string // host:port
	host     string
	implicit bool // smtps: TLS from the first byte
	user     string
	pass     string
	from     mail.Address
	timeout  time.Duration
}

// NewMailer parses an SMTP URL — smtp://[user:pass@]host[:port] (STARTTLS
// when the server offers it; port 25 by default) or smtps://… (TLS from the
// start; port 465) — and the From address. Credentials are only sent over
// TLS, or to a server on loopback.
func NewMailer(rawURL, from string, timeout time.Duration) (*Mailer, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" || (u.Scheme != "smtp" && u.Scheme != "smtps") {
		return nil, fmt.Errorf("smtp URL must be smtp://[user:pass@]host[:port] or smtps://…")
	}
	f, err := mail.ParseAddress(from)
	if err != nil {
		return nil, fmt.Errorf("smtp from address %q: %w", from, err)
	}
	m := &Mailer{host: u.Hostname(), implicit: u.Scheme == "smtps", from: *f, timeout: timeout}
	port := u.Port()
	if port == "" {
		port = map[bool]string{true: "465", false: "25"}[m.implicit]
	}
	m.addr = net.JoinHostPort(m.host, port)
	if u.User != nil {
		m.user = u.User.Username()
		m.pass, _ = u.User.Password()
	}
	return m, nil
}

// From returns the sender address.
func (m *Mailer) From() string { return m.from.Address }

// Send delivers one message (headers and body, CRLF lines) to to.
func (m *Mailer) Send(ctx context.Context, to string, msg []byte) error {
	d := net.Dialer{Timeout: m.timeout}
	conn, err := d.DialContext(ctx, "tcp", m.addr)
	if err != nil {
		return fmt.Errorf("connect to smtp %s: %w", m.addr, err)
	}
	deadline := time.Now().Add(m.timeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	_ = conn.SetDeadline(deadline)
	tlsConf := &tls.Config{ServerName: m.host, MinVersion: tls.VersionTLS12}
	if m.implicit {
		conn = tls.Client(conn, tlsConf)
	}
	c, err := smtp.NewClient(conn, m.host)
	if err != nil {
		conn.Close()
		return fmt.Errorf("smtp %s: %w", m.addr, err)
	}
	defer c.Close()
	if !m.implicit {
		if ok, _ := c.Extension("STARTTLS"); ok {
			if err := c.StartTLS(tlsConf); err != nil {
				return fmt.Errorf("smtp %s: starttls: %w", m.addr, err)
			}
		}
	}
	if m.user != "" {
		// PlainAuth refuses to send the password unencrypted except to
		// localhost.
		if err := c.Auth(smtp.PlainAuth("", m.user, m.pass, m.host)); err != nil {
			return fmt.Errorf("smtp %s: authenticate: %w", m.addr, err)
		}
	}
	if err := c.Mail(m.from.Address); err != nil {
		return fmt.Errorf("smtp %s: MAIL FROM: %w", m.addr, err)
	}
	if err := c.Rcpt(to); err != nil {
		return fmt.Errorf("smtp %s: RCPT TO: %w", m.addr, err)
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("smtp %s: DATA: %w", m.addr, err)
	}
	if _, err := w.Write(msg); err != nil {
		return fmt.Errorf("smtp %s: write message: %w", m.addr, err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("smtp %s: message refused: %w", m.addr, err)
	}
	_ = c.Quit()
	return nil
}

// Mail is one email to compose.
type Mail struct {
	From, To string
	Subject  string
	// MessageID is stable across attempts (without the angle brackets).
	MessageID string
	Text      string
	// Link is the call to action (the confirm link of an opt-in request);
	// LinkText labels it.
	Link, LinkText string
	// Unsubscribe is the one-click unsubscribe URL (RFC 8058): in the
	// List-Unsubscribe header and at the bottom of the body.
	Unsubscribe string
	Date        time.Time
}

var emailHTML = template.Must(template.New("email").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Subject}}</title></head>
<body style="font-family:system-ui,sans-serif;color:#1a1a1a;max-width:40em">
{{range .Paragraphs}}<p style="white-space:pre-wrap">{{.}}</p>
{{end}}{{if .Link}}<p><a href="{{.Link}}" style="background:#0b5cad;color:#fff;padding:.5em 1em;text-decoration:none;border-radius:4px">{{.LinkText}}</a></p>
{{end}}{{if .Unsubscribe}}<p style="font-size:.85em;color:#555">You receive this because you subscribed to status updates. <a href="{{.Unsubscribe}}">Unsubscribe</a>.</p>
{{end}}</body></html>
`))

// Compose returns e as a MIME message: multipart/alternative with a plain
// text and an HTML part, List-Unsubscribe and List-Unsubscribe-Post
// (RFC 8058 one-click) when e.Unsubscribe is set, and Auto-Submitted.
func Compose(e Mail) ([]byte, error) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	h := func(k, v string) { fmt.Fprintf(&buf, "%s: %s\r\n", k, v) }
	h("From", e.From)
	h("To", e.To)
	h("Subject", mime.QEncoding.Encode("utf-8", e.Subject))
	h("Date", e.Date.UTC().Format(time.RFC1123Z))
	h("Message-ID", "<"+e.MessageID+">")
	h("MIME-Version", "1.0")
	h("Auto-Submitted", "auto-generated")
	if e.Unsubscribe != "" {
		h("List-Unsubscribe", "<"+e.Unsubscribe+">")
		h("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")
	}
	h("Content-Type", "multipart/alternative; boundary="+mw.Boundary())
	buf.WriteString("\r\n")

	text := e.Text
	if e.Link != "" {
		text += "\n" + e.LinkText + ": " + e.Link + "\n"
	}
	if e.Unsubscribe != "" {
		text += "\n--\nUnsubscribe: " + e.Unsubscribe + "\n"
	}
	var paras []string
	for _, p := range strings.Split(strings.TrimSpace(e.Text), "\n\n") {
		paras = append(paras, strings.TrimSpace(p))
	}
	var html bytes.Buffer
	if err := emailHTML.Execute(&html, map[string]any{"Subject": e.Subject, "Paragraphs": paras, "Link": e.Link,
		"LinkText": e.LinkText, "Unsubscribe": e.Unsubscribe}); err != nil {
		return nil, fmt.Errorf("render email: %w", err)
	}
	for _, part := range []struct{ ctype, body string }{{"text/plain; charset=utf-8", text}, {"text/html; charset=utf-8", html.String()}} {
		pw, err := mw.CreatePart(textproto.MIMEHeader{"Content-Type": {part.ctype}, "Content-Transfer-Encoding": {"quoted-printable"}})
		if err != nil {
			return nil, fmt.Errorf("compose email: %w", err)
		}
		qp := quotedprintable.NewWriter(pw)
		if _, err := qp.Write([]byte(strings.ReplaceAll(part.body, "\n", "\r\n"))); err != nil {
			return nil, fmt.Errorf("compose email: %w", err)
		}
		if err := qp.Close(); err != nil {
			return nil, fmt.Errorf("compose email: %w", err)
		}
	}
	if err := mw.Close(); err != nil {
		return nil, fmt.Errorf("compose email: %w", err)
	}
	return buf.Bytes(), nil
}
