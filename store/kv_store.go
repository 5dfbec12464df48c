package store

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"
)

const (
	// purgeEvery and purgeBudget bound the background purge: each run looks at no more than
	// purgeBudget records per bucket, resuming where the previous run stopped, so a large store is
	// swept over several runs instead of stalling writers for one long transaction.
	purgeEvery  = 10 * time.Second
	purgeBudget = 2000
)

// kvStore is a Store on an embedded engine (bolt, pebble): durable (every write is fsynced before
// it returns), for one process at a time. Writes go through a group commit (group_commit.go) so
// that concurrent requests share one fsync; a write function may run more than once, so each sets
// its results afresh on every run.
//
// Lookups that change nothing (an unknown token, a used code, a replayed assertion id) are
// answered from a read transaction first, so a flood of made-up tokens costs reads, not fsyncs.
type kvStore struct {
	engine kvEngine
	// writes commits the write transactions of concurrent requests together.
	writes *groupCommit
	now    func() time.Time
	stop   chan struct{}
	done   chan struct{}
	// closing makes a second Close harmless instead of a panic on the closed stop channel (or
	// in pebble, which refuses to close twice).
	closing sync.Once
	// sweepFrom holds, per bucket, the key the next purge starts at. Only purge touches it, inside
	// a write transaction, which the engine runs one at a time.
	sweepFrom map[string][]byte
	// run numbers this opening of the store; the rotations it commits carry it.
	run uint64
}

// openKV begins a run on engine, whose buckets exist, and starts its background purge. Close
// stops it. On failure it closes engine.
func openKV(engine kvEngine, now func() time.Time) (*kvStore, error) {
	var run uint64
	err := updateDurably(engine, func(tx kvTx) error {
		var err error
		if run, err = tx.nextSequence(bucketRuns); err != nil {
			return err
		}
		// The value is for a person reading the store: when the run began.
		return tx.put(bucketRuns, seqKey(run), []byte(now().UTC().Format(time.RFC3339)))
	})
	if err != nil {
		return nil, errors.Join(fmt.Errorf("store: begin a run: %w", err), engine.close())
	}
	s := &kvStore{
		engine:    engine,
		writes:    &groupCommit{update: engine.update},
		now:       now,
		stop:      make(chan struct{}),
		done:      make(chan struct{}),
		sweepFrom: map[string][]byte{},
		run:       run,
	}
	go s.purgeLoop()
	return s, nil
}

// Close stops the purge, ends the run and releases the engine. A run that ends here stopped
// cleanly: a server closes its store once it has stopped serving, so every rotation the run
// committed was answered and is final. Only a run that never gets here (a crash) leaves its record
// behind, and its rotations in doubt.
func (s *kvStore) Close() error {
	var err error
	s.closing.Do(func() {
		close(s.stop)
		<-s.done
		ended := updateDurably(s.engine, func(tx kvTx) error {
			return tx.delete(bucketRuns, seqKey(s.run))
		})
		err = errors.Join(ended, s.engine.close())
	})
	return err
}

// CreateRefreshToken implements RefreshTokens.
func (s *kvStore) CreateRefreshToken(_ context.Context, hash string, t RefreshToken) error {
	return s.writes.write(func(tx kvTx) error {
		recs := records{tx}
		if taken, err := recs.has(bucketRefresh, hash); err != nil || taken {
			return cmp.Or(err, errHashTaken)
		}
		var fam family
		if _, err := recs.get(bucketFamilies, t.FamilyID, &fam); err != nil {
			return err
		}
		return recs.putRefresh(hash, t, fam)
	})
}

