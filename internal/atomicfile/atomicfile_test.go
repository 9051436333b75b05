package atomicfile

import (
	"os"
	"path/filepath"
	"testing"
)

// TestWriteReplacesWithMode: Write creates and then replaces a file with
// the mode asked for and leaves no temporary file behind; a missing
// directory is an error that creates nothing.
func TestWriteReplacesWithMode(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	for _, c := range []struct {
		data string
		perm os.FileMode
	}{{"old", 0o600}, {"new", 0o644}} {
		if err := Write(path, []byte(c.data), c.perm); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(path)
		if err != nil || string(got) != c.data {
			t.Fatalf("content %q %v, want %q", got, err, c.data)
		}
		if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != c.perm {
			t.Fatalf("mode %v %v, want %v", fi.Mode(), err, c.perm)
		}
	}
	if ents, err := os.ReadDir(dir); err != nil || len(ents) != 1 {
		t.Fatalf("directory holds %v %v, want only f", ents, err)
	}
	if err := Write(filepath.Join(dir, "missing", "f"), []byte("x"), 0o600); err == nil {
		t.Fatal("write into a missing directory: no error")
	}
}
