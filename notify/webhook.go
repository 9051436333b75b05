package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/ringfence/ringfence/incident"
)

// Sign returns the Standard Webhooks signature header value of a message:
// "v1," and the base64 HMAC-SHA256, keyed with the secret's key, of
// "<webhook-id>.<webhook-timestamp>.<body>".
func Sign(secret, id string, ts time.Time, body []byte) (string, error) {
	key, err := incident.WebhookKey(secret)
	if err != nil {
		return "", err
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + strconv.FormatInt(ts.Unix(), 10) + "."))
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil)), nil
}

// postWebhook makes one attempt to deliver m to the webhook subscriber sub
// with client: a POST of the payload, signed, accepted on 2xx only
// (redirects are failures, as for Statuspage).
func postWebhook(ctx context.Context, client *http.Client, sub incident.Subscriber, m incident.Message, now time.Time) error {
	sig, err := Sign(sub.Secret, m.EventID, now, m.Body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, sub.Target, bytes.NewReader(m.Body))
	if err != nil {
		return fmt.Errorf("build webhook request to %s: %w", incident.RedactURL(sub.Target), err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "ringfence-status")
	req.Header.Set("webhook-id", m.EventID)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(now.Unix(), 10))
	req.Header.Set("webhook-signature", sig)
	resp, err := client.Do(req)
	if err != nil {
		// *url.Error repeats the whole URL, whose path or query may hold a
		// secret: keep the cause only.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("post to %s: %w", incident.RedactURL(sub.Target), err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // lets the connection be reused
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("post to %s: status %s", incident.RedactURL(sub.Target), resp.Status)
	}
	return nil
}
