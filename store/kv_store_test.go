package store

import (
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
	s, err := open(dir, now)
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
		mustCreate(t, s, "a", grant("f1", time.Hour))
		mustRotate(t, s, "a", "b", grant("f1", time.Hour))
		mustCreate(t, s, "x", grant("f2", time.Hour))
		revoked := []Revocation{
			{Kind: RevokedToken, ID: "jti-1", Until: t0.Add(time.Hour)},
			{Kind: RevokedFamily, ID: "f2", Until: t0.Add(time.Hour)},
		}
		for _, r := range revoked {
			mustRevoke(t, s, r)
		}
		key := SigningKey{ID: "k1", Alg: "ES256", PEM: []byte("pem"), SignsFrom: t0}
		if _, err := s.AddSigningKey(ctx, "current", key); err != nil {
			t.Fatal(err)
		}
		if ok, err := s.PutOnce(ctx, "code", []byte("grant"), t0.Add(time.Minute)); !ok || err != nil {
			t.Fatalf("PutOnce(%q) = %v, %v, want true, nil", "code", ok, err)
		}
		for range 2 { // a second Close is harmless
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
		}

		s = openEmbeddedAt(t, open, dir, c.Now)
		if got, err := s.RefreshToken(ctx, "b"); err != nil || !reflect.DeepEqual(got, grant("f1", time.Hour)) {
			t.Errorf("RefreshToken(%q) after reopen = %+v, %v, want %+v", "b", got, err, grant("f1", time.Hour))
		}
		if _, err := s.RefreshToken(ctx, "x"); err != ErrNotFound {
			t.Errorf("RefreshToken(%q) of a revoked family after reopen = %v, want %v", "x", err, ErrNotFound)
		}
		if rs, _ := revocations(t, s, 0); !reflect.DeepEqual(rs, revoked) {
			t.Errorf("RevocationsSince(0) after reopen = %+v, want %+v", rs, revoked)
		}
		if keys, err := s.SigningKeys(ctx); err != nil || !reflect.DeepEqual(keys, map[string]SigningKey{"current": key}) {
			t.Errorf("SigningKeys() after reopen = %+v, %v, want %+v", keys, err, key)
		}
		if v, err := s.Take(ctx, "code"); err != nil || string(v) != "grant" {
			t.Errorf("Take(%q) after reopen = %q, %v, want %q", "code", v, err, "grant")
		}
		if _, err := s.RefreshToken(ctx, "a"); err != ErrReused {
			t.Errorf("RefreshToken(%q) after reopen = %v, want %v", "a", err, ErrReused)
		}
		// The sequence survives too: a new entry is not numbered over an old one.
		mustRevoke(t, s, Revocation{Kind: RevokedToken, ID: "jti-2", Until: t0.Add(time.Hour)})
		if rs, _ := revocations(t, s, 0); len(rs) != 4 {
			t.Errorf("RevocationsSince(0) = %+v, want 4 entries", rs)
		}
	})
}
