package release

import (
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"0s": 0, "90s": 90 * time.Second, "1d": 24 * time.Hour, "2w": 14 * 24 * time.Hour,
		"1d12h": 36 * time.Hour, "1.5d": 36 * time.Hour, "-1d": -24 * time.Hour, "500ms": 500 * time.Millisecond,
		"1w2d3h": (9*24 + 3) * time.Hour,
	} {
		got, err := ParseDuration(in)
		if err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "1", "d", "1x", "1dd", "1 d", "w1"} {
		if _, err := ParseDuration(in); err == nil || ErrorCode(err) != EINVALID {
			t.Errorf("ParseDuration(%q): %v, want EINVALID", in, err)
		}
	}
	for in, want := range map[time.Duration]string{
		24 * time.Hour: "1d", 36 * time.Hour: "1d12h0m0s", time.Hour: "1h0m0s", -48 * time.Hour: "-2d",
	} {
		if got := FormatDuration(in); got != want {
			t.Errorf("FormatDuration(%v) = %q, want %q", in, got, want)
		}
		if back, err := ParseDuration(FormatDuration(in)); err != nil || back != in {
			t.Errorf("round trip of %v: %v, %v", in, back, err)
		}
	}
}

func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"1d", "2w", "1.5d12h", "-3w", "90s"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDuration(s)
		if err != nil {
			return
		}
		if back, err := ParseDuration(FormatDuration(d)); err != nil || back != d {
			t.Fatalf("%q -> %v -> %q -> %v, %v", s, d, FormatDuration(d), back, err)
		}
	})
}

func TestVersionLeadingV(t *testing.T) {
	_, err := ParseVersion("v3.30.3")
	if err == nil || ErrorMessage(err) != `version "v3.30.3": drop the leading v (write 3.30.3)` {
		t.Fatalf("v3.30.3: %v", err)
	}
}
