package sign

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"time"
)

// Error is a verification failure. Its values are constants so callers can
// test them with errors.Is.
type Error string

// Error implements error.
func (e Error) Error() string { return string(e) }

// Verification failures. Whatever the failure, an agent treats the answer as
// "no upgrade".
const (
	// ErrNoTrustedSignature: no signature by a trusted key, or none at all.
	ErrNoTrustedSignature Error = "no signature by a trusted key"
	// ErrBadSignature: a signature by a trusted key does not verify: the
	// payload or the signature was altered.
	ErrBadSignature Error = "signature does not verify"
	// ErrExpired: the payload's expires_at has passed.
	ErrExpired Error = "signed payload expired"
	// ErrNotYetValid: the payload's issued_at lies beyond the allowed clock
	// skew in the future.
	ErrNotYetValid Error = "signed payload issued in the future"
	// ErrMalformed: the envelope or the payload's validity times are
	// malformed or missing.
	ErrMalformed Error = "malformed signed envelope"
)

// MaxClockSkew is how far in the future a payload's issued_at may lie
// before Verify refuses it.
const MaxClockSkew = 5 * time.Minute

// Envelope is a signed payload.
type Envelope struct {
	// Payload is canonical JSON (base64, standard alphabet with padding, on
	// the wire).
	Payload    []byte      `json:"payload"`
	Signatures []Signature `json:"signatures"`
}

// Signature is one key's ed25519 signature over an envelope's payload.
type Signature struct {
	KeyID string `json:"keyid"`
	// Sig is the 64-byte signature (base64 on the wire).
	Sig []byte `json:"sig"`
}

// KeyID names a public key: the first 16 hex digits (8 bytes) of the SHA-256
// of its 32 raw bytes.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

// PublicKey is a verification key as /v1/keys publishes it and agents pin it.
type PublicKey struct {
	ID string `json:"keyid"`
	// Key is the 32-byte ed25519 public key (base64 on the wire).
	Key       ed25519.PublicKey `json:"public_key"`
	CreatedAt time.Time         `json:"created_at,omitzero"`
}

// Validate checks that the key has the right size and that its id matches.
func (p PublicKey) Validate() error {
	if len(p.Key) != ed25519.PublicKeySize {
		return fmt.Errorf("public key %s: %d bytes, want %d", p.ID, len(p.Key), ed25519.PublicKeySize)
	}
	if id := KeyID(p.Key); p.ID != id {
		return fmt.Errorf("public key %s: id does not match the key (want %s)", p.ID, id)
	}
	return nil
}

// Key is a signing key.
type Key struct {
	ID        string
	Private   ed25519.PrivateKey
	CreatedAt time.Time
}

// GenerateKey makes a new signing key from rand (crypto/rand.Reader in
// production).
func GenerateKey(rand io.Reader, now time.Time) (Key, error) {
	pub, priv, err := ed25519.GenerateKey(rand)
	if err != nil {
		return Key{}, fmt.Errorf("generate signing key: %w", err)
	}
	return Key{ID: KeyID(pub), Private: priv, CreatedAt: now.UTC()}, nil
}

// Public returns k's verification key.
func (k Key) Public() PublicKey {
	return PublicKey{ID: k.ID, Key: k.Private.Public().(ed25519.PublicKey), CreatedAt: k.CreatedAt}
}

// keyJSON is a Key's storage form: the 32-byte seed, not the expanded key.
type keyJSON struct {
	ID        string    `json:"keyid"`
	Seed      string    `json:"seed"`
	CreatedAt time.Time `json:"created_at"`
}

// MarshalJSON encodes k for storage: {"keyid","seed" (base64),"created_at"}.
// The result is a secret.
func (k Key) MarshalJSON() ([]byte, error) {
	if len(k.Private) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("signing key %s: not an ed25519 private key", k.ID)
	}
	return json.Marshal(keyJSON{ID: k.ID, Seed: base64.StdEncoding.EncodeToString(k.Private.Seed()), CreatedAt: k.CreatedAt})
}

// UnmarshalJSON decodes a stored key and checks that its id matches it.
func (k *Key) UnmarshalJSON(b []byte) error {
	var j keyJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return fmt.Errorf("decode signing key: %w", err)
	}
	seed, err := base64.StdEncoding.DecodeString(j.Seed)
	if err != nil || len(seed) != ed25519.SeedSize {
		return fmt.Errorf("decode signing key %s: seed is not %d bytes of base64", j.ID, ed25519.SeedSize)
	}
	priv := ed25519.NewKeyFromSeed(seed)
	if id := KeyID(priv.Public().(ed25519.PublicKey)); id != j.ID {
		return fmt.Errorf("decode signing key %s: id does not match the key (want %s)", j.ID, id)
	}
	*k = Key{ID: j.ID, Private: priv, CreatedAt: j.CreatedAt}
	return nil
}

// KeyRing is an immutable set of signing keys: the newest is the active
// signer, older ones stay published so answers they signed still verify and
// agents that pinned them are not cut off. Safe for concurrent use; Rotate
// returns a new ring.
type KeyRing struct {
	keys []Key // oldest first; the last one signs
	// coSign makes the previous key sign too (see WithOverlap).
	coSign bool
}

