package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
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

// shrunkDisk is the real file system, with as much free space as avail says, or none it can tell
// while unreadable is set.
type shrunkDisk struct {
	vfs.FS
	avail      atomic.Uint64
	unreadable atomic.Bool
}

func (d *shrunkDisk) GetDiskUsage(path string) (vfs.DiskUsage, error) {
	if d.unreadable.Load() {
		return vfs.DiskUsage{}, errors.New("statfs: input/output error")
	}
	u, err := d.FS.GetDiskUsage(path)
	u.AvailBytes = d.avail.Load()
	return u, err
}

// TestPebbleKeepsItsReserve: with less than pebbleReserve free on its disk, the store stores
// nothing new (no token, rotation or revocation), and says so; it still reads, purges and
// closes, and once space is freed it writes again. A full disk would instead end pebble's commit
// pipeline.
func TestPebbleKeepsItsReserve(t *testing.T) {
	disk := &shrunkDisk{FS: vfs.Default}
	disk.avail.Store(pebbleReserve)
	clock := newClock()
	s := closedAtEnd[*Pebble](t)(openPebble(filepath.Join(t.TempDir(), "tokengate"), clock.Now, disk))
	ctx := context.Background()
	token := func(family string, ttl time.Duration) RefreshToken {
		return RefreshToken{FamilyID: family, ClientID: "app", ExpiresAt: clock.Now().Add(ttl)}
	}
	if err := s.CreateRefreshToken(ctx, "live", token("f1", time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateRefreshToken(ctx, "short", token("f2", time.Minute)); err != nil {
		t.Fatal(err)
	}

	disk.avail.Store(pebbleReserve - 1)
	clock.Advance(roomEvery)
	refused := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, ErrWriteRefused) {
			t.Errorf("%s on a disk under the reserve: %v, want ErrWriteRefused", what, err)
		}
	}
	refused("a new token", s.CreateRefreshToken(ctx, "new", token("f3", time.Hour)))
	refused("a rotation", s.RotateRefreshToken(ctx, "live", "next", token("f1", time.Hour)))
	refused("a revocation", s.Revoke(ctx, Revocation{Kind: RevokedFamily, ID: "f1", Until: clock.Now().Add(time.Hour)}))
	if _, err := s.RefreshToken(ctx, "live"); err != nil {
		t.Errorf("the token whose rotation was refused: %v, want it live", err)
	}
	clock.Advance(2 * time.Minute)
	if err := s.purge(); err != nil {
		t.Errorf("purge on a disk under the reserve: %v, want it to delete", err)
	}
	if v, err := s.engine.(*pebbleEngine).get(bucketKey(bucketRefresh, []byte("short"))); v != nil || err != nil {
		t.Errorf("expired token after the purge: %q, %v; want it deleted", v, err)
	}

	disk.avail.Store(pebbleReserve)
	clock.Advance(roomEvery)
	if err := s.RotateRefreshToken(ctx, "live", "next", token("f1", time.Hour)); err != nil {
		t.Errorf("rotation once space is freed: %v", err)
	}
	// A disk whose free space cannot be read is written to: a write that then fails stops the
	// engine (TestPebbleStopsWritingAfterAFailedWrite).
	disk.avail.Store(0)
	disk.unreadable.Store(true)
	clock.Advance(roomEvery)
	if err := s.CreateRefreshToken(ctx, "unmeasured", token("f4", time.Hour)); err != nil {
		t.Errorf("a new token while the free space cannot be read: %v, want it written", err)
	}
	disk.unreadable.Store(false)
	// Closing ends the run, a deletion: it needs no room, which closedAtEnd checks.
	disk.avail.Store(0)
	clock.Advance(roomEvery)
}

// TestPebbleStopsWritingAfterAFailedWrite: when the disk fills up behind the reserve's back, or
// fails, pebble cannot write its WAL. Concurrent writes are then each answered with an error at
// once: none hangs, and the process goes on. After the first failures, writes are refused without
// being tried (ErrWriteRefused); reads still work; and once the disk is back, the next opening
// finds every write answered before the failure.
func TestPebbleStopsWritingAfterAFailedWrite(t *testing.T) {
	full := &errorfs.Toggle{Injector: errorfs.InjectorFunc(func(op errorfs.Op) error {
		if op.Kind == errorfs.OpFileWrite && filepath.Ext(op.Path) == ".log" {
			return syscall.ENOSPC
		}
		return nil
	})}
	dir := filepath.Join(t.TempDir(), "tokengate")
	clock := newClock()
	s, err := openPebble(dir, clock.Now, errorfs.Wrap(vfs.Default, full))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	token := RefreshToken{FamilyID: "f1", ClientID: "app", ExpiresAt: clock.Now().Add(time.Hour)}
	if err := s.CreateRefreshToken(ctx, "before", token); err != nil {
		t.Fatal(err)
	}

	full.On()
	const writers, each = 16, 20
	outcomes := make(chan error, writers*each)
	for w := range writers {
		go func() {
			for i := range each {
				outcomes <- s.CreateRefreshToken(ctx, fmt.Sprint("during", w, "/", i), token)
			}
		}()
	}
	var failed, refused int
	for range writers * each {
		select {
		case err := <-outcomes:
			switch {
			case err == nil:
				t.Fatal("a write on a full disk succeeded")
			case errors.Is(err, ErrWriteRefused):
				refused++
			default:
				failed++
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("writes still waiting after 5 s; %d failed and %d were refused", failed, refused)
		}
	}
	// The writes already in pebble's pipeline when the first failed fail too; the rest are refused.
	if failed > writers {
		t.Errorf("%d writes failed and %d were refused; want the engine stopped after the first failures", failed, refused)
	}
	if _, err := s.RefreshToken(ctx, "before"); err != nil {
		t.Errorf("a read once the engine stopped: %v", err)
	}
	if err := s.Close(); !errors.Is(err, ErrWriteRefused) {
		t.Errorf("Close of a stopped store = %v, want it to say why the run could not be ended", err)
	}
	again := openTestPebbleAt(t, dir, clock.Now)
	if _, err := again.RefreshToken(ctx, "before"); err != nil {
		t.Errorf("the token answered before the failure, after a reopening: %v", err)
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
