package release

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
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
	// U+FFFD in a decoded string that the body does not spell out came
	// from an invalid escape (a lone surrogate).
	spelled := func() bool {
		return bytes.ContainsRune(body, utf8.RuneError) || bytes.Contains(bytes.ToLower(body), []byte(`\ufffd`))
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var stack []jsonFrame
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return nil // malformed: the decoder reports it
		}
		var top *jsonFrame
		if len(stack) > 0 {
			top = &stack[len(stack)-1]
		}
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{', '[':
				if top != nil {
					top.value()
				}
				stack = append(stack, jsonFrame{object: t == '{', index: -1})
			default:
				stack = stack[:len(stack)-1]
			}
		case string:
			if strings.ContainsRune(t, utf8.RuneError) && !spelled() {
				return Errorf(EINVALID, "%s: invalid \\u escape (a lone UTF-16 surrogate)", orBody(pathOf(stack)))
			}
			if top != nil && top.object && top.wantKey() {
				name := top.path(stack, t)
				if err := checkText(t, name); err != nil {
					return err
				}
				if strings.ToLower(t) != t {
					return Errorf(EINVALID, "unknown field %s (field names are lower case)", name)
				}
				if top.names[t] {
					return Errorf(EINVALID, "field %s given twice", name)
				}
				if top.names == nil {
					top.names = map[string]bool{}
				}
				top.names[t] = true
				top.key = t
				top.keyed = true
				continue
			}
			if top != nil {
				top.value()
			}
			if err := checkText(t, pathOf(stack)); err != nil {
				return err
			}
		default:
			if top != nil {
				top.value()
			}
		}
	}
}

// jsonFrame is one open object or array during CheckJSONText's walk.
type jsonFrame struct {
	object bool
	// key is the object's current member name; keyed says a value for it
	// is due.
	key   string
	keyed bool
	// index is the array's current element.
	index int
	// names are the object's member names so far.
	names map[string]bool
}

func (f *jsonFrame) wantKey() bool { return !f.keyed }

// value records that a value (of the current key or the next element)
// begins.
func (f *jsonFrame) value() {
	if f.object {
		f.keyed = false
	} else {
		f.index++
	}
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
			b.WriteString(f.key)
		} else if f.index >= 0 {
			b.WriteString("[" + strconv.Itoa(f.index) + "]")
		}
	}
	return b.String()
}

// checkText rejects control characters other than tab and newline in s.
func checkText(s, field string) error {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 && c != '\t' && c != '\n' {
			return Errorf(EINVALID, "%s: control character U+%04X is not allowed (only tab and newline)", orBody(field), c)
		}
	}
	return nil
}

func orBody(field string) string {
	if field == "" {
		return "body"
	}
	return field
}
