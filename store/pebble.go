package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// pebbleCache is the size of pebble's block cache: the live records of a busy server (a refresh
// token is a few hundred bytes) stay in memory.
const pebbleCache = 64 << 20

// pebbleMemTable is the size of a memtable. Every refresh logs about 800 bytes; with pebble's
// default of 4 MiB a busy server flushed a memtable every second and compacted level 0 as often,
// which cost the refreshes a third of their rate (BenchmarkPebbleRotate).
const pebbleMemTable = 32 << 20

// walSyncSpacing is the least time between two fsyncs of the write-ahead log: the commits that
// arrive meanwhile wait for the next one, and share it. A commit after a quiet spell syncs at
// once; under load each fsync serves more refreshes, and the CPU a refresh spends in the kernel's
// fsync falls by a fifth (BenchmarkPebbleRotate, cpu-ns/op). Every commit still waits for its
// fsync before it is answered.
const walSyncSpacing = 500 * time.Microsecond

// pebbleReserve is the free space the store leaves on its disk for pebble itself. A memtable
// flush writes up to a memtable's worth of table; a WAL write that finds the disk full stops the
// store's writes until a restart (see stop), and a new WAL file that cannot be made ends the
// process (pebble panics with its lock released). Below it, the store refuses every write that
// would store anything, and still deletes.
const pebbleReserve = 4 * pebbleMemTable

// roomEvery is how often the store reads its disk's free space. A statfs per commit cost a refresh
// 3% of its CPU under load; in 100 ms the store writes well under a MiB, a sliver of pebbleReserve.
const roomEvery = 100 * time.Millisecond

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
	return openPebble(dir, now, vfs.Default)
}

// openPebble is OpenPebble on the file system fs.
func openPebble(dir string, now func() time.Time, fs vfs.FS) (*Pebble, error) {
	db, err := openPebbleDB(dir, fs)
	if err != nil {
		return nil, err
	}
	s, err := openKV(&pebbleEngine{db: db, fs: fs, dir: dir, now: now}, now)
	if err != nil {
		return nil, fmt.Errorf("store: %s: %w", dir, err)
	}
	return &Pebble{kvStore: s, db: db}, nil
}

// Backup implements Backups with a pebble checkpoint: the tables hard-linked (or copied, on
// another file system), the WAL flushed first and copied, so that it holds every batch applied.
func (p *Pebble) Backup(to string) error {
	return placeBackup(to, func(path string) error {
		if err := p.db.Checkpoint(path, pebble.WithFlushedWAL()); err != nil {
			return err
		}
		return os.Chmod(path, 0o700)
	})
}

