package server_test

import (
	"testing"
	"time"

	"github.com/ringfence/ringfence/internal/servertest"
	"github.com/ringfence/ringfence/server"
)

// TestAdoptionCountsReachTheSnapshotOnTheirOwn: adoption is counted by a
// loop of its own, and each count has the snapshot rebuilt, with no other
// change and no periodic rebuild due: a check-in shows in the release's
// adoption within the adoption interval.
func TestAdoptionCountsReachTheSnapshotOnTheirOwn(t *testing.T) {
	e := startServer(t, servertest.SQLite(t), server.Config{RefreshInterval: time.Hour, AdoptionInterval: 50 * time.Millisecond, FlushInterval: 10 * time.Millisecond})
	key := setupProduct(e)
	if n := ringStatus(e, "1.0.0", "all").Adoption; n != 0 {
		t.Fatalf("adoption before any check-in = %d", n)
	}
	e.checkIn(key, checkIn{InstanceID: "i-1", Product: "acme", Version: "1.0.0"})
	e.checkIn(key, checkIn{InstanceID: "i-2", Product: "acme", Version: "1.0.0"})
	servertest.Eventually(t, 10*time.Second, "both installations counted", func() bool {
		return ringStatus(e, "1.0.0", "all").Adoption == 2
	})
}
