package sign

// The tree-based canonicalizer that canonicalize replaced (issue 14), kept as
// the reference the differential fuzz tests compare it with: it decodes the
// document into an any tree with encoding/json and re-encodes that.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"unicode/utf8"
)

// refCanonical is Canonical on the reference implementation.
func refCanonical(v any) ([]byte, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("canonical JSON: %w", err)
	}
	return refCanonicalize(raw, false)
}

// refCanonicalize rewrites doc; checkDup looks for duplicate keys first, which
// output of encoding/json never has.
func refCanonicalize(doc []byte, checkDup bool) ([]byte, error) {
	if !utf8.Valid(doc) {
		return nil, fmt.Errorf("canonical JSON: document is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("canonical JSON: %w", err)
	}
	if rest := doc[dec.InputOffset():]; len(bytes.Trim(rest, " \t\r\n")) != 0 {
		return nil, fmt.Errorf("canonical JSON: data after the document")
	}
	if checkDup {
		if err := refCheckDuplicateKeys(doc); err != nil {
			return nil, err
		}
	}
	out := make([]byte, 0, len(doc))
	return refAppendCanonical(out, v)
}

func refAppendCanonical(b []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case bool:
		if x {
			return append(b, "true"...), nil
		}
		return append(b, "false"...), nil
	case json.Number:
		s := string(x)
		if !isPlainInteger(s) {
			return nil, fmt.Errorf("canonical JSON: number %s is not an integer", s)
		}
		if n, err := strconv.ParseInt(s, 10, 64); err != nil || n > maxSafeInteger || n < -maxSafeInteger {
			return nil, fmt.Errorf("canonical JSON: integer %s is outside ±(2^53-1)", s)
		}
		if s == "-0" {
			s = "0"
		}
		return append(b, s...), nil
	case string:
		return refAppendString(b, x)
	case []any:
		b = append(b, '[')
		for i, e := range x {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = refAppendCanonical(b, e); err != nil {
				return nil, err
			}
		}
		return append(b, ']'), nil
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b = append(b, '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = refAppendString(b, k); err != nil {
				return nil, err
			}
			b = append(b, ':')
			if b, err = refAppendCanonical(b, x[k]); err != nil {
				return nil, err
			}
		}
		return append(b, '}'), nil
	}
	return nil, fmt.Errorf("canonical JSON: unexpected %T", v)
}

// isPlainInteger reports whether s is -?(0|[1-9][0-9]*).
func isPlainInteger(s string) bool {
	if s != "" && s[0] == '-' {
		s = s[1:]
	}
	if s == "" || (len(s) > 1 && s[0] == '0') {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func refAppendString(b []byte, s string) ([]byte, error) {
	if !utf8.ValidString(s) {
		return nil, fmt.Errorf("canonical JSON: string is not valid UTF-8")
	}
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c == '\b':
			b = append(b, '\\', 'b')
		case c == '\f':
			b = append(b, '\\', 'f')
		case c == '\n':
			b = append(b, '\\', 'n')
		case c == '\r':
			b = append(b, '\\', 'r')
		case c == '\t':
			b = append(b, '\\', 't')
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"'), nil
}

// refCheckDuplicateKeys refuses objects with a repeated key, which
// encoding/json would silently collapse (last one wins) — a signer and a
// verifier must never read different payloads from the same bytes.
func refCheckDuplicateKeys(doc []byte) error {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	// Each open container: nil for arrays, the seen keys for objects, and
	// whether the next string token in an object is a key.
	type frame struct {
		keys      map[string]bool
		expectKey bool
	}
	var stack []frame
	for {
		tok, err := dec.Token()
		if err != nil {
			return nil // syntax errors were reported by the decode before
		}
		top := len(stack) - 1
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{':
				if top >= 0 && stack[top].keys != nil {
					stack[top].expectKey = true
				}
				stack = append(stack, frame{keys: map[string]bool{}, expectKey: true})
				continue
			case '[':
				if top >= 0 && stack[top].keys != nil {
					stack[top].expectKey = true
				}
				stack = append(stack, frame{})
				continue
			default:
				stack = stack[:top]
				if len(stack) == 0 {
					return nil
				}
				continue
			}
		case string:
			if top >= 0 && stack[top].keys != nil && stack[top].expectKey {
				if stack[top].keys[t] {
					return fmt.Errorf("canonical JSON: duplicate key %q", t)
				}
				stack[top].keys[t] = true
				stack[top].expectKey = false
				continue
			}
		}
		if top >= 0 && stack[top].keys != nil {
			stack[top].expectKey = true
		}
		if top < 0 {
			return nil
		}
	}
}
