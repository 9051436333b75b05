package gcfloor

import (
	"context"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

func TestPercent(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		live, floor uint64
		want        int
	}{
		{8 * mib, 64 * mib, 800},      // goal 8 + 64 MiB
		{7 * mib, 64 * mib, 914},      // rounded down: goal just under 7 + 64 MiB
		{64 * mib, 64 * mib, 100},     // the floor reached: Go's default
		{1024 * mib, 64 * mib, 100},   // a large heap is left alone
		{100 * 1024, 64 * mib, 10000}, // capped
		{0, 64 * mib, MaxPercent},     // nothing measured yet
		{1, 1 << 62, MaxPercent},      // no overflow
		{8 * mib, 0, 100},             // no floor
	} {
		if got := Percent(tc.live, tc.floor); got != tc.want {
			t.Errorf("Percent(%d, %d) = %d, want %d", tc.live, tc.floor, got, tc.want)
		}
	}
}

// TestRunRaisesAndRestores: with this test's small live heap and a 64 MiB
// floor, Run raises GOGC above 100 while it runs and puts the percentage
// it found back when it stops.
func TestRunRaisesAndRestores(t *testing.T) {
	before := debug.SetGCPercent(100)
	defer debug.SetGCPercent(before)
	runtime.GC() // a measured live heap
	ctx, cancel := context.WithCancel(context.Background())
	seen := make(chan int, 1)
	go func() { seen <- Run(ctx, 64<<20, time.Millisecond) }()
	// GOGC is read, not set: setting it here would race with Run's own
	// setting and restoring.
	sample := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	var during int
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		metrics.Read(sample)
		if during = int(sample[0].Value.Uint64()); during > 100 {
			break
		}
	}
	cancel()
	last := <-seen
	if during <= 100 || last <= 100 {
		t.Errorf("GOGC while running = %d (last set %d), want above 100 for a live heap under 64 MiB", during, last)
	}
	if after := debug.SetGCPercent(100); after != 100 {
		t.Errorf("GOGC after Run = %d, want the 100 it found", after)
	}
}
