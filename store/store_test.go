package store

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokengate/tokengate/internal/cputime"
	"github.com/tokengate/tokengate/internal/testclock"
)

// The conformance suite: every backend must pass testStore.

var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

type clock = testclock.Clock

func newClock() *clock { return testclock.New(t0) }

type opener func(t *testing.T, now func() time.Time) Store

func openMemory(_ *testing.T, now func() time.Time) Store { return NewMemory(now) }

func openTestBolt(t *testing.T, now func() time.Time) Store {
	t.Helper()
	return openTestBoltAt(t, filepath.Join(t.TempDir(), "tokengate.db"), now)
}

func openTestPebble(t *testing.T, now func() time.Time) Store {
	t.Helper()
	return openTestPebbleAt(t, filepath.Join(t.TempDir(), "tokengate"), now)
}

func TestMemory(t *testing.T) {
	testStore(t, openMemory)
	testDeviceCodes(t, openMemory)
}

func TestBolt(t *testing.T) {
	testStore(t, openTestBolt)
	testDeviceCodes(t, openTestBolt)
}

func TestPebble(t *testing.T) {
	testStore(t, openTestPebble)
	testDeviceCodes(t, openTestPebble)
}

func testStore(t *testing.T, open opener) {
	for name, test := range map[string]func(*testing.T, opener){
		"Presentations":        testPresentations,
		"Rotation":             testRotation,
		"RotationIsAtomic":     testRotationIsAtomic,
		"ReuseRevokesFamily":   testReuseRevokesFamily,
		"RecordsAreCopies":     testRecordsAreCopies,
		"Revocations":          testRevocations,
		"RevocationCursor":     testRevocationCursor,
		"BadRevocations":       testBadRevocations,
		"SigningKeys":          testSigningKeys,
		"SigningKeyRace":       testSigningKeyRace,
		"OneTime":              testOneTime,
		"ConcurrentRotations":  testConcurrentRotations,
		"ConcurrentTakes":      testConcurrentTakes,
		"RevokedFamilyOutlive": testRevokedFamilyOutlivesEntry,
		"RepeatedRotation":     testRepeatedRotation,
		"Redeem":               testRedeem,
		"ConcurrentRedeems":    testConcurrentRedeems,
		"FamilyRevokedEarly":   testFamilyRevokedBeforeItsFirstToken,
		"RegisteredClients":    testRegisteredClients,
	} {
		t.Run(name, func(t *testing.T) { test(t, open) })
	}
}

var ctx = context.Background()

// grant builds a refresh token of family fam that expires after ttl.
func grant(fam string, ttl time.Duration) RefreshToken {
	return RefreshToken{FamilyID: fam, ClientID: "client", ExpiresAt: t0.Add(ttl), Grant: []byte(`{"sub":"alice"}`)}
}

func mustCreate(t *testing.T, s Store, hash string, rt RefreshToken) {
	t.Helper()
	if err := s.CreateRefreshToken(ctx, hash, rt); err != nil {
		t.Fatalf("CreateRefreshToken(%q) = %v, want nil", hash, err)
	}
}

func mustRotate(t *testing.T, s Store, oldHash, newHash string, next RefreshToken) {
	t.Helper()
	if err := s.RotateRefreshToken(ctx, oldHash, newHash, next); err != nil {
		t.Fatalf("RotateRefreshToken(%q, %q) = %v, want nil", oldHash, newHash, err)
	}
}

func mustRevoke(t *testing.T, s Store, r Revocation) {
	t.Helper()
	if err := s.Revoke(ctx, r); err != nil {
		t.Fatalf("Revoke(%+v) = %v, want nil", r, err)
	}
}

func revocations(t *testing.T, s Store, cursor uint64) ([]Revocation, uint64) {
	t.Helper()
	rs, next, err := s.RevocationsSince(ctx, cursor)
	if err != nil {
		t.Fatalf("RevocationsSince(%d) = %v", cursor, err)
	}
	return rs, next
}

