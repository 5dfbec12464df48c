package store

import (
	"bytes"
	"context"
	"maps"
	"sort"
	"sync"
	"time"
)

// minPurgeWrites is the fewest writes between two purges of a Memory, so that a small store does
// not sweep on every write.
const minPurgeWrites = 1024

// Memory is a Store kept in maps under one mutex: nothing survives a restart, and it serves one
// process only. Every method holds the lock for its whole step, which is what makes rotation and
// Take single-use.
type Memory struct {
	now func() time.Time

	mu       sync.Mutex
	refresh  map[string]refreshRecord
	families map[string]family
	log      []logEntry // ascending seq
	seq      uint64     // the last seq handed out; never reused, even after a purge
	keys     map[string]SigningKey
	once     map[string]oneTime
	clients  map[string]RegisteredClient
	// writes counts writes since the last purge; a purge runs when it reaches purgeAfter, which
	// tracks the store's size, so purging costs O(1) per write on average.
	writes     int
	purgeAfter int
}

type logEntry struct {
	seq uint64
	r   Revocation
}

// NewMemory returns an empty Memory that reads the time from now.
func NewMemory(now func() time.Time) *Memory {
	return &Memory{
		now:        now,
		refresh:    map[string]refreshRecord{},
		families:   map[string]family{},
		keys:       map[string]SigningKey{},
		once:       map[string]oneTime{},
		clients:    map[string]RegisteredClient{},
		purgeAfter: minPurgeWrites,
	}
}

// CreateRefreshToken implements RefreshTokens.
func (m *Memory) CreateRefreshToken(_ context.Context, hash string, t RefreshToken) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.refresh[hash]; ok {
		return errHashTaken
	}
	m.putRefresh(hash, t)
	m.wrote()
	return nil
}

// RefreshToken implements RefreshTokens.
func (m *Memory) RefreshToken(_ context.Context, hash string) (RefreshToken, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	rec, err := m.present(hash)
	return answer(cloneRefresh(rec.RefreshToken), err)
}

// RotateRefreshToken implements RefreshTokens.
func (m *Memory) RotateRefreshToken(_ context.Context, oldHash, newHash string, next RefreshToken) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if rec, ok := m.refresh[oldHash]; ok && repeated(rec, m.families[rec.FamilyID], newHash, m.now()) {
		return nil
	}
	old, err := m.present(oldHash)
	if err != nil {
		return err
	}
	if err := checkRotation(old, next); err != nil {
		return err
	}
	if _, ok := m.refresh[newHash]; ok {
		return errHashTaken
	}
	old.Rotated, old.Successor = true, newHash
	m.refresh[oldHash] = old
	m.putRefresh(newHash, next)
	m.wrote()
	return nil
}

// present looks hash up and applies the rules for presenting it, killing the family on reuse.
func (m *Memory) present(hash string) (refreshRecord, error) {
	rec, found := m.refresh[hash]
	fam := m.families[rec.FamilyID]
	err := presented(rec, found, fam, m.now())
	if err == ErrReused {
		if r, add := fam.killedBy(rec); add {
			m.families[rec.FamilyID] = fam
			m.append(r)
			m.wrote()
		}
	}
	return rec, err
}

// putRefresh stores a live token and notes it in its family.
func (m *Memory) putRefresh(hash string, t RefreshToken) {
	m.refresh[hash] = refreshRecord{RefreshToken: cloneRefresh(t)}
	fam := m.families[t.FamilyID]
	fam.grow(t.ExpiresAt)
	m.families[t.FamilyID] = fam
}

// Revoke implements Revocations.
func (m *Memory) Revoke(_ context.Context, r Revocation) error {
	if err := checkRevocation(r); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if r.Kind == RevokedFamily {
		fam := m.families[r.ID]
		if !fam.revoke(r.Until) {
			return nil
		}
		m.families[r.ID] = fam
	}
	m.append(r)
	m.wrote()
	return nil
}

func (m *Memory) append(r Revocation) {
	m.seq++
	m.log = append(m.log, logEntry{seq: m.seq, r: r})
}

