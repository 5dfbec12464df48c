package store

import (
	"fmt"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

// openEmbedded opens an embedded store in dir.
type openEmbedded func(dir string, now func() time.Time) (*kvStore, error)

// embedded opens each embedded backend, so that what must hold of every one is tested on each.
var embedded = map[string]openEmbedded{
	"bolt": func(dir string, now func() time.Time) (*kvStore, error) {
		s, err := OpenBolt(filepath.Join(dir, "tokengate.db"), now)
		if err != nil {
			return nil, err
		}
		return s.kvStore, nil
	},
	"pebble": func(dir string, now func() time.Time) (*kvStore, error) {
		s, err := OpenPebble(dir, now)
		if err != nil {
			return nil, err
		}
		return s.kvStore, nil
	},
}

// forEmbedded runs test on each embedded backend.
func forEmbedded(t *testing.T, test func(*testing.T, openEmbedded)) {
	for name, open := range embedded {
		t.Run(name, func(t *testing.T) { test(t, open) })
	}
}

// openEmbeddedAt opens a store in dir with open, closed when the test ends.
func openEmbeddedAt(t *testing.T, open openEmbedded, dir string, now func() time.Time) *kvStore {
	t.Helper()
	return closedAtEnd[*kvStore](t)(open(dir, now))
}

// closedAtEnd returns what fails t when a store did not open, and closes it when t ends.
func closedAtEnd[S interface{ Close() error }](t *testing.T) func(S, error) S {
	return func(s S, err error) S {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := s.Close(); err != nil {
				t.Error(err)
			}
		})
		return s
	}
}

// TestEmbeddedDurable: everything written is there after closing and reopening the store, and a
// rotated token is still rotated (a restart never brings a used refresh token back).
func TestEmbeddedDurable(t *testing.T) {
	forEmbedded(t, func(t *testing.T, open openEmbedded) {
		c := newClock()
		dir := t.TempDir()
		s, err := open(dir, c.Now)
		if err != nil {
			t.Fatal(err)
		}
		written := writeState(t, s)
		for range 2 { // a second Close is harmless
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
		}
		written.check(t, openEmbeddedAt(t, open, dir, c.Now))
	})
}

// state is what writeState wrote, which check finds again in a store reopened or migrated.
type state struct {
	revoked []Revocation
	key     SigningKey
}

// writeState writes a record of every kind: a rotated refresh token and its live successor, a
// revoked family, revocations, a signing key, a one-time value and an approved device code.
func writeState(t *testing.T, s Store) state {
	t.Helper()
	mustCreate(t, s, "a", grant("f1", time.Hour))
	mustRotate(t, s, "a", "b", grant("f1", time.Hour))
	mustCreate(t, s, "x", grant("f2", time.Hour))
	w := state{
		revoked: []Revocation{
			{Kind: RevokedToken, ID: "jti-1", Until: t0.Add(time.Hour)},
			{Kind: RevokedFamily, ID: "f2", Until: t0.Add(time.Hour)},
		},
		key: SigningKey{ID: "k1", Alg: "ES256", PEM: []byte("pem"), SignsFrom: t0},
	}
	for _, r := range w.revoked {
		mustRevoke(t, s, r)
	}
	if _, err := s.AddSigningKey(ctx, "current", w.key); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.PutOnce(ctx, "code", []byte("grant"), t0.Add(time.Minute)); !ok || err != nil {
		t.Fatalf("PutOnce(%q) = %v, %v, want true, nil", "code", ok, err)
	}
	mustCreateDevice(t, s, "d1", device("BCDFGHJK"))
	mustDecide(t, s, "BCDFGHJK", DeviceApproved, []byte("g"))
	return w
}