// openPebbleDB opens (creating it if needed) the pebble directory dir on fs.
func openPebbleDB(dir string, fs vfs.FS) (*pebble.DB, error) {
	// The directory holds signing keys: only its owner may look inside, whatever mode pebble
	// gives the files.
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	opts := &pebble.Options{FS: fs, Logger: pebbleLogger{}, CacheSize: pebbleCache, MemTableSize: pebbleMemTable,
		WALMinSyncInterval: func() time.Duration { return walSyncSpacing }}
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

// pebbleEngine runs the store's transactions on pebble: writes in an indexed batch under writing,
// committed with pebble.Sync; reads of single keys through recent, the values the last writes
// left, before the engine.
//
// A view reads each key as it stands when read, not all of them at one instant: what a view
// decides on (a token looks live, a code unused) a write transaction decides again before
// anything changes, and a scan is an iterator, which is itself one consistent state.
type pebbleEngine struct {
	db *pebble.DB
	// fs and dir are where db lives, whose free space update watches.
	fs  vfs.FS
	dir string
	now func() time.Time
	// writing is held by the one write transaction under way, from its first read until its
	// batch is applied and recent updated.
	writing sync.Mutex
	recent  recentValues
	// room is what the last look at the free space found (see lookForRoom), at roomAt; both are
	// under writing.
	room   error
	roomAt time.Time
	// stopped, once set, is the error every later write is refused with: a write failed (see stop).
	stopped atomic.Pointer[error]
}

func (e *pebbleEngine) view(fn func(kvTx) error) error {
	return fn(pebbleView{e})
}

// update applies the batch under writing, then lets the next writer in while the WAL fsyncs: the
// batch is visible at once (to the next write transaction, which must see it), and durable once
// the fsync, which pebble shares among the batches that wait for it, has returned. Nothing is
// answered before then, and an answer that rests on the batch's writes comes from a later batch,
// which the WAL makes durable after this one.
//
// While the disk has less than pebbleReserve free (as last read, at most roomEvery ago), a
// transaction that stores anything is refused with ErrWriteRefused (one that only deletes goes on:
// it is how the store shrinks).
func (e *pebbleEngine) update(fn func(kvTx) error) (func() error, error) {
	e.writing.Lock()
	defer e.writing.Unlock()
	if stopped := e.stopped.Load(); stopped != nil {
		return nil, *stopped
	}
	if now := e.now(); now.Sub(e.roomAt) >= roomEvery || now.Before(e.roomAt) {
		e.room, e.roomAt = e.lookForRoom(), now
	}
	tx := &pebbleWrite{e: e, b: e.db.NewIndexedBatch(), wrote: map[string][]byte{}, read: map[string][]byte{}}
	if err := fn(tx); err != nil {
		return nil, errors.Join(err, tx.b.Close())
	}
	if e.room != nil && tx.stores() {
		return nil, errors.Join(e.room, tx.b.Close())
	}
	if err := e.db.ApplyNoSyncWait(tx.b, pebble.Sync); err != nil {
		return nil, errors.Join(err, tx.b.Close())
	}
	e.recent.learn(tx.read, tx.wrote)
	return func() error {
		err := tx.b.SyncWait()
		if err != nil {
			e.stop(err)
		}
		return errors.Join(err, tx.b.Close())
	}, nil
}

// lookForRoom is nil while the disk holds pebbleReserve free, or else says how little it holds.
func (e *pebbleEngine) lookForRoom() error {
	u, err := e.fs.GetDiskUsage(e.dir)
	if err != nil || u.AvailBytes >= pebbleReserve {
		// A disk whose free space cannot be read is written to: should the write fail, the
		// engine stops (see stop), which refuses the next writes as surely.
		return nil
	}
	return fmt.Errorf("%w: the disk of %s has %d MiB free, less than the %d MiB the store keeps "+
		"for its own flushes; it stores nothing new until space is freed", ErrWriteRefused, e.dir, u.AvailBytes>>20, pebbleReserve>>20)
}

// stop refuses every write from now on, after one failed for cause. A failed WAL write or fsync
// leaves the WAL's state unknown (what reached the disk, what the kernel dropped), and the batches
// after it are already visible to reads, though not durable: writing on would build on them.
// Reads go on, and a restart reopens the store from what its WAL holds, the only state ever
// answered as written.
func (e *pebbleEngine) stop(cause error) {
	stopped := fmt.Errorf("%w: the store stopped writing after a write failed (%v); restart the server to reopen it", ErrWriteRefused, cause)
	e.stopped.CompareAndSwap(nil, &stopped)
}

func (e *pebbleEngine) close() error { return e.db.Close() }

// get reads key from recent, or else from the engine.
func (e *pebbleEngine) get(key []byte) ([]byte, error) {
	if v, ok := e.recent.get(key); ok {
		return v, nil
	}
	return readValue(e.db, key)
}

// readValue reads key from r: a copy of its value, nil when there is none.
func readValue(r pebble.Reader, key []byte) ([]byte, error) {
	v, closer, err := r.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer closer.Close()
	return bytes.Clone(v), nil
}

// scanValues calls fn with each record of bucket in r, from the first key at or after from.
func scanValues(r pebble.Reader, bucket, from []byte, fn func(key, value []byte) bool) error {
	prefix := bucketKey(bucket, nil)
	// '/'+1 ends the prefix: every key of the bucket sorts before it.
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: append(bytes.Clone(bucket), '/'+1)})
	if err != nil {
		return err
	}
	for ok := it.SeekGE(bucketKey(bucket, from)); ok && fn(it.Key()[len(prefix):], it.Value()); ok = it.Next() {
	}
	return errors.Join(it.Error(), it.Close())
}

