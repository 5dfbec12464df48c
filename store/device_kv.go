package store

import (
	"cmp"
	"context"
	"time"
)

// Device codes of the embedded stores live in the one-time bucket (see device_rules.go), which the purge already sweeps.
// Each step that changes a code runs in one write transaction; a write function may run twice, so
// each sets its results afresh.

// CreateDeviceCode implements DeviceCodes.
func (s *kvStore) CreateDeviceCode(_ context.Context, hash string, d DeviceCode) (bool, error) {
	rec, index, err := newDevice(hash, d)
	if err != nil {
		return false, err
	}
	var created bool
	err = s.writes.write(func(tx kvTx) error {
		recs := records{tx}
		created = false
		var held oneTime
		found, err := recs.get(bucketOnce, deviceUserKey(d.UserCode), &held)
		if err != nil || indexHeld(held, found, s.now()) {
			return err
		}
		if taken, err := recs.has(bucketOnce, deviceKey(hash)); err != nil || taken {
			return err
		}
		if err := recs.put(bucketOnce, deviceKey(hash), rec); err != nil {
			return err
		}
		if err := recs.put(bucketOnce, deviceUserKey(d.UserCode), index); err != nil {
			return err
		}
		created = true
		return nil
	})
	return created && err == nil, err
}

// PendingDeviceCode implements DeviceCodes, in a read transaction.
func (s *kvStore) PendingDeviceCode(_ context.Context, userCode string) (DeviceCode, error) {
	var rec deviceRecord
	var verdict error
	err := s.engine.view(func(tx kvTx) error {
		now := s.now()
		var found bool
		var err error
		_, rec, found, err = records{tx}.deviceByUser(userCode, now)
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
func (s *kvStore) DecideDeviceCode(_ context.Context, userCode string, decision DeviceStatus, grant []byte) error {
	var verdict error
	err := s.writes.write(func(tx kvTx) error {
		recs, now := records{tx}, s.now()
		hash, rec, found, err := recs.deviceByUser(userCode, now)
		if err != nil {
			return err
		}
		var next deviceRecord
		if next, verdict = decided(rec, found, userCode, decision, grant, now); verdict != nil {
			return nil
		}
		return recs.putDevice(hash, next)
	})
	if err != nil {
		return err
	}
	return verdict
}

// PollDeviceCode implements DeviceCodes. A poll that changes nothing (an unknown, foreign or
// expired code) is answered from a read transaction, so a flood of made-up codes costs no fsync.
func (s *kvStore) PollDeviceCode(_ context.Context, hash, clientID string) (DeviceCode, DeviceStatus, error) {
	var p devicePoll
	var verdict error
	poll := func(recs records) error {
		now := s.now()
		rec, found, err := recs.device(hash, now)
		if err != nil {
			return err
		}
		p, verdict = polled(rec, found, clientID, now)
		return nil
	}
	err := s.engine.view(func(tx kvTx) error { return poll(records{tx}) })
	if err == nil && verdict == nil && p.next != nil {
		err = s.writes.write(func(tx kvTx) error {
			recs := records{tx}
			if err := poll(recs); err != nil || verdict != nil || p.next == nil {
				return err
			}
			return recs.putDevice(hash, *p.next)
		})
	}
	// A fault of the store outranks the verdict, which a failed transaction leaves in doubt.
	if err := cmp.Or(err, verdict); err != nil {
		return DeviceCode{}, "", err
	}
	return p.code, p.status, nil
}

// device reads the code under hash, if it has not been forgotten.
func (t records) device(hash string, now time.Time) (deviceRecord, bool, error) {
	var v oneTime
	found, err := t.get(bucketOnce, deviceKey(hash), &v)
	if err != nil || !found || expired(v.ExpiresAt, now) {
		return deviceRecord{}, false, err
	}
	rec, err := decodeDevice(v)
	return rec, err == nil, err
}

// deviceByUser follows the index of userCode to its code.
func (t records) deviceByUser(userCode string, now time.Time) (string, deviceRecord, bool, error) {
	var index oneTime
	found, err := t.get(bucketOnce, deviceUserKey(userCode), &index)
	if err != nil || !indexHeld(index, found, now) {
		return "", deviceRecord{}, false, err
	}
	hash := string(index.Value)
	rec, found, err := t.device(hash, now)
	return hash, rec, found, err
}

func (t records) putDevice(hash string, rec deviceRecord) error {
	v, err := encodeDevice(rec)
	if err != nil {
		return err
	}
	return t.put(bucketOnce, deviceKey(hash), v)
}
