package store

import (
	"encoding"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"
)

// The embedded backends (bolt, pebble) keep the same records in the same buckets of an ordered
// key-value engine; kvStore (kv_store.go) applies the rules to them through kvTx, and each engine
// only says how a transaction reads, writes and commits.

// Buckets of an embedded store. Refresh tokens are keyed by their hash, families by id, the
// revocation log by big-endian sequence number (so a scan reads it in order), keys by slot,
// one-time values by key, registered clients by client_id. Values are JSON, except refresh tokens
// and families, which are binary (kv_codec.go). The runs bucket numbers each opening of the store
// with its sequence and holds a record for every run that has not closed it: the current one, and
// those that crashed (one small record per crash, kept because their rotations stay in doubt).
var (
	bucketRefresh     = []byte("refresh_tokens")
	bucketFamilies    = []byte("families")
	bucketRevocations = []byte("revocations")
	bucketKeys        = []byte("signing_keys")
	bucketOnce        = []byte("one_time")
	bucketRuns        = []byte("runs")
	bucketClients     = []byte("clients")
	kvBuckets         = [][]byte{bucketRefresh, bucketFamilies, bucketRevocations, bucketKeys, bucketOnce, bucketRuns, bucketClients}
)

// kvTx is one transaction of an embedded engine: a write transaction sees its own writes, and
// commits all of them or none.
type kvTx interface {
	// get returns the value under key, nil when there is none. It is valid until the transaction ends.
	get(bucket, key []byte) ([]byte, error)
	// put stores value under key. The transaction keeps value as it is, without a copy: the
	// caller hands it over and never changes it afterwards.
	put(bucket, key, value []byte) error
	delete(bucket, key []byte) error
	// scan calls fn with each record of bucket, in key order, from the first key at or after from,
	// until fn returns false. The records are valid only during the call.
	scan(bucket, from []byte, fn func(key, value []byte) bool) error
	// sequence is the last number nextSequence handed out in bucket; nextSequence hands out the next.
	sequence(bucket []byte) (uint64, error)
	nextSequence(bucket []byte) (uint64, error)
}

// kvEngine runs transactions of an embedded engine.
type kvEngine interface {
	// view runs fn in a transaction that only reads. Its reads need not all see one instant
	// (pebble's do not): what a view decides, a write transaction decides again before it
	// changes anything, and a scan sees one state throughout.
	view(fn func(kvTx) error) error
	// update runs fn in a write transaction and, when fn succeeds, commits it: what it wrote is
	// visible to the transactions after it at once, and durable (fsynced) once durable returns nil.
	update(fn func(kvTx) error) (durable func() error, err error)
	// close releases the engine's files.
	close() error
}

// updateDurably runs fn in a write transaction of e and returns once it is durable.
func updateDurably(e kvEngine, fn func(kvTx) error) error {
	durable, err := e.update(fn)
	if err != nil {
		return err
	}
	return durable()
}

// records reads and writes the store's records within one transaction.
type records struct{ tx kvTx }

// get decodes the record under key into v and reports whether there was one.
func (t records) get(bucket []byte, key string, v any) (bool, error) {
	data, err := t.tx.get(bucket, []byte(key))
	if err != nil || data == nil {
		return false, err
	}
	if err := decodeKV(data, v); err != nil {
		return true, fmt.Errorf("store: %s record: %w", bucket, err)
	}
	return true, nil
}

// decodeKV decodes data into v: binary when v has a binary form (kv_codec.go) and data is not
// a record written in JSON before it had, JSON otherwise.
func decodeKV(data []byte, v any) error {
	if b, ok := v.(encoding.BinaryUnmarshaler); ok && len(data) > 0 && data[0] != '{' {
		return b.UnmarshalBinary(data)
	}
	return json.Unmarshal(data, v)
}

func (t records) has(bucket []byte, key string) (bool, error) {
	data, err := t.tx.get(bucket, []byte(key))
	return data != nil, err
}

func (t records) put(bucket []byte, key string, v any) error {
	var data []byte
	var err error
	if b, ok := v.(encoding.BinaryAppender); ok {
		data, err = b.AppendBinary(nil)
	} else {
		data, err = json.Marshal(v)
	}
	if err != nil {
		return fmt.Errorf("store: %s record: %w", bucket, err)
	}
	return t.tx.put(bucket, []byte(key), data)
}

// load reads the token under hash and its family and applies the rules for presenting it: a
// rotated token whose rotation may never have been answered is presented as a live one.
func (t records) load(hash string, now time.Time) (rec refreshRecord, fam family, verdict error, err error) {
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
func (t records) inDoubt(rec refreshRecord, now time.Time) (bool, error) {
	crashed, err := t.crashedRun(rec.RotatedBy)
	if err != nil || !crashed {
		return false, err
	}
	var succ refreshRecord
	found, err := t.get(bucketRefresh, rec.Successor, &succ)
	return unanswered(rec, succ, found, now), err
}

// crashedRun reports whether run ended without closing the store: its record outlived it. Run 0
// is a rotation older than the runs bucket, counted as final.
func (t records) crashedRun(run uint64) (bool, error) {
	current, err := t.tx.sequence(bucketRuns)
	if err != nil || run == 0 || run == current {
		return false, err
	}
	rec, err := t.tx.get(bucketRuns, seqKey(run))
	return rec != nil, err
}

// retire marks the token under hash as rotated by run, to no successor: presenting it is a reuse.
func (t records) retire(hash string, run uint64) error {
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
func (t records) peek(hash string, now time.Time) (rec refreshRecord, verdict error, kill bool, err error) {
	var fam family
	rec, fam, verdict, err = t.load(hash, now)
	if verdict == ErrReused {
		_, kill = fam.killedBy(rec)
	}
	return rec, verdict, kill, err
}

// present is load for a write transaction: on reuse it kills the family (kill).
func (t records) present(hash string, now time.Time) (rec refreshRecord, verdict, err error) {
	var fam family
	rec, fam, verdict, err = t.load(hash, now)
	if err == nil && verdict == ErrReused {
		err = t.kill(rec, fam)
	}
	return rec, verdict, err
}

// kill marks fam, the family of the reused rec, dead and appends the revocation, in the same
// transaction (RFC 9700 §4.14.2).
func (t records) kill(rec refreshRecord, fam family) error {
	r, add := fam.killedBy(rec)
	if !add {
		return nil
	}
	if err := t.put(bucketFamilies, rec.FamilyID, fam); err != nil {
		return err
	}
	return t.append(r)
}

// putRefresh stores a new live token under hash, where there is none, a member of fam (as
// stored, or zero for a new family), and notes it in fam.
func (t records) putRefresh(hash string, rt RefreshToken, fam family) error {
	if err := t.put(bucketRefresh, hash, refreshRecord{RefreshToken: rt}); err != nil {
		return err
	}
	if !rt.ExpiresAt.After(fam.Expires) {
		return nil
	}
	fam.grow(rt.ExpiresAt)
	return t.put(bucketFamilies, rt.FamilyID, fam)
}

// append adds r to the revocation log under the bucket's next sequence number.
func (t records) append(r Revocation) error {
	seq, err := t.tx.nextSequence(bucketRevocations)
	if err != nil {
		return err
	}
	return t.put(bucketRevocations, string(seqKey(seq)), r)
}

// onceHeld reports whether key holds an unexpired one-time value.
func (t records) onceHeld(key string, now time.Time) (bool, error) {
	var v oneTime
	found, err := t.get(bucketOnce, key, &v)
	return found && !expired(v.ExpiresAt, now), err
}

func seqKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }
