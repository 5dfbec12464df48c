package store

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

const (
	// lockTimeout bounds the wait for bolt's file lock, so that a second opener (another process,
	// or a config reload that failed to share the open store) fails instead of hanging.
	lockTimeout = 5 * time.Second
	// purgeEvery and purgeBudget bound the background purge: each run looks at no more than
	// purgeBudget records per bucket, resuming where the previous run stopped, so a large file is
	// swept over several runs instead of stalling writers for one long transaction.
	purgeEvery  = 10 * time.Second
	purgeBudget = 2000
)

// Buckets of the bolt file. Refresh tokens are keyed by their hash, families by id, the revocation
// log by big-endian sequence number (so a cursor scan reads it in order), keys by slot, one-time
// values by key. Values are JSON. The runs bucket numbers each opening of the file with its
// sequence and holds a record for every run that has not closed the file: the current one, and
// those that crashed (one small record per crash, kept because their rotations stay in doubt).
var (
	bucketRefresh     = []byte("refresh_tokens")
	bucketFamilies    = []byte("families")
	bucketRevocations = []byte("revocations")
	bucketKeys        = []byte("signing_keys")
	bucketOnce        = []byte("one_time")
	bucketRuns        = []byte("runs")
	bucketClients     = []byte("clients")
)

// Bolt is a Store in a bbolt file: durable (every write is fsynced before it returns), for one
// process at a time. Writes go through a group commit (bolt_commit.go) so that concurrent
// requests share one fsync; a write function may run more than once, so each sets its results
// afresh on every run.
//
// Lookups that change nothing (an unknown token, a used code, a replayed assertion id) are
// answered from a read transaction first, so a flood of made-up tokens costs reads, not fsyncs.
type Bolt struct {
	db *bolt.DB
	// writes commits the write transactions of concurrent requests together.
	writes *groupCommit
	now    func() time.Time
	stop   chan struct{}
	done   chan struct{}
	// closing makes a second Close harmless instead of a panic on the closed stop channel.
	closing sync.Once
	// sweepFrom holds, per bucket, the key the next purge starts at. Only purge touches it, inside
	// a write transaction, which bolt runs one at a time.
	sweepFrom map[string][]byte
	// run numbers this opening of the file; the rotations it commits carry it.
	run uint64
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
	var run uint64
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketRefresh, bucketFamilies, bucketRevocations, bucketKeys, bucketOnce, bucketRuns, bucketClients} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		runs := tx.Bucket(bucketRuns)
		var err error
		if run, err = runs.NextSequence(); err != nil {
			return err
		}
		// The value is for a person reading the file: when the run began.
		return runs.Put(seqKey(run), []byte(now().UTC().Format(time.RFC3339)))
	})
	if err != nil {
		return nil, errors.Join(fmt.Errorf("store: init %s: %w", path, err), db.Close())
	}
	s := &Bolt{
		db:        db,
		writes:    &groupCommit{db: db},
		now:       now,
		stop:      make(chan struct{}),
		done:      make(chan struct{}),
		sweepFrom: map[string][]byte{},
		run:       run,
	}
	go s.purgeLoop()
	return s, nil
}

// Close stops the purge, ends the run and releases the file. A run that ends here stopped cleanly:
// a server closes its store once it has stopped serving, so every rotation the run committed was
// answered and is final. Only a run that never gets here (a crash) leaves its record behind, and
// its rotations in doubt.
func (s *Bolt) Close() error {
	var ended error
	s.closing.Do(func() {
		close(s.stop)
		<-s.done
		ended = s.db.Update(func(tx *bolt.Tx) error {
			return tx.Bucket(bucketRuns).Delete(seqKey(s.run))
		})
	})
	return errors.Join(ended, s.db.Close())
}

// CreateRefreshToken implements RefreshTokens.
func (s *Bolt) CreateRefreshToken(_ context.Context, hash string, t RefreshToken) error {
	return s.writes.write(func(tx *bolt.Tx) error {
		return boltTx{tx}.putRefresh(hash, t)
	})
}

// RefreshToken implements RefreshTokens. Only a reuse, which kills the family, writes.
func (s *Bolt) RefreshToken(_ context.Context, hash string) (RefreshToken, error) {
	var rec refreshRecord
	var verdict error
	var kill bool
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		rec, verdict, kill, err = boltTx{tx}.peek(hash, s.now())
		return err
	})
	if err == nil && kill {
		err = s.writes.write(func(tx *bolt.Tx) error {
			var err error
			rec, verdict, err = boltTx{tx}.present(hash, s.now())
			return err
		})
	}
	// A fault of the store outranks the verdict, which a failed transaction leaves in doubt.
	return answer(rec.RefreshToken, cmp.Or(err, verdict))
}

