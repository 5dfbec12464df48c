package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// The device flow's rules (RFC 8628 §3.5), shared by every backend so that each one only decides
// how records are kept. Memory and bolt keep device codes in their one-time space, under keys of
// their own (deviceKey, deviceUserKey), so that the purge they already run forgets them too.

const (
	// deviceKeep is how long a device code is kept past its expiry, so that a late poll is told
	// expired_token rather than invalid_grant: the client then knows to start over.
	deviceKeep = 10 * time.Minute
	// slowDownStep is what each slow_down adds to the interval (RFC 8628 §3.5).
	slowDownStep = 5 * time.Second
	// pollLeeway forgives a poll this much early: a client that waits the interval between
	// sending its polls sees them arrive closer together whenever one was slower to travel.
	pollLeeway = time.Second
)

// deviceConsumed marks a code whose decision a poll has reported: any later poll is invalid_grant.
// It is kept until it is forgotten, like an expired code, so a replay is not taken for unknown.
const deviceConsumed DeviceStatus = "consumed"

// deviceRecord is a device code as stored.
type deviceRecord struct {
	DeviceCode
	// State is DevicePending until the person decides, DeviceApproved or DeviceDenied until a poll
	// reports it, then deviceConsumed.
	State DeviceStatus `json:"state"`
	// LastPoll is when the client last polled; zero before its first poll.
	LastPoll time.Time `json:"last_poll,omitzero"`
}

// forgetAt is when the record may go: deviceKeep after its expiry.
func (r *deviceRecord) forgetAt() time.Time { return r.ExpiresAt.Add(deviceKeep) }

func deviceKey(hash string) string         { return "device:" + hash }
func deviceUserKey(userCode string) string { return "device-user:" + userCode }

// newDevice is the records CreateDeviceCode stores: the code, pending, until it is forgotten, and
// the index from its user code to hash, which blocks that user code only while the code is live.
// It refuses a code no person could find or no client could poll.
func newDevice(hash string, d DeviceCode) (rec, index oneTime, err error) {
	switch {
	case d.ClientID == "":
		return rec, index, errors.New("store: device code without client")
	case d.UserCode == "":
		return rec, index, errors.New("store: device code without user code")
	case d.Interval <= 0:
		return rec, index, fmt.Errorf("store: device code with interval %v", d.Interval)
	}
	d.Grant = nil
	data, err := json.Marshal(deviceRecord{DeviceCode: d, State: DevicePending})
	if err != nil {
		return rec, index, fmt.Errorf("store: device code: %w", err)
	}
	return oneTime{Value: data, ExpiresAt: d.ExpiresAt.Add(deviceKeep)},
		oneTime{Value: []byte(hash), ExpiresAt: d.ExpiresAt}, nil
}

// indexHeld reports whether a user code index entry still blocks its user code.
func indexHeld(index oneTime, found bool, now time.Time) bool {
	return found && !expired(index.ExpiresAt, now)
}

// decodeDevice reads a device record kept as a one-time value.
func decodeDevice(v oneTime) (deviceRecord, error) {
	var rec deviceRecord
	if err := json.Unmarshal(v.Value, &rec); err != nil {
		return rec, fmt.Errorf("store: device code: %w", err)
	}
	return rec, nil
}

// encodeDevice keeps rec as a one-time value until it may be forgotten.
func encodeDevice(rec deviceRecord) (oneTime, error) {
	data, err := json.Marshal(rec)
	if err != nil {
		return oneTime{}, fmt.Errorf("store: device code: %w", err)
	}
	return oneTime{Value: data, ExpiresAt: rec.forgetAt()}, nil
}

// pendingFor applies the rule for looking a code up by its user code: it must be the code the index
// named, still pending and unexpired.
func pendingFor(rec deviceRecord, found bool, userCode string, now time.Time) error {
	if !found || rec.UserCode != userCode || rec.State != DevicePending || expired(rec.ExpiresAt, now) {
		return ErrNotFound
	}
	return nil
}

// decided applies the person's decision to rec, which must be pending: the record to store.
func decided(rec deviceRecord, found bool, userCode string, decision DeviceStatus, grant []byte, now time.Time) (deviceRecord, error) {
	if decision != DeviceApproved && decision != DeviceDenied {
		return rec, fmt.Errorf("store: %q is not a decision", decision)
	}
	if err := pendingFor(rec, found, userCode, now); err != nil {
		return rec, err
	}
	rec.State = decision
	rec.Grant = nil
	if decision == DeviceApproved {
		rec.Grant = grant
	}
	return rec, nil
}

// devicePoll is what a poll finds: the answer, and the record to store when it changed.
type devicePoll struct {
	status DeviceStatus
	code   DeviceCode
	// next is the record to store; nil when the poll changed nothing.
	next *deviceRecord
}

// polled applies RFC 8628 §3.5 to a poll of rec by clientID. Another client's code is as unknown
// as a made-up one, and its poll changes nothing: it cannot slow down, nor use up, what it does
// not own. A decision is reported once, and the record is then used up; only a pending code's
// polls are paced, each poll restarting the interval.
func polled(rec deviceRecord, found bool, clientID string, now time.Time) (devicePoll, error) {
	switch {
	case !found || rec.ClientID != clientID || rec.State == deviceConsumed:
		return devicePoll{}, ErrNotFound
	case expired(rec.ExpiresAt, now):
		// An approval that came too late grants nothing: its grant is not handed out.
		rec.Grant = nil
		return devicePoll{status: DeviceExpired, code: rec.DeviceCode}, nil
	case rec.State == DeviceApproved || rec.State == DeviceDenied:
		p := devicePoll{status: rec.State, code: rec.DeviceCode}
		rec.State, rec.Grant = deviceConsumed, nil
		p.next = &rec
		return p, nil
	}
	status := DevicePending
	if !rec.LastPoll.IsZero() && now.Sub(rec.LastPoll) < rec.Interval-pollLeeway {
		status = DeviceSlowDown
		rec.Interval += slowDownStep
	}
	rec.LastPoll = now
	return devicePoll{status: status, code: rec.DeviceCode, next: &rec}, nil
}