// check finds in s everything writeState wrote, and the revocation log numbered on from it.
func (w state) check(t *testing.T, s Store) {
	t.Helper()
	if got, err := s.RefreshToken(ctx, "b"); err != nil || !reflect.DeepEqual(got, grant("f1", time.Hour)) {
		t.Errorf("RefreshToken(%q) = %+v, %v, want %+v", "b", got, err, grant("f1", time.Hour))
	}
	if _, err := s.RefreshToken(ctx, "x"); err != ErrNotFound {
		t.Errorf("RefreshToken(%q) of a revoked family = %v, want %v", "x", err, ErrNotFound)
	}
	if rs, _ := revocations(t, s, 0); !reflect.DeepEqual(rs, w.revoked) {
		t.Errorf("RevocationsSince(0) = %+v, want %+v", rs, w.revoked)
	}
	if keys, err := s.SigningKeys(ctx); err != nil || !reflect.DeepEqual(keys, map[string]SigningKey{"current": w.key}) {
		t.Errorf("SigningKeys() = %+v, %v, want %+v", keys, err, w.key)
	}
	if v, err := s.Take(ctx, "code"); err != nil || string(v) != "grant" {
		t.Errorf("Take(%q) = %q, %v, want %q", "code", v, err, "grant")
	}
	if d := expectPoll(t, s, "d1", DeviceApproved, nil); string(d.Grant) != "g" {
		t.Errorf("grant of the device code = %q, want %q", d.Grant, "g")
	}
	if _, err := s.RefreshToken(ctx, "a"); err != ErrReused { // kills f1: the log's third entry
		t.Errorf("RefreshToken(%q) = %v, want %v", "a", err, ErrReused)
	}
	// The sequence survives too: a new entry is not numbered over an old one, and a follower's
	// cursor stays valid.
	mustRevoke(t, s, Revocation{Kind: RevokedToken, ID: "jti-2", Until: t0.Add(time.Hour)})
	if rs, next := revocations(t, s, 3); len(rs) != 1 || rs[0].ID != "jti-2" || next != 4 {
		t.Errorf("RevocationsSince(3) = %+v, %d, want jti-2 at 4", rs, next)
	}
}

// TestRefusalsDoNotWrite: presenting made-up or used values commits nothing to an embedded store,
// so a flood of them costs reads, not fsyncs.
func TestRefusalsDoNotWrite(t *testing.T) {
	forEmbedded(t, func(t *testing.T, open openEmbedded) {
		c := newClock()
		s := openEmbeddedAt(t, open, t.TempDir(), c.Now)
		written := func() uint64 { return s.engine.(*pebbleEngine).db.Metrics().WAL.BytesIn }
		if bolted, ok := s.engine.(boltEngine); ok {
			written = func() uint64 { return uint64(txID(t, bolted.db)) }
		}
		testRefusalsDoNotWrite(t, c, s, written)
	})
}

// testRefusalsDoNotWrite presents refused values to s, whose commits so far written counts (bolt's
// transactions, pebble's WAL bytes).
func testRefusalsDoNotWrite(t *testing.T, c *clock, s Store, written func() uint64) {
	mustCreate(t, s, "a", grant("f1", time.Hour))
	mustRotate(t, s, "a", "b", grant("f1", time.Hour))
	mustCreate(t, s, "short", grant("f2", time.Minute))
	if _, err := s.RefreshToken(ctx, "a"); err != ErrReused { // kills f1: one write
		t.Fatalf("RefreshToken(%q) = %v, want %v", "a", err, ErrReused)
	}
	if ok, err := s.PutOnce(ctx, "jti", nil, t0.Add(time.Hour)); !ok || err != nil {
		t.Fatalf("PutOnce(%q) = %v, %v, want true, nil", "jti", ok, err)
	}
	c.Advance(time.Minute)
	tests := []struct {
		name string
		call func() error
		want error
	}{
		{"unknown refresh token", func() error { _, err := s.RefreshToken(ctx, "nope"); return err }, ErrNotFound},
		{"rotation of an unknown token", func() error { return s.RotateRefreshToken(ctx, "nope", "n", grant("f1", time.Hour)) }, ErrNotFound},
		{"rotation of an expired token", func() error { return s.RotateRefreshToken(ctx, "short", "n", grant("f2", time.Hour)) }, ErrNotFound},
		{"reuse in a dead family", func() error { return s.RotateRefreshToken(ctx, "a", "n", grant("f1", time.Hour)) }, ErrReused},
		{"member of a dead family", func() error { return s.RotateRefreshToken(ctx, "b", "n", grant("f1", time.Hour)) }, ErrNotFound},
		{"unknown code", func() error { _, err := s.Take(ctx, "nope"); return err }, ErrNotFound},
		{"replayed assertion id", func() error {
			if ok, err := s.PutOnce(ctx, "jti", nil, t0.Add(time.Hour)); ok || err != nil {
				return fmt.Errorf("PutOnce = %v, %v", ok, err)
			}
			return nil
		}, nil},
	}
	for _, tt := range tests {
		before := written()
		if err := tt.call(); err != tt.want {
			t.Errorf("%s = %v, want %v", tt.name, err, tt.want)
		}
		if after := written(); after != before {
			t.Errorf("%s committed %d, want nothing", tt.name, after-before)
		}
	}
}
