package store

import (
	"context"
	"time"
)

// Device codes are one-time values here as in the other backends (see device_rules.go), under
// keyOnce. Each step that changes a code is decided in Go and takes effect through casScript only
// if nothing it read has changed (see Redis.update), so two instances cannot both redeem a code.

// redisDevice is a device code as read, with the user code index that led to it, if any.
type redisDevice struct {
	key   string
	raw   []byte // as stored; nil when there was none
	rec   deviceRecord
	found bool
	// index and indexRaw are the user code index read first; indexRaw nil when there was none.
	index    string
	indexRaw []byte
	readAt   int64
}

// CreateDeviceCode implements DeviceCodes.
func (s *Redis) CreateDeviceCode(ctx context.Context, hash string, d DeviceCode) (bool, error) {
	rec, index, err := newDevice(hash, d)
	if err != nil {
		return false, err
	}
	recKey, indexKey := keyOnce+deviceKey(hash), keyOnce+deviceUserKey(d.UserCode)
	var created bool
	err = s.update(ctx, func() (redisWrite, error) {
		created = false
		r, err := s.read(ctx, []string{recKey, indexKey}, false)
		if err != nil {
			return redisWrite{}, err
		}
		held, found, err := decodeOnce(r.vals[1])
		if err != nil || r.vals[0] != nil || indexHeld(held, found, s.now()) {
			return redisWrite{}, err
		}
		created = true
		return redisWrite{ops: []redisOp{
			{key: recKey, set: rec, expires: rec.ExpiresAt},
			{key: indexKey, read: r.vals[1], set: index, expires: index.ExpiresAt},
		}, readAt: r.at}, nil
	})
	return created && err == nil, err
}

// PendingDeviceCode implements DeviceCodes.
func (s *Redis) PendingDeviceCode(ctx context.Context, userCode string) (DeviceCode, error) {
	d, err := s.deviceByUser(ctx, userCode)
	if err != nil {
		return DeviceCode{}, err
	}
	if err := pendingFor(d.rec, d.found, userCode, s.now()); err != nil {
		return DeviceCode{}, err
	}
	return d.rec.DeviceCode, nil
}

// DecideDeviceCode implements DeviceCodes. The write requires the index unchanged too: a user code
// that passed to a new code meanwhile must not have its decision land on the old one.
func (s *Redis) DecideDeviceCode(ctx context.Context, userCode string, decision DeviceStatus, grant []byte) error {
	return s.update(ctx, func() (redisWrite, error) {
		d, err := s.deviceByUser(ctx, userCode)
		if err != nil {
			return redisWrite{}, err
		}
		next, err := decided(d.rec, d.found, userCode, decision, grant, s.now())
		if err != nil {
			return redisWrite{}, err
		}
		op, err := d.op(next)
		if err != nil {
			return redisWrite{}, err
		}
		return redisWrite{ops: []redisOp{{key: d.index, read: d.indexRaw}, op}, readAt: d.readAt}, nil
	})
}

// PollDeviceCode implements DeviceCodes.
func (s *Redis) PollDeviceCode(ctx context.Context, hash, clientID string) (DeviceCode, DeviceStatus, error) {
	var p devicePoll
	err := s.update(ctx, func() (redisWrite, error) {
		d, err := s.device(ctx, hash)
		if err != nil {
			return redisWrite{}, err
		}
		if p, err = polled(d.rec, d.found, clientID, s.now()); err != nil || p.next == nil {
			return redisWrite{}, err
		}
		op, err := d.op(*p.next)
		return redisWrite{ops: []redisOp{op}, readAt: d.readAt}, err
	})
	if err != nil {
		return DeviceCode{}, "", err
	}
	return p.code, p.status, nil
}

// device reads the code under hash.
func (s *Redis) device(ctx context.Context, hash string) (redisDevice, error) {
	d := redisDevice{key: keyOnce + deviceKey(hash)}
	r, err := s.read(ctx, []string{d.key}, false)
	if err != nil {
		return d, err
	}
	d.raw, d.readAt = r.vals[0], r.at
	return d, d.decode(s.now())
}

// deviceByUser reads the index of userCode, then the code it names.
func (s *Redis) deviceByUser(ctx context.Context, userCode string) (redisDevice, error) {
	indexKey := keyOnce + deviceUserKey(userCode)
	r, err := s.read(ctx, []string{indexKey}, false)
	if err != nil {
		return redisDevice{}, err
	}
	index, found, err := decodeOnce(r.vals[0])
	if err != nil || !indexHeld(index, found, s.now()) {
		return redisDevice{}, err
	}
	d, err := s.device(ctx, string(index.Value))
	d.index, d.indexRaw, d.readAt = indexKey, r.vals[0], r.at
	return d, err
}

// decode reads the record as stored, unless it is gone by our clock.
func (d *redisDevice) decode(now time.Time) error {
	v, found, err := decodeOnce(d.raw)
	if err != nil || !found || expired(v.ExpiresAt, now) {
		return err
	}
	d.rec, err = decodeDevice(v)
	d.found = err == nil
	return err
}

// op stores next in place of the record as read.
func (d *redisDevice) op(next deviceRecord) (redisOp, error) {
	v, err := encodeDevice(next)
	return redisOp{key: d.key, read: d.raw, set: v, expires: v.ExpiresAt}, err
}

// decodeOnce decodes a one-time value as stored; found is false for none.
func decodeOnce(raw []byte) (v oneTime, found bool, err error) {
	if raw == nil {
		return v, false, nil
	}
	return v, true, decodeRecord("one-time", raw, &v)
}

var _ DeviceCodes = (*Redis)(nil)