// RevocationsSince implements Revocations. A cursor beyond the last entry cannot come from this
// log (it was replaced), so the whole log is read.
func (m *Memory) RevocationsSince(_ context.Context, cursor uint64) ([]Revocation, uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if cursor > m.seq {
		cursor = 0
	}
	now := m.now()
	var out []Revocation
	next := cursor
	for _, e := range m.log[sort.Search(len(m.log), func(i int) bool { return m.log[i].seq > cursor }):] {
		next = e.seq
		if !expired(e.r.Until, now) {
			out = append(out, e.r)
		}
	}
	return out, next, nil
}

// AddSigningKey implements SigningKeys.
func (m *Memory) AddSigningKey(_ context.Context, slot string, k SigningKey) (SigningKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if held, ok := m.keys[slot]; ok {
		return cloneKey(held), nil
	}
	m.keys[slot] = cloneKey(k)
	return cloneKey(k), nil
}

// SigningKeys implements SigningKeys.
func (m *Memory) SigningKeys(context.Context) (map[string]SigningKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]SigningKey, len(m.keys))
	for slot, k := range m.keys {
		out[slot] = cloneKey(k)
	}
	return out, nil
}

// DeleteSigningKey implements SigningKeys.
func (m *Memory) DeleteSigningKey(_ context.Context, slot string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.keys, slot)
	return nil
}

// PutOnce implements OneTime. An expired value no longer blocks its key (RFC 7523 §3: a jti
// need only be remembered while the assertion it came with could be accepted).
func (m *Memory) PutOnce(_ context.Context, key string, value []byte, exp time.Time) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if v, ok := m.once[key]; ok && !expired(v.ExpiresAt, m.now()) {
		return false, nil
	}
	m.once[key] = oneTime{Value: bytes.Clone(value), ExpiresAt: exp}
	m.wrote()
	return true, nil
}

// Take implements OneTime.
func (m *Memory) Take(_ context.Context, key string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.take(key)
}

// take is Take with m.mu held.
func (m *Memory) take(key string) ([]byte, error) {
	v, ok := m.once[key]
	if !ok {
		return nil, ErrNotFound
	}
	delete(m.once, key)
	if expired(v.ExpiresAt, m.now()) {
		return nil, ErrNotFound
	}
	return v.Value, nil
}

// Redeem implements Redemptions.
func (m *Memory) Redeem(_ context.Context, key, markKey string, mark []byte, markExp time.Time) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	value, err := m.take(key)
	if err != nil {
		return nil, err
	}
	m.once[markKey] = oneTime{Value: bytes.Clone(mark), ExpiresAt: markExp}
	m.wrote()
	return value, nil
}

// Close implements Store; a Memory holds nothing to release.
func (m *Memory) Close() error { return nil }

// wrote counts a write and purges once enough writes have come since the last purge.
func (m *Memory) wrote() {
	m.writes++
	if m.writes >= m.purgeAfter {
		m.purge()
	}
}

// purge forgets what has expired. Rotated tokens stay until their own expiry, and a family until
// its last token and its log entry have expired, so reuse is still detected and a dead family
// stays dead.
func (m *Memory) purge() {
	now := m.now()
	maps.DeleteFunc(m.refresh, func(_ string, r refreshRecord) bool { return expired(r.ExpiresAt, now) })
	maps.DeleteFunc(m.families, func(_ string, f family) bool { return expired(f.forgetAt(), now) })
	maps.DeleteFunc(m.once, func(_ string, v oneTime) bool { return expired(v.ExpiresAt, now) })
	kept := m.log[:0]
	for _, e := range m.log {
		if !expired(e.r.Until, now) {
			kept = append(kept, e)
		}
	}
	clear(m.log[len(kept):])
	m.log = kept
	m.writes = 0
	m.purgeAfter = max(minPurgeWrites, len(m.refresh)+len(m.families)+len(m.once)+len(m.log))
}

func cloneRefresh(t RefreshToken) RefreshToken {
	t.Grant = bytes.Clone(t.Grant)
	return t
}

func cloneKey(k SigningKey) SigningKey {
	k.PEM = bytes.Clone(k.PEM)
	return k
}

var _ Store = (*Memory)(nil)
