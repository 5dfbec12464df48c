package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// backedUp is an embedded store as a test opens it: its rules, its Backup and how to close it.
type backedUp interface {
	Store
	Backups
}

// backupsOf opens each embedded backend at a path of its kind (a directory, a file) under dir.
var backupsOf = map[string]func(path string, now func() time.Time) (backedUp, error){
	"bolt":   func(path string, now func() time.Time) (backedUp, error) { return OpenBolt(path, now) },
	"pebble": func(path string, now func() time.Time) (backedUp, error) { return OpenPebble(path, now) },
}

// TestBackup: a backup taken while writes go on opens as a store holding every write answered
// before it was asked for (tokens, rotations, revocations), refuses a path that exists or is
// relative, and is readable by the server's user only.
func TestBackup(t *testing.T) {
	for name, open := range backupsOf {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			clock := newClock()
			s := closedAtEnd[backedUp](t)(open(filepath.Join(dir, "live"), clock.Now))
			ctx := context.Background()
			token := func(family string) RefreshToken {
				return RefreshToken{FamilyID: family, ClientID: "app", ExpiresAt: clock.Now().Add(time.Hour), Grant: []byte(family)}
			}
			must := func(err error) {
				t.Helper()
				if err != nil {
					t.Fatal(err)
				}
			}
			must(s.CreateRefreshToken(ctx, "kept", token("f1")))
			must(s.CreateRefreshToken(ctx, "first", token("f2")))
			must(s.RotateRefreshToken(ctx, "first", "second", token("f2")))
			must(s.RotateRefreshToken(ctx, "second", "third", token("f2")))
			must(s.Revoke(ctx, Revocation{Kind: RevokedFamily, ID: "f3", Until: clock.Now().Add(time.Hour)}))

			// Writers keep going while the backup is taken; it must hold what they had been
			// answered before it was asked for, and may hold more.
			var answered sync.Map
			stop := make(chan struct{})
			var writers sync.WaitGroup
			for w := range 4 {
				writers.Go(func() {
					for i := 0; ; i++ {
						select {
						case <-stop:
							return
						default:
						}
						hash := fmt.Sprintf("during-%d-%d", w, i)
						if err := s.CreateRefreshToken(ctx, hash, token(hash)); err == nil {
							answered.Store(hash, true)
						}
					}
				})
			}
			time.Sleep(20 * time.Millisecond)
			var before []string
			answered.Range(func(k, _ any) bool { before = append(before, k.(string)); return true })
			to := filepath.Join(dir, "backup")
			err := s.Backup(to)
			close(stop)
			writers.Wait()
			must(err)

			if err := s.Backup(to); !errors.Is(err, os.ErrExist) {
				t.Errorf("a second backup to %s: %v, want it refused as existing", to, err)
			}
			if err := s.Backup("relative"); !errors.Is(err, fs.ErrInvalid) {
				t.Errorf("a backup to a relative path: %v, want it refused as invalid", err)
			}
			fi, err := os.Stat(to)
			must(err)
			if perm := fi.Mode().Perm(); perm&0o077 != 0 {
				t.Errorf("mode of the backup = %v, want no access for group and others", perm)
			}

			copied := closedAtEnd[backedUp](t)(open(to, clock.Now))
			if _, err := copied.RefreshToken(ctx, "kept"); err != nil {
				t.Errorf("a live token, in the backup: %v", err)
			}
			if _, err := copied.RefreshToken(ctx, "third"); err != nil {
				t.Errorf("the family's live token, in the backup: %v", err)
			}
			// Last: presenting a rotated token kills its family.
			if _, err := copied.RefreshToken(ctx, "first"); !errors.Is(err, ErrReused) {
				t.Errorf("a token rotated (and its successor too) before the backup, in the backup: %v, want ErrReused", err)
			}
			revoked, _, err := copied.RevocationsSince(ctx, 0)
			must(err)
			if len(revoked) == 0 || revoked[0].ID != "f3" {
				t.Errorf("revocations in the backup = %v, want f3's", revoked)
			}
			if len(before) == 0 {
				t.Fatal("no write was answered while the backup was waited for; the test proves nothing")
			}
			for _, hash := range before {
				if _, err := copied.RefreshToken(ctx, hash); err != nil {
					t.Errorf("%s, answered before the backup: %v in the backup", hash, err)
				}
			}
		})
	}
}

// A backup that fails midway leaves nothing: neither a part of it at its path nor the directory
// it was built in.
func TestBackupThatFailsLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	to := filepath.Join(dir, "copy")
	broken := errors.New("the disk failed")
	err := placeBackup(to, func(path string) error {
		if err := os.WriteFile(path, []byte("half a backup"), 0o600); err != nil {
			t.Fatal(err)
		}
		return broken
	})
	if !errors.Is(err, broken) {
		t.Errorf("placeBackup = %v, want the writer's error", err)
	}
	left, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 0 {
		t.Errorf("a failed backup left %v in %s", left, dir)
	}
}
