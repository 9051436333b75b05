package sign

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// detRand is a deterministic byte source for reproducible keys in tests.
type detRand struct{ r *rand.ChaCha8 }

func newDetRand(seed byte) *detRand {
	var s [32]byte
	s[0] = seed
	return &detRand{rand.NewChaCha8(s)}
}

func (d *detRand) Read(p []byte) (int, error) { return d.r.Read(p) }

var t0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func mustRing(t testing.TB, seed byte) *KeyRing {
	t.Helper()
	k, err := GenerateKey(newDetRand(seed), t0)
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewKeyRing(k)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

type answer struct {
	InstanceID string    `json:"instance_id"`
	Nonce      string    `json:"nonce"`
	IssuedAt   time.Time `json:"issued_at"`
	ExpiresAt  time.Time `json:"expires_at"`
	Offer      *struct {
		Version string `json:"version"`
	} `json:"offer"`
	Notices []string `json:"notices"`
}

func sampleAnswer() answer {
	return answer{InstanceID: "i-1", Nonce: "0123456789abcdef", IssuedAt: t0, ExpiresAt: t0.Add(time.Hour), Notices: []string{"a<b&c>", "ünïcode\n"}}
}

func mustSign(t testing.TB, r *KeyRing, v any) Envelope {
	t.Helper()
	env, err := r.SignJSON(v)
	if err != nil {
		t.Fatal(err)
	}
	return env
}

func TestVerify(t *testing.T) {
	ring := mustRing(t, 1)
	other := mustRing(t, 2)
	trusted := ring.PublicKeys()
	good := mustSign(t, ring, sampleAnswer())

	flip := func(b []byte, i int) []byte {
		c := bytes.Clone(b)
		c[i] ^= 1
		return c
	}
	tests := []struct {
		name string
		env  Envelope
		keys []PublicKey
		now  time.Time
		want error
	}{
		{"valid", good, trusted, t0.Add(time.Minute), nil},
		{"valid at issue time", good, trusted, t0, nil},
		{"tampered payload", Envelope{Payload: flip(good.Payload, 20), Signatures: good.Signatures}, trusted, t0, ErrBadSignature},
		{"tampered signature", Envelope{Payload: good.Payload, Signatures: []Signature{{good.Signatures[0].KeyID, flip(good.Signatures[0].Sig, 3)}}}, trusted, t0, ErrBadSignature},
		{"truncated signature", Envelope{Payload: good.Payload, Signatures: []Signature{{good.Signatures[0].KeyID, good.Signatures[0].Sig[:10]}}}, trusted, t0, ErrBadSignature},
		{"no signatures", Envelope{Payload: good.Payload}, trusted, t0, ErrNoTrustedSignature},
		{"untrusted key", good, other.PublicKeys(), t0, ErrNoTrustedSignature},
		{"signed by another key under our id", Envelope{Payload: good.Payload, Signatures: []Signature{{ring.Active().ID, ed25519.Sign(other.Active().Private, good.Payload)}}}, trusted, t0, ErrBadSignature},
		{"expired", good, trusted, t0.Add(time.Hour), ErrExpired},
		{"long expired", good, trusted, t0.Add(48 * time.Hour), ErrExpired},
		{"issued in the future", good, trusted, t0.Add(-MaxClockSkew - time.Second), ErrNotYetValid},
		{"within clock skew", good, trusted, t0.Add(-MaxClockSkew), nil},
		{"empty payload", Envelope{Signatures: good.Signatures}, trusted, t0, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			payload, err := Verify(tt.env, tt.keys, tt.now)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify: got %v, want %v", err, tt.want)
			}
			if err == nil && !bytes.Equal(payload, good.Payload) {
				t.Fatalf("payload changed")
			}
			if err != nil && payload != nil {
				t.Fatalf("payload returned with error")
			}
		})
	}
}

