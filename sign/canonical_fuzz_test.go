package sign

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

func FuzzCanonicalizeJSON(f *testing.F) {
	for _, s := range []string{`{"b":1,"a":[true,null,"x"]}`, `{"a":{"a":{"a":1}}}`, `"\u00e9\n<>&"`, `[1,-0,10]`, `{"a":1.5}`, `{"a":1,"a":2}`, `{`, "\"\xff\"", `{"k":"\ud83d\ude00"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		out, err := CanonicalizeJSON(doc)
		if err != nil {
			return
		}
		again, err := CanonicalizeJSON(out)
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("not idempotent: %s -> %s -> %s (%v)", doc, out, again, err)
		}
		var a, b any
		if err := json.Unmarshal(doc, &a); err != nil {
			t.Fatalf("accepted invalid JSON %q", doc)
		}
		if err := json.Unmarshal(out, &b); err != nil {
			t.Fatalf("produced invalid JSON %q", out)
		}
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("changed the value: %s -> %s", doc, out)
		}
	})
}
