package notify

import (
	"testing"
	"time"

	"github.com/ringfence/ringfence/incident"
)

// TestContiguous: fan-out stops at a gap in notification ids (a
// transaction that took an id has not committed yet) until the gap is older
// than gapWait (it rolled back).
func TestContiguous(t *testing.T) {
	now := time.Now()
	n := func(id int64, age time.Duration) incident.Notification {
		return incident.Notification{ID: id, At: now.Add(-age)}
	}
	ids := func(ns []incident.Notification) []int64 {
		var out []int64
		for _, x := range ns {
			out = append(out, x.ID)
		}
		return out
	}
	for _, c := range []struct {
		name  string
		after int64
		in    []incident.Notification
		want  []int64
	}{
		{"no gap", 4, []incident.Notification{n(5, 0), n(6, 0)}, []int64{5, 6}},
		{"fresh gap after the cursor", 4, []incident.Notification{n(6, time.Second), n(7, 0)}, nil},
		{"fresh gap inside", 4, []incident.Notification{n(5, 0), n(7, time.Second), n(8, 0)}, []int64{5}},
		{"old gap: rolled back", 4, []incident.Notification{n(5, 0), n(7, gapWait+time.Second), n(8, 0)}, []int64{5, 7, 8}},
	} {
		if got := ids(contiguous(c.after, c.in, now)); len(got) != len(c.want) || (len(got) > 0 && got[len(got)-1] != c.want[len(c.want)-1]) {
			t.Errorf("%s: got %v, want %v", c.name, got, c.want)
		}
	}
}