func TestVerifyRequiresValidity(t *testing.T) {
	ring := mustRing(t, 1)
	for name, v := range map[string]any{
		"no expiry":  map[string]any{"issued_at": t0},
		"no issue":   map[string]any{"expires_at": t0.Add(time.Hour)},
		"not object": []int{1, 2},
		"bad time":   map[string]any{"issued_at": "yesterday", "expires_at": "tomorrow"},
	} {
		env := mustSign(t, ring, v)
		if _, err := Verify(env, ring.PublicKeys(), t0); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: got %v, want ErrMalformed", name, err)
		}
	}
}

func TestEnvelopeWireForm(t *testing.T) {
	ring := mustRing(t, 1)
	env := mustSign(t, ring, sampleAnswer())
	b, err := json.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	var generic map[string]any
	if err := json.Unmarshal(b, &generic); err != nil {
		t.Fatal(err)
	}
	if _, ok := generic["payload"].(string); !ok {
		t.Fatalf("payload is not a base64 string: %s", b)
	}
	sigs := generic["signatures"].([]any)
	sig := sigs[0].(map[string]any)
	if sig["keyid"] != ring.Active().ID || len(sig["keyid"].(string)) != 16 {
		t.Fatalf("keyid %v, want %s", sig["keyid"], ring.Active().ID)
	}
	var back Envelope
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(back, ring.PublicKeys(), t0); err != nil {
		t.Fatalf("round-tripped envelope: %v", err)
	}
}

func TestCanonical(t *testing.T) {
	type inner struct {
		Z int    `json:"z"`
		A string `json:"a"`
	}
	type doc struct {
		Zed   string         `json:"zed"`
		Alpha []inner        `json:"alpha"`
		M     map[string]int `json:"m"`
		Nil   *inner         `json:"nil"`
		B     bool           `json:"b"`
	}
	got, err := Canonical(doc{Zed: "x<y>&\"\\\u0001\t é", Alpha: []inner{{Z: -3, A: "q"}}, M: map[string]int{"b": 2, "a": 1}, B: true})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"alpha":[{"a":"q","z":-3}],"b":true,"m":{"a":1,"b":2},"nil":null,"zed":"x<y>&\"\\\u0001\t é"}`
	if string(got) != want {
		t.Fatalf("Canonical:\n got %s\nwant %s", got, want)
	}

	// Whitespace and key order of the input do not matter.
	a, err := CanonicalizeJSON([]byte(` { "b" : [1, 2, {"y":1,"x":2}], "a": "s" } `))
	if err != nil {
		t.Fatal(err)
	}
	b, err := CanonicalizeJSON([]byte(`{"a":"s","b":[1,2,{"x":2,"y":1}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) || string(a) != `{"a":"s","b":[1,2,{"x":2,"y":1}]}` {
		t.Fatalf("not canonical: %s vs %s", a, b)
	}

	for _, bad := range []string{`{"a":1.5}`, `{"a":1e3}`, `{"a":9007199254740992}`, `"0"]`, `{"a":1,"a":2}`, `{"x":{"a":1,"a":2}}`, `[{"k":[{"a":1}],"k":2}]`, `{`, `{"a":1} {}`, "\"\xff\""} {
		if out, err := CanonicalizeJSON([]byte(bad)); err == nil {
			t.Errorf("CanonicalizeJSON(%q) = %s, want error", bad, out)
		}
	}
	if _, err := CanonicalizeJSON([]byte(`{"a":[{"a":1},{"a":2}],"b":{"a":{"a":1}}}`)); err != nil {
		t.Errorf("same key in sibling objects is not a duplicate: %v", err)
	}
}

func TestCanonicalDeterministic(t *testing.T) {
	m := map[string]any{}
	for i := 0; i < 200; i++ {
		m[strings.Repeat("k", i%7)+string(rune('a'+i%26))+string(rune('0'+i%10))] = i
	}
	first, err := Canonical(m)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		again, err := Canonical(m)
		if err != nil || !bytes.Equal(again, first) {
			t.Fatalf("run %d differs", i)
		}
	}
}

