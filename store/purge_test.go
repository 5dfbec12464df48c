package store

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// purgeAll runs a backend's purge until it has looked at every record.
func purgeAll(t *testing.T, s Store) {
	t.Helper()
	switch s := s.(type) {
	case *Memory:
		s.mu.Lock()
		defer s.mu.Unlock()
		s.purge()
	case interface{ purge() error }: // the embedded stores
		for range 2 { // the second run starts over from the first key whatever the first reached
			if err := s.purge(); err != nil {
				t.Fatalf("purge() = %v", err)
			}
		}
	case *Redis:
		// Redis forgets records by their TTLs, on its own clock, which the injected clock does not
		// move; redis_test.go checks the TTLs.
	case *observed:
		purgeAll(t, s.Store)
	default:
		t.Fatalf("purgeAll: unknown backend %T", s)
	}
}

// counts reports how many records each kind holds.
func counts(t *testing.T, s Store) map[string]int {
	t.Helper()
	switch s := s.(type) {
	case *Memory:
		s.mu.Lock()
		defer s.mu.Unlock()
		return map[string]int{"refresh": len(s.refresh), "families": len(s.families), "revocations": len(s.log), "once": len(s.once)}
	case *Bolt:
		return countRecords(t, s.kvStore)
	case *Pebble:
		return countRecords(t, s.kvStore)
	}
	t.Fatalf("counts: unknown backend %T", s)
	return nil
}

func TestPurge(t *testing.T) {
	for name, open := range map[string]opener{"memory": openMemory, "bolt": openTestBolt, "pebble": openTestPebble} {
		t.Run(name, func(t *testing.T) {
			c := newClock()
			s := open(t, c.Now)
			mustCreate(t, s, "old", grant("f1", time.Minute))
			mustCreate(t, s, "rotated", grant("f2", 2*time.Hour))
			mustRotate(t, s, "rotated", "newest", grant("f2", 2*time.Hour))
			mustCreate(t, s, "dead", grant("f3", 2*time.Hour))
			mustRevoke(t, s, Revocation{Kind: RevokedFamily, ID: "f3", Until: t0.Add(time.Minute)})
			mustRevoke(t, s, Revocation{Kind: RevokedToken, ID: "x", Until: t0.Add(time.Minute)})
			mustRevoke(t, s, Revocation{Kind: RevokedToken, ID: "y", Until: t0.Add(2 * time.Hour)})
			for key, ttl := range map[string]time.Duration{"gone": time.Minute, "kept": 2 * time.Hour} {
				if _, err := s.PutOnce(ctx, key, []byte(key), t0.Add(ttl)); err != nil {
					t.Fatal(err)
				}
			}
			c.Advance(time.Hour)
			purgeAll(t, s)

			// Kept: the rotated token and its successor, the dead family's token and record, f2's
			// record, entry y, and the unexpired one-time value.
			want := map[string]int{"refresh": 3, "families": 2, "revocations": 1, "once": 1}
			if got := counts(t, s); !reflect.DeepEqual(got, want) {
				t.Errorf("counts after purge = %v, want %v", got, want)
			}
			if _, err := s.RefreshToken(ctx, "rotated"); err != ErrReused {
				t.Errorf("RefreshToken(%q) after purge = %v, want %v", "rotated", err, ErrReused)
			}
			if _, err := s.RefreshToken(ctx, "dead"); err != ErrNotFound {
				t.Errorf("RefreshToken(%q) after purge = %v, want %v", "dead", err, ErrNotFound)
			}
			if v, err := s.Take(ctx, "kept"); err != nil || string(v) != "kept" {
				t.Errorf("Take(%q) after purge = %q, %v, want %q", "kept", v, err, "kept")
			}
		})
	}
}

// TestMemoryPurgesAsItWrites: a Memory that is only written to still forgets what expired.
func TestMemoryPurgesAsItWrites(t *testing.T) {
	c := newClock()
	m := NewMemory(c.Now)
	for i := range minPurgeWrites {
		if _, err := m.PutOnce(ctx, fmt.Sprint(i), nil, t0.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	c.Advance(time.Minute)
	for i := range minPurgeWrites {
		mustRevoke(t, m, Revocation{Kind: RevokedToken, ID: fmt.Sprint(i), Until: c.Now().Add(time.Minute)})
	}
	if got := counts(t, m); got["once"] != 0 {
		t.Errorf("one-time values after %d more writes = %d, want 0", minPurgeWrites, got["once"])
	}
}

// countRecords reports how many records each kind holds in an embedded store.
func countRecords(t *testing.T, s *kvStore) map[string]int {
	t.Helper()
	out := map[string]int{}
	err := s.engine.view(func(tx kvTx) error {
		for name, b := range map[string][]byte{"refresh": bucketRefresh, "families": bucketFamilies, "revocations": bucketRevocations, "once": bucketOnce} {
			if err := tx.scan(b, nil, func(_, _ []byte) bool { out[name]++; return true }); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestBoltPurgeIsBounded: one run looks at no more than purgeBudget records per bucket, and the
// next run carries on where it stopped.
func TestBoltPurgeIsBounded(t *testing.T) {
	c := newClock()
	s := openTestBolt(t, c.Now).(*Bolt)
	const n = purgeBudget + purgeBudget/2
	err := s.db.Update(func(tx *bolt.Tx) error {
		for i := range n {
			if err := (records{&boltTx{tx: tx}}).put(bucketOnce, fmt.Sprintf("%08d", i), oneTime{ExpiresAt: t0}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []int{n - purgeBudget, 0} {
		if err := s.purge(); err != nil {
			t.Fatal(err)
		}
		if got := counts(t, s)["once"]; got != want {
			t.Errorf("one-time values after a purge = %d, want %d", got, want)
		}
	}
}
