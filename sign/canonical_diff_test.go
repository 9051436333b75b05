package sign

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"strings"
	"testing"
	"time"
)

// sameCanonical fails t unless got and want, the results of canonicalize and
// of the reference for in, are the same bytes or both errors; errors that
// are not syntax errors must have the same message too.
func sameCanonical(t *testing.T, in any, got []byte, gotErr error, want []byte, wantErr error) {
	t.Helper()
	var syntax *json.SyntaxError
	switch {
	case (gotErr == nil) != (wantErr == nil):
		t.Fatalf("%q: got %q, %v; reference %q, %v", in, got, gotErr, want, wantErr)
	case gotErr == nil && !bytes.Equal(got, want):
		t.Fatalf("%q:\n got %q\nwant %q", in, got, want)
	case gotErr == nil || errors.As(wantErr, &syntax) || errors.Is(wantErr, io.EOF) || errors.Is(wantErr, io.ErrUnexpectedEOF):
	case gotErr.Error() != wantErr.Error():
		t.Fatalf("%q: error %q, reference %q", in, gotErr, wantErr)
	}
}

// FuzzCanonicalizeReference compares canonicalize with the tree-based
// reference on arbitrary documents, with and without the duplicate check.
func FuzzCanonicalizeReference(f *testing.F) {
	for _, s := range []string{
		`{"b":1,"a":[true,null,"x"]}`, ` { "b" : [ 1 , -0 ] ,"a":{"d":{},"c":[]} } `, `{"a":1,"a":2}`, `{"a":1.5,"a":2}`,
		`{"b":{"x":1,"x":2},"a":1,"a":{}}`, `{"a":{"b":1,"b":2},"c":{"d":1,"d":1}}`, `[{"a":1e3}]`, `{"a":1,"b":1.0}`,
		`{"a\u0000":1,"a":2,"\u00e9":3,"é":4}`, `"\ud83d\ude00\ud800\udc00x\udc00\ud800\u0041\ud800\\"`, `"\ud800\u00"`,
		`"\/\b\f\n\r\t\"\\\u001f\u007f\u2028<>&"`, `9007199254740991`, `-9007199254740992`, `[-0.0, 01]`, `0x`, `truex`,
		`[tru]`, `{"a" 1}`, `{"a":1,}`, `[1,]`, `{,}`, "\"\xff\"", "\"a\tb\"", `  `, ``, `{"a":1} x`, `[1] [2]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		for _, checkDup := range []bool{false, true} {
			got, gotErr := canonicalize(doc, checkDup)
			want, wantErr := refCanonicalize(doc, checkDup)
			sameCanonical(t, doc, got, gotErr, want, wantErr)
		}
	})
}

func TestCanonicalizeDepth(t *testing.T) {
	for _, tt := range []struct {
		doc string
		ok  bool
	}{
		{strings.Repeat("[", 10000) + strings.Repeat("]", 10000), true},
		{strings.Repeat("[", 10001) + strings.Repeat("]", 10001), false},
		{strings.Repeat(`{"b":0,"a":`, 10000) + "1" + strings.Repeat("}", 10000), true},
		{strings.Repeat(`{"a":[`, 5000) + "1" + strings.Repeat("]}", 5000), true},
		{strings.Repeat(`{"a":[`, 5001) + "1" + strings.Repeat("]}", 5001), false},
	} {
		for _, checkDup := range []bool{false, true} {
			got, gotErr := canonicalize([]byte(tt.doc), checkDup)
			want, wantErr := refCanonicalize([]byte(tt.doc), checkDup)
			sameCanonical(t, tt.doc[:20], got, gotErr, want, wantErr)
			if (gotErr == nil) != tt.ok {
				t.Errorf("%s... (%d bytes): error %v", tt.doc[:20], len(tt.doc), gotErr)
			}
		}
	}
}

// upper marshals as a map key in upper case, so two keys can collide.
type upper struct{ s string }

func (u upper) MarshalText() ([]byte, error) { return []byte(strings.ToUpper(u.s)), nil }

// TestCanonicalCollidingKeys: map keys that marshal to the same text give an
// object with a key twice, in an order encoding/json leaves open, so both
// implementations read the same marshalled bytes here.
func TestCanonicalCollidingKeys(t *testing.T) {
	raw, err := json.Marshal(map[string]any{"m": map[upper]int{{"a"}: 1, {"A"}: 2, {"b"}: 3}})
	if err != nil || bytes.Count(raw, []byte(`"A"`)) != 2 {
		t.Fatalf("want a key twice: %s, %v", raw, err)
	}
	got, gotErr := canonicalize(raw, false)
	want, wantErr := refCanonicalize(raw, false)
	sameCanonical(t, raw, got, gotErr, want, wantErr)
	if s := string(got); s != `{"m":{"A":1,"B":3}}` && s != `{"m":{"A":2,"B":3}}` {
		t.Fatalf("%s -> %s", raw, got)
	}
}

func TestCanonicalMatchesReference(t *testing.T) {
	type Embedded struct {
		Name string `json:"name"`
		Z    int
	}
	type inner struct {
		Zeta  string   `json:"zeta"`
		Alpha []uint64 `json:"alpha,omitempty"`
	}
	type doc struct {
		Embedded
		Name     string            `json:"name"` // shadows Embedded.Name
		Text     string            `json:"text"`
		When     time.Time         `json:"when"`
		Inner    inner             `json:"inner"`
		Optional *inner            `json:"optional"`
		List     []inner           `json:"list"`
		Map      map[string]any    `json:"map"`
		Raw      json.RawMessage   `json:"raw,omitempty"`
		Bytes    []byte            `json:"bytes"`
		Strs     map[string]string `json:"strs"`
	}
	base := func() doc {
		return doc{
			Embedded: Embedded{Name: "shadowed", Z: 3}, Name: "n", Text: "a<b>&c \u2028\u2029 \"q\" \\ \x01\x7f é 😀",
			When: time.Date(2026, 12, 6, 17, 0, 0, 123, time.FixedZone("x", 3600)), Inner: inner{Zeta: "z", Alpha: []uint64{0, 1<<53 - 1}},
			List: []inner{{Zeta: "\xff\xfe invalid"}, {}}, Map: map[string]any{"b": nil, "a": []any{true, -1, "x"}, "": map[string]any{}},
			Bytes: []byte("\x00\xff"), Strs: map[string]string{"k\n": "v\t", "K": "<>"},
		}
	}
	with := func(change func(*doc)) doc { d := base(); change(&d); return d }
	values := map[string]any{
		"struct":                base(),
		"pointer":               with(func(d *doc) { d.Optional = &inner{Zeta: "o"} }),
		"largest safe integers": map[string]int64{"max": 1<<53 - 1, "min": -(1<<53 - 1)},
		"integer beyond 2^53-1": map[string]uint64{"a": 1 << 53},
		"negative beyond":       []int64{math.MinInt64},
		"integral float":        []float64{2, -0.0, 1e15},
		"fraction":              map[string]float64{"a": 1, "b": 0.5},
		"large float":           []float64{1e21},
		"NaN":                   []float64{math.NaN()},
		"invalid UTF-8 keys":    map[string]int{"\xff": 1, "\xfe": 2, "\ufffd": 3},
		"duplicate key via Raw": with(func(d *doc) { d.Raw = json.RawMessage(`{"b":1,"a":2,"b":3}`) }),
		"dropped bad number":    with(func(d *doc) { d.Raw = json.RawMessage(`{"a":1.5,"a":2}`) }),
		"kept bad number":       with(func(d *doc) { d.Raw = json.RawMessage(`{"a":2,"a":1.5}`) }),
		"invalid Raw":           with(func(d *doc) { d.Raw = json.RawMessage(`{"a":}`) }),
		"unsupported type":      map[string]any{"f": func() {}},
		"nested slices":         [][]any{{}, {[]string{"a"}, map[string]bool{"z": true, "y": false}}},
		"string with escapes":   "\"\\/\b\f\n\r\t\u2028",
		"empty":                 struct{}{},
		"nil":                   nil,
	}
	for name, v := range values {
		t.Run(name, func(t *testing.T) {
			got, gotErr := Canonical(v)
			want, wantErr := refCanonical(v)
			sameCanonical(t, v, got, gotErr, want, wantErr)
		})
	}
}

// FuzzCanonicalValues compares Canonical with the reference on Go values
// built from fuzzed strings and numbers; raw is embedded as a
// json.RawMessage where it is valid JSON.
func FuzzCanonicalValues(f *testing.F) {
	f.Add("a<b>&", "\u2028\xff", int64(1), 1.5, []byte(`{"b":1,"a":[2]}`))
	f.Add("k", "k", int64(1<<53), 3.0, []byte(`{"a":1,"a":2}`))
	f.Fuzz(func(t *testing.T, s1, s2 string, n int64, x float64, raw []byte) {
		type pair struct {
			S1 string `json:"s1"`
			N  int64  `json:"n"`
			S2 string `json:"s2,omitempty"`
		}
		v := map[string]any{s1: pair{s1, n, s2}, s2: []any{x, n, s1}, "m": map[string]int64{s1: n, s2: -n}}
		if json.Valid(raw) {
			v["raw"] = json.RawMessage(raw)
		}
		got, gotErr := Canonical(v)
		want, wantErr := refCanonical(v)
		sameCanonical(t, v, got, gotErr, want, wantErr)
	})
}