// testPresentations presents a token after each scenario, both to RefreshToken and to
// RotateRefreshToken (each on a fresh store), which must agree.
func testPresentations(t *testing.T, open opener) {
	tests := []struct {
		name  string
		setup func(t *testing.T, s Store, c *clock)
		hash  string
		want  error
	}{
		{"live", nil, "a", nil},
		{"unknown", nil, "zz", ErrNotFound},
		{"expired", func(t *testing.T, s Store, c *clock) { c.Advance(time.Hour) }, "a", ErrNotFound},
		{"last instant", func(t *testing.T, s Store, c *clock) { c.Advance(time.Hour - time.Nanosecond) }, "a", nil},
		{"rotated", func(t *testing.T, s Store, c *clock) { mustRotate(t, s, "a", "b", grant("f1", time.Hour)) }, "a", ErrReused},
		{"rotated, then expired", func(t *testing.T, s Store, c *clock) {
			mustRotate(t, s, "a", "b", grant("f1", 2*time.Hour))
			c.Advance(time.Hour)
		}, "a", ErrNotFound},
		{"newest after reuse", func(t *testing.T, s Store, c *clock) {
			mustRotate(t, s, "a", "b", grant("f1", time.Hour))
			if _, err := s.RefreshToken(ctx, "a"); err != ErrReused {
				t.Fatalf("RefreshToken(%q) = %v, want %v", "a", err, ErrReused)
			}
		}, "b", ErrNotFound},
		{"newest after reuse by rotation", func(t *testing.T, s Store, c *clock) {
			mustRotate(t, s, "a", "b", grant("f1", time.Hour))
			if err := s.RotateRefreshToken(ctx, "a", "x", grant("f1", time.Hour)); err != ErrReused {
				t.Fatalf("RotateRefreshToken(%q) = %v, want %v", "a", err, ErrReused)
			}
		}, "b", ErrNotFound},
		{"family revoked", func(t *testing.T, s Store, c *clock) {
			mustRevoke(t, s, Revocation{Kind: RevokedFamily, ID: "f1", Until: t0.Add(time.Hour)})
		}, "a", ErrNotFound},
		{"family revoked after rotation", func(t *testing.T, s Store, c *clock) {
			mustRotate(t, s, "a", "b", grant("f1", time.Hour))
			mustRevoke(t, s, Revocation{Kind: RevokedFamily, ID: "f1", Until: t0.Add(time.Hour)})
		}, "b", ErrNotFound},
		{"other family revoked", func(t *testing.T, s Store, c *clock) {
			mustRevoke(t, s, Revocation{Kind: RevokedFamily, ID: "f2", Until: t0.Add(time.Hour)})
		}, "a", nil},
		{"jti with the family's name revoked", func(t *testing.T, s Store, c *clock) {
			mustRevoke(t, s, Revocation{Kind: RevokedToken, ID: "f1", Until: t0.Add(time.Hour)})
		}, "a", nil},
		{"family revoked with an expired entry", func(t *testing.T, s Store, c *clock) {
			mustRevoke(t, s, Revocation{Kind: RevokedFamily, ID: "f1", Until: t0.Add(-time.Hour)})
		}, "a", ErrNotFound},
	}
	present := map[string]func(s Store, hash string) error{
		"RefreshToken": func(s Store, hash string) error {
			_, err := s.RefreshToken(ctx, hash)
			return err
		},
		"RotateRefreshToken": func(s Store, hash string) error {
			return s.RotateRefreshToken(ctx, hash, "new", grant("f1", time.Hour))
		},
	}
	for _, tt := range tests {
		for method, f := range present {
			t.Run(tt.name+"/"+method, func(t *testing.T) {
				c := newClock()
				s := open(t, c.Now)
				mustCreate(t, s, "a", grant("f1", time.Hour))
				if tt.setup != nil {
					tt.setup(t, s, c)
				}
				if err := f(s, tt.hash); err != tt.want {
					t.Errorf("%s(%q) = %v, want %v", method, tt.hash, err, tt.want)
				}
			})
		}
	}
}

func testRotation(t *testing.T, open opener) {
	s := open(t, newClock().Now)
	mustCreate(t, s, "a", grant("f1", time.Hour))
	next := RefreshToken{FamilyID: "f1", ClientID: "client", ExpiresAt: t0.Add(2 * time.Hour), Grant: []byte("narrowed")}
	mustRotate(t, s, "a", "b", next)
	got, err := s.RefreshToken(ctx, "b")
	if err != nil || !reflect.DeepEqual(got, next) {
		t.Errorf("RefreshToken(%q) = %+v, %v, want %+v, nil", "b", got, err, next)
	}
	mustRotate(t, s, "b", "c", grant("f1", 3*time.Hour))
	if _, err := s.RefreshToken(ctx, "c"); err != nil {
		t.Errorf("RefreshToken(%q) = %v, want nil", "c", err)
	}
	if rs, _ := revocations(t, s, 0); len(rs) != 0 {
		t.Errorf("RevocationsSince(0) = %+v after honest rotations, want none", rs)
	}
}

