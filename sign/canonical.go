// Package sign makes and checks signed envelopes: a payload in canonical JSON,
// signed with ed25519 by one or more keys named by key ids, with an expiry
// inside the payload. The release control plane signs every check-in answer
// with it; agents verify answers against public keys they pin.
//
// An envelope on the wire:
//
//	{"payload": "<base64 of the canonical JSON payload>",
//	 "signatures": [{"keyid": "<16 hex>", "sig": "<base64 ed25519 signature>"}]}
//
// Each signature is ed25519 over the payload bytes exactly as carried (after
// base64 decoding); verifiers never re-encode the payload before checking it.
package sign

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// Canonical returns the canonical JSON encoding of v: v is encoded with
// encoding/json, then rewritten so that
//   - object keys are sorted by the byte order of their UTF-8 encoding (for
//     the ASCII keys ringfence uses, the same order as RFC 8785);
//   - there is no insignificant whitespace;
//   - strings are UTF-8 with only '"', '\\' and control characters escaped
//     (\b \f \n \r \t, others as \u00XX, lower-case hex); '<', '>', '&' and
//     non-ASCII characters appear literally;
//   - numbers are integers within ±(2^53-1) (exact in every JSON parser,
//     RFC 7493) written in plain decimal; a payload with a fractional,
//     exponent or larger number is refused, so no float formatting rules are
//     needed.
//
// The same value always gives the same bytes. Where encoding/json writes a
// key twice in one object (a json.Marshaler can, and so can map keys that
// differ only in invalid UTF-8, which it replaces), the last member is kept,
// as decoding the JSON into a map would keep it.
func Canonical(v any) ([]byte, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("canonical JSON: %w", err)
	}
	return canonicalize(raw, false)
}

// CanonicalizeJSON rewrites one JSON document into canonical form (see
// Canonical). Duplicate object keys and invalid UTF-8 are refused.
func CanonicalizeJSON(doc []byte) ([]byte, error) { return canonicalize(doc, true) }

// canonicalize rewrites doc in one pass over its bytes, writing each value's
// canonical form as it reads it; an object's members, once all read, are put
// in key order. It reads JSON as encoding/json does: the same syntax and
// nesting limit, strings unescaped alike (an escaped lone surrogate is
// U+FFFD). A key repeated in one object is refused with checkDup; without
// it the last member with that key is kept.
func canonicalize(doc []byte, checkDup bool) ([]byte, error) {
	if !utf8.Valid(doc) {
		return nil, fmt.Errorf("canonical JSON: document is not valid UTF-8")
	}
	s := canonicalizer{
		in:      doc,
		out:     make([]byte, 0, len(doc)),
		tmp:     make([]byte, 0, len(doc)),
		members: make([]member, 0, 16),
		dupAt:   -1,
	}
	unfit := s.value()
	s.skipSpace()
	switch {
	case s.err != nil:
		return nil, s.err
	case s.pos < len(s.in):
		return nil, fmt.Errorf("canonical JSON: data after the document")
	case checkDup && s.dupAt >= 0:
		return nil, fmt.Errorf("canonical JSON: duplicate key %q", s.dupKey)
	case unfit != nil:
		return nil, unfit
	}
	return s.out, nil
}

// maxDepth is encoding/json's limit on nested arrays and objects.
const maxDepth = 10000

// canonicalizer is the state of one canonicalize call. Neither the canonical
// output, nor an unescaped string, nor an object's members are ever longer
// than the input, so out and tmp are allocated once.
type canonicalizer struct {
	in    []byte
	pos   int    // next byte of in to read
	out   []byte // canonical output so far
	err   error  // the syntax error that stopped the scan
	depth int    // open arrays and objects

	members []member // members read of the open objects, innermost last
	keys    []byte   // unescaped keys of members, where they had escapes
	tmp     []byte   // an unescaped string, or an object's members reordered

	// The first key, in document order, that repeats a key of its object.
	dupKey string
	dupAt  int
}

// member is an object member read: its unescaped key and its canonical
// `"key":value` in out.
type member struct {
	key        []byte
	at         int // offset of the key in in
	start, end int
	unfit      error // see value
}

// value appends the canonical form of the value at pos to out and reads
// past it. A syntax error stops the scan (err). A well-formed value without
// a canonical form (a number that is not a safe integer) is read to its end
// and returned, so that an object can still drop it for a later member with
// the same key.
func (s *canonicalizer) value() (unfit error) {
	s.skipSpace()
	switch c := s.peek(); {
	case c == '{':
		return s.object()
	case c == '[':
		return s.array()
	case c == '"':
		str, _ := s.str()
		s.out = appendString(s.out, str)
	case c == '-' || '0' <= c && c <= '9':
		return s.number()
	case c == 't':
		s.literal("true")
	case c == 'f':
		s.literal("false")
	case c == 'n':
		s.literal("null")
	default:
		s.fail("looking for a value")
	}
	return nil
}

