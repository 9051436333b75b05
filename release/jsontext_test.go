package release

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestCheckJSON(t *testing.T) {
	for _, c := range []struct {
		body, err string
	}{
		{`{"a":"x\ty\nz","b":[1,"ok",{"c":null}]}`, ""},
		{`{"a":"\u0000"}`, "a: control character U+0000"},
		{`{"a":[{"b":"x"},{"b":"\u0007"}]}`, "a[1].b: control character U+0007"},
		{`{"a\u0001":1}`, "a\x01: control character U+0001"},
		{`{"a":{"b":{"c":"\r"}}}`, "a.b.c: control character U+000D"},
		{`{"a":`, ""}, // malformed: left to the decoder
		{`{"a":1,"b":{"a":1},"a":2}`, "field a given twice"},
		{`{"b":{"c":1,"c":2}}`, "field b.c given twice"},
		{`{"Instance_ID":"x"}`, "unknown field Instance_ID (field names are lower case)"},
		{"{\"a\":\"\xff\"}", "body is not valid UTF-8"},
		{`{"a":"\ud800"}`, "a: invalid \\u escape"},
		{`{"a":"\ud83d\ude00 \ufffd"}`, ""},
		// The walk unescapes names and values itself: what encoding/json
		// would decode alike is the same to it.
		{`{"a":1,"\u0061":2}`, "field a given twice"},
		{`{"b":{"\u0063":1,"c":2}}`, "field b.c given twice"},
		{`{"\u0041":1}`, "unknown field A (field names are lower case)"},
		{`{"\u00c9t\u00e9":1}`, "unknown field \u00c9t\u00e9 (field names are lower case)"},
		{`{"\u017ftatus":1}`, "unknown field \u017ftatus (field names are lower case)"}, // ſ folds to s in encoding/json
		{`{"\u00e9t\u00e9":1}`, "unknown field \u00e9t\u00e9 (field names are lower case)"},
		{`{"a":["x",{"b":"\u001f"}]}`, "a[1].b: control character U+001F"},
		{`{"a":"\b"}`, "a: control character U+0008"},
		{`["\f"]`, "[0]: control character U+000C"},
		{`"\u0000"`, "body: control character U+0000"},
		{`{"a":"\ude00"}`, "a: invalid \\u escape"},
		{`{"a":"\ud83dx"}`, "a: invalid \\u escape"},
		{`{"a":"\ud83d\u0041"}`, "a: invalid \\u escape"},
		{`{"a":"\ud800 \ufffd"}`, "a: invalid \\u escape"}, // a U+FFFD spelled out does not excuse a lone surrogate
		{`{"a":"\"x\\/\u00e9\ud83d\ude00","b":[1.5e3,true,null,{}]}`, ""},
		{`{"a":"\x"}`, ""}, // malformed: left to the decoder
		{`{"a":1 "b":2}`, ""},
	} {
		err := CheckJSON([]byte(c.body))
		if got := ErrorMessage(err); got != c.err && !(c.err != "" && len(got) > len(c.err) && got[:len(c.err)] == c.err) {
			t.Errorf("%s: %q, want %q...", c.body, got, c.err)
		}
	}
}

// TestCheckJSONLargeBodies: nesting past maxJSONDepth is refused, and an
// object with more than manyNames members still finds a repeated name
// (kept in a map from then on), before and after the switch.
func TestCheckJSONLargeBodies(t *testing.T) {
	deep := strings.Repeat("[", maxJSONDepth+1) + strings.Repeat("]", maxJSONDepth+1)
	if got := ErrorMessage(CheckJSON([]byte(deep))); !strings.Contains(got, "nested deeper than 64 levels") {
		t.Errorf("%d levels: %q", maxJSONDepth+1, got)
	}
	ok := strings.Repeat("[", maxJSONDepth) + strings.Repeat("]", maxJSONDepth)
	if err := CheckJSON([]byte(ok)); err != nil {
		t.Errorf("%d levels: %v", maxJSONDepth, err)
	}
	members := func(n int, repeat string) string {
		var b strings.Builder
		b.WriteString("{")
		for i := range n {
			fmt.Fprintf(&b, `"m%d":%d,`, i, i)
		}
		fmt.Fprintf(&b, `"%s":0}`, repeat)
		return b.String()
	}
	for _, n := range []int{manyNames / 2, manyNames, 4 * manyNames} {
		if got := ErrorMessage(CheckJSON([]byte(members(n, "m1")))); got != "field m1 given twice" {
			t.Errorf("%d members then m1 again: %q", n, got)
		}
		if err := CheckJSON([]byte(members(n, "last"))); err != nil {
			t.Errorf("%d distinct members: %v", n, err)
		}
	}
}

// TestCleanText: what CleanText returns always passes the check-in's text
// rules, and keeps what was fine.
func TestCleanText(t *testing.T) {
	for in, want := range map[string]string{
		"migration 42 failed\n\tat step 3": "migration 42 failed\n\tat step 3",
		"line one\r\nline two\r\n":         "line one\nline two\n",
		"\x1b[31mERROR\x1b[0m":             "\uFFFD[31mERROR\uFFFD[0m",
		"nul\x00here, cr\ralone":           "nul\uFFFDhere, cr\uFFFDalone",
		"bad \xff utf-8":                   "bad \uFFFD utf-8",
	} {
		if got := CleanText(in); got != want {
			t.Errorf("CleanText(%q) = %q, want %q", in, got, want)
		}
	}
	long := strings.Repeat("é", 3000) // 6000 bytes
	got := CleanText(long)
	if len(got) > 4096 || !utf8.ValidString(got) || len(got) < 4094 {
		t.Errorf("CleanText of 6000 bytes: %d bytes, valid %v", len(got), utf8.ValidString(got))
	}
	for _, in := range []string{"\x00\x01\x02\r\x7f", strings.Repeat("\r", 5000), "ok"} {
		e := Event{Kind: EventUpgradeFailed, From: MustParseVersion("1.0.0"), To: MustParseVersion("1.1.0"), At: time.Now(), Detail: CleanText(in)}
		body, err := json.Marshal(CheckIn{InstanceID: "i-1", Product: "acme", Version: MustParseVersion("1.0.0"), Nonce: "abcdefghijklmnop", Events: []Event{e}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ParseCheckIn(body); err != nil {
			t.Errorf("a cleaned detail %q is refused: %v", e.Detail, err)
		}
	}
}