// RotateRefreshToken implements RefreshTokens, in one write transaction: the check, the mark and
// the new token commit together or not at all. A token whose rotation a crashed run committed
// without its successor ever being presented (see unanswered) is rotated again, once: the
// successor nobody may have received is retired, so that presenting it is a reuse.
func (s *Bolt) RotateRefreshToken(_ context.Context, oldHash, newHash string, next RefreshToken) error {
	var verdict error
	var kill bool
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		_, verdict, kill, err = boltTx{tx}.peek(oldHash, s.now())
		return err
	})
	if err != nil {
		return err
	}
	if verdict != nil && !kill {
		return verdict
	}
	seenRotated := verdict == ErrReused
	err = s.writes.write(func(tx *bolt.Tx) error {
		btx := boltTx{tx}
		if seenRotated {
			rec, fam, _, err := btx.load(oldHash, s.now())
			if err != nil {
				return err
			}
			if repeated(rec, fam, newHash, s.now()) {
				verdict = nil
				return nil
			}
		}
		old, v, err := btx.present(oldHash, s.now())
		if verdict = v; err != nil || v != nil {
			return err
		}
		if err := checkRotation(old, next); err != nil {
			return err
		}
		if old.Rotated {
			if err := btx.retire(old.Successor, s.run); err != nil {
				return err
			}
		}
		old.Rotated, old.Successor, old.RotatedBy = true, newHash, s.run
		if err := btx.put(bucketRefresh, oldHash, old); err != nil {
			return err
		}
		return btx.putRefresh(newHash, next)
	})
	if err != nil {
		return err
	}
	return verdict
}

// Revoke implements Revocations.
func (s *Bolt) Revoke(_ context.Context, r Revocation) error {
	if err := checkRevocation(r); err != nil {
		return err
	}
	return s.writes.write(func(tx *bolt.Tx) error {
		btx := boltTx{tx}
		if r.Kind == RevokedFamily {
			var fam family
			if _, err := btx.get(bucketFamilies, r.ID, &fam); err != nil {
				return err
			}
			if !fam.revoke(r.Until) {
				return nil
			}
			if err := btx.put(bucketFamilies, r.ID, fam); err != nil {
				return err
			}
		}
		return btx.append(r)
	})
}

// RevocationsSince implements Revocations. A cursor beyond the last sequence number handed out
// cannot come from this file (it was replaced), so the whole log is read.
func (s *Bolt) RevocationsSince(_ context.Context, cursor uint64) ([]Revocation, uint64, error) {
	var out []Revocation
	next := cursor
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketRevocations)
		if cursor > b.Sequence() {
			cursor, next = 0, 0
		}
		now := s.now()
		c := b.Cursor()
		for k, v := c.Seek(seqKey(cursor + 1)); k != nil; k, v = c.Next() {
			next = binary.BigEndian.Uint64(k)
			var r Revocation
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("store: revocation %d: %w", next, err)
			}
			if !expired(r.Until, now) {
				out = append(out, r)
			}
		}
		return nil
	})
	return out, next, err
}

// AddSigningKey implements SigningKeys.
func (s *Bolt) AddSigningKey(_ context.Context, slot string, k SigningKey) (SigningKey, error) {
	var held SigningKey
	err := s.writes.write(func(tx *bolt.Tx) error {
		btx := boltTx{tx}
		held = SigningKey{}
		found, err := btx.get(bucketKeys, slot, &held)
		if err != nil || found {
			return err
		}
		held = k
		return btx.put(bucketKeys, slot, k)
	})
	return held, err
}

// SigningKeys implements SigningKeys.
func (s *Bolt) SigningKeys(context.Context) (map[string]SigningKey, error) {
	out := map[string]SigningKey{}
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketKeys).ForEach(func(slot, v []byte) error {
			var k SigningKey
			if err := json.Unmarshal(v, &k); err != nil {
				return fmt.Errorf("store: signing key %q: %w", slot, err)
			}
			out[string(slot)] = k
			return nil
		})
	})
	return out, err
}

// DeleteSigningKey implements SigningKeys.
func (s *Bolt) DeleteSigningKey(_ context.Context, slot string) error {
	return s.writes.write(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketKeys).Delete([]byte(slot))
	})
}