func (s *canonicalizer) object() (unfit error) {
	if !s.enter() {
		return nil
	}
	s.out = append(s.out, '{')
	start, first, keys := len(s.out), len(s.members), len(s.keys)
	if s.skipSpace(); s.peek() == '}' {
		s.pos++
	} else {
		for {
			if s.skipSpace(); s.peek() != '"' {
				s.fail("looking for an object key")
				return nil
			}
			if len(s.members) > first {
				s.out = append(s.out, ',')
			}
			m := member{at: s.pos, start: len(s.out)}
			key, escaped := s.str()
			if escaped { // s.tmp is reused by the next string
				s.keys = append(s.keys, key...)
				key = s.keys[len(s.keys)-len(key):]
			}
			m.key = key
			if s.skipSpace(); !s.expect(':') {
				return nil
			}
			s.out = append(appendString(s.out, key), ':')
			if m.unfit = s.value(); s.err != nil {
				return nil
			}
			m.end = len(s.out)
			s.members = append(s.members, m)
			if s.skipSpace(); s.peek() != ',' {
				break
			}
			s.pos++
		}
		if !s.expect('}') {
			return nil
		}
	}
	unfit = s.order(start, s.members[first:])
	s.members, s.keys = s.members[:first], s.keys[:keys]
	s.out = append(s.out, '}')
	s.depth--
	return unfit
}

// order puts the members ms, written from out[start:], in key order, keeps
// only the last member of each key and returns the first error of a kept
// member.
func (s *canonicalizer) order(start int, ms []member) (unfit error) {
	inOrder := true
	for i := 1; i < len(ms) && inOrder; i++ {
		inOrder = bytes.Compare(ms[i-1].key, ms[i].key) < 0
	}
	if !inOrder {
		slices.SortStableFunc(ms, func(a, b member) int { return bytes.Compare(a.key, b.key) })
		s.tmp = s.tmp[:0]
		for i, m := range ms {
			if i > 0 && bytes.Equal(ms[i-1].key, m.key) && (s.dupAt < 0 || m.at < s.dupAt) {
				s.dupKey, s.dupAt = string(m.key), m.at
			}
			if i+1 < len(ms) && bytes.Equal(m.key, ms[i+1].key) {
				continue // dropped for the later member with its key
			}
			if len(s.tmp) > 0 {
				s.tmp = append(s.tmp, ',')
			}
			s.tmp = append(s.tmp, s.out[m.start:m.end]...)
			if unfit == nil {
				unfit = m.unfit
			}
		}
		s.out = append(s.out[:start], s.tmp...)
		return unfit
	}
	for _, m := range ms {
		if m.unfit != nil {
			return m.unfit
		}
	}
	return nil
}

func (s *canonicalizer) array() (unfit error) {
	if !s.enter() {
		return nil
	}
	s.out = append(s.out, '[')
	if s.skipSpace(); s.peek() == ']' {
		s.pos++
	} else {
		for {
			if err := s.value(); unfit == nil {
				unfit = err
			}
			if s.err != nil {
				return nil
			}
			if s.skipSpace(); s.peek() != ',' {
				break
			}
			s.pos++
			s.out = append(s.out, ',')
		}
		if !s.expect(']') {
			return nil
		}
	}
	s.out = append(s.out, ']')
	s.depth--
	return unfit
}

// enter reads the '[' or '{' at pos, refusing to nest deeper than maxDepth.
func (s *canonicalizer) enter() bool {
	if s.depth++; s.depth > maxDepth {
		s.err = fmt.Errorf("canonical JSON: nested deeper than %d at offset %d", maxDepth, s.pos)
		return false
	}
	s.pos++
	return true
}

// number appends the number at pos, which must be an integer within
// ±(2^53-1), in plain decimal ("-0" as "0").
func (s *canonicalizer) number() (unfit error) {
	start := s.pos
	if s.peek() == '-' {
		s.pos++
	}
	if s.peek() == '0' {
		s.pos++
	} else if s.digits() == 0 {
		s.fail("in numeric literal")
		return nil
	}
	integer := s.pos
	if s.peek() == '.' {
		if s.pos++; s.digits() == 0 {
			s.fail("after decimal point in numeric literal")
			return nil
		}
	}
	if c := s.peek(); c == 'e' || c == 'E' {
		if c := s.next(); c == '+' || c == '-' {
			s.pos++
		}
		if s.digits() == 0 {
			s.fail("in exponent of numeric literal")
			return nil
		}
	}
	num := s.in[start:s.pos]
	if s.pos != integer {
		return fmt.Errorf("canonical JSON: number %s is not an integer", num)
	}
	digits := bytes.TrimPrefix(num, []byte("-"))
	if len(digits) > 16 || parseDigits(digits) > maxSafeInteger {
		return fmt.Errorf("canonical JSON: integer %s is outside ±(2^53-1)", num)
	}
	if string(num) == "-0" {
		num = digits
	}
	s.out = append(s.out, num...)
	return nil
}

