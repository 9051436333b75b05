package sqlstore

import (
	"context"
	"path/filepath"
	"testing"
)

// TestSQLiteWriterSyncsEveryCommit: the writing connection runs with
// synchronous=FULL, so a commit (and the answer that waited for it)
// survives an OS crash or power loss.
func TestSQLiteWriterSyncsEveryCommit(t *testing.T) {
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "ringfence.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var sync, mode string
	if err := s.db.QueryRow(`PRAGMA synchronous`).Scan(&sync); err != nil {
		t.Fatal(err)
	}
	if err := s.db.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if sync != "2" || mode != "wal" { // 2 = FULL
		t.Errorf("writer: synchronous=%s journal_mode=%s, want 2 (FULL) and wal", sync, mode)
	}
}
