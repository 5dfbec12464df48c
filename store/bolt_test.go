package store

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

func openTestBoltAt(t *testing.T, path string, now func() time.Time) *Bolt {
	t.Helper()
	return closedAtEnd[*Bolt](t)(OpenBolt(path, now))
}

// TestBoltLocked: a second opener of the same file fails after the lock timeout instead of hanging.
func TestBoltLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokengate.db")
	openTestBoltAt(t, path, newClock().Now)
	start := time.Now()
	s, err := openBolt(path, newClock().Now, 50*time.Millisecond)
	if err == nil {
		s.Close()
		t.Fatalf("openBolt(%q) while open = nil error, want a lock timeout", path)
	}
	if !errors.Is(err, bolterrors.ErrTimeout) {
		t.Errorf("openBolt(%q) = %v, want %v", path, err, bolterrors.ErrTimeout)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("openBolt(%q) took %v, want about the 50ms timeout", path, d)
	}
}

// TestBoltPermissions: the file holds signing keys, so only its owner may read it.
func TestBoltPermissions(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data", "tokengate")
	path := filepath.Join(dir, "tokengate.db")
	openTestBoltAt(t, path, newClock().Now)
	for _, p := range []string{dir, path} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if perm := fi.Mode().Perm(); perm&0o077 != 0 {
			t.Errorf("mode of %s = %v, want no access for group and others", p, perm)
		}
	}
}

// txID returns the id of the last committed write transaction.
func txID(t testing.TB, db *bolt.DB) int {
	t.Helper()
	var id int
	if err := db.View(func(tx *bolt.Tx) error { id = tx.ID(); return nil }); err != nil {
		t.Fatal(err)
	}
	return id
}

// BenchmarkBoltRotate measures durable rotations per second (see benchmarkRotate), and what they
// cost the disk: each commit fsyncs twice (pages, then meta page), so commits per rotation is what
// group commit saves, and page writes per commit what a leaner record saves.
func BenchmarkBoltRotate(b *testing.B) {
	s, err := OpenBolt(filepath.Join(b.TempDir(), "tokengate.db"), time.Now)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	firstTx, before := txID(b, s.db), s.db.Stats().TxStats
	benchmarkRotate(b, s)
	commits := float64(txID(b, s.db) - firstTx)
	after := s.db.Stats().TxStats
	b.ReportMetric(commits/float64(b.N), "commits/op")
	b.ReportMetric(float64(after.GetWrite()-before.GetWrite())/commits, "pagewrites/commit")
}
