package release

import (
	"fmt"
	"regexp"
	"strconv"
	"time"
)

// dayUnits matches a number followed by d (days) or w (weeks); no other
// duration unit starts with either letter.
var dayUnits = regexp.MustCompile(`([0-9]+(?:\.[0-9]*)?|\.[0-9]+)([dw])`)

// ParseDuration parses a duration as time.ParseDuration does, and also
// accepts days (d, 24h) and weeks (w, 7d): "1d", "2w", "1d12h", "1.5d".
// Soak times and retention periods are counted in days.
func ParseDuration(s string) (time.Duration, error) {
	var convErr error
	hours := dayUnits.ReplaceAllStringFunc(s, func(m string) string {
		sub := dayUnits.FindStringSubmatch(m)
		n, err := strconv.ParseFloat(sub[1], 64)
		if err != nil {
			convErr = err
			return m
		}
		per := 24.0
		if sub[2] == "w" {
			per = 7 * 24
		}
		return strconv.FormatFloat(n*per, 'f', -1, 64) + "h"
	})
	d, err := time.ParseDuration(hours)
	if err != nil || convErr != nil {
		return 0, Errorf(EINVALID, "invalid duration %q: write a number and a unit, e.g. 90s, 30m, 12h, 1d, 2w or 1d12h", s)
	}
	return d, nil
}

// FormatDuration renders d in the units ParseDuration reads, with whole
// days where d has them ("1d", "2d12h0m0s"); shorter durations as
// time.Duration does.
func FormatDuration(d time.Duration) string {
	const day = 24 * time.Hour
	if d < day && d > -day {
		return d.String()
	}
	sign := ""
	if d < 0 {
		sign, d = "-", -d
	}
	days, rest := d/day, d%day
	if rest == 0 {
		return fmt.Sprintf("%s%dd", sign, days)
	}
	return fmt.Sprintf("%s%dd%s", sign, days, rest)
}
