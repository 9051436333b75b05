package release

import (
	"strconv"
	"strings"
)

// Version is a release's semantic version (https://semver.org 2.0.0):
// MAJOR.MINOR.PATCH with an optional pre-release ("3.31.0-rc.1"). Build
// metadata ("+build.5") is rejected, because two releases that differ only in
// build metadata would have equal precedence and could not be ordered. A
// leading "v" is not accepted: a version is spelled one way.
//
// The zero Version means "no version" (0.0.0 is not a release version) and
// encodes as the empty string in JSON.
type Version struct {
	Major, Minor, Patch uint64
	// Pre is the pre-release part without its leading '-', e.g. "rc.1".
	Pre string
}

// maxVersionLen bounds the input ParseVersion looks at.
const maxVersionLen = 128

// ParseVersion parses s as a Version. Errors have code EINVALID.
func ParseVersion(s string) (Version, error) {
	if s == "" {
		return Version{}, Errorf(EINVALID, "empty version")
	}
	if len(s) > maxVersionLen {
		return Version{}, Errorf(EINVALID, "version longer than %d characters", maxVersionLen)
	}
	if len(s) > 1 && (s[0] == 'v' || s[0] == 'V') && s[1] >= '0' && s[1] <= '9' {
		return Version{}, Errorf(EINVALID, "version %q: drop the leading %c (write %s)", s, s[0], s[1:])
	}
	core, pre, hasPre := strings.Cut(s, "-")
	if strings.ContainsRune(core, '+') || strings.ContainsRune(pre, '+') {
		return Version{}, Errorf(EINVALID, "version %q: build metadata (+...) is not allowed", s)
	}
	parts := strings.Split(core, ".")
	if len(parts) != 3 {
		return Version{}, Errorf(EINVALID, "version %q: want MAJOR.MINOR.PATCH", s)
	}
	var nums [3]uint64
	for i, p := range parts {
		n, ok := parseNumericIdent(p)
		if !ok {
			return Version{}, Errorf(EINVALID, "version %q: %q is not a number without leading zeros", s, p)
		}
		nums[i] = n
	}
	v := Version{Major: nums[0], Minor: nums[1], Patch: nums[2]}
	if hasPre {
		if pre == "" {
			return Version{}, Errorf(EINVALID, "version %q: empty pre-release", s)
		}
		for _, id := range strings.Split(pre, ".") {
			if err := checkPreIdent(id); err != nil {
				return Version{}, Errorf(EINVALID, "version %q: %s", s, err.Message)
			}
		}
		v.Pre = pre
	}
	if v.IsZero() {
		return Version{}, Errorf(EINVALID, "version 0.0.0 is not a release version")
	}
	return v, nil
}

// MustParseVersion is ParseVersion for constants and tests; it panics on an
// invalid version.
func MustParseVersion(s string) Version {
	v, err := ParseVersion(s)
	if err != nil {
		panic(err)
	}
	return v
}

// parseNumericIdent parses a semver numeric identifier: digits, no leading
// zero unless it is "0", fits in uint64.
func parseNumericIdent(s string) (uint64, bool) {
	if s == "" || (len(s) > 1 && s[0] == '0') {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseUint(s, 10, 64)
	return n, err == nil
}

// checkPreIdent validates one dot-separated pre-release identifier.
func checkPreIdent(id string) *Error {
	if id == "" {
		return Errorf(EINVALID, "empty pre-release identifier")
	}
	numeric := true
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= '0' && c <= '9':
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '-':
			numeric = false
		default:
			return Errorf(EINVALID, "pre-release identifier %q: only [0-9A-Za-z-] allowed", id)
		}
	}
	if numeric {
		if _, ok := parseNumericIdent(id); !ok {
			return Errorf(EINVALID, "numeric pre-release identifier %q has a leading zero or is too large", id)
		}
	}
	return nil
}

// IsZero reports whether v is the zero Version ("no version").
func (v Version) IsZero() bool { return v == Version{} }

// String returns v in its canonical spelling; "" for the zero Version.
func (v Version) String() string {
	if v.IsZero() {
		return ""
	}
	b := make([]byte, 0, 24)
	b = v.appendTo(b)
	return string(b)
}

// appendTo appends v's canonical spelling to b.
func (v Version) appendTo(b []byte) []byte {
	b = strconv.AppendUint(b, v.Major, 10)
	b = append(b, '.')
	b = strconv.AppendUint(b, v.Minor, 10)
	b = append(b, '.')
	b = strconv.AppendUint(b, v.Patch, 10)
	if v.Pre != "" {
		b = append(b, '-')
		b = append(b, v.Pre...)
	}
	return b
}

// Compare returns -1, 0 or +1 as v has lower, equal or higher precedence than
// w, per semver §11: numeric core first; a pre-release is lower than its
// release; pre-release identifiers compare numerically when both are numeric,
// lexically (ASCII) otherwise, numeric below alphanumeric, and a shorter list
// below a longer one with an equal prefix.
func (v Version) Compare(w Version) int {
	if c := cmpUint(v.Major, w.Major); c != 0 {
		return c
	}
	if c := cmpUint(v.Minor, w.Minor); c != 0 {
		return c
	}
	if c := cmpUint(v.Patch, w.Patch); c != 0 {
		return c
	}
	switch {
	case v.Pre == w.Pre:
		return 0
	case v.Pre == "":
		return 1
	case w.Pre == "":
		return -1
	}
	a, b := v.Pre, w.Pre
	for {
		var x, y string
		var moreA, moreB bool
		x, a, moreA = strings.Cut(a, ".")
		y, b, moreB = strings.Cut(b, ".")
		if c := comparePreIdent(x, y); c != 0 {
			return c
		}
		switch {
		case !moreA && !moreB:
			return 0
		case !moreA:
			return -1
		case !moreB:
			return 1
		}
	}
}

// Less reports whether v has lower precedence than w.
func (v Version) Less(w Version) bool { return v.Compare(w) < 0 }

func comparePreIdent(x, y string) int {
	xn, xNum := parseNumericIdent(x)
	yn, yNum := parseNumericIdent(y)
	switch {
	case xNum && yNum:
		return cmpUint(xn, yn)
	case xNum:
		return -1
	case yNum:
		return 1
	}
	return strings.Compare(x, y)
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// MarshalText encodes v as its canonical string ("" for the zero Version).
func (v Version) MarshalText() ([]byte, error) {
	if v.IsZero() {
		return []byte{}, nil
	}
	return v.appendTo(make([]byte, 0, 24)), nil
}

// UnmarshalText parses a version; the empty string gives the zero Version.
func (v *Version) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*v = Version{}
		return nil
	}
	p, err := ParseVersion(string(b))
	if err != nil {
		return err
	}
	*v = p
	return nil
}
