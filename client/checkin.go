package client

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/ringfence/ringfence/internal/fault"
	"github.com/ringfence/ringfence/release"
	"github.com/ringfence/ringfence/sign"
)

// ErrUnverified marks a check-in answer that arrived but must not be acted
// on: bad or missing signature, expired, or not the answer to this request.
// Whatever the cause, the installation upgrades to nothing.
const ErrUnverified fault.Const = "check-in answer not verified"

// NewNonce returns a fresh random nonce for a check-in: 16 random bytes in
// URL-safe base64 without padding (22 characters).
func NewNonce() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("make nonce: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// CheckIn posts req to /v1/checkin with the client's enrollment key and
// returns the verified answer and the envelope it came in (keep it for
// audit). A missing req.Nonce is filled with NewNonce.
//
// The answer is returned only if it is signed by one of trusted, not
// expired, and echoes this request's nonce and instance id (see
// docs/protocol.md, "Verifying an answer"); otherwise the error wraps
// ErrUnverified. Server errors are *Error (e.g. 429 with RetryAfter). On any
// error the caller must act as if no upgrade was offered.
func (c *Client) CheckIn(ctx context.Context, req release.CheckIn, trusted []sign.PublicKey) (release.Answer, sign.Envelope, error) {
	if req.Nonce == "" {
		n, err := NewNonce()
		if err != nil {
			return release.Answer{}, sign.Envelope{}, err
		}
		req.Nonce = n
	}
	if err := req.Validate(); err != nil {
		return release.Answer{}, sign.Envelope{}, fmt.Errorf("check in: %w", err)
	}
	var env sign.Envelope
	if err := c.do(ctx, http.MethodPost, "/v1/checkin", nil, req, &env); err != nil {
		return release.Answer{}, sign.Envelope{}, fmt.Errorf("check in: %w", err)
	}
	ans, err := VerifyAnswer(env, trusted, req.InstanceID, req.Nonce, c.now())
	if err != nil {
		return release.Answer{}, env, err
	}
	return ans, env, nil
}

// VerifyAnswer checks a check-in answer envelope against the trusted keys at
// now, and that it answers the request of instanceID with nonce, and returns
// the answer. Errors wrap ErrUnverified (and the sign.Err* cause).
func VerifyAnswer(env sign.Envelope, trusted []sign.PublicKey, instanceID, nonce string, now time.Time) (release.Answer, error) {
	payload, err := sign.Verify(env, trusted, now)
	if err != nil {
		return release.Answer{}, fmt.Errorf("%w: %w", ErrUnverified, err)
	}
	var ans release.Answer
	if err := json.Unmarshal(payload, &ans); err != nil {
		return release.Answer{}, fmt.Errorf("%w: payload: %v", ErrUnverified, err)
	}
	if ans.Nonce != nonce {
		return release.Answer{}, fmt.Errorf("%w: answer is for nonce %q, not this request's", ErrUnverified, ans.Nonce)
	}
	if ans.InstanceID != instanceID {
		return release.Answer{}, fmt.Errorf("%w: answer is for installation %q, not %q", ErrUnverified, ans.InstanceID, instanceID)
	}
	return ans, nil
}
