package store

// The Memory keeps device codes in its one-time map as encoded records (see device_rules.go), so
// what it hands out is always a fresh copy, and its purge forgets them.

import (
	"context"
	"time"
)

// CreateDeviceCode implements DeviceCodes.
func (m *Memory) CreateDeviceCode(_ context.Context, hash string, d DeviceCode) (bool, error) {
	rec, index, err := newDevice(hash, d)
	if err != nil {
		return false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	held, found := m.once[deviceUserKey(d.UserCode)]
	if _, taken := m.once[deviceKey(hash)]; taken || indexHeld(held, found, m.now()) {
		return false, nil
	}
	m.once[deviceKey(hash)] = rec
	m.once[deviceUserKey(d.UserCode)] = index
	m.wrote()
	return true, nil
}

// PendingDeviceCode implements DeviceCodes.
func (m *Memory) PendingDeviceCode(_ context.Context, userCode string) (DeviceCode, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	_, rec, found, err := m.deviceByUser(userCode, now)
	if err != nil {
		return DeviceCode{}, err
	}
	if err := pendingFor(rec, found, userCode, now); err != nil {
		return DeviceCode{}, err
	}
	return rec.DeviceCode, nil
}

// DecideDeviceCode implements DeviceCodes.
func (m *Memory) DecideDeviceCode(_ context.Context, userCode string, decision DeviceStatus, grant []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	hash, rec, found, err := m.deviceByUser(userCode, now)
	if err != nil {
		return err
	}
	next, err := decided(rec, found, userCode, decision, grant, now)
	if err != nil {
		return err
	}
	return m.putDevice(hash, next)
}

// PollDeviceCode implements DeviceCodes.
func (m *Memory) PollDeviceCode(_ context.Context, hash, clientID string) (DeviceCode, DeviceStatus, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	rec, found, err := m.device(hash, now)
	if err != nil {
		return DeviceCode{}, "", err
	}
	p, err := polled(rec, found, clientID, now)
	if err != nil {
		return DeviceCode{}, "", err
	}
	if p.next != nil {
		if err := m.putDevice(hash, *p.next); err != nil {
			return DeviceCode{}, "", err
		}
	}
	return p.code, p.status, nil
}

// device reads the code under hash, if it has not been forgotten.
func (m *Memory) device(hash string, now time.Time) (deviceRecord, bool, error) {
	v, ok := m.once[deviceKey(hash)]
	if !ok || expired(v.ExpiresAt, now) {
		return deviceRecord{}, false, nil
	}
	rec, err := decodeDevice(v)
	return rec, err == nil, err
}

// deviceByUser follows the index of userCode to its code.
func (m *Memory) deviceByUser(userCode string, now time.Time) (string, deviceRecord, bool, error) {
	index, ok := m.once[deviceUserKey(userCode)]
	if !indexHeld(index, ok, now) {
		return "", deviceRecord{}, false, nil
	}
	hash := string(index.Value)
	rec, found, err := m.device(hash, now)
	return hash, rec, found, err
}

func (m *Memory) putDevice(hash string, rec deviceRecord) error {
	v, err := encodeDevice(rec)
	if err != nil {
		return err
	}
	m.once[deviceKey(hash)] = v
	m.wrote()
	return nil
}

var _ DeviceCodes = (*Memory)(nil)
