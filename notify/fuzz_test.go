package notify_test

import (
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/mail"
	"strconv"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/ringfence/ringfence/incident"
	"github.com/ringfence/ringfence/notify"
)

// FuzzSignVerifiesWithTheReferenceLibrary: whatever the message id and
// body, the Standard Webhooks reference library accepts our signature, and
// rejects it for another body.
func FuzzSignVerifiesWithTheReferenceLibrary(f *testing.F) {
	f.Add("msg_n1", []byte(`{"incident":{}}`))
	f.Add("", []byte{})
	f.Add("msg_ü.1", []byte{0, 255, '\n'})
	secret, err := incident.NewWebhookSecret()
	if err != nil {
		f.Fatal(err)
	}
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, id string, body []byte) {
		if id == "" {
			return // ids are never empty; the library requires the header
		}
		now := time.Now()
		sig, err := notify.Sign(secret, id, now, body)
		if err != nil {
			t.Fatal(err)
		}
		h := http.Header{"Webhook-Id": {id}, "Webhook-Timestamp": {strconv.FormatInt(now.Unix(), 10)}, "Webhook-Signature": {sig}}
		if err := wh.Verify(body, h); err != nil {
			t.Fatalf("reference library rejects id %q body %q: %v", id, body, err)
		}
		if err := wh.Verify(append(body, 'x'), h); err == nil {
			t.Fatal("reference library accepts another body")
		}
	})
}

// FuzzComposeKeepsHeadersIntact: any subject and text make a message that
// parses, with the subject decoded back, the one-click unsubscribe
// headers in place, and both parts readable.
func FuzzComposeKeepsHeadersIntact(f *testing.F) {
	f.Add("Investigating: API down", "We are looking.\n\nMore soon.")
	f.Add("x\r\nBcc: victim@example.com", "line\r\n.\r\nQUIT")
	f.Add("Ünïcode — résolu", "=3D =\n")
	f.Fuzz(func(t *testing.T, subject, text string) {
		if len(subject) > 500 {
			return
		}
		msg, err := notify.Compose(notify.Mail{From: "status@example.com", To: "ops@example.com", Subject: subject, MessageID: "m1@example.com",
			Text: text, Unsubscribe: "https://s.example/subscriptions/unsubscribe?token=t", Date: time.Unix(0, 0)})
		if err != nil {
			t.Fatal(err)
		}
		m, err := mail.ReadMessage(strings.NewReader(string(msg)))
		if err != nil {
			t.Fatalf("unparsable message: %v\n%s", err, msg)
		}
		if m.Header.Get("Bcc") != "" || m.Header.Get("List-Unsubscribe-Post") != "List-Unsubscribe=One-Click" {
			t.Fatalf("headers broken: %v", m.Header)
		}
		got, err := new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
		if err != nil {
			t.Fatalf("subject %q: %v", m.Header.Get("Subject"), err)
		}
		if want := strings.Join(strings.Fields(subject), " "); strings.Join(strings.Fields(got), " ") != want {
			t.Fatalf("subject %q came back as %q", subject, got)
		}
		_, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
		if err != nil {
			t.Fatal(err)
		}
		mr := multipart.NewReader(m.Body, params["boundary"])
		parts := 0
		for {
			p, err := mr.NextPart()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("part %d: %v", parts, err)
			}
			if _, err := io.ReadAll(p); err != nil {
				t.Fatalf("part %d: %v", parts, err)
			}
			parts++
		}
		if parts != 2 {
			t.Fatalf("%d parts, want text and HTML", parts)
		}
	})
}