// parseDigits returns the value of at most 19 decimal digits.
func parseDigits(digits []byte) uint64 {
	var n uint64
	for _, d := range digits {
		n = n*10 + uint64(d-'0')
	}
	return n
}

// digits reads decimal digits and returns how many.
func (s *canonicalizer) digits() int {
	start := s.pos
	for s.pos < len(s.in) && '0' <= s.in[s.pos] && s.in[s.pos] <= '9' {
		s.pos++
	}
	return s.pos - start
}

func (s *canonicalizer) literal(lit string) {
	if !bytes.HasPrefix(s.in[s.pos:], []byte(lit)) {
		s.fail("in literal " + lit)
		return
	}
	s.pos += len(lit)
	s.out = append(s.out, lit...)
}

// JSON's two-character escapes and the bytes they stand for.
const (
	shortEscapes = `"\/bfnrt`
	escapedBytes = "\"\\/\b\f\n\r\t"
)

// str reads the string at pos and returns its content unescaped as
// encoding/json unescapes it: a slice of in if it had no escapes, else of
// tmp, which the next string overwrites.
func (s *canonicalizer) str() (content []byte, escaped bool) {
	s.pos++
	start := s.pos
	for s.pos < len(s.in) {
		c := s.in[s.pos]
		switch {
		case c == '"':
			s.pos++
			if !escaped {
				return s.in[start : s.pos-1], false
			}
			return s.tmp, true
		case c < 0x20:
			s.fail("in string literal")
			return nil, false
		case c != '\\':
			if escaped {
				s.tmp = append(s.tmp, c)
			}
			s.pos++
			continue
		}
		if !escaped {
			s.tmp, escaped = append(s.tmp[:0], s.in[start:s.pos]...), true
		}
		if i := strings.IndexByte(shortEscapes, s.next()); i >= 0 {
			s.tmp = append(s.tmp, escapedBytes[i])
			s.pos++
			continue
		}
		s.pos--
		r, ok := u4(s.in[s.pos:])
		if !ok {
			s.fail("in string escape code")
			return nil, false
		}
		s.pos += 6
		if utf16.IsSurrogate(r) {
			// A valid pair is one character; any other surrogate is
			// U+FFFD, and an escape after it is read on its own.
			low, _ := u4(s.in[s.pos:])
			if r = utf16.DecodeRune(r, low); r != utf8.RuneError {
				s.pos += 6
			}
		}
		s.tmp = utf8.AppendRune(s.tmp, r)
	}
	s.fail("in string literal")
	return nil, false
}

// u4 returns the code unit of the \uXXXX escape b starts with.
func u4(b []byte) (r rune, ok bool) {
	var d [2]byte
	if len(b) < 6 || b[0] != '\\' || b[1] != 'u' {
		return -1, false
	}
	if _, err := hex.Decode(d[:], b[2:6]); err != nil {
		return -1, false
	}
	return rune(d[0])<<8 | rune(d[1]), true
}

const hexDigits = "0123456789abcdef"

// maxSafeInteger is 2^53-1, the largest integer every JSON parser reads
// exactly.
const maxSafeInteger = 1<<53 - 1

// appendString appends s, which is valid UTF-8, as a canonical JSON string.
func appendString(b, s []byte) []byte {
	b = append(b, '"')
	start := 0 // of the bytes not yet appended
	for i, c := range s {
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b = append(b, s[start:i]...)
		start = i + 1
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\b':
			b = append(b, '\\', 'b')
		case '\f':
			b = append(b, '\\', 'f')
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

func (s *canonicalizer) skipSpace() {
	for s.pos < len(s.in) {
		switch s.in[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

// peek returns the byte at pos, 0 at the end of in.
func (s *canonicalizer) peek() byte {
	if s.pos < len(s.in) {
		return s.in[s.pos]
	}
	return 0
}

// next moves to the next byte and returns it.
func (s *canonicalizer) next() byte {
	s.pos++
	return s.peek()
}

// expect reads c or fails.
func (s *canonicalizer) expect(c byte) bool {
	if s.peek() != c {
		s.fail(fmt.Sprintf("looking for %q", c))
		return false
	}
	s.pos++
	return true
}

// fail stops the scan with a syntax error at pos.
func (s *canonicalizer) fail(context string) {
	if s.err != nil {
		return
	}
	if s.pos >= len(s.in) {
		s.err = fmt.Errorf("canonical JSON: unexpected end of input %s", context)
		return
	}
	r, _ := utf8.DecodeRune(s.in[s.pos:])
	s.err = fmt.Errorf("canonical JSON: invalid character %q at offset %d %s", r, s.pos, context)
}
