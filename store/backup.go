package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Backups is implemented by the embedded stores (pebble, bolt), which copy themselves while they
// serve. A live copy of their files made by anything else may be torn: pebble deletes and writes
// files as it flushes and compacts, and bolt rewrites pages in place. Memory holds nothing worth
// keeping, and Redis has its own persistence (RDB, AOF).
type Backups interface {
	// Backup writes a copy of the store as of one instant, holding every write answered before the
	// call, at to, an absolute path that must not exist yet. The copy opens as the store does;
	// only the server's user may read it, since it holds the signing keys. A path that is not
	// absolute is refused with fs.ErrInvalid, one that exists with fs.ErrExist, one whose directory
	// does not with fs.ErrNotExist.
	Backup(to string) error
}

// placeBackup makes a backup at to: write creates it at the path it is given, inside a directory
// beside to that only the server's user may enter, and it is renamed to to once it is whole, so
// that to holds a complete backup or nothing.
func placeBackup(to string, write func(path string) error) error {
	if !filepath.IsAbs(to) {
		return fmt.Errorf("store: backup to %q: the path must be absolute: %w", to, fs.ErrInvalid)
	}
	if _, err := os.Lstat(to); !errors.Is(err, fs.ErrNotExist) {
		if err == nil {
			err = fs.ErrExist
		}
		return fmt.Errorf("store: backup to %s: %w", to, err)
	}
	staging, err := os.MkdirTemp(filepath.Dir(to), ".tokengate-backup-")
	if err != nil {
		return fmt.Errorf("store: backup: %w", err)
	}
	defer os.RemoveAll(staging)
	made := filepath.Join(staging, filepath.Base(to))
	if err := write(made); err != nil {
		return fmt.Errorf("store: backup to %s: %w", to, err)
	}
	if err := os.Rename(made, to); err != nil {
		return fmt.Errorf("store: backup: %w", err)
	}
	return syncDir(filepath.Dir(to))
}

var (
	_ Backups = (*Pebble)(nil)
	_ Backups = (*Bolt)(nil)
)
