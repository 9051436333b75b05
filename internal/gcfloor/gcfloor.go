// Package gcfloor keeps the garbage collector of a server with a small live
// heap from running dozens of times a second. Go sets the next heap goal
// at the live heap times (1 + GOGC/100): a check-in server whose live heap
// is a few MiB while it allocates a few hundred MiB a second collects
// every few milliseconds of work, and each collection's marking takes CPU
// from requests (in the check-in benchmark, about 40 collections a second cost
// a tenth of the throughput and a fifth of the p99, bench/README.md).
//
// Run raises GOGC so that the heap goal is at least the live heap plus a
// floor: with floor F and live heap L, GOGC is max(100, 100·F/L), capped at
// MaxPercent. A process whose live heap reaches F is left at GOGC 100, so
// the floor costs at most F of memory and large heaps behave as Go's
// defaults. It adjusts once per interval, from the live heap the runtime
// last measured (runtime/metrics).
//
// Invariant: only Run changes the GC percentage, and only while it runs;
// callers leave it alone when the operator set GOGC (EnvSet).
package gcfloor

import (
	"context"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// MaxPercent is the highest GOGC Run sets (a live heap of a few hundred KiB
// would otherwise ask for millions).
const MaxPercent = 10000

// Percent is the GOGC that puts the heap goal at live + floor bytes or
// more: max(100, 100·floor/live), at most MaxPercent.
func Percent(live, floor uint64) int {
	if live == 0 {
		return MaxPercent
	}
	p := float64(floor) * 100 / float64(live)
	return int(max(100, min(p, MaxPercent)))
}

// EnvSet reports whether the operator set GOGC, which Run must not
// override.
func EnvSet() bool {
	_, ok := os.LookupEnv("GOGC")
	return ok
}

// liveHeap is the runtime metric Run reads: heap bytes marked live by the
// last collection.
const liveHeap = "/gc/heap/live:bytes"

// Run sets GOGC from the live heap every interval until ctx is done, then
// restores the GC percentage it found. It returns the last percentage it
// set.
func Run(ctx context.Context, floor uint64, interval time.Duration) int {
	sample := []metrics.Sample{{Name: liveHeap}}
	initial := debug.SetGCPercent(100)
	debug.SetGCPercent(initial)
	set := initial
	tune := func() {
		metrics.Read(sample)
		if sample[0].Value.Kind() != metrics.KindUint64 {
			return // not measured by this runtime: leave GOGC alone
		}
		if p := Percent(sample[0].Value.Uint64(), floor); p != set {
			debug.SetGCPercent(p)
			set = p
		}
	}
	tune()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			debug.SetGCPercent(initial)
			return set
		case <-t.C:
			tune()
		}
	}
}