// RefreshToken implements RefreshTokens. Only a reuse, which kills the family, writes.
func (s *kvStore) RefreshToken(_ context.Context, hash string) (RefreshToken, error) {
	var rec refreshRecord
	var verdict error
	var kill bool
	err := s.engine.view(func(tx kvTx) error {
		var err error
		rec, verdict, kill, err = records{tx}.peek(hash, s.now())
		return err
	})
	if err == nil && kill {
		err = s.writes.write(func(tx kvTx) error {
			var err error
			rec, verdict, err = records{tx}.present(hash, s.now())
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
//
// Unlike the other lookups, it has no read transaction in front to refuse a dead token without
// a write: the token endpoint has just looked the token up (RefreshToken), which did that, and a
// write that changes nothing commits nothing.
//
// Nor does it look newHash up, as CreateRefreshToken does: on pebble, a lookup of a key that is
// not there searches every memtable and level, and cost the rotation a third of its CPU. newHash
// is the hash of a token of 256 random bits the caller has just made (RFC 6749 §10.10); the one
// caller that presents it again, a retry, is caught as repeated, and rotating a token to its own
// hash, the one mistake a caller could make without the randomness failing, is refused.
func (s *kvStore) RotateRefreshToken(_ context.Context, oldHash, newHash string, next RefreshToken) error {
	if newHash == oldHash {
		return errHashTaken
	}
	var verdict error
	err := s.writes.write(func(tx kvTx) error {
		recs := records{tx}
		now := s.now()
		old, fam, v, err := recs.load(oldHash, now)
		if verdict = v; err != nil {
			return err
		}
		if repeated(old, fam, newHash, now) {
			verdict = nil
			return nil
		}
		if v == ErrReused {
			return recs.kill(old, fam)
		}
		if v != nil {
			return nil
		}
		if err := checkRotation(old, next); err != nil {
			return err
		}
		if old.Rotated {
			if err := recs.retire(old.Successor, s.run); err != nil {
				return err
			}
		}
		old.Rotated, old.Successor, old.RotatedBy = true, newHash, s.run
		if err := recs.put(bucketRefresh, oldHash, old); err != nil {
			return err
		}
		return recs.putRefresh(newHash, next, fam)
	})
	if err != nil {
		return err
	}
	return verdict
}

// Revoke implements Revocations.
func (s *kvStore) Revoke(_ context.Context, r Revocation) error {
	if err := checkRevocation(r); err != nil {
		return err
	}
	return s.writes.write(func(tx kvTx) error {
		recs := records{tx}
		if r.Kind == RevokedFamily {
			var fam family
			if _, err := recs.get(bucketFamilies, r.ID, &fam); err != nil {
				return err
			}
			if !fam.revoke(r.Until) {
				return nil
			}
			if err := recs.put(bucketFamilies, r.ID, fam); err != nil {
				return err
			}
		}
		return recs.append(r)
	})
}

// RevocationsSince implements Revocations. A cursor beyond the last sequence number handed out
// cannot come from this store (it was replaced), so the whole log is read.
func (s *kvStore) RevocationsSince(_ context.Context, cursor uint64) ([]Revocation, uint64, error) {
	var out []Revocation
	next := cursor
	err := s.engine.view(func(tx kvTx) error {
		last, err := tx.sequence(bucketRevocations)
		if err != nil {
			return err
		}
		if cursor > last {
			cursor, next = 0, 0
		}
		now := s.now()
		var bad error
		err = tx.scan(bucketRevocations, seqKey(cursor+1), func(k, v []byte) bool {
			next = binary.BigEndian.Uint64(k)
			var r Revocation
			if bad = json.Unmarshal(v, &r); bad != nil {
				bad = fmt.Errorf("store: revocation %d: %w", next, bad)
				return false
			}
			if !expired(r.Until, now) {
				out = append(out, r)
			}
			return true
		})
		return cmp.Or(err, bad)
	})
	return out, next, err
}

// AddSigningKey implements SigningKeys.
func (s *kvStore) AddSigningKey(_ context.Context, slot string, k SigningKey) (SigningKey, error) {
	var held SigningKey
	err := s.writes.write(func(tx kvTx) error {
		recs := records{tx}
		held = SigningKey{}
		found, err := recs.get(bucketKeys, slot, &held)
		if err != nil || found {
			return err
		}
		held = k
		return recs.put(bucketKeys, slot, k)
	})
	return held, err
}

// SigningKeys implements SigningKeys.
func (s *kvStore) SigningKeys(context.Context) (map[string]SigningKey, error) {
	out := map[string]SigningKey{}
	err := s.engine.view(func(tx kvTx) error {
		var bad error
		err := tx.scan(bucketKeys, nil, func(slot, v []byte) bool {
			var k SigningKey
			if bad = json.Unmarshal(v, &k); bad != nil {
				bad = fmt.Errorf("store: signing key %q: %w", slot, bad)
				return false
			}
			out[string(slot)] = k
			return true
		})
		return cmp.Or(err, bad)
	})
	return out, err
}

// DeleteSigningKey implements SigningKeys.
func (s *kvStore) DeleteSigningKey(_ context.Context, slot string) error {
	return s.writes.write(func(tx kvTx) error {
		return tx.delete(bucketKeys, []byte(slot))
	})
}

// PutOnce implements OneTime. An expired value no longer blocks its key (RFC 7523 §3: a jti
// need only be remembered while the assertion it came with could be accepted).
func (s *kvStore) PutOnce(_ context.Context, key string, value []byte, exp time.Time) (bool, error) {
	var taken bool
	err := s.engine.view(func(tx kvTx) error {
		var err error
		taken, err = records{tx}.onceHeld(key, s.now())
		return err
	})
	if err != nil || taken {
		return false, err
	}
	err = s.writes.write(func(tx kvTx) error {
		recs := records{tx}
		var err error
		if taken, err = recs.onceHeld(key, s.now()); err != nil || taken {
			return err
		}
		return recs.put(bucketOnce, key, oneTime{Value: value, ExpiresAt: exp})
	})
	return !taken && err == nil, err
}

// Take implements OneTime.
func (s *kvStore) Take(_ context.Context, key string) ([]byte, error) {
	return s.take(key, "", nil)
}

// Redeem implements Redemptions.
func (s *kvStore) Redeem(_ context.Context, key, markKey string, mark []byte, markExp time.Time) ([]byte, error) {
	return s.take(key, markKey, &oneTime{Value: mark, ExpiresAt: markExp})
}

// take takes the live value under key and, when mark is not nil, stores mark under markKey in
// the same transaction.
func (s *kvStore) take(key, markKey string, mark *oneTime) ([]byte, error) {
	var found bool
	err := s.engine.view(func(tx kvTx) error {
		var err error
		found, err = records{tx}.has(bucketOnce, key)
		return err
	})
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, ErrNotFound
	}
	var v oneTime
	var live bool
	err = s.writes.write(func(tx kvTx) error {
		recs := records{tx}
		v = oneTime{}
		found, err := recs.get(bucketOnce, key, &v)
		live = found && !expired(v.ExpiresAt, s.now())
		if err != nil || !found {
			return err
		}
		if err := tx.delete(bucketOnce, []byte(key)); err != nil || !live || mark == nil {
			return err
		}
		return recs.put(bucketOnce, markKey, *mark)
	})
	switch {
	case err != nil:
		return nil, err
	case !live:
		return nil, ErrNotFound
	}
	return v.Value, nil
}

// purgeLoop runs purge every purgeEvery until Close.
func (s *kvStore) purgeLoop() {
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
		err := decodeKV(data, &r)
		return r.ExpiresAt, err
	}},
	{bucketFamilies, func(data []byte) (time.Time, error) {
		var f family
		err := decodeKV(data, &f)
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
func (s *kvStore) purge() error {
	return updateDurably(s.engine, func(tx kvTx) error {
		now := s.now()
		for _, sw := range sweeps {
			var doomed [][]byte
			var resume []byte // nil at the end: start over next time
			n := 0
			err := tx.scan(sw.bucket, s.sweepFrom[string(sw.bucket)], func(k, v []byte) bool {
				if n == purgeBudget {
					resume = bytes.Clone(k)
					return false
				}
				n++
				if exp, err := sw.forgetAt(v); err == nil && expired(exp, now) {
					doomed = append(doomed, bytes.Clone(k))
				}
				return true
			})
			if err != nil {
				return err
			}
			s.sweepFrom[string(sw.bucket)] = resume
			for _, k := range doomed {
				if err := tx.delete(sw.bucket, k); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

var _ Store = (*kvStore)(nil)