// looksUpNewHash says whether s refuses a rotation to any taken hash, not only to the old one
// (see RotateRefreshToken): the embedded stores do not look the new hash up.
func looksUpNewHash(s Store) bool {
	switch s.(type) {
	case *Bolt, *Pebble:
		return false
	}
	return true
}

// testRotationIsAtomic: a rotation that cannot store its new token leaves the old one live, and a
// rotation cannot move a token out of its family (its revocation would miss it).
func testRotationIsAtomic(t *testing.T, open opener) {
	tests := []struct {
		name    string
		newHash string
		next    RefreshToken
	}{
		{"new hash taken", "b", grant("f1", time.Hour)},
		{"same hash", "a", grant("f1", time.Hour)},
		{"family changed", "c", grant("f2", time.Hour)},
		{"family dropped", "c", grant("", time.Hour)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t, newClock().Now)
			if tt.newHash == "b" && !looksUpNewHash(s) {
				return
			}
			mustCreate(t, s, "a", grant("f1", time.Hour))
			mustCreate(t, s, "b", grant("f3", time.Hour))
			err := s.RotateRefreshToken(ctx, "a", tt.newHash, tt.next)
			if err == nil || errors.Is(err, ErrNotFound) || errors.Is(err, ErrReused) {
				t.Errorf("RotateRefreshToken(%q, %q) = %v, want a fault", "a", tt.newHash, err)
			}
			for _, hash := range []string{"a", "b"} {
				if _, err := s.RefreshToken(ctx, hash); err != nil {
					t.Errorf("RefreshToken(%q) = %v after the failed rotation, want nil", hash, err)
				}
			}
			if _, err := s.RefreshToken(ctx, "c"); err != ErrNotFound {
				t.Errorf("RefreshToken(%q) = %v after the failed rotation, want %v", "c", err, ErrNotFound)
			}
		})
	}
	t.Run("create over a rotated token", func(t *testing.T) {
		s := open(t, newClock().Now)
		mustCreate(t, s, "a", grant("f1", time.Hour))
		mustRotate(t, s, "a", "b", grant("f1", time.Hour))
		if err := s.CreateRefreshToken(ctx, "a", grant("f9", time.Hour)); err == nil {
			t.Fatalf("CreateRefreshToken(%q) over a rotated token = nil, want a fault", "a")
		}
		if _, err := s.RefreshToken(ctx, "a"); err != ErrReused {
			t.Errorf("RefreshToken(%q) = %v, want %v", "a", err, ErrReused)
		}
	})
}

// testReuseRevokesFamily: a reuse writes one family entry lasting until the family's last refresh
// token expires, even when the reused token expires sooner.
func testReuseRevokesFamily(t *testing.T, open opener) {
	s := open(t, newClock().Now)
	mustCreate(t, s, "a", grant("f1", time.Hour))
	mustRotate(t, s, "a", "b", grant("f1", 3*time.Hour))
	mustRotate(t, s, "b", "c", grant("f1", 2*time.Hour))
	// The reused token comes back with the verdict, so the caller can name the family it killed.
	if rt, err := s.RefreshToken(ctx, "a"); err != ErrReused || rt.FamilyID != "f1" {
		t.Fatalf("RefreshToken(%q) = %+v, %v; want family f1 and %v", "a", rt, err, ErrReused)
	}
	want := []Revocation{{Kind: RevokedFamily, ID: "f1", Until: t0.Add(3 * time.Hour)}}
	rs, cursor := revocations(t, s, 0)
	if !reflect.DeepEqual(rs, want) {
		t.Errorf("RevocationsSince(0) = %+v, want %+v", rs, want)
	}
	// Further reuses find the family dead already and add nothing for every instance to read.
	if err := s.RotateRefreshToken(ctx, "b", "d", grant("f1", time.Hour)); err != ErrReused {
		t.Errorf("RotateRefreshToken(%q) = %v, want %v", "b", err, ErrReused)
	}
	if rs, _ := revocations(t, s, cursor); len(rs) != 0 {
		t.Errorf("RevocationsSince(%d) = %+v after a second reuse, want none", cursor, rs)
	}
	if _, err := s.RefreshToken(ctx, "c"); err != ErrNotFound {
		t.Errorf("RefreshToken(%q) = %v, want %v", "c", err, ErrNotFound)
	}
}

