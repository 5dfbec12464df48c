package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	bolt "go.etcd.io/bbolt"
)

// MigrateBolt moves the state of the bolt file boltFile into a new pebble store at dir, when the
// file exists and dir does not: every bucket's records and sequence, the records of crashed runs
// included, so that a rotation in doubt stays in doubt and the revocation log keeps its numbers.
// The pebble store appears at dir whole or not at all (it is written beside it, then renamed), and
// the bolt file is then renamed to boltFile+".migrated", kept as it was. It reports whether it
// migrated; the store is not open afterwards.
func MigrateBolt(boltFile, dir string) (bool, error) {
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		return false, err // nil when dir exists: there is nothing to migrate into
	}
	if _, err := os.Stat(boltFile); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil
		}
		return false, fmt.Errorf("store: %w", err)
	}
	// What a migration that did not finish left behind is not a store: it starts over.
	building := dir + ".migrating"
	if err := os.RemoveAll(building); err != nil {
		return false, fmt.Errorf("store: %w", err)
	}
	if err := copyBolt(boltFile, building); err != nil {
		return false, errors.Join(fmt.Errorf("store: migrate %s: %w", boltFile, err), os.RemoveAll(building))
	}
	if err := os.Rename(building, dir); err != nil {
		return false, fmt.Errorf("store: %w", err)
	}
	if err := syncDir(filepath.Dir(dir)); err != nil {
		return false, err
	}
	if err := os.Rename(boltFile, boltFile+".migrated"); err != nil {
		return true, fmt.Errorf("store: migrated %s, but: %w", boltFile, err)
	}
	return true, syncDir(filepath.Dir(boltFile))
}

// copyBolt writes every bucket of the bolt file into a new pebble store at dir, in one durable batch.
func copyBolt(boltFile, dir string) error {
	src, err := bolt.Open(boltFile, 0o600, &bolt.Options{ReadOnly: true, Timeout: lockTimeout})
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := openPebbleDB(dir, vfs.Default)
	if err != nil {
		return err
	}
	b := dst.NewBatch()
	err = src.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(bucket []byte, from *bolt.Bucket) error {
			if err := b.Set(sequenceKey(bucket), seqKey(from.Sequence()), nil); err != nil {
				return err
			}
			return from.ForEach(func(k, v []byte) error { return b.Set(bucketKey(bucket, k), v, nil) })
		})
	})
	if err == nil {
		err = b.Commit(pebble.Sync)
	}
	return errors.Join(err, b.Close(), dst.Close())
}

// syncDir makes the renames in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	return errors.Join(d.Sync(), d.Close())
}
