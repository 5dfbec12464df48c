package store

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func openTestPebbleAt(t *testing.T, dir string, now func() time.Time) *Pebble {
	t.Helper()
	return closedAtEnd[*Pebble](t)(OpenPebble(dir, now))
}

// TestPebbleLocked: a second opener of the same directory fails instead of writing beside the first.
func TestPebbleLocked(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tokengate")
	openTestPebbleAt(t, dir, newClock().Now)
	if s, err := OpenPebble(dir, newClock().Now); err == nil {
		s.Close()
		t.Fatalf("OpenPebble(%q) while open = nil error, want the directory locked", dir)
	}
}

// TestPebblePermissions: the directory holds signing keys, so only its owner may look inside,
// even when it existed before with a wider mode.
func TestPebblePermissions(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tokengate")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	openTestPebbleAt(t, dir, newClock().Now)
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		t.Errorf("mode of %s = %v, want no access for group and others", dir, perm)
	}
}

// BenchmarkPebbleRotate measures durable rotations per second (see benchmarkRotate), and what
// each writes to the WAL, the only write a commit waits for.
func BenchmarkPebbleRotate(b *testing.B) {
	s, err := OpenPebble(filepath.Join(b.TempDir(), "tokengate"), time.Now)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	before := s.db.Metrics().WAL.BytesWritten
	benchmarkRotate(b, s)
	b.ReportMetric(float64(s.db.Metrics().WAL.BytesWritten-before)/float64(b.N), "walbytes/op")
}