func TestKeyRingRotate(t *testing.T) {
	ring := mustRing(t, 1)
	old := ring.Active()
	oldEnv := mustSign(t, ring, sampleAnswer())

	rotated, k, err := ring.Rotate(newDetRand(9), t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if rotated.Active().ID != k.ID || k.ID == old.ID {
		t.Fatalf("rotated ring signs with %s, want new key %s", rotated.Active().ID, k.ID)
	}
	if ring.Active().ID != old.ID {
		t.Fatalf("Rotate changed the original ring")
	}
	pubs := rotated.PublicKeys()
	if len(pubs) != 2 || pubs[0].ID != old.ID || pubs[1].ID != k.ID {
		t.Fatalf("public keys %v", pubs)
	}
	for _, p := range pubs {
		if err := p.Validate(); err != nil {
			t.Fatal(err)
		}
	}
	newEnv := mustSign(t, rotated, sampleAnswer())
	if newEnv.Signatures[0].KeyID != k.ID {
		t.Fatalf("new answers signed by %s", newEnv.Signatures[0].KeyID)
	}
	for name, env := range map[string]Envelope{"old": oldEnv, "new": newEnv} {
		if _, err := Verify(env, pubs, t0); err != nil {
			t.Errorf("%s answer against rotated keys: %v", name, err)
		}
	}
	// An agent that pinned only the old key rejects answers of the new one.
	if _, err := Verify(newEnv, ring.PublicKeys(), t0); !errors.Is(err, ErrNoTrustedSignature) {
		t.Errorf("new answer against old pin: %v", err)
	}
}

// TestKeyRingOverlap: during the overlap after a rotation the previous key
// co-signs, so an agent pinned to it alone still verifies new answers;
// after the overlap only the new key signs.
func TestKeyRingOverlap(t *testing.T) {
	ring := mustRing(t, 1)
	oldPin := ring.PublicKeys()
	rotated, k, err := ring.Rotate(newDetRand(9), t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	newPin := []PublicKey{k.Public()}
	during := mustSign(t, rotated.WithOverlap(t0.Add(2*time.Hour), 24*time.Hour), sampleAnswer())
	if len(during.Signatures) != 2 || during.Signatures[0].KeyID != k.ID || during.Signatures[1].KeyID != ring.Active().ID {
		t.Fatalf("signatures during the overlap: %+v", during.Signatures)
	}
	for name, pin := range map[string][]PublicKey{"old": oldPin, "new": newPin, "both": rotated.PublicKeys()} {
		if _, err := Verify(during, pin, t0); err != nil {
			t.Errorf("answer during the overlap against the %s pin: %v", name, err)
		}
	}
	after := mustSign(t, rotated.WithOverlap(t0.Add(26*time.Hour), 24*time.Hour), sampleAnswer())
	if len(after.Signatures) != 1 || after.Signatures[0].KeyID != k.ID {
		t.Fatalf("signatures after the overlap: %+v", after.Signatures)
	}
	if _, err := Verify(after, oldPin, t0); !errors.Is(err, ErrNoTrustedSignature) {
		t.Errorf("answer after the overlap against the old pin: %v, want ErrNoTrustedSignature", err)
	}
	// One key alone never co-signs.
	if env := mustSign(t, ring.WithOverlap(t0, 24*time.Hour), sampleAnswer()); len(env.Signatures) != 1 {
		t.Errorf("a one-key ring signed %d times", len(env.Signatures))
	}
}

func TestKeyStorage(t *testing.T) {
	ring := mustRing(t, 1)
	rotated, _, err := ring.Rotate(newDetRand(2), t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(rotated.Keys())
	if err != nil {
		t.Fatal(err)
	}
	var keys []Key
	if err := json.Unmarshal(b, &keys); err != nil {
		t.Fatal(err)
	}
	back, err := NewKeyRing(keys...)
	if err != nil {
		t.Fatal(err)
	}
	if back.Active().ID != rotated.Active().ID || !back.Active().CreatedAt.Equal(rotated.Active().CreatedAt) {
		t.Fatalf("restored ring differs")
	}
	env := mustSign(t, back, sampleAnswer())
	if _, err := Verify(env, rotated.PublicKeys(), t0); err != nil {
		t.Fatal(err)
	}

	// A stored key whose id does not match its seed is refused.
	var stored []map[string]any
	if err := json.Unmarshal(b, &stored); err != nil {
		t.Fatal(err)
	}
	stored[0]["keyid"] = stored[1]["keyid"]
	bad, _ := json.Marshal(stored[0])
	var k Key
	if err := json.Unmarshal(bad, &k); err == nil {
		t.Fatal("key with a wrong id accepted")
	}
	if err := json.Unmarshal([]byte(`{"keyid":"x","seed":"AAAA"}`), &k); err == nil {
		t.Fatal("short seed accepted")
	}
	if _, err := NewKeyRing(); err == nil {
		t.Fatal("empty ring accepted")
	}
	if _, err := NewKeyRing(ring.Active(), ring.Active()); err == nil {
		t.Fatal("duplicate key accepted")
	}
	pk := ring.Active().Public()
	pk.ID = "0000000000000000"
	if err := pk.Validate(); err == nil {
		t.Fatal("public key with a wrong id validated")
	}
}

// checkinAnswer has the shape of a check-in answer (release.Answer, which
// sign cannot import): struct fields in declaration order, not key order.
type checkinAnswer struct {
	InstanceID string          `json:"instance_id"`
	Nonce      string          `json:"nonce"`
	IssuedAt   time.Time       `json:"issued_at"`
	ExpiresAt  time.Time       `json:"expires_at"`
	Ring       string          `json:"ring"`
	Current    checkinCurrent  `json:"current"`
	Offer      *checkinOffer   `json:"offer"`
	Notices    []checkinNotice `json:"notices"`
	PollAfter  int             `json:"poll_after"`
}

type checkinCurrent struct {
	Version string `json:"version"`
	Status  string `json:"status"`
	Action  string `json:"action"`
	Target  string `json:"target,omitempty"`
	Reason  string `json:"reason,omitempty"`
}

type checkinOffer struct {
	Version      string `json:"version"`
	NotesURL     string `json:"notes_url,omitempty"`
	RequiredStop bool   `json:"required_stop"`
}

type checkinNotice struct {
	Kind    string `json:"kind"`
	Message string `json:"message"`
}

func sampleCheckinAnswer() checkinAnswer {
	return checkinAnswer{
		InstanceID: "inst-00042", Nonce: "bm9uY2Utb2YtdGhlLWNoZWNrLWlu", IssuedAt: t0, ExpiresAt: t0.Add(15 * time.Minute), Ring: "canary",
		Current:   checkinCurrent{Version: "4.2.0", Status: "ok", Action: "upgrade", Target: "4.3.1"},
		Offer:     &checkinOffer{Version: "4.3.1", NotesURL: "https://example.com/notes/4.3.1?a=1&b=2"},
		Notices:   []checkinNotice{{"required_stop", "4.3.1 is a required stop before 5.0 <upgrade first>"}},
		PollAfter: 300,
	}
}

// BenchmarkSignJSON signs a check-in answer as SignJSON does, with the
// tree-based reference canonicalizer (tree) and with canonicalize (scan).
func BenchmarkSignJSON(b *testing.B) {
	ring := mustRing(b, 1)
	a := sampleCheckinAnswer()
	b.Run("tree", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			payload, err := refCanonical(a)
			if err != nil {
				b.Fatal(err)
			}
			ring.Sign(payload)
		}
	})
	b.Run("scan", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := ring.SignJSON(a); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkCanonical is BenchmarkSignJSON without the signature.
func BenchmarkCanonical(b *testing.B) {
	a := sampleCheckinAnswer()
	for _, impl := range []struct {
		name      string
		canonical func(any) ([]byte, error)
	}{{"tree", refCanonical}, {"scan", Canonical}} {
		b.Run(impl.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := impl.canonical(a); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkVerify(b *testing.B) {
	ring := mustRing(b, 1)
	env := mustSign(b, ring, sampleAnswer())
	keys := ring.PublicKeys()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Verify(env, keys, t0); err != nil {
			b.Fatal(err)
		}
	}
}
