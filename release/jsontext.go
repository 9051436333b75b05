package release

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/ringfence/ringfence/internal/fault"
)

// DecodeJSON decodes body, one JSON object, into v strictly: it must be
// valid UTF-8 and pass CheckJSON, every member must be a field of v
// (matched exactly: names are case-sensitive), and nothing may follow the
// object. Errors are *Error with code EINVALID and messages that name the
// JSON field, never a Go type; what names the document ("check-in").
func DecodeJSON(body []byte, v any, what string) error {
	if err := CheckJSON(body); err != nil {
		return Errorf(EINVALID, "%s: %s", what, ErrorMessage(err))
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return Errorf(EINVALID, "%s: %s", what, describeJSONError(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return Errorf(EINVALID, "%s: unexpected data after the JSON object", what)
	}
	return nil
}

// strictUnmarshal is json.Unmarshal refusing unknown fields, for the
// UnmarshalJSON methods of types whose wire form differs from their Go
// form (a decoder's DisallowUnknownFields does not reach into them).
func strictUnmarshal(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// CheckJSON checks what encoding/json lets through: body must be valid
// UTF-8 (json would replace invalid bytes and lone surrogate escapes with
// U+FFFD); no object may repeat a member name (json would keep the last);
// member names must be lower case (json would match "Instance_ID" to
// instance_id; every name of the API is lower case); and no string — name
// or value, at any depth — may hold a control character U+0000 to U+001F
// other than tab and newline, raw or escaped (\u0000). PostgreSQL cannot
// store U+0000 in text at all, and the other controls have no business in
// names, versions, reasons or details; rejecting them when the request is
// decoded keeps them out of the store's shared write batches. Errors are
// *Error with code EINVALID naming the field (events[0].detail). Syntax
// errors are left to the decoder that follows, which reports them with
// their offset.
func CheckJSON(body []byte) error {
	if !utf8.Valid(body) {
		return Errorf(EINVALID, "body is not valid UTF-8")
	}
	// Room for a check-in's depth and member names.
	w := jsonWalk{body: body, stack: make([]jsonFrame, 0, 4), names: make([][]byte, 0, 16)}
	if err := w.value(); err != nil && !errors.Is(err, errMalformed) {
		return err
	}
	return nil
}

// errMalformed stops CheckJSON's walk at a syntax error, which the decoder
// that follows reports with its offset.
const errMalformed fault.Const = "malformed JSON"

// maxJSONDepth is how deep CheckJSON lets objects and arrays nest: far
// more than any body of the API, and it keeps the walk's recursion small.
const maxJSONDepth = 64

// manyNames is how many member names of one object CheckJSON compares one
// by one before it keeps them in a map, so a body of thousands of members
// costs linear time, not quadratic.
const manyNames = 32

// jsonWalk is CheckJSON's single walk over the bytes of a body: it reads
// strings (unescaping only those that hold escapes) without building tokens,
// so checking a check-in allocates next to nothing.
type jsonWalk struct {
	body  []byte
	pos   int
	stack []jsonFrame
	// names are the member names of the open objects so far, each
	// object's from its frame's first.
	names [][]byte
}

func (w *jsonWalk) space() {
	for w.pos < len(w.body) {
		switch w.body[w.pos] {
		case ' ', '\t', '\n', '\r':
			w.pos++
		default:
			return
		}
	}
}

// next skips white space and returns the next byte (0 at the end).
func (w *jsonWalk) next() byte {
	w.space()
	if w.pos >= len(w.body) {
		return 0
	}
	return w.body[w.pos]
}

// value walks one value at pos.
func (w *jsonWalk) value() error {
	switch w.next() {
	case '{':
		return w.object()
	case '[':
		return w.array()
	case '"':
		s, err := w.str()
		if err != nil {
			return err
		}
		if c, bad := controlIn(s); bad {
			return Errorf(EINVALID, "%s: control character U+%04X is not allowed (only tab and newline)", orBody(pathOf(w.stack)), c)
		}
		return nil
	case 0:
		return errMalformed
	default:
		// A number or literal: its syntax is the decoder's to check.
		for w.pos < len(w.body) {
			switch w.body[w.pos] {
			case ',', ']', '}', ' ', '\t', '\n', '\r':
				return nil
			case '{', '[', '"', ':':
				return errMalformed
			}
			w.pos++
		}
		return nil
	}
}

func (w *jsonWalk) object() error {
	if err := w.deeper(); err != nil {
		return err
	}
	w.pos++ // {
	w.stack = append(w.stack, jsonFrame{object: true, index: -1, first: len(w.names)})
	if w.next() == '}' {
		w.pos++
		w.stack = w.stack[:len(w.stack)-1]
		return nil
	}
	for {
		if w.next() != '"' {
			return errMalformed
		}
		name, err := w.str()
		if err != nil {
			return err
		}
		top := &w.stack[len(w.stack)-1]
		if c, bad := controlIn(name); bad {
			return Errorf(EINVALID, "%s: control character U+%04X is not allowed (only tab and newline)", top.path(w.stack, string(name)), c)
		}
		if !lowerCase(name) {
			return Errorf(EINVALID, "unknown field %s (field names are lower case)", top.path(w.stack, string(name)))
		}
		if w.repeated(top, name) {
			return Errorf(EINVALID, "field %s given twice", top.path(w.stack, string(name)))
		}
		w.names = append(w.names, name)
		top.key = name
		if w.next() != ':' {
			return errMalformed
		}
		w.pos++
		if err := w.value(); err != nil {
			return err
		}
		switch w.next() {
		case ',':
			w.pos++
		case '}':
			w.pos++
			w.names = w.names[:top.first]
			w.stack = w.stack[:len(w.stack)-1]
			return nil
		default:
			return errMalformed
		}
	}
}

func (w *jsonWalk) array() error {
	if err := w.deeper(); err != nil {
		return err
	}
	w.pos++ // [
	w.stack = append(w.stack, jsonFrame{index: -1})
	if w.next() == ']' {
		w.pos++
		w.stack = w.stack[:len(w.stack)-1]
		return nil
	}
	for {
		w.stack[len(w.stack)-1].index++
		if err := w.value(); err != nil {
			return err
		}
		switch w.next() {
		case ',':
			w.pos++
		case ']':
			w.pos++
			w.stack = w.stack[:len(w.stack)-1]
			return nil
		default:
			return errMalformed
		}
	}
}

// str reads the string at pos and returns its text: a slice of the body,
// or, if it holds escapes, a new unescaped copy. A lone UTF-16 surrogate
// escape is refused (encoding/json would turn it into U+FFFD).
func (w *jsonWalk) str() ([]byte, error) {
	w.pos++ // "
	start := w.pos
	for w.pos < len(w.body) {
		switch c := w.body[w.pos]; {
		case c == '"':
			w.pos++
			return w.body[start : w.pos-1], nil
		case c == '\\':
			return w.unescape(start)
		case c < 0x20:
			return nil, errMalformed
		}
		w.pos++
	}
	return nil, errMalformed
}

// unescape reads the rest of a string with escapes from pos; start is where
// its text began.
func (w *jsonWalk) unescape(start int) ([]byte, error) {
	out := append([]byte(nil), w.body[start:w.pos]...)
	for w.pos < len(w.body) {
		c := w.body[w.pos]
		switch {
		case c == '"':
			w.pos++
			return out, nil
		case c < 0x20:
			return nil, errMalformed
		case c != '\\':
			out = append(out, c)
			w.pos++
			continue
		}
		if w.pos+1 >= len(w.body) {
			return nil, errMalformed
		}
		e := w.body[w.pos+1]
		w.pos += 2
		switch e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, ok := w.hex4()
			if !ok {
				return nil, errMalformed
			}
			if utf16.IsSurrogate(r) {
				lo, ok := rune(-1), false
				if r < 0xdc00 && w.pos+1 < len(w.body) && w.body[w.pos] == '\\' && w.body[w.pos+1] == 'u' {
					w.pos += 2
					lo, ok = w.hex4()
					if !ok {
						return nil, errMalformed
					}
				}
				if r = utf16.DecodeRune(r, lo); r == utf8.RuneError {
					return nil, Errorf(EINVALID, "%s: invalid \\u escape (a lone UTF-16 surrogate)", orBody(pathOf(w.stack)))
				}
			}
			out = utf8.AppendRune(out, r)
		default:
			return nil, errMalformed
		}
	}
	return nil, errMalformed
}

// hex4 reads the four hex digits of a \u escape at pos.
func (w *jsonWalk) hex4() (rune, bool) {
	var d [2]byte
	if w.pos+4 > len(w.body) {
		return 0, false
	}
	if _, err := hex.Decode(d[:], w.body[w.pos:w.pos+4]); err != nil {
		return 0, false
	}
	w.pos += 4
	return rune(d[0])<<8 | rune(d[1]), true
}

// lowerCase reports whether name is lower-case ASCII. Every name of the API
// is; and encoding/json matches names by Unicode case folding, so a
// non-ASCII letter such as U+017F (ſ, which folds to s) would reach a field
// under another spelling ("ſtatus" for status).
func lowerCase(name []byte) bool {
	for _, c := range name {
		if c >= utf8.RuneSelf || 'A' <= c && c <= 'Z' {
			return false
		}
	}
	return true
}

// jsonFrame is one open object or array during CheckJSON's walk.
type jsonFrame struct {
	object bool
	// key is the object's current member name.
	key []byte
	// index is the array's current element.
	index int
	// first is where the object's member names begin in jsonWalk.names.
	first int
	// seen holds the object's member names once it has more than
	// manyNames of them.
	seen map[string]struct{}
}

// deeper refuses an object or array nested deeper than maxJSONDepth.
func (w *jsonWalk) deeper() error {
	if len(w.stack) >= maxJSONDepth {
		return Errorf(EINVALID, "%s: nested deeper than %d levels", orBody(pathOf(w.stack)), maxJSONDepth)
	}
	return nil
}

// repeated reports whether the object of top already has a member name,
// and remembers it: one by one for a few names, in a map beyond.
func (w *jsonWalk) repeated(top *jsonFrame, name []byte) bool {
	names := w.names[top.first:]
	if top.seen == nil && len(names) < manyNames {
		for _, n := range names {
			if bytes.Equal(n, name) {
				return true
			}
		}
		return false
	}
	if top.seen == nil {
		top.seen = make(map[string]struct{}, 2*len(names))
		for _, n := range names {
			top.seen[string(n)] = struct{}{}
		}
	}
	if _, ok := top.seen[string(name)]; ok {
		return true
	}
	top.seen[string(name)] = struct{}{}
	return false
}

// path names key inside the frames of stack, for an error about the name
// itself.
func (f *jsonFrame) path(stack []jsonFrame, key string) string {
	p := pathOf(stack[:len(stack)-1])
	if p == "" {
		return key
	}
	return p + "." + key
}

// pathOf names the value the walk is at: events[0].detail.
func pathOf(stack []jsonFrame) string {
	var b strings.Builder
	for _, f := range stack {
		if f.object {
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.Write(f.key)
		} else if f.index >= 0 {
			b.WriteString("[" + strconv.Itoa(f.index) + "]")
		}
	}
	return b.String()
}

// controlIn returns the first control character other than tab and newline
// in s.
func controlIn(s []byte) (byte, bool) {
	for _, c := range s {
		if c < 0x20 && c != '\t' && c != '\n' {
			return c, true
		}
	}
	return 0, false
}

func orBody(field string) string {
	if field == "" {
		return "body"
	}
	return field
}

// CleanText makes s fit a free-text field of the protocol (an event's or a
// health report's detail), so that a client never sends what CheckJSON or
// the length limit refuse: invalid UTF-8 and control characters other than
// tab and newline become U+FFFD (a carriage return before a newline is
// dropped: Windows line ends), and the text is cut to 4096 bytes at a
// character boundary.
func CleanText(s string) string {
	s = strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\r\n", "\n")
	if _, bad := controlIn([]byte(s)); bad {
		s = strings.Map(func(r rune) rune {
			if r < 0x20 && r != '\t' && r != '\n' {
				return utf8.RuneError
			}
			return r
		}, s)
	}
	if len(s) > maxTextLen {
		cut := maxTextLen
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut]
	}
	return s
}
