package store

import (
	"errors"
	"testing"
	"time"
)

// A rotation repeated with the same new hash is the same caller retrying after a lost reply: it
// succeeds and leaves the family alive. Any other rotation of the old token is still a reuse.
func testRepeatedRotation(t *testing.T, open opener) {
	s := open(t, newClock().Now)
	mustCreate(t, s, "r0", grant("fam", time.Hour))
	mustRotate(t, s, "r0", "r1", grant("fam", time.Hour))
	if err := s.RotateRefreshToken(ctx, "r0", "r1", grant("fam", time.Hour)); err != nil {
		t.Fatalf("repeating the rotation r0→r1 = %v, want nil", err)
	}
	if _, err := s.RefreshToken(ctx, "r1"); err != nil {
		t.Fatalf("the successor after a repeated rotation: %v, want live", err)
	}
	if got, _ := revocations(t, s, 0); len(got) != 0 {
		t.Fatalf("revocations after a repeated rotation = %+v, want none", got)
	}
	// Another new hash is somebody else presenting r0: reuse, and the family dies.
	if err := s.RotateRefreshToken(ctx, "r0", "r2", grant("fam", time.Hour)); !errors.Is(err, ErrReused) {
		t.Fatalf("rotating r0 to another hash = %v, want ErrReused", err)
	}
	if err := s.RotateRefreshToken(ctx, "r0", "r1", grant("fam", time.Hour)); !errors.Is(err, ErrReused) {
		t.Fatalf("repeating r0→r1 after the family died = %v, want ErrReused", err)
	}
	if _, err := s.RefreshToken(ctx, "r1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the successor after the family died: %v, want ErrNotFound", err)
	}
}
