package store

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestMigrateBolt: a bolt file moved into pebble loses nothing: live and rotated refresh tokens,
// dead families, the revocation log with its numbering, signing keys, one-time values, device
// codes, and the doubt a crashed run left on its last rotation.
func TestMigrateBolt(t *testing.T) {
	c := newClock()
	dir := t.TempDir()
	file, pebbleDir := filepath.Join(dir, "tokengate.db"), filepath.Join(dir, "pebble")
	b, err := OpenBolt(file, c.Now)
	if err != nil {
		t.Fatal(err)
	}
	written := writeState(t, b)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	// r1 → r2 is committed by a run that then crashes: its reply may have been lost.
	b = openTestBoltAt(t, file, c.Now)
	mustCreate(t, b, "r1", grant("f3", time.Hour))
	mustRotate(t, b, "r1", "r2", grant("f3", time.Hour))
	crash(t, b.kvStore)

	if migrated, err := MigrateBolt(file, pebbleDir); !migrated || err != nil {
		t.Fatalf("MigrateBolt = %v, %v, want true, nil", migrated, err)
	}
	if _, err := os.Stat(file + ".migrated"); err != nil {
		t.Errorf("the bolt file is not kept aside: %v", err)
	}
	if migrated, err := MigrateBolt(file, pebbleDir); migrated || err != nil {
		t.Errorf("MigrateBolt again = %v, %v, want false, nil", migrated, err)
	}
	s := openTestPebbleAt(t, pebbleDir, c.Now)
	written.check(t, s)
	if err := s.RotateRefreshToken(ctx, "r1", "r3", grant("f3", time.Hour)); err != nil {
		t.Errorf("RotateRefreshToken(%q) whose rotation the crash may have swallowed = %v, want nil", "r1", err)
	}
}

// TestMigrateBoltNothingToDo: without a bolt file, or with a pebble store already there, nothing
// is migrated and nothing is created.
func TestMigrateBoltNothingToDo(t *testing.T) {
	dir := t.TempDir()
	file, pebbleDir := filepath.Join(dir, "tokengate.db"), filepath.Join(dir, "pebble")
	if migrated, err := MigrateBolt(file, pebbleDir); migrated || err != nil {
		t.Errorf("MigrateBolt without a bolt file = %v, %v, want false, nil", migrated, err)
	}
	if _, err := os.Stat(pebbleDir); !os.IsNotExist(err) {
		t.Errorf("MigrateBolt without a bolt file created %s (%v)", pebbleDir, err)
	}
}