// testRecordsAreCopies: a caller changing a slice it passed or got back does not change the store.
func testRecordsAreCopies(t *testing.T, open opener) {
	s := open(t, newClock().Now)
	rt := grant("f1", time.Hour)
	mustCreate(t, s, "a", rt)
	rt.Grant[0] = 'X'
	got, err := s.RefreshToken(ctx, "a")
	if err != nil || string(got.Grant) != `{"sub":"alice"}` {
		t.Fatalf("RefreshToken(%q) = %q, %v, want %q", "a", got.Grant, err, `{"sub":"alice"}`)
	}
	got.Grant[0] = 'Y'
	if again, _ := s.RefreshToken(ctx, "a"); string(again.Grant) != `{"sub":"alice"}` {
		t.Errorf("RefreshToken(%q) = %q after the caller's change, want %q", "a", again.Grant, `{"sub":"alice"}`)
	}
	k := SigningKey{ID: "k1", Alg: "ES256", PEM: []byte("pem")}
	if _, err := s.AddSigningKey(ctx, "current", k); err != nil {
		t.Fatal(err)
	}
	k.PEM[0] = 'X'
	keys, err := s.SigningKeys(ctx)
	if err != nil || string(keys["current"].PEM) != "pem" {
		t.Errorf("SigningKeys() = %q, %v, want PEM %q", keys["current"].PEM, err, "pem")
	}
	v := []byte("code")
	if _, err := s.PutOnce(ctx, "k", v, t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	v[0] = 'X'
	if got, err := s.Take(ctx, "k"); err != nil || string(got) != "code" {
		t.Errorf("Take(%q) = %q, %v, want %q", "k", got, err, "code")
	}
}

func testRevocations(t *testing.T, open opener) {
	c := newClock()
	s := open(t, c.Now)
	r1 := Revocation{Kind: RevokedToken, ID: "jti-1", Until: t0.Add(time.Minute)}
	r2 := Revocation{Kind: RevokedFamily, ID: "fam-1", Until: t0.Add(time.Hour)}
	r3 := Revocation{Kind: RevokedToken, ID: "jti-3", Until: t0.Add(time.Hour), Grant: "fam-2", Client: "app"}
	r4 := Revocation{Kind: RevokedClientTokens, ID: "app", At: t0, Until: t0.Add(time.Hour)}
	mustRevoke(t, s, r1)
	mustRevoke(t, s, r2)
	rs, cursor := revocations(t, s, 0)
	if want := []Revocation{r1, r2}; !reflect.DeepEqual(rs, want) {
		t.Fatalf("RevocationsSince(0) = %+v, want %+v", rs, want)
	}
	if rs, next := revocations(t, s, cursor); len(rs) != 0 || next != cursor {
		t.Errorf("RevocationsSince(%d) = %+v, %d, want none, %d", cursor, rs, next, cursor)
	}
	mustRevoke(t, s, r3)
	mustRevoke(t, s, r4)
	rs, next := revocations(t, s, cursor)
	if want := []Revocation{r3, r4}; !reflect.DeepEqual(rs, want) || next <= cursor {
		t.Errorf("RevocationsSince(%d) = %+v, %d, want %+v and a later cursor", cursor, rs, next, want)
	}
	// Expired entries are left out, but the cursor still moves past them.
	c.Advance(time.Minute)
	rs, last := revocations(t, s, 0)
	if want := []Revocation{r2, r3, r4}; !reflect.DeepEqual(rs, want) || last != next {
		t.Errorf("RevocationsSince(0) = %+v, %d after r1 expired, want %+v, %d", rs, last, want, next)
	}
}

func testRevocationCursor(t *testing.T, open opener) {
	s := open(t, newClock().Now)
	r := Revocation{Kind: RevokedToken, ID: "jti-1", Until: t0.Add(time.Hour)}
	mustRevoke(t, s, r)
	// A cursor this log never handed out (another store's, or one from before the file was
	// replaced) must not hide entries: the whole log is read.
	for _, cursor := range []uint64{1 << 20, ^uint64(0)} {
		rs, next := revocations(t, s, cursor)
		if want := []Revocation{r}; !reflect.DeepEqual(rs, want) || next != 1 {
			t.Errorf("RevocationsSince(%d) = %+v, %d, want %+v, 1", cursor, rs, next, want)
		}
	}
	// Revoking a family again adds an entry only when it lasts longer.
	fam := Revocation{Kind: RevokedFamily, ID: "f1", Until: t0.Add(time.Hour)}
	mustRevoke(t, s, fam)
	mustRevoke(t, s, fam)
	mustRevoke(t, s, Revocation{Kind: RevokedFamily, ID: "f1", Until: t0.Add(time.Minute)})
	longer := Revocation{Kind: RevokedFamily, ID: "f1", Until: t0.Add(2 * time.Hour)}
	mustRevoke(t, s, longer)
	if rs, _ := revocations(t, s, 1); !reflect.DeepEqual(rs, []Revocation{fam, longer}) {
		t.Errorf("RevocationsSince(1) = %+v, want %+v", rs, []Revocation{fam, longer})
	}
}

func testBadRevocations(t *testing.T, open opener) {
	s := open(t, newClock().Now)
	for _, r := range []Revocation{
		{Kind: "", ID: "x", Until: t0.Add(time.Hour)},
		{Kind: "user", ID: "x", Until: t0.Add(time.Hour)},
		{Kind: RevokedToken, ID: "", Until: t0.Add(time.Hour)},
		{Kind: RevokedFamily, ID: "", Until: t0.Add(time.Hour)},
	} {
		if err := s.Revoke(ctx, r); err == nil {
			t.Errorf("Revoke(%+v) = nil, want an error", r)
		}
	}
	if rs, _ := revocations(t, s, 0); len(rs) != 0 {
		t.Errorf("RevocationsSince(0) = %+v, want none", rs)
	}
}

func testSigningKeys(t *testing.T, open opener) {
	s := open(t, newClock().Now)
	k1 := SigningKey{ID: "k1", Alg: "ES256", PEM: []byte("pem1"), SignsFrom: t0}
	k2 := SigningKey{ID: "k2", Alg: "EdDSA", PEM: []byte("pem2"), SignsFrom: t0.Add(time.Hour)}
	steps := []struct {
		slot string
		add  SigningKey
		want SigningKey
	}{
		{"current", k1, k1},
		{"current", k2, k1}, // taken: the first one stays
		{"next", k2, k2},
	}
	for _, st := range steps {
		got, err := s.AddSigningKey(ctx, st.slot, st.add)
		if err != nil || !reflect.DeepEqual(got, st.want) {
			t.Errorf("AddSigningKey(%q, %q) = %q, %v, want %q", st.slot, st.add.ID, got.ID, err, st.want.ID)
		}
	}
	keys, err := s.SigningKeys(ctx)
	if want := map[string]SigningKey{"current": k1, "next": k2}; err != nil || !reflect.DeepEqual(keys, want) {
		t.Errorf("SigningKeys() = %+v, %v, want %+v", keys, err, want)
	}
	for _, slot := range []string{"current", "current", "never"} {
		if err := s.DeleteSigningKey(ctx, slot); err != nil {
			t.Errorf("DeleteSigningKey(%q) = %v, want nil", slot, err)
		}
	}
	keys, err = s.SigningKeys(ctx)
	if want := map[string]SigningKey{"next": k2}; err != nil || !reflect.DeepEqual(keys, want) {
		t.Errorf("SigningKeys() = %+v, %v, want %+v", keys, err, want)
	}
	if got, err := s.AddSigningKey(ctx, "current", k2); err != nil || got.ID != "k2" {
		t.Errorf("AddSigningKey(%q, %q) after delete = %q, %v, want %q", "current", "k2", got.ID, err, "k2")
	}
}

// testSigningKeyRace: instances starting together each offer a key; all must end up with one.
func testSigningKeyRace(t *testing.T, open opener) {
	s := open(t, newClock().Now)
	const n = 8
	got := make([]SigningKey, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			k := SigningKey{ID: fmt.Sprintf("k%d", i), Alg: "ES256", PEM: []byte(fmt.Sprintf("pem%d", i))}
			var err error
			if got[i], err = s.AddSigningKey(ctx, "current", k); err != nil {
				t.Errorf("AddSigningKey(%q) = %v", k.ID, err)
			}
		})
	}
	wg.Wait()
	keys, err := s.SigningKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i, k := range got {
		if !reflect.DeepEqual(k, keys["current"]) {
			t.Errorf("AddSigningKey(k%d) = %q, want the stored %q", i, k.ID, keys["current"].ID)
		}
	}
}

