package release

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"strings"
)

// CheckJSONText walks every string of the JSON document body — object
// keys and values, at any depth — and rejects the control characters
// U+0000 to U+001F other than tab and newline, whether written raw or
// escaped (\u0000). PostgreSQL cannot store U+0000 in text at all, and the
// other controls have no business in names, versions, reasons or details;
// rejecting them when the request is decoded keeps them out of the store's
// shared write batches. Errors are *Error with code EINVALID naming the
// field (events[0].detail). Syntax errors are left to the decoder that
// follows, which reports them with their offset.
func CheckJSONText(body []byte) error {
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
			if top != nil && top.object && top.wantKey() {
				if err := checkText(t, top.path(stack, t)); err != nil {
					return err
				}
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
			if field == "" {
				field = "body"
			}
			return Errorf(EINVALID, "%s: control character U+%04X is not allowed (only tab and newline)", field, c)
		}
	}
	return nil
}
