package server

import (
	"testing"
	"time"
)

// TestUntilTick checks that the cached board is rebuilt exactly when a soak
// countdown it shows would read differently, and not before.
func TestUntilTick(t *testing.T) {
	for _, c := range []struct{ left, want time.Duration }{
		{42*time.Second + 300*time.Millisecond, 300*time.Millisecond + 1},
		{42 * time.Second, 1},
		{5*time.Minute + 30*time.Second, 30*time.Second + 1},
		{3*time.Hour + 20*time.Minute, 1},
		{2*24*time.Hour + 4*time.Hour + 10*time.Minute, 10*time.Minute + 1},
		{24*time.Hour + 30*time.Second, 30*time.Second + 1},
	} {
		got := untilTick(c.left)
		if got != c.want {
			t.Errorf("untilTick(%s) = %s, want %s", c.left, got, c.want)
		}
		if fmtDuration(c.left) == fmtDuration(c.left-got) {
			t.Errorf("%s and %s later both read %s: the tick is too late", c.left, got, fmtDuration(c.left))
		}
		if fmtDuration(c.left) != fmtDuration(c.left-got+time.Nanosecond) {
			t.Errorf("%s reads differently before its tick %s: the tick is too early", c.left, got)
		}
	}
}