// pebbleView is a kvTx that only reads.
type pebbleView struct{ e *pebbleEngine }

func (t pebbleView) get(bucket, key []byte) ([]byte, error) { return t.e.get(bucketKey(bucket, key)) }

func (t pebbleView) scan(bucket, from []byte, fn func(key, value []byte) bool) error {
	return scanValues(t.e.db, bucket, from, fn)
}

func (t pebbleView) sequence(bucket []byte) (uint64, error) {
	v, err := t.e.get(sequenceKey(bucket))
	if err != nil {
		return 0, err
	}
	return decodeSequence(bucket, v)
}

var errReadOnly = errors.New("store: write in a read transaction")

func (pebbleView) put(_, _, _ []byte) error              { return errReadOnly }
func (pebbleView) delete(_, _ []byte) error              { return errReadOnly }
func (pebbleView) nextSequence(_ []byte) (uint64, error) { return 0, errReadOnly }

// pebbleWrite is a kvTx that writes, in the indexed batch b. A key it wrote reads from b; any
// other from recent or the engine, which, since writing is held, no other transaction changes
// meanwhile. What it read from the engine and what it wrote go to recent once b is applied.
type pebbleWrite struct {
	e *pebbleEngine
	b *pebble.Batch
	// wrote holds the values written, nil for a deletion; read, those read from the engine, nil
	// for none.
	wrote, read map[string][]byte
}

func (t *pebbleWrite) get(bucket, key []byte) ([]byte, error) {
	return t.readKey(bucketKey(bucket, key))
}

func (t *pebbleWrite) readKey(key []byte) ([]byte, error) {
	if v, ok := t.wrote[string(key)]; ok {
		return v, nil
	}
	if v, ok := t.e.recent.get(key); ok {
		return v, nil
	}
	v, err := readValue(t.e.db, key)
	if err == nil {
		t.read[string(key)] = v
	}
	return v, err
}

func (t *pebbleWrite) put(bucket, key, value []byte) error {
	return t.set(bucketKey(bucket, key), value)
}

func (t *pebbleWrite) set(key, value []byte) error {
	t.wrote[string(key)] = value
	return t.b.Set(key, value, nil)
}

// stores reports whether the transaction writes a value, rather than only deleting.
func (t *pebbleWrite) stores() bool {
	for _, v := range t.wrote {
		if v != nil {
			return true
		}
	}
	return false
}

func (t *pebbleWrite) delete(bucket, key []byte) error {
	k := bucketKey(bucket, key)
	t.wrote[string(k)] = nil
	return t.b.Delete(k, nil)
}

// scan reads the batch merged with the engine: a registration counts those its group stored.
func (t *pebbleWrite) scan(bucket, from []byte, fn func(key, value []byte) bool) error {
	return scanValues(t.b, bucket, from, fn)
}

func (t *pebbleWrite) sequence(bucket []byte) (uint64, error) {
	v, err := t.readKey(sequenceKey(bucket))
	if err != nil {
		return 0, err
	}
	return decodeSequence(bucket, v)
}

func (t *pebbleWrite) nextSequence(bucket []byte) (uint64, error) {
	seq, err := t.sequence(bucket)
	if err != nil {
		return 0, err
	}
	seq++
	return seq, t.set(sequenceKey(bucket), seqKey(seq))
}

// bucketKey is where key of bucket lives: the bucket's name, a slash, the key.
func bucketKey(bucket, key []byte) []byte {
	return append(append(append(make([]byte, 0, len(bucket)+1+len(key)), bucket...), '/'), key...)
}

// sequenceKey holds bucket's sequence. No bucket is named "sequence", so it is in none of them.
func sequenceKey(bucket []byte) []byte { return bucketKey([]byte("sequence"), bucket) }

// decodeSequence decodes bucket's sequence as stored, v: zero when there is none.
func decodeSequence(bucket, v []byte) (uint64, error) {
	if v == nil {
		return 0, nil
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("store: sequence of %s: %d bytes, want 8", bucket, len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}

var _ Store = (*Pebble)(nil)