func testOneTime(t *testing.T, open opener) {
	type step struct {
		op      string // "put", "take" or "wait"
		value   string
		wantOK  bool  // put
		wantErr error // take
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"take once", []step{{op: "put", value: "v1", wantOK: true}, {op: "take", value: "v1"}, {op: "take", wantErr: ErrNotFound}}},
		{"duplicate put keeps the first", []step{{op: "put", value: "v1", wantOK: true}, {op: "put", value: "v2"}, {op: "take", value: "v1"}}},
		{"unknown", []step{{op: "take", wantErr: ErrNotFound}}},
		{"expired", []step{{op: "put", value: "v1", wantOK: true}, {op: "wait"}, {op: "take", wantErr: ErrNotFound}}},
		{"put again after expiry", []step{{op: "put", value: "v1", wantOK: true}, {op: "wait"}, {op: "put", value: "v2", wantOK: true}, {op: "take", value: "v2"}}},
		{"put again after take", []step{{op: "put", value: "v1", wantOK: true}, {op: "take", value: "v1"}, {op: "put", value: "v2", wantOK: true}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClock()
			s := open(t, c.Now)
			for i, st := range tt.steps {
				switch st.op {
				case "put":
					ok, err := s.PutOnce(ctx, "key", []byte(st.value), c.Now().Add(time.Minute))
					if err != nil || ok != st.wantOK {
						t.Errorf("step %d: PutOnce(%q, %q) = %v, %v, want %v", i, "key", st.value, ok, err, st.wantOK)
					}
				case "take":
					got, err := s.Take(ctx, "key")
					if err != st.wantErr || string(got) != st.value {
						t.Errorf("step %d: Take(%q) = %q, %v, want %q, %v", i, "key", got, err, st.value, st.wantErr)
					}
				case "wait":
					c.Advance(time.Minute)
				}
			}
		})
	}
}

