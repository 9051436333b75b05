package release

import (
	"encoding/json"
	"testing"
)

func TestParseVersion(t *testing.T) {
	tests := []struct {
		in   string
		want Version
		ok   bool
	}{
		{"3.30.0", Version{3, 30, 0, ""}, true},
		{"0.0.1", Version{0, 0, 1, ""}, true},
		{"1.2.3-rc.1", Version{1, 2, 3, "rc.1"}, true},
		{"1.2.3-0.3.7", Version{1, 2, 3, "0.3.7"}, true},
		{"1.2.3-x-y-z.--", Version{1, 2, 3, "x-y-z.--"}, true},
		{"18446744073709551615.0.0", Version{18446744073709551615, 0, 0, ""}, true},
		{"", Version{}, false},
		{"0.0.0", Version{}, false},
		{"v1.2.3", Version{}, false},
		{"1.2", Version{}, false},
		{"1.2.3.4", Version{}, false},
		{"01.2.3", Version{}, false},
		{"1.02.3", Version{}, false},
		{"1.2.3-", Version{}, false},
		{"1.2.3-rc..1", Version{}, false},
		{"1.2.3-01", Version{}, false},
		{"1.2.3-rc_1", Version{}, false},
		{"1.2.3+build", Version{}, false},
		{"1.2.3-rc+build", Version{}, false},
		{"18446744073709551616.0.0", Version{}, false},
		{" 1.2.3", Version{}, false},
		{"1.2.-3", Version{}, false},
		{"a.b.c", Version{}, false},
	}
	for _, tt := range tests {
		got, err := ParseVersion(tt.in)
		if (err == nil) != tt.ok {
			t.Errorf("ParseVersion(%q) error = %v, want ok=%v", tt.in, err, tt.ok)
			continue
		}
		if err != nil {
			if ErrorCode(err) != EINVALID {
				t.Errorf("ParseVersion(%q) code %q, want %q", tt.in, ErrorCode(err), EINVALID)
			}
			continue
		}
		if got != tt.want {
			t.Errorf("ParseVersion(%q) = %#v, want %#v", tt.in, got, tt.want)
		}
		if got.String() != tt.in {
			t.Errorf("ParseVersion(%q).String() = %q", tt.in, got.String())
		}
	}
}

func TestVersionCompare(t *testing.T) {
	// Ascending, from semver §11 and the cases ringfence relies on.
	ordered := []string{
		"0.9.9", "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta",
		"1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.1", "1.9.0",
		"1.10.0", "2.0.0", "3.29.4", "3.30.0", "3.30.3", "3.100.0",
	}
	for i := range ordered {
		for j := range ordered {
			a, b := MustParseVersion(ordered[i]), MustParseVersion(ordered[j])
			want := 0
			if i < j {
				want = -1
			} else if i > j {
				want = 1
			}
			if got := a.Compare(b); got != want {
				t.Errorf("%s.Compare(%s) = %d, want %d", a, b, got, want)
			}
			if a.Less(b) != (want < 0) {
				t.Errorf("%s.Less(%s) wrong", a, b)
			}
		}
	}
}

func TestVersionJSON(t *testing.T) {
	type doc struct {
		V Version `json:"v"`
		O Version `json:"o,omitzero"`
	}
	b, err := json.Marshal(doc{V: MustParseVersion("3.30.0-rc.2")})
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `{"v":"3.30.0-rc.2"}` {
		t.Fatalf("marshal: %s", b)
	}
	var d doc
	if err := json.Unmarshal([]byte(`{"v":"1.2.3","o":""}`), &d); err != nil || d.V != MustParseVersion("1.2.3") || !d.O.IsZero() {
		t.Fatalf("unmarshal: %+v, %v", d, err)
	}
	if err := json.Unmarshal([]byte(`{"v":"1.2"}`), &d); err == nil {
		t.Fatal("bad version accepted")
	}
	if err := json.Unmarshal([]byte(`{"v":3}`), &d); err == nil {
		t.Fatal("number accepted as version")
	}
}

func FuzzParseVersion(f *testing.F) {
	for _, s := range []string{"1.2.3", "3.30.0-rc.1", "0.0.0", "1.2.3-0a.b-c.00", "01.1.1", "1.2.3+x", "", "99999999999999999999.1.1", "1.1.1-" + string(rune(0x1F600))} {
		f.Add(s, "1.0.0")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		va, errA := ParseVersion(a)
		vb, errB := ParseVersion(b)
		if errA == nil {
			if va.String() != a {
				t.Fatalf("ParseVersion(%q).String() = %q", a, va.String())
			}
			if again, err := ParseVersion(va.String()); err != nil || again != va {
				t.Fatalf("round trip of %q: %v %v", a, again, err)
			}
			if va.Compare(va) != 0 {
				t.Fatalf("%q not equal to itself", a)
			}
		}
		if errA == nil && errB == nil {
			if va.Compare(vb) != -vb.Compare(va) {
				t.Fatalf("Compare not antisymmetric for %q, %q", a, b)
			}
			if (va.Compare(vb) == 0) != (va == vb) {
				t.Fatalf("Compare equal disagrees with == for %q, %q", a, b)
			}
		}
	})
}
