package sign

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

// handover is a payload that names its signers, as check-in answers and
// bundles do during a rotation overlap.
type handover struct {
	answer
	SigningKeys []PublicKey `json:"signing_keys,omitempty"`
}

// errMismatch stands for Validate's id mismatch, which has no constant.
var errMismatch = errors.New("id mismatch")

// TestIntroductions: during the overlap an answer names the new key and is
// signed by both; a verifier that trusts only the old key is introduced to
// the new one, vouched for by the old. Nothing else introduces a key.
func TestIntroductions(t *testing.T) {
	ring := mustRing(t, 1)
	old := ring.Active().Public()
	rotated, k, err := ring.Rotate(newDetRand(9), t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	during := rotated.WithOverlap(t0.Add(2*time.Hour), 24*time.Hour)
	if s := during.Signers(); len(s) != 2 || s[0].ID != k.ID || s[1].ID != old.ID {
		t.Fatalf("signers during the overlap: %+v", s)
	}
	after := rotated.WithOverlap(t0.Add(26*time.Hour), 24*time.Hour)
	if s := after.Signers(); len(s) != 1 || s[0].ID != k.ID {
		t.Fatalf("signers after the overlap: %+v", s)
	}
	named := func(keys []PublicKey) handover { return handover{answer: sampleAnswer(), SigningKeys: keys} }
	pinned := []PublicKey{old}
	env := mustSign(t, during, named(during.Signers()))
	if _, err := Verify(env, pinned, t0); err != nil {
		t.Fatal(err)
	}
	got, err := Introductions(env, pinned)
	if err != nil || len(got) != 1 || got[0].Key.ID != k.ID || !got[0].Key.Key.Equal(k.Public().Key) || got[0].By != old.ID {
		t.Fatalf("introductions = %+v, %v; want %s by %s", got, err, k.ID, old.ID)
	}
	// The previous key is never taught back to a verifier that trusts
	// only the new one (it retired it, say).
	if got, err := Introductions(env, []PublicKey{k.Public()}); err != nil || len(got) != 0 {
		t.Errorf("introductions to a verifier trusting only the new key: %+v, %v", got, err)
	}
	// Known keys are not introduced again; a payload naming none
	// introduces none.
	if got, err := Introductions(env, rotated.PublicKeys()); err != nil || len(got) != 0 {
		t.Errorf("introductions to a verifier trusting both: %+v, %v", got, err)
	}
	if got, err := Introductions(mustSign(t, during, sampleAnswer()), pinned); err != nil || len(got) != 0 {
		t.Errorf("introductions without signing_keys: %+v, %v", got, err)
	}

	stranger := mustRing(t, 7).Active()
	cases := []struct {
		name  string
		env   Envelope
		want  error    // nil: no error
		intro []string // the ids introduced
	}{
		// Someone on the path adds their own signature to a genuine
		// answer: the payload does not name their key.
		{"appended signature", func() Envelope {
			e := mustSign(t, during, named(during.Signers()))
			e.Signatures = append(e.Signatures, Signature{KeyID: stranger.ID, Sig: ed25519.Sign(stranger.Private, e.Payload)})
			return e
		}(), nil, []string{k.ID}},
		// A named key that did not sign is not introduced.
		{"named but not signing", mustSign(t, ring, named([]PublicKey{k.Public(), old})), ErrNoTrustedSignature, nil},
		// A key named after its voucher is older: not introduced.
		{"named after the voucher", mustSign(t, during, named([]PublicKey{old, k.Public()})), nil, nil},
		// A named key whose signature is not over this payload.
		{"bad signature", func() Envelope {
			e := mustSign(t, during, named(during.Signers()))
			e.Signatures[0].Sig = slices.Clone(e.Signatures[0].Sig)
			e.Signatures[0].Sig[3] ^= 1
			return e
		}(), ErrBadSignature, nil},
		// A key whose id is not its own.
		{"mismatched id", mustSign(t, during, named([]PublicKey{{ID: old.ID, Key: k.Public().Key}})), errMismatch, nil},
		// The trusted signature does not verify: nothing is vouched for.
		{"bad trusted signature", func() Envelope {
			e := mustSign(t, during, named(during.Signers()))
			e.Signatures[1].Sig = slices.Clone(e.Signatures[1].Sig)
			e.Signatures[1].Sig[5] ^= 1
			return e
		}(), ErrBadSignature, nil},
		// A second, bad signature under the named key's id (appended on the
		// path): refused, so the kept envelope cannot fail later.
		{"duplicate named-key signature", func() Envelope {
			e := mustSign(t, during, named(during.Signers()))
			e.Signatures = append(e.Signatures, Signature{KeyID: k.ID, Sig: make([]byte, ed25519.SignatureSize)})
			return e
		}(), ErrBadSignature, nil},
		// More names than any rotation has.
		{"too many names", mustSign(t, during, named([]PublicKey{k.Public(), old, stranger.Public(), mustRing(t, 4).Active().Public(), mustRing(t, 5).Active().Public()})), ErrMalformed, nil},
		// Only a trusted signature vouches.
		{"no trusted signer", mustSign(t, mustRing(t, 7), named([]PublicKey{stranger.Public()})), ErrNoTrustedSignature, nil},
	}
	for _, c := range cases {
		got, err := Introductions(c.env, pinned)
		var ids []string
		for _, i := range got {
			ids = append(ids, i.Key.ID)
		}
		if !slices.Equal(ids, c.intro) {
			t.Errorf("%s: introduced %v, want %v", c.name, ids, c.intro)
		}
		switch {
		case c.want == nil && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.want == errMismatch && (err == nil || !strings.Contains(err.Error(), "does not match")):
			t.Errorf("%s: error %v, want the id mismatch", c.name, err)
		case c.want != nil && c.want != errMismatch && !errors.Is(err, c.want):
			t.Errorf("%s: error %v, want %v", c.name, err, c.want)
		}
	}
}

// FuzzIntroductions: whatever the payload names and whoever signs it, a key
// is introduced only when the payload names it and it signed the payload,
// and only by a trusted key that signed it too.
func FuzzIntroductions(f *testing.F) {
	old, next, stranger := mustRing(f, 1).Active(), mustRing(f, 2).Active(), mustRing(f, 3).Active()
	named := func(keys ...Key) []byte {
		var pubs []PublicKey
		for _, k := range keys {
			pubs = append(pubs, k.Public())
		}
		b, err := json.Marshal(map[string]any{"issued_at": t0, "expires_at": t0.Add(time.Hour), "signing_keys": pubs})
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	f.Add(named(next, old), uint8(0b011), uint8(0))
	f.Add(named(next, old), uint8(0b111), uint8(0b100))
	f.Add(named(stranger), uint8(0b101), uint8(0))
	f.Add(named(next, stranger), uint8(0b001), uint8(0b010))
	f.Add(named(next, old), uint8(0b011), uint8(0b001))
	f.Add([]byte(`{"signing_keys":[{"keyid":"x","public_key":"AAAA"}]}`), uint8(0b001), uint8(0))
	trusted := []PublicKey{old.Public()}
	f.Fuzz(func(t *testing.T, payload []byte, signers, corrupt uint8) {
		var env Envelope
		env.Payload = payload
		for i, k := range []Key{old, next, stranger} {
			if signers&(1<<i) == 0 {
				continue
			}
			sig := ed25519.Sign(k.Private, payload)
			if corrupt&(1<<i) != 0 {
				sig[0] ^= 1
			}
			env.Signatures = append(env.Signatures, Signature{KeyID: k.ID, Sig: sig})
		}
		intro, err := Introductions(env, trusted)
		if err != nil {
			return
		}
		signedBy := func(k PublicKey) bool {
			return slices.ContainsFunc(env.Signatures, func(s Signature) bool {
				return s.KeyID == k.ID && ed25519.Verify(k.Key, payload, s.Sig)
			})
		}
		var doc struct {
			SigningKeys []PublicKey `json:"signing_keys"`
		}
		if json.Unmarshal(payload, &doc) != nil {
			t.Fatalf("introduced keys from a payload that is not JSON: %q", payload)
		}
		isNamed := func(k PublicKey) bool {
			return slices.ContainsFunc(doc.SigningKeys, func(n PublicKey) bool { return n.ID == k.ID && bytes.Equal(n.Key, k.Key) })
		}
		for _, i := range intro {
			if i.Key.Validate() != nil || !signedBy(i.Key) || !isNamed(i.Key) {
				t.Fatalf("introduced %s, which did not sign or is not named: %s", i.Key.ID, payload)
			}
			if i.By != old.ID || i.Key.ID == old.ID || !signedBy(old.Public()) {
				t.Fatalf("introduced %s by %s, whose signature does not verify", i.Key.ID, i.By)
			}
		}
	})
}