// testConcurrentRotations: of 32 racing rotations of one token exactly one wins; the others are
// reuse, which kills the family, the winner's new token included (RFC 9700 §4.14.2).
func testConcurrentRotations(t *testing.T, open opener) {
	s := open(t, newClock().Now)
	mustCreate(t, s, "a", grant("f1", time.Hour))
	const n = 32
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			errs[i] = s.RotateRefreshToken(ctx, "a", fmt.Sprintf("new-%d", i), grant("f1", time.Hour))
		})
	}
	wg.Wait()
	won := -1
	for i, err := range errs {
		switch {
		case err == nil && won < 0:
			won = i
		case err == nil:
			t.Errorf("RotateRefreshToken(%q) succeeded twice (new-%d and new-%d)", "a", won, i)
		case err != ErrReused:
			t.Errorf("RotateRefreshToken(%q) = %v, want nil or %v", "a", err, ErrReused)
		}
	}
	if won < 0 {
		t.Fatalf("RotateRefreshToken(%q): no rotation succeeded", "a")
	}
	newest := fmt.Sprintf("new-%d", won)
	if _, err := s.RefreshToken(ctx, newest); err != ErrNotFound {
		t.Errorf("RefreshToken(%q) = %v, want %v", newest, err, ErrNotFound)
	}
	if rs, _ := revocations(t, s, 0); len(rs) != 1 {
		t.Errorf("RevocationsSince(0) = %+v, want one family entry", rs)
	}
}