// PutOnce implements OneTime. An expired value no longer blocks its key (RFC 7523 §3: a jti
// need only be remembered while the assertion it came with could be accepted).
func (s *Bolt) PutOnce(_ context.Context, key string, value []byte, exp time.Time) (bool, error) {
	var taken bool
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		taken, err = boltTx{tx}.onceHeld(key, s.now())
		return err
	})
	if err != nil || taken {
		return false, err
	}
	err = s.writes.write(func(tx *bolt.Tx) error {
		btx := boltTx{tx}
		var err error
		if taken, err = btx.onceHeld(key, s.now()); err != nil || taken {
			return err
		}
		return btx.put(bucketOnce, key, oneTime{Value: value, ExpiresAt: exp})
	})
	return !taken && err == nil, err
}

// Take implements OneTime.
func (s *Bolt) Take(_ context.Context, key string) ([]byte, error) {
	return s.take(key, "", nil)
}

// Redeem implements Redemptions.
func (s *Bolt) Redeem(_ context.Context, key, markKey string, mark []byte, markExp time.Time) ([]byte, error) {
	return s.take(key, markKey, &oneTime{Value: mark, ExpiresAt: markExp})
}

// take takes the live value under key and, when mark is not nil, stores mark under markKey in
// the same transaction.
func (s *Bolt) take(key, markKey string, mark *oneTime) ([]byte, error) {
	var found bool
	err := s.db.View(func(tx *bolt.Tx) error {
		found = tx.Bucket(bucketOnce).Get([]byte(key)) != nil
		return nil
	})
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, ErrNotFound
	}
	var v oneTime
	var live bool
	err = s.writes.write(func(tx *bolt.Tx) error {
		btx := boltTx{tx}
		v = oneTime{}
		found, err := btx.get(bucketOnce, key, &v)
		live = found && !expired(v.ExpiresAt, s.now())
		if err != nil || !found {
			return err
		}
		if err := tx.Bucket(bucketOnce).Delete([]byte(key)); err != nil || !live || mark == nil {
			return err
		}
		return btx.put(bucketOnce, markKey, *mark)
	})
	switch {
	case err != nil:
		return nil, err
	case !live:
		return nil, ErrNotFound
	}
	return v.Value, nil
}

// boltTx reads and writes records within one bolt transaction.
type boltTx struct{ tx *bolt.Tx }

// get decodes the record under key into v and reports whether there was one.
func (t boltTx) get(bucket []byte, key string, v any) (bool, error) {
	data := t.tx.Bucket(bucket).Get([]byte(key))
	if data == nil {
		return false, nil
	}
	if err := json.Unmarshal(data, v); err != nil {
		return true, fmt.Errorf("store: %s record: %w", bucket, err)
	}
	return true, nil
}

func (t boltTx) put(bucket []byte, key string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("store: %s record: %w", bucket, err)
	}
	return t.tx.Bucket(bucket).Put([]byte(key), data)
}

// load reads the token under hash and its family and applies the rules for presenting it: a
// rotated token whose rotation may never have been answered is presented as a live one.
func (t boltTx) load(hash string, now time.Time) (rec refreshRecord, fam family, verdict error, err error) {
	found, err := t.get(bucketRefresh, hash, &rec)
	if err == nil && found {
		_, err = t.get(bucketFamilies, rec.FamilyID, &fam)
	}
	if err != nil {
		return rec, fam, nil, err
	}
	verdict = presented(rec, found, fam, now)
	if verdict == ErrReused {
		doubt, err := t.inDoubt(rec, now)
		if err != nil || !doubt {
			return rec, fam, verdict, err
		}
		live := rec
		live.Rotated = false
		verdict = presented(live, found, fam, now)
	}
	return rec, fam, verdict, nil
}

// inDoubt applies unanswered to the rotated rec, reading its successor only when the run that
// rotated it crashed.
func (t boltTx) inDoubt(rec refreshRecord, now time.Time) (bool, error) {
	if !t.crashedRun(rec.RotatedBy) {
		return false, nil
	}
	var succ refreshRecord
	found, err := t.get(bucketRefresh, rec.Successor, &succ)
	return unanswered(rec, succ, found, now), err
}

// crashedRun reports whether run ended without closing the file: its record outlived it. Run 0
// is a rotation older than the runs bucket, counted as final.
func (t boltTx) crashedRun(run uint64) bool {
	runs := t.tx.Bucket(bucketRuns)
	return run != 0 && run != runs.Sequence() && runs.Get(seqKey(run)) != nil
}

// retire marks the token under hash as rotated by run, to no successor: presenting it is a reuse.
func (t boltTx) retire(hash string, run uint64) error {
	var rec refreshRecord
	found, err := t.get(bucketRefresh, hash, &rec)
	if err != nil || !found {
		return err
	}
	rec.Rotated, rec.Successor, rec.RotatedBy = true, "", run
	return t.put(bucketRefresh, hash, rec)
}