// WithOverlap returns a copy of r in which the previous key co-signs every
// answer while the active key is younger than overlap at now: agents that
// pinned only the previous key keep verifying answers until they have
// learnt the new one (from a payload naming it, see Introductions, or a
// product update), instead of being cut off at the rotation. Verify accepts an envelope when one trusted
// signature verifies and none fails.
func (r *KeyRing) WithOverlap(now time.Time, overlap time.Duration) *KeyRing {
	c := &KeyRing{keys: r.keys}
	c.coSign = len(r.keys) > 1 && now.Before(r.Active().CreatedAt.Add(overlap))
	return c
}

// NewKeyRing returns a ring of keys, oldest first; the last one signs. It
// needs at least one key and refuses malformed or duplicate keys.
func NewKeyRing(keys ...Key) (*KeyRing, error) {
	if len(keys) == 0 {
		return nil, fmt.Errorf("key ring: no keys")
	}
	seen := map[string]bool{}
	for _, k := range keys {
		if len(k.Private) != ed25519.PrivateKeySize {
			return nil, fmt.Errorf("key ring: key %s is not an ed25519 private key", k.ID)
		}
		if id := KeyID(k.Private.Public().(ed25519.PublicKey)); id != k.ID {
			return nil, fmt.Errorf("key ring: key %s has the id of another key (want %s)", k.ID, id)
		}
		if seen[k.ID] {
			return nil, fmt.Errorf("key ring: key %s appears twice", k.ID)
		}
		seen[k.ID] = true
	}
	return &KeyRing{keys: append([]Key(nil), keys...)}, nil
}

// Active returns the signing key.
func (r *KeyRing) Active() Key { return r.keys[len(r.keys)-1] }

// Keys returns every key, oldest first (for storage).
func (r *KeyRing) Keys() []Key { return append([]Key(nil), r.keys...) }

// PublicKeys returns every verification key, oldest first (for /v1/keys).
func (r *KeyRing) PublicKeys() []PublicKey {
	out := make([]PublicKey, len(r.keys))
	for i, k := range r.keys {
		out[i] = k.Public()
	}
	return out
}

// Rotate returns a new ring with a fresh key from rand as the active signer
// and every old key kept verifiable, and the new key.
func (r *KeyRing) Rotate(rand io.Reader, now time.Time) (*KeyRing, Key, error) {
	k, err := GenerateKey(rand, now)
	if err != nil {
		return nil, Key{}, err
	}
	return &KeyRing{keys: append(r.Keys(), k)}, k, nil
}

// Sign signs payload, which must already be canonical JSON, with the active
// key and, during a rotation overlap (WithOverlap), the previous one after it.
func (r *KeyRing) Sign(payload []byte) Envelope {
	k := r.Active()
	sigs := []Signature{{KeyID: k.ID, Sig: ed25519.Sign(k.Private, payload)}}
	if r.coSign {
		p := r.keys[len(r.keys)-2]
		sigs = append(sigs, Signature{KeyID: p.ID, Sig: ed25519.Sign(p.Private, payload)})
	}
	return Envelope{Payload: payload, Signatures: sigs}
}

// SignJSON encodes v as canonical JSON and signs it with the active key.
func (r *KeyRing) SignJSON(v any) (Envelope, error) {
	payload, err := Canonical(v)
	if err != nil {
		return Envelope{}, fmt.Errorf("sign: %w", err)
	}
	return r.Sign(payload), nil
}

// validity is the part of a payload Verify reads.
type validity struct {
	IssuedAt  *time.Time `json:"issued_at"`
	ExpiresAt *time.Time `json:"expires_at"`
}

// Verify checks env against the trusted public keys at now and returns its
// payload. It succeeds only if
//   - at least one signature is by a trusted key and every signature by a
//     trusted key verifies over the payload bytes (signatures by unknown keys
//     are ignored, so a new key can be added before every verifier trusts it);
//   - the payload is a JSON object with RFC 3339 "issued_at" and
//     "expires_at"; now is before expires_at and no more than MaxClockSkew
//     before issued_at.
//
// Errors wrap the Err* constants.
func Verify(env Envelope, trusted []PublicKey, now time.Time) ([]byte, error) {
	if len(env.Payload) == 0 {
		return nil, fmt.Errorf("%w: empty payload", ErrMalformed)
	}
	verified := false
	for _, s := range env.Signatures {
		for _, k := range trusted {
			if k.ID != s.KeyID || len(k.Key) != ed25519.PublicKeySize {
				continue
			}
			if len(s.Sig) != ed25519.SignatureSize || !ed25519.Verify(k.Key, env.Payload, s.Sig) {
				return nil, fmt.Errorf("%w (key %s)", ErrBadSignature, s.KeyID)
			}
			verified = true
		}
	}
	if !verified {
		return nil, ErrNoTrustedSignature
	}
	var v validity
	if err := json.Unmarshal(env.Payload, &v); err != nil {
		return nil, fmt.Errorf("%w: payload: %v", ErrMalformed, err)
	}
	if v.IssuedAt == nil || v.ExpiresAt == nil {
		return nil, fmt.Errorf("%w: payload lacks issued_at or expires_at", ErrMalformed)
	}
	if !now.Before(*v.ExpiresAt) {
		return nil, fmt.Errorf("%w at %s", ErrExpired, v.ExpiresAt.UTC().Format(time.RFC3339))
	}
	if v.IssuedAt.After(now.Add(MaxClockSkew)) {
		return nil, fmt.Errorf("%w (%s)", ErrNotYetValid, v.IssuedAt.UTC().Format(time.RFC3339))
	}
	return env.Payload, nil
}

