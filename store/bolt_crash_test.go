package store

import (
	"errors"
	"path/filepath"
	"testing"
	"time"
)

// crash ends s as a killed process would: the file is released (the kernel drops the lock) but the
// run is never ended.
func crash(t *testing.T, s *Bolt) {
	t.Helper()
	s.closing.Do(func() { close(s.stop) })
	<-s.done
	if err := s.db.Close(); err != nil {
		t.Fatal(err)
	}
}

// chainBeforeCrash opens a bolt file and rotates r0→r1 (answered) and r1→r2 (whose reply the
// crash swallows: the client still holds r1), then crashes the store and reopens the file.
func chainBeforeCrash(t *testing.T) *Bolt {
	t.Helper()
	c := newClock()
	path := filepath.Join(t.TempDir(), "tokengate.db")
	s, err := OpenBolt(path, c.Now)
	if err != nil {
		t.Fatal(err)
	}
	mustCreate(t, s, "r0", grant("fam", time.Hour))
	mustRotate(t, s, "r0", "r1", grant("fam", time.Hour))
	mustRotate(t, s, "r1", "r2", grant("fam", time.Hour))
	crash(t, s)
	return openTestBoltAt(t, path, c.Now)
}

func wantRotation(t *testing.T, s Store, oldHash, newHash string, want error, what string) {
	t.Helper()
	if err := s.RotateRefreshToken(ctx, oldHash, newHash, grant("fam", time.Hour)); !errors.Is(err, want) {
		t.Errorf("%s: RotateRefreshToken(%q, %q) = %v, want %v", what, oldHash, newHash, err, want)
	}
}

// TestBoltCrashHonoursUnansweredRotationOnce: after a crash, the token whose rotation was
// committed but whose successor was never presented rotates again, once; the successor nobody
// received is retired, and every older token stays a reuse.
func TestBoltCrashHonoursUnansweredRotationOnce(t *testing.T) {
	s := chainBeforeCrash(t)
	if _, err := s.RefreshToken(ctx, "r1"); err != nil {
		t.Fatalf("RefreshToken(r1) after the crash = %v, want the token the client still holds", err)
	}
	mustRotate(t, s, "r1", "r3", grant("fam", time.Hour))
	if _, err := s.RefreshToken(ctx, "r3"); err != nil {
		t.Fatalf("RefreshToken(r3) = %v, want live", err)
	}
	wantRotation(t, s, "r1", "r4", ErrReused, "r1 a second time after the crash")
	if _, err := s.RefreshToken(ctx, "r3"); !errors.Is(err, ErrNotFound) {
		t.Errorf("RefreshToken(r3) after r1's reuse = %v, want ErrNotFound: the family is dead", err)
	}
}

// TestBoltCrashRetiresUnansweredSuccessor: once the old token rotated again, the successor the
// crash may have swallowed is a reuse: had it been answered, its holder and whoever presented the
// old token cannot both go on (RFC 9700 §4.14.2).
func TestBoltCrashRetiresUnansweredSuccessor(t *testing.T) {
	s := chainBeforeCrash(t)
	mustRotate(t, s, "r1", "r3", grant("fam", time.Hour))
	wantRotation(t, s, "r2", "r4", ErrReused, "the retired successor r2")
	if _, err := s.RefreshToken(ctx, "r3"); !errors.Is(err, ErrNotFound) {
		t.Errorf("RefreshToken(r3) after r2's reuse = %v, want ErrNotFound: the family is dead", err)
	}
}

// TestBoltCrashPresentedSuccessorSettlesDoubt: a successor presented after the crash proves its
// reply arrived: the token before it is a reuse again.
func TestBoltCrashPresentedSuccessorSettlesDoubt(t *testing.T) {
	s := chainBeforeCrash(t)
	mustRotate(t, s, "r2", "r3", grant("fam", time.Hour))
	wantRotation(t, s, "r1", "r4", ErrReused, "r1 after its successor was presented")
}

// TestBoltCrashOlderRotationsStayReused: a rotation whose successor was presented before the crash
// is final: presenting the old token is a reuse.
func TestBoltCrashOlderRotationsStayReused(t *testing.T) {
	s := chainBeforeCrash(t)
	wantRotation(t, s, "r0", "r3", ErrReused, "r0, rotated and followed before the crash")
	wantRotation(t, s, "r1", "r4", ErrNotFound, "r1, whose family r0's reuse killed")
}

// TestBoltCleanCloseLeavesNoDoubt: a store closed cleanly answered what it committed, so its
// rotations stay final across a restart.
func TestBoltCleanCloseLeavesNoDoubt(t *testing.T) {
	c := newClock()
	path := filepath.Join(t.TempDir(), "tokengate.db")
	s, err := OpenBolt(path, c.Now)
	if err != nil {
		t.Fatal(err)
	}
	mustCreate(t, s, "r0", grant("fam", time.Hour))
	mustRotate(t, s, "r0", "r1", grant("fam", time.Hour))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTestBoltAt(t, path, c.Now)
	wantRotation(t, s, "r0", "r2", ErrReused, "r0 after a clean restart")
}

// TestBoltCrashDoubtOutlivesCleanRuns: the runs after a crash do not settle its rotations; only a
// presentation does.
func TestBoltCrashDoubtOutlivesCleanRuns(t *testing.T) {
	s := chainBeforeCrash(t)
	path := s.db.Path()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTestBoltAt(t, path, newClock().Now)
	mustRotate(t, s, "r1", "r3", grant("fam", time.Hour))
}
