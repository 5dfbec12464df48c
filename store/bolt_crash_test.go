package store

import (
	"errors"
	"testing"
	"time"
)

// crash ends s as a killed process would: the file is released (the kernel drops the lock) but the
// run is never ended.
func crash(t *testing.T, s *kvStore) {
	t.Helper()
	s.closing.Do(func() { close(s.stop) })
	<-s.done
	if err := s.engine.close(); err != nil {
		t.Fatal(err)
	}
}

// chainBeforeCrash opens a store in dir and rotates r0→r1 (answered) and r1→r2 (whose reply the
// crash swallows: the client still holds r1), then crashes the store (or, unless crashed, closes
// it) and reopens the file.
func chainBeforeCrash(t *testing.T, open openEmbedded, dir string, crashed bool) *kvStore {
	t.Helper()
	c := newClock()
	s, err := open(dir, c.Now)
	if err != nil {
		t.Fatal(err)
	}
	mustCreate(t, s, "r0", grant("fam", time.Hour))
	mustRotate(t, s, "r0", "r1", grant("fam", time.Hour))
	mustRotate(t, s, "r1", "r2", grant("fam", time.Hour))
	if crashed {
		crash(t, s)
	} else if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return openEmbeddedAt(t, open, dir, c.Now)
}

// TestEmbeddedAfterCrash presents tokens of the chain r0→r1→r2 after the crash of chainBeforeCrash, in
// order, each as a rotation with the outcome wanted: the token whose rotation may never have been
// answered rotates again, once; the successor nobody may have received is then retired; and
// everything settled before the crash, or by a presentation after it, stays a reuse. A run that
// closed the store cleanly answered what it committed: its rotations are final.
func TestEmbeddedAfterCrash(t *testing.T) {
	forEmbedded(t, func(t *testing.T, open openEmbedded) {
		type rotation struct {
			old, new string
			want     error
		}
		for _, tt := range []struct {
			name string
			// cleanly: the run before closed the store instead of crashing.
			cleanly bool
			// restart closes and reopens the store cleanly after the crash.
			restart   bool
			rotations []rotation
		}{
			{"the client's token works once", false, false, []rotation{
				{"r1", "r3", nil}, {"r1", "r4", ErrReused}, {"r3", "r5", ErrNotFound}}},
			{"the unanswered successor is retired", false, false, []rotation{
				{"r1", "r3", nil}, {"r2", "r4", ErrReused}, {"r3", "r5", ErrNotFound}}},
			{"a presented successor settles the doubt", false, false, []rotation{
				{"r2", "r3", nil}, {"r1", "r4", ErrReused}}},
			{"the rotation in doubt repeated stands", false, false, []rotation{
				{"r1", "r2", nil}, {"r2", "r3", nil}, {"r1", "r4", ErrReused}}},
			{"rotations followed before the crash are final", false, false, []rotation{
				{"r0", "r3", ErrReused}, {"r1", "r4", ErrNotFound}}},
			{"clean runs after the crash leave the doubt", false, true, []rotation{
				{"r1", "r3", nil}, {"r3", "r4", nil}}},
			{"a clean close leaves no doubt", true, false, []rotation{
				{"r1", "r3", ErrReused}}},
		} {
			t.Run(tt.name, func(t *testing.T) {
				dir := t.TempDir()
				s := chainBeforeCrash(t, open, dir, !tt.cleanly)
				if tt.restart {
					if err := s.Close(); err != nil {
						t.Fatal(err)
					}
					s = openEmbeddedAt(t, open, dir, newClock().Now)
				}
				for _, r := range tt.rotations {
					if err := s.RotateRefreshToken(ctx, r.old, r.new, grant("fam", time.Hour)); !errors.Is(err, r.want) {
						t.Fatalf("RotateRefreshToken(%q, %q) = %v, want %v", r.old, r.new, err, r.want)
					}
				}
			})
		}
	})
}
