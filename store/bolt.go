package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// lockTimeout bounds the wait for bolt's file lock, so that a second opener (another process, or
// a config reload that failed to share the open store) fails instead of hanging.
const lockTimeout = 5 * time.Second

// Bolt is a Store in a bbolt file (see kvStore): each bucket of the store is a bolt bucket, and
// each transaction a bolt transaction.
type Bolt struct {
	*kvStore
	db *bolt.DB
}

// OpenBolt opens (creating it and its directory if needed) the bolt file at path and starts its
// background purge. Close stops it.
func OpenBolt(path string, now func() time.Time) (*Bolt, error) {
	return openBolt(path, now, lockTimeout)
}

func openBolt(path string, now func() time.Time, timeout time.Duration) (*Bolt, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	// The freelist is not written with every commit but rebuilt from the pages at open (a page or
	// two less per commit, on the hot path of every refresh); the hashmap keeps it cheap to search.
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: timeout, NoFreelistSync: true, FreelistType: bolt.FreelistMapType})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("store: open %s: file locked by another user for %v (another process, or this one opened it twice): %w", path, timeout, err)
	}
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range kvBuckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, errors.Join(fmt.Errorf("store: init %s: %w", path, err), db.Close())
	}
	s, err := openKV(boltEngine{db}, now)
	if err != nil {
		return nil, fmt.Errorf("store: %s: %w", path, err)
	}
	return &Bolt{kvStore: s, db: db}, nil
}

// Backup implements Backups: one read transaction written out, which bolt allows beside writers.
func (b *Bolt) Backup(to string) error {
	return placeBackup(to, func(path string) error {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return err
		}
		err = b.db.View(func(tx *bolt.Tx) error {
			_, err := tx.WriteTo(f)
			return err
		})
		return errors.Join(err, f.Sync(), f.Close())
	})
}

// boltEngine runs the store's transactions as bolt's; a write transaction fsyncs as it commits.
type boltEngine struct{ db *bolt.DB }

func (e boltEngine) view(fn func(kvTx) error) error {
	return e.db.View(func(tx *bolt.Tx) error { return fn(&boltTx{tx: tx}) })
}

// update commits durably before it returns, so there is nothing left to wait for. A transaction
// that wrote nothing (a refused rotation, a used code) is rolled back instead: a commit would
// fsync the meta page all the same.
func (e boltEngine) update(fn func(kvTx) error) (func() error, error) {
	tx, err := e.db.Begin(true)
	if err != nil {
		return nil, err
	}
	t := &boltTx{tx: tx}
	if err := fn(t); err != nil || !t.wrote {
		return noWait, errors.Join(err, tx.Rollback())
	}
	return noWait, tx.Commit()
}

func noWait() error { return nil }

func (e boltEngine) close() error { return e.db.Close() }

// boltTx is a kvTx in a bolt transaction, whose buckets exist (openBolt creates them).
type boltTx struct {
	tx *bolt.Tx
	// wrote says whether the transaction changed anything.
	wrote bool
}

func (t *boltTx) get(bucket, key []byte) ([]byte, error) { return t.tx.Bucket(bucket).Get(key), nil }

func (t *boltTx) put(bucket, key, value []byte) error {
	t.wrote = true
	return t.tx.Bucket(bucket).Put(key, value)
}

func (t *boltTx) delete(bucket, key []byte) error {
	t.wrote = true
	return t.tx.Bucket(bucket).Delete(key)
}

func (t *boltTx) scan(bucket, from []byte, fn func(key, value []byte) bool) error {
	c := t.tx.Bucket(bucket).Cursor()
	for k, v := c.Seek(from); k != nil && fn(k, v); k, v = c.Next() {
	}
	return nil
}

func (t *boltTx) sequence(bucket []byte) (uint64, error) { return t.tx.Bucket(bucket).Sequence(), nil }

func (t *boltTx) nextSequence(bucket []byte) (uint64, error) {
	t.wrote = true
	return t.tx.Bucket(bucket).NextSequence()
}

var _ Store = (*Bolt)(nil)