func testConcurrentTakes(t *testing.T, open opener) {
	s := open(t, newClock().Now)
	if ok, err := s.PutOnce(ctx, "code", []byte("grant"), t0.Add(time.Minute)); !ok || err != nil {
		t.Fatalf("PutOnce(%q) = %v, %v, want true, nil", "code", ok, err)
	}
	const n = 32
	var mu sync.Mutex
	got := 0
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			v, err := s.Take(ctx, "code")
			switch {
			case err == nil && string(v) == "grant":
				mu.Lock()
				got++
				mu.Unlock()
			case err != ErrNotFound:
				t.Errorf("Take(%q) = %q, %v, want %q or %v", "code", v, err, "grant", ErrNotFound)
			}
		})
	}
	wg.Wait()
	if got != 1 {
		t.Errorf("Take(%q) succeeded %d times, want 1", "code", got)
	}
}

// testRedeem: a redemption takes the value and leaves the mark, once; a value that is not there
// (unknown, taken, expired) leaves none; the mark lasts until its own expiry.
func testRedeem(t *testing.T, open opener) {
	type step struct {
		op      string // "put", "redeem", "take mark" or "wait" (a minute)
		value   string
		wantErr error // redeem, take mark
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"redeem once", []step{{op: "put", value: "code"}, {op: "redeem", value: "code"}, {op: "redeem", wantErr: ErrNotFound},
			{op: "take mark", value: "gid"}, {op: "take mark", wantErr: ErrNotFound}}},
		{"unknown", []step{{op: "redeem", wantErr: ErrNotFound}, {op: "take mark", wantErr: ErrNotFound}}},
		{"taken", []step{{op: "put", value: "code"}, {op: "take", value: "code"}, {op: "redeem", wantErr: ErrNotFound},
			{op: "take mark", wantErr: ErrNotFound}}},
		{"expired", []step{{op: "put", value: "code"}, {op: "wait"}, {op: "redeem", wantErr: ErrNotFound},
			{op: "take mark", wantErr: ErrNotFound}}},
		{"mark outlives the code", []step{{op: "put", value: "code"}, {op: "redeem", value: "code"}, {op: "wait"},
			{op: "take mark", value: "gid"}}},
		{"mark expires", []step{{op: "put", value: "code"}, {op: "redeem", value: "code"}, {op: "wait"}, {op: "wait"},
			{op: "take mark", wantErr: ErrNotFound}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClock()
			s := open(t, c.Now)
			markExp := c.Now().Add(2 * time.Minute)
			for i, st := range tt.steps {
				var got []byte
				var err error
				switch st.op {
				case "put":
					if ok, err := s.PutOnce(ctx, "code", []byte(st.value), c.Now().Add(time.Minute)); !ok || err != nil {
						t.Fatalf("step %d: PutOnce(%q) = %v, %v, want true, nil", i, "code", ok, err)
					}
					continue
				case "wait":
					c.Advance(time.Minute)
					continue
				case "redeem":
					got, err = s.Redeem(ctx, "code", "mark", []byte("gid"), markExp)
				case "take":
					got, err = s.Take(ctx, "code")
				case "take mark":
					got, err = s.Take(ctx, "mark")
				}
				if err != st.wantErr || string(got) != st.value {
					t.Errorf("step %d: %s = %q, %v, want %q, %v", i, st.op, got, err, st.value, st.wantErr)
				}
			}
		})
	}
}

// testConcurrentRedeems: of 32 racing redemptions of one value exactly one gets it, and every
// other finds the mark already there when it is told the value is gone.
func testConcurrentRedeems(t *testing.T, open opener) {
	s := open(t, newClock().Now)
	if ok, err := s.PutOnce(ctx, "code", []byte("grant"), t0.Add(time.Minute)); !ok || err != nil {
		t.Fatalf("PutOnce(%q) = %v, %v, want true, nil", "code", ok, err)
	}
	const n = 32
	var won atomic.Int32
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			v, err := s.Redeem(ctx, "code", "mark", []byte(fmt.Sprint("gid-", i)), t0.Add(time.Hour))
			switch {
			case err == nil && string(v) == "grant":
				won.Add(1)
			case err != ErrNotFound:
				t.Errorf("Redeem(%q) = %q, %v, want %q or %v", "code", v, err, "grant", ErrNotFound)
			default:
				// PutOnce refuses a key that holds a live value: the mark is there.
				if stored, err := s.PutOnce(ctx, "mark", []byte("late"), t0.Add(time.Hour)); stored || err != nil {
					t.Errorf("after a lost Redeem, PutOnce(%q) = %v, %v, want false, nil: the mark was not there", "mark", stored, err)
				}
			}
		})
	}
	wg.Wait()
	if won.Load() != 1 {
		t.Errorf("Redeem(%q) succeeded %d times, want 1", "code", won.Load())
	}
	if mark, err := s.Take(ctx, "mark"); err != nil || !strings.HasPrefix(string(mark), "gid-") {
		t.Errorf("Take(%q) = %q, %v, want the winner's gid", "mark", mark, err)
	}
}

