package store

import (
	"cmp"
	"context"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Device codes live in the one-time bucket (see device_rules.go), which the purge already sweeps.
// Each step that changes a code runs in one write transaction; a write function may run twice, so
// each sets its results afresh.

// CreateDeviceCode implements DeviceCodes.
func (s *Bolt) CreateDeviceCode(_ context.Context, hash string, d DeviceCode) (bool, error) {
	rec, index, err := newDevice(hash, d)
	if err != nil {
		return false, err
	}
	var created bool
	err = s.writes.write(func(tx *bolt.Tx) error {
		btx := boltTx{tx}
		created = false
		var held oneTime
		found, err := btx.get(bucketOnce, deviceUserKey(d.UserCode), &held)
		if err != nil || indexHeld(held, found, s.now()) || tx.Bucket(bucketOnce).Get([]byte(deviceKey(hash))) != nil {
			return err
		}
		if err := btx.put(bucketOnce, deviceKey(hash), rec); err != nil {
			return err
		}
		if err := btx.put(bucketOnce, deviceUserKey(d.UserCode), index); err != nil {
			return err
		}
		created = true
		return nil
	})
	return created && err == nil, err
}

// PendingDeviceCode implements DeviceCodes, in a read transaction.
func (s *Bolt) PendingDeviceCode(_ context.Context, userCode string) (DeviceCode, error) {
	var rec deviceRecord
	var verdict error
	err := s.db.View(func(tx *bolt.Tx) error {
		now := s.now()
		var found bool
		var err error
		_, rec, found, err = boltTx{tx}.deviceByUser(userCode, now)
		verdict = pendingFor(rec, found, userCode, now)
		return err
	})
	// A fault of the store outranks the verdict, which a failed transaction leaves in doubt.
	if err := cmp.Or(err, verdict); err != nil {
		return DeviceCode{}, err
	}
	return rec.DeviceCode, nil
}

// DecideDeviceCode implements DeviceCodes.
func (s *Bolt) DecideDeviceCode(_ context.Context, userCode string, decision DeviceStatus, grant []byte) error {
	var verdict error
	err := s.writes.write(func(tx *bolt.Tx) error {
		btx, now := boltTx{tx}, s.now()
		hash, rec, found, err := btx.deviceByUser(userCode, now)
		if err != nil {
			return err
		}
		var next deviceRecord
		if next, verdict = decided(rec, found, userCode, decision, grant, now); verdict != nil {
			return nil
		}
		return btx.putDevice(hash, next)
	})
	if err != nil {
		return err
	}
	return verdict
}

// PollDeviceCode implements DeviceCodes. A poll that changes nothing (an unknown, foreign or
// expired code) is answered from a read transaction, so a flood of made-up codes costs no fsync.
func (s *Bolt) PollDeviceCode(_ context.Context, hash, clientID string) (DeviceCode, DeviceStatus, error) {
	var p devicePoll
	var verdict error
	poll := func(btx boltTx) error {
		now := s.now()
		rec, found, err := btx.device(hash, now)
		if err != nil {
			return err
		}
		p, verdict = polled(rec, found, clientID, now)
		return nil
	}
	err := s.db.View(func(tx *bolt.Tx) error { return poll(boltTx{tx}) })
	if err == nil && verdict == nil && p.next != nil {
		err = s.writes.write(func(tx *bolt.Tx) error {
			btx := boltTx{tx}
			if err := poll(btx); err != nil || verdict != nil || p.next == nil {
				return err
			}
			return btx.putDevice(hash, *p.next)
		})
	}
	// A fault of the store outranks the verdict, which a failed transaction leaves in doubt.
	if err := cmp.Or(err, verdict); err != nil {
		return DeviceCode{}, "", err
	}
	return p.code, p.status, nil
}

// device reads the code under hash, if it has not been forgotten.
func (t boltTx) device(hash string, now time.Time) (deviceRecord, bool, error) {
	var v oneTime
	found, err := t.get(bucketOnce, deviceKey(hash), &v)
	if err != nil || !found || expired(v.ExpiresAt, now) {
		return deviceRecord{}, false, err
	}
	rec, err := decodeDevice(v)
	return rec, err == nil, err
}

// deviceByUser follows the index of userCode to its code.
func (t boltTx) deviceByUser(userCode string, now time.Time) (string, deviceRecord, bool, error) {
	var index oneTime
	found, err := t.get(bucketOnce, deviceUserKey(userCode), &index)
	if err != nil || !indexHeld(index, found, now) {
		return "", deviceRecord{}, false, err
	}
	hash := string(index.Value)
	rec, found, err := t.device(hash, now)
	return hash, rec, found, err
}

func (t boltTx) putDevice(hash string, rec deviceRecord) error {
	v, err := encodeDevice(rec)
	if err != nil {
		return err
	}
	return t.put(bucketOnce, deviceKey(hash), v)
}

var _ DeviceCodes = (*Bolt)(nil)
