package release

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

const validCheckIn = `{
  "instance_id": "5f0c6f1e-8d1a-4b4e-9a53-3f1d2c0b7a11",
  "product": "acme",
  "version": "3.29.4",
  "nonce": "q8W2b6mZ0pVt3xYc",
  "health": {"status": "collation_changed", "detail": "en_US.utf8 order changed; 3 indexes at risk"},
  "events": [
    {"kind": "upgrade_started", "from": "3.29.3", "to": "3.29.4", "at": "2026-11-26T10:00:00Z"},
    {"kind": "upgrade_succeeded", "from": "3.29.3", "at": "2026-11-26T10:02:00Z"},
    {"kind": "integrity_failed", "at": "2026-11-26T10:03:00Z", "detail": "index users_email_key corrupt"}
  ]
}`

func TestDecodeCheckIn(t *testing.T) {
	c, err := DecodeCheckIn(strings.NewReader(validCheckIn), DefaultMaxCheckInBytes)
	if err != nil {
		t.Fatal(err)
	}
	if c.InstanceID != "5f0c6f1e-8d1a-4b4e-9a53-3f1d2c0b7a11" || c.Product != "acme" || c.Version != MustParseVersion("3.29.4") ||
		c.Health == nil || c.Health.Status != HealthCollationChanged || len(c.Events) != 3 {
		t.Fatalf("decoded %+v", c)
	}
	// Missing "to" of upgrade_succeeded and integrity_failed default to the check-in's version.
	for _, i := range []int{1, 2} {
		if c.Events[i].To != c.Version {
			t.Errorf("event %d to = %s, want %s", i, c.Events[i].To, c.Version)
		}
	}
	if !c.Events[0].At.Equal(time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)) {
		t.Errorf("event time %s", c.Events[0].At)
	}
}

func TestDecodeCheckInRejects(t *testing.T) {
	base := map[string]any{"instance_id": "i-1", "product": "acme", "version": "1.2.3", "nonce": "0123456789abcdef"}
	with := func(k string, v any) string {
		m := map[string]any{}
		for k, v := range base {
			m[k] = v
		}
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	ev := func(e map[string]any) string { return with("events", []any{e}) }
	tests := []struct {
		name, body, wantMsg string
	}{
		{"empty body", "", "empty body"},
		{"not JSON", "hello", "invalid JSON"},
		{"truncated", `{"instance_id": "i-1"`, "truncated"},
		{"array", `[]`, "expected a JSON object"},
		{"trailing data", with("x", nil) + " {}", "unexpected data after"},
		{"unknown field", with("admin", true), `unknown field "admin"`},
		{"wrong type", with("version", 3), "field version"},
		{"missing instance id", with("instance_id", nil), "instance_id is required"},
		{"bad instance id", with("instance_id", "a b"), "instance_id: only"},
		{"long instance id", with("instance_id", strings.Repeat("a", 129)), "instance_id longer"},
		{"bad product", with("product", "Acme!"), "product name"},
		{"missing version", with("version", nil), "version is required"},
		{"bad version", with("version", "1.2"), "MAJOR.MINOR.PATCH"},
		{"missing nonce", with("nonce", nil), "nonce must be"},
		{"short nonce", with("nonce", "abc"), "nonce must be"},
		{"bad nonce", with("nonce", "0123456789abcdef!"), "nonce: only"},
		{"bad health", with("health", map[string]any{"status": "fine"}), "health status"},
		{"long health detail", with("health", map[string]any{"status": "ok", "detail": strings.Repeat("x", 4097)}), "health detail"},
		{"unknown event kind", ev(map[string]any{"kind": "exploded", "from": "1.0.0", "to": "1.2.3", "at": "2026-11-26T10:00:00Z"}), "kind \"exploded\""},
		{"upgrade without from", ev(map[string]any{"kind": "upgrade_failed", "to": "1.2.3", "at": "2026-11-26T10:00:00Z"}), "needs \"from\""},
		{"upgrade without to", ev(map[string]any{"kind": "upgrade_started", "from": "1.0.0", "at": "2026-11-26T10:00:00Z"}), "needs \"to\""},
		{"event without time", ev(map[string]any{"kind": "upgrade_failed", "from": "1.0.0", "to": "1.2.3"}), "needs \"at\""},
		{"event bad time", ev(map[string]any{"kind": "upgrade_failed", "from": "1.0.0", "to": "1.2.3", "at": "yesterday"}), "yesterday is not an RFC 3339 time"},
		{"event unknown field", ev(map[string]any{"kind": "upgrade_failed", "from": "1.0.0", "to": "1.2.3", "at": "2026-11-26T10:00:00Z", "x": 1}), `unknown field "x"`},
		{"too many events", with("events", make([]map[string]any, MaxCheckInEvents+1)), "at most 100"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeCheckIn(strings.NewReader(tt.body), DefaultMaxCheckInBytes)
			if err == nil {
				t.Fatalf("accepted %s", tt.body)
			}
			if ErrorCode(err) != EINVALID {
				t.Fatalf("code %q, want %q (%v)", ErrorCode(err), EINVALID, err)
			}
			if !strings.Contains(ErrorMessage(err), tt.wantMsg) {
				t.Fatalf("message %q does not mention %q", ErrorMessage(err), tt.wantMsg)
			}
		})
	}
}

func TestDecodeCheckInSizeLimit(t *testing.T) {
	body := validCheckIn
	if _, err := DecodeCheckIn(strings.NewReader(body), int64(len(body))); err != nil {
		t.Fatalf("body of exactly the limit refused: %v", err)
	}
	_, err := DecodeCheckIn(strings.NewReader(body), int64(len(body)-1))
	if err == nil || !strings.Contains(ErrorMessage(err), "larger than") {
		t.Fatalf("oversized body: %v", err)
	}
	// An endless body is read only up to the limit.
	r := &countingReader{}
	if _, err := DecodeCheckIn(r, 1024); err == nil {
		t.Fatal("endless body accepted")
	}
	if r.n > 1025+4096 {
		t.Fatalf("read %d bytes of an endless body with a 1024-byte limit", r.n)
	}
}

// countingReader is an endless stream of spaces.
type countingReader struct{ n int }

func (r *countingReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = ' '
	}
	r.n += len(p)
	return len(p), nil
}

func FuzzDecodeCheckIn(f *testing.F) {
	f.Add([]byte(validCheckIn))
	f.Add([]byte(`{"instance_id":"i","product":"p","version":"1.0.0","nonce":"0123456789abcdef"}`))
	f.Add([]byte(`{"instance_id":"i","product":"p","version":"1.0.0","nonce":"0123456789abcdef","events":[{"kind":"upgrade_failed","from":"0.9.0","to":"1.0.0","at":"2026-01-01T00:00:00Z"}]}`))
	f.Add([]byte(`{"health":{"status":"corrupt"}}`))
	f.Add([]byte(`[1,2,3]`))
	f.Add([]byte(`{"events":[{}]}`))
	f.Add([]byte("{\"instance_id\":\"\xff\"}"))
	f.Fuzz(func(t *testing.T, body []byte) {
		c, err := DecodeCheckIn(bytes.NewReader(body), 4096)
		if err != nil {
			if ErrorCode(err) != EINVALID {
				t.Fatalf("error code %q: %v", ErrorCode(err), err)
			}
			return
		}
		if len(body) > 4096 {
			t.Fatalf("accepted %d bytes over the limit", len(body))
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("decoded check-in does not validate: %v", err)
		}
		// What was accepted survives a round trip unchanged.
		b, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		again, err := DecodeCheckIn(bytes.NewReader(b), 1<<20)
		if err != nil {
			t.Fatalf("re-decode of %s: %v", b, err)
		}
		b2, err := json.Marshal(again)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b, b2) {
			t.Fatalf("round trip changed the check-in:\n%+v\n%+v", c, again)
		}
	})
}

func BenchmarkDecodeCheckIn(b *testing.B) {
	body := []byte(validCheckIn)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeCheckIn(bytes.NewReader(body), DefaultMaxCheckInBytes); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeCheckInRoutine(b *testing.B) {
	body := []byte(`{"instance_id":"5f0c6f1e-8d1a-4b4e-9a53-3f1d2c0b7a11","product":"acme","version":"3.29.4","nonce":"q8W2b6mZ0pVt3xYcR1d9Kw","health":{"status":"ok"}}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeCheckIn(bytes.NewReader(body), DefaultMaxCheckInBytes); err != nil {
			b.Fatal(err)
		}
	}
}
