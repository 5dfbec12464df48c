package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
)

// pebbleCache is the size of pebble's block cache: the live records of a busy server (a refresh
// token is a few hundred bytes) stay in memory.
const pebbleCache = 64 << 20

// Pebble is a Store in a pebble directory (see kvStore): an LSM engine that appends each commit to
// its write-ahead log and fsyncs that, where bolt rewrites a path of B+tree pages and fsyncs twice.
// Each bucket is a key prefix ("refresh_tokens/…"), and each bucket's sequence a key of its own.
//
// Pebble has no transaction that reads and writes, so single use rests on one writer: a write
// transaction is an indexed batch (its reads see its own writes, then the committed data), built
// and applied under one lock. The lock is not held through the fsync: an applied batch is visible
// before it is durable, so the next writer, reading it, can go on while the WAL syncs, and the
// syncs of batches that wait together are one. The group commit (group_commit.go) runs the
// concurrent requests in one batch; pebble's WAL shares the fsync between consecutive batches.
// Locks striped per key were the other way, but every step would have to name beforehand all the
// keys it reads (a token, its family, its successor, the runs), and a revocation log numbered by
// concurrent writers could be read with a gap that a cursor skips for good.
type Pebble struct {
	*kvStore
	db *pebble.DB
}

// OpenPebble opens (creating it if needed) the pebble directory dir and starts its background
// purge. Close stops it. A second opener of the same directory fails at once: pebble locks it.
func OpenPebble(dir string, now func() time.Time) (*Pebble, error) {
	db, err := openPebbleDB(dir)
	if err != nil {
		return nil, err
	}
	s, err := openKV(&pebbleEngine{db: db}, now)
	if err != nil {
		return nil, fmt.Errorf("store: %s: %w", dir, err)
	}
	return &Pebble{kvStore: s, db: db}, nil
}

// openPebbleDB opens (creating it if needed) the pebble directory dir.
func openPebbleDB(dir string) (*pebble.DB, error) {
	// The directory holds signing keys: only its owner may look inside, whatever mode pebble
	// gives the files.
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	opts := &pebble.Options{Logger: pebbleLogger{}, CacheSize: pebbleCache}
	// Most lookups are of keys that are not there (a new token's hash, a code never issued): bloom
	// filters answer them without reading a block of every table.
	opts.Levels[0].FilterPolicy = bloom.FilterPolicy(10)
	db, err := pebble.Open(dir, opts)
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", dir, err)
	}
	return db, nil
}

// pebbleLogger keeps pebble's routine reports (flushes, compactions, WAL files) out of the
// server's log, and passes on its errors.
type pebbleLogger struct{}

func (pebbleLogger) Infof(string, ...any) {}

func (pebbleLogger) Errorf(format string, args ...any) { pebble.DefaultLogger.Errorf(format, args...) }

func (pebbleLogger) Fatalf(format string, args ...any) { pebble.DefaultLogger.Fatalf(format, args...) }

// pebbleEngine runs the store's transactions on pebble: reads on a snapshot, so that one view
// sees one state; writes in an indexed batch under writing, committed with pebble.Sync.
type pebbleEngine struct {
	db *pebble.DB
	// writing is held by the one write transaction under way, from its first read until its
	// batch is applied.
	writing sync.Mutex
}

func (e *pebbleEngine) view(fn func(kvTx) error) error {
	snap := e.db.NewSnapshot()
	return errors.Join(fn(pebbleTx{r: snap}), snap.Close())
}

// update applies the batch under writing, then lets the next writer in while the WAL fsyncs: the
// batch is visible at once (to the next write transaction, which must see it), and durable once
// the fsync, which pebble shares among the batches that wait for it, has returned. Nothing is
// answered before then, and an answer that rests on the batch's writes comes from a later batch,
// which the WAL makes durable after this one.
func (e *pebbleEngine) update(fn func(kvTx) error) (func() error, error) {
	e.writing.Lock()
	defer e.writing.Unlock()
	b := e.db.NewIndexedBatch()
	if err := fn(pebbleTx{r: b, w: b}); err != nil {
		return nil, errors.Join(err, b.Close())
	}
	if err := e.db.ApplyNoSyncWait(b, pebble.Sync); err != nil {
		return nil, errors.Join(err, b.Close())
	}
	return func() error { return errors.Join(b.SyncWait(), b.Close()) }, nil
}

func (e *pebbleEngine) close() error { return e.db.Close() }

// pebbleTx is a kvTx on pebble: r reads (a snapshot, or the batch), w writes (nil in a view).
type pebbleTx struct {
	r pebble.Reader
	w *pebble.Batch
}

// bucketKey is where key of bucket lives: the bucket's name, a slash, the key.
func bucketKey(bucket, key []byte) []byte {
	return append(append(append(make([]byte, 0, len(bucket)+1+len(key)), bucket...), '/'), key...)
}

// sequenceKey holds bucket's sequence. No bucket is named "sequence", so it is in none of them.
func sequenceKey(bucket []byte) []byte { return bucketKey([]byte("sequence"), bucket) }

func (t pebbleTx) get(bucket, key []byte) ([]byte, error) { return t.read(bucketKey(bucket, key)) }

func (t pebbleTx) read(key []byte) ([]byte, error) {
	v, closer, err := t.r.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer closer.Close()
	return bytes.Clone(v), nil
}

func (t pebbleTx) put(bucket, key, value []byte) error {
	return t.w.Set(bucketKey(bucket, key), value, nil)
}

func (t pebbleTx) delete(bucket, key []byte) error {
	return t.w.Delete(bucketKey(bucket, key), nil)
}

func (t pebbleTx) scan(bucket, from []byte, fn func(key, value []byte) bool) error {
	prefix := bucketKey(bucket, nil)
	// '/'+1 ends the prefix: every key of the bucket sorts before it.
	it, err := t.r.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: append(bytes.Clone(bucket), '/'+1)})
	if err != nil {
		return err
	}
	for ok := it.SeekGE(bucketKey(bucket, from)); ok && fn(it.Key()[len(prefix):], it.Value()); ok = it.Next() {
	}
	return errors.Join(it.Error(), it.Close())
}

func (t pebbleTx) sequence(bucket []byte) (uint64, error) {
	v, err := t.read(sequenceKey(bucket))
	if err != nil || v == nil {
		return 0, err
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("store: sequence of %s: %d bytes, want 8", bucket, len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}

func (t pebbleTx) nextSequence(bucket []byte) (uint64, error) {
	seq, err := t.sequence(bucket)
	if err != nil {
		return 0, err
	}
	seq++
	return seq, t.w.Set(sequenceKey(bucket), seqKey(seq), nil)
}

var _ Store = (*Pebble)(nil)