// peek is load for a read transaction. kill reports a reuse whose revocation is not in the log yet:
// only then must the caller repeat the step in a write transaction.
func (t boltTx) peek(hash string, now time.Time) (rec refreshRecord, verdict error, kill bool, err error) {
	var fam family
	rec, fam, verdict, err = t.load(hash, now)
	if verdict == ErrReused {
		_, kill = fam.killedBy(rec)
	}
	return rec, verdict, kill, err
}

// present is load for a write transaction: on reuse it kills the family and appends the
// revocation, in the same transaction (RFC 9700 §4.14.2).
func (t boltTx) present(hash string, now time.Time) (rec refreshRecord, verdict, err error) {
	var fam family
	rec, fam, verdict, err = t.load(hash, now)
	if err != nil || verdict != ErrReused {
		return rec, verdict, err
	}
	r, add := fam.killedBy(rec)
	if !add {
		return rec, verdict, nil
	}
	if err := t.put(bucketFamilies, rec.FamilyID, fam); err != nil {
		return rec, verdict, err
	}
	return rec, verdict, t.append(r)
}

// putRefresh stores a new live token and notes it in its family.
func (t boltTx) putRefresh(hash string, rt RefreshToken) error {
	if t.tx.Bucket(bucketRefresh).Get([]byte(hash)) != nil {
		return errHashTaken
	}
	if err := t.put(bucketRefresh, hash, refreshRecord{RefreshToken: rt}); err != nil {
		return err
	}
	var fam family
	if _, err := t.get(bucketFamilies, rt.FamilyID, &fam); err != nil {
		return err
	}
	if !rt.ExpiresAt.After(fam.Expires) {
		return nil
	}
	fam.grow(rt.ExpiresAt)
	return t.put(bucketFamilies, rt.FamilyID, fam)
}

// append adds r to the revocation log under the bucket's next sequence number.
func (t boltTx) append(r Revocation) error {
	b := t.tx.Bucket(bucketRevocations)
	seq, err := b.NextSequence()
	if err != nil {
		return err
	}
	data, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("store: revocation: %w", err)
	}
	return b.Put(seqKey(seq), data)
}

// onceHeld reports whether key holds an unexpired one-time value.
func (t boltTx) onceHeld(key string, now time.Time) (bool, error) {
	var v oneTime
	found, err := t.get(bucketOnce, key, &v)
	return found && !expired(v.ExpiresAt, now), err
}

func seqKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }

// purgeLoop runs purge every purgeEvery until Close.
func (s *Bolt) purgeLoop() {
	defer close(s.done)
	tick := time.NewTicker(purgeEvery)
	defer tick.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-tick.C:
			// A failed purge is retried on the next tick; a disk fault also fails the requests,
			// which report it, so there is nothing more to do with the error here.
			_ = s.purge()
		}
	}
}

// sweeps says, per bucket, when a record may be forgotten. Rotated refresh tokens stay until
// their own expiry, and a family until its last token and its log entry have expired, so that
// reuse is still detected and a dead family stays dead.
var sweeps = []struct {
	bucket   []byte
	forgetAt func(data []byte) (time.Time, error)
}{
	{bucketRefresh, func(data []byte) (time.Time, error) {
		var r refreshRecord
		err := json.Unmarshal(data, &r)
		return r.ExpiresAt, err
	}},
	{bucketFamilies, func(data []byte) (time.Time, error) {
		var f family
		err := json.Unmarshal(data, &f)
		return f.forgetAt(), err
	}},
	{bucketRevocations, func(data []byte) (time.Time, error) {
		var r Revocation
		err := json.Unmarshal(data, &r)
		return r.Until, err
	}},
	{bucketOnce, func(data []byte) (time.Time, error) {
		var v oneTime
		err := json.Unmarshal(data, &v)
		return v.ExpiresAt, err
	}},
}

// purge looks at up to purgeBudget records of each bucket, from where the last run stopped, and
// deletes the expired ones. A record that does not decode is left for the reads to report.
func (s *Bolt) purge() error {
	return s.db.Update(func(tx *bolt.Tx) error {
		now := s.now()
		for _, sw := range sweeps {
			b := tx.Bucket(sw.bucket)
			var doomed [][]byte
			c := b.Cursor()
			k, v := c.Seek(s.sweepFrom[string(sw.bucket)])
			for n := 0; k != nil && n < purgeBudget; n++ {
				if exp, err := sw.forgetAt(v); err == nil && expired(exp, now) {
					doomed = append(doomed, bytes.Clone(k))
				}
				k, v = c.Next()
			}
			s.sweepFrom[string(sw.bucket)] = bytes.Clone(k) // nil at the end: start over next time
			for _, k := range doomed {
				if err := b.Delete(k); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

var _ Store = (*Bolt)(nil)