// testFamilyRevokedBeforeItsFirstToken: a family revoked before any of its tokens is stored (a
// code replay that overtook the redemption it revokes) stays dead for the tokens stored later.
func testFamilyRevokedBeforeItsFirstToken(t *testing.T, open opener) {
	s := open(t, newClock().Now)
	mustRevoke(t, s, Revocation{Kind: RevokedFamily, ID: "f1", Until: t0.Add(time.Hour)})
	mustCreate(t, s, "a", grant("f1", time.Hour))
	if _, err := s.RefreshToken(ctx, "a"); err != ErrNotFound {
		t.Errorf("RefreshToken(%q) = %v, want %v", "a", err, ErrNotFound)
	}
	if err := s.RotateRefreshToken(ctx, "a", "b", grant("f1", time.Hour)); err != ErrNotFound {
		t.Errorf("RotateRefreshToken(%q) = %v, want %v", "a", err, ErrNotFound)
	}
}

// testRevokedFamilyOutlivesEntry: a family revoked with an entry shorter than its tokens stays dead
// after the entry expires and is purged.
func testRevokedFamilyOutlivesEntry(t *testing.T, open opener) {
	c := newClock()
	s := open(t, c.Now)
	mustCreate(t, s, "a", grant("f1", 2*time.Hour))
	mustRevoke(t, s, Revocation{Kind: RevokedFamily, ID: "f1", Until: t0.Add(time.Minute)})
	c.Advance(time.Hour)
	purgeAll(t, s)
	if _, err := s.RefreshToken(ctx, "a"); err != ErrNotFound {
		t.Errorf("RefreshToken(%q) = %v, want %v", "a", err, ErrNotFound)
	}
}

// benchGrant is the size and shape of what the token endpoint keeps in a refresh token.
var benchGrant = []byte(`{"sub":"alice","client_id":"bench","scope":["api","offline_access"],"auth_time":1796281445,` +
	`"amr":["pwd"],"idp":"local","issued_at":"2026-12-03T15:04:05.123456789Z","claims":{"name":"Alice Example","email":"alice@example.com"}}`)

// benchmarkRotate measures refreshes per second of s with 32 concurrent clients, each refreshing
// its own chain as the token endpoint does (a lookup, then the rotation), and reports them as
// rotations/s.
func benchmarkRotate(b *testing.B, s Store) {
	var chains atomic.Int64
	b.SetParallelism(max(1, 32/runtime.GOMAXPROCS(0)))
	cpuBefore := cputime.Process(b)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		chain := chains.Add(1)
		fam := fmt.Sprintf("f%d", chain)
		rt := RefreshToken{FamilyID: fam, ClientID: "client", ExpiresAt: time.Now().Add(time.Hour), Grant: benchGrant}
		// Real keys are laid out as the token endpoint makes them: a digest of the family, the
		// issue order, then the hash of a random token, so a chain sits in one place of a B+tree
		// or a keyspace and the chains are scattered.
		family := sha256.Sum256([]byte(fam))
		hashed := func(i int) string {
			return fmt.Sprintf("%x%012x%x", family[:8], i, sha256.Sum256([]byte(fmt.Sprintf("%s-%d", fam, i))))
		}
		old := hashed(0)
		if err := s.CreateRefreshToken(ctx, old, rt); err != nil {
			b.Error(err)
			return
		}
		for i := 1; pb.Next(); i++ {
			next := hashed(i)
			// The token endpoint looks the token up before it rotates it.
			if _, err := s.RefreshToken(ctx, old); err != nil {
				b.Error(err)
				return
			}
			if err := s.RotateRefreshToken(ctx, old, next, rt); err != nil {
				b.Error(err)
				return
			}
			old = next
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rotations/s")
	cputime.Report(b, cpuBefore)
}