// Signers returns the keys that sign with r: the active key and, during a
// rotation overlap (WithOverlap), the previous one after it. A payload that
// names them in "signing_keys" introduces the new key to verifiers that
// trust only the previous one (see Introductions).
func (r *KeyRing) Signers() []PublicKey {
	out := []PublicKey{r.Active().Public()}
	if r.coSign {
		out = append(out, r.keys[len(r.keys)-2].Public())
	}
	return out
}

// Introduction is a key that a trusted key vouched for.
type Introduction struct {
	Key PublicKey
	// By is the id of the trusted key whose signature named Key.
	By string
}

// MaxSigningKeys is the most keys a payload may name in "signing_keys"
// (a rotation overlap names two): a payload naming more introduces none.
const MaxSigningKeys = 4

// Introductions returns the keys env introduces to a verifier that trusts
// trusted: the untrusted keys its payload names in "signing_keys" (newest
// first) before the trusted key that vouches for them, and that also
// signed it. A trusted key signed the names, so nobody on the path
// could have added one, and the named key's own signature over the same
// payload proves its holder signs for the vendor. This is how a key
// rotation reaches agents without a product update: during the overlap
// the previous key co-signs answers that name the new one.
//
// It checks the signatures itself, as Verify does, but not the validity
// times, so that an envelope kept with what it introduced can be checked
// again at any later time: at least one signature is by a trusted key,
// every signature by a trusted key verifies, and every signature under a
// named key's id verifies (at least one per named key). A payload that
// names no keys introduces none; keys named after the voucher are skipped.
// A named key that is malformed, does not match its id or (named before
// the voucher) did not sign, more than MaxSigningKeys names, or a bad
// signature, is an error, and nothing is introduced.
func Introductions(env Envelope, trusted []PublicKey) ([]Introduction, error) {
	var doc struct {
		SigningKeys []PublicKey `json:"signing_keys"`
	}
	if err := json.Unmarshal(env.Payload, &doc); err != nil {
		return nil, fmt.Errorf("%w: payload: %v", ErrMalformed, err)
	}
	if len(doc.SigningKeys) > MaxSigningKeys {
		return nil, fmt.Errorf("%w: signing_keys names %d keys, more than %d", ErrMalformed, len(doc.SigningKeys), MaxSigningKeys)
	}
	find := func(keys []PublicKey, id string) (PublicKey, bool) {
		i := slices.IndexFunc(keys, func(k PublicKey) bool { return k.ID == id })
		if i < 0 {
			return PublicKey{}, false
		}
		return keys[i], true
	}
	by := ""
	for _, s := range env.Signatures {
		k, ok := find(trusted, s.KeyID)
		if !ok {
			continue
		}
		if !signs(k, env.Payload, s) {
			return nil, fmt.Errorf("%w (key %s)", ErrBadSignature, s.KeyID)
		}
		if by == "" {
			by = s.KeyID
		}
	}
	if by == "" {
		return nil, ErrNoTrustedSignature
	}
	// signing_keys lists the new key first: a key is introduced only by
	// one named after it (the previous key vouches for the next, never the
	// other way round, so a retired key is not taught back to an agent
	// that trusts only its successor).
	byAt := slices.IndexFunc(doc.SigningKeys, func(k PublicKey) bool { return k.ID == by })
	var out []Introduction
	for n, k := range doc.SigningKeys {
		if err := k.Validate(); err != nil {
			return nil, fmt.Errorf("signing_keys: %w", err)
		}
		if _, ok := find(trusted, k.ID); ok || slices.ContainsFunc(out, func(i Introduction) bool { return i.Key.ID == k.ID }) || n > byAt {
			continue
		}
		n := 0
		for _, s := range env.Signatures {
			if s.KeyID != k.ID {
				continue
			}
			if !signs(k, env.Payload, s) {
				return nil, fmt.Errorf("%w (key %s, named in signing_keys)", ErrBadSignature, k.ID)
			}
			n++
		}
		if n == 0 {
			return nil, fmt.Errorf("%w: signing_keys names key %s, which did not sign", ErrNoTrustedSignature, k.ID)
		}
		out = append(out, Introduction{Key: PublicKey{ID: k.ID, Key: k.Key}, By: by})
	}
	return out, nil
}

// signs reports whether s is k's valid signature over payload.
func signs(k PublicKey, payload []byte, s Signature) bool {
	return len(k.Key) == ed25519.PublicKeySize && len(s.Sig) == ed25519.SignatureSize && ed25519.Verify(k.Key, payload, s.Sig)
}
