package sqlstore_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/ringfence/ringfence/release"
	"github.com/ringfence/ringfence/sqlstore"
)

// BenchmarkRecordCheckIns writes batches of 1000 check-ins of distinct
// installations into a SQLite store: routine ones, and ones that carry an
// event each (the auto-halt evidence path: stored version, event row).
func BenchmarkRecordCheckIns(b *testing.B) {
	b.Run("routine", func(b *testing.B) { benchmarkRecordCheckIns(b, false) })
	b.Run("events", func(b *testing.B) { benchmarkRecordCheckIns(b, true) })
}

func benchmarkRecordCheckIns(b *testing.B, events bool) {
	ctx := context.Background()
	s, err := sqlstore.Open(ctx, filepath.Join(b.TempDir(), "ringfence.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	v := release.MustParseVersion("1.0.0")
	batch := make([]sqlstore.CheckInRecord, 1000)
	b.ResetTimer()
	for n := range b.N {
		for i := range batch {
			batch[i] = sqlstore.CheckInRecord{Product: "acme", Customer: "c", InstanceID: fmt.Sprintf("i-%d", (n*len(batch)+i)%100000),
				Version: v, Health: &release.Health{Status: release.HealthOK}, ReceivedAt: time.Now()}
			if events {
				batch[i].Events = []release.Event{{Kind: release.EventUpgradeStarted, From: v, To: v, At: time.Now()}}
			}
		}
		if err := s.RecordCheckIns(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(batch))/b.Elapsed().Seconds(), "records/s")
}
