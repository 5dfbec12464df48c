package store

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokengate/tokengate/internal/redistest"
)

func TestRedis(t *testing.T) {
	srv := startRedis(t, redistest.Config{})
	open := func(t *testing.T, now func() time.Time) Store {
		srv.flush(t)
		return srv.open(t, now)
	}
	testStore(t, open)
	testDeviceCodes(t, open)
}

// alternating is a Store whose calls take turns among several stores: Redis clients with pools of
// their own, standing in for instances in separate processes on one server.
type alternating struct {
	stores []Store
	turn   atomic.Uint64
}

func (a *alternating) next() Store { return a.stores[a.turn.Add(1)%uint64(len(a.stores))] }

func (a *alternating) CreateRefreshToken(ctx context.Context, hash string, t RefreshToken) error {
	return a.next().CreateRefreshToken(ctx, hash, t)
}

func (a *alternating) RefreshToken(ctx context.Context, hash string) (RefreshToken, error) {
	return a.next().RefreshToken(ctx, hash)
}

func (a *alternating) RotateRefreshToken(ctx context.Context, oldHash, newHash string, next RefreshToken) error {
	return a.next().RotateRefreshToken(ctx, oldHash, newHash, next)
}

func (a *alternating) Revoke(ctx context.Context, r Revocation) error { return a.next().Revoke(ctx, r) }

func (a *alternating) RevocationsSince(ctx context.Context, cursor uint64) ([]Revocation, uint64, error) {
	return a.next().RevocationsSince(ctx, cursor)
}

func (a *alternating) AddSigningKey(ctx context.Context, slot string, k SigningKey) (SigningKey, error) {
	return a.next().AddSigningKey(ctx, slot, k)
}

func (a *alternating) SigningKeys(ctx context.Context) (map[string]SigningKey, error) {
	return a.next().SigningKeys(ctx)
}

func (a *alternating) DeleteSigningKey(ctx context.Context, slot string) error {
	return a.next().DeleteSigningKey(ctx, slot)
}

func (a *alternating) PutOnce(ctx context.Context, key string, value []byte, exp time.Time) (bool, error) {
	return a.next().PutOnce(ctx, key, value, exp)
}

func (a *alternating) Take(ctx context.Context, key string) ([]byte, error) {
	return a.next().Take(ctx, key)
}

func (a *alternating) Redeem(ctx context.Context, key, markKey string, mark []byte, markExp time.Time) ([]byte, error) {
	return a.next().Redeem(ctx, key, markKey, mark, markExp)
}

// Close leaves the stores to their own cleanup.
func (a *alternating) Close() error { return nil }

// TestRedisTwoInstances runs the suite's races across two clients: what one instance does once,
// another cannot do again.
func TestRedisTwoInstances(t *testing.T) {
	srv := startRedis(t, redistest.Config{})
	open := func(t *testing.T, now func() time.Time) Store {
		srv.flush(t)
		return &alternating{stores: []Store{srv.open(t, now), srv.open(t, now)}}
	}
	for name, test := range map[string]func(*testing.T, opener){
		"ConcurrentRotations": testConcurrentRotations,
		"SigningKeyRace":      testSigningKeyRace,
		"ConcurrentTakes":     testConcurrentTakes,
		"Rotation":            testRotation,
		"ReuseRevokesFamily":  testReuseRevokesFamily,
		"DeviceCodes":         testDeviceCodes,
	} {
		t.Run(name, func(t *testing.T) { test(t, open) })
	}
}

// TestRedisTTLs: every key but two expires redisSlack after its record, by Redis's own clock,
// so Redis forgets what no purge would come to delete.
func TestRedisTTLs(t *testing.T) {
	srv := startRedis(t, redistest.Config{})
	s := srv.open(t, newClock().Now)
	mustCreate(t, s, "a", grant("f1", time.Hour))
	mustRotate(t, s, "a", "b", grant("f1", 2*time.Hour))
	mustCreate(t, s, "x", grant("f2", time.Hour))
	mustRevoke(t, s, Revocation{Kind: RevokedFamily, ID: "f2", Until: t0.Add(3 * time.Hour)})
	mustRevoke(t, s, Revocation{Kind: RevokedToken, ID: "jti-1", Until: t0.Add(30 * time.Minute)})
	if ok, err := s.PutOnce(ctx, "code", []byte("grant"), t0.Add(time.Minute)); !ok || err != nil {
		t.Fatalf("PutOnce(%q) = %v, %v, want true, nil", "code", ok, err)
	}
	if _, err := s.AddSigningKey(ctx, "current", SigningKey{ID: "k1"}); err != nil {
		t.Fatal(err)
	}
	at := func(d time.Duration) int64 { return t0.Add(d + redisSlack).UnixMilli() }
	want := map[string]int64{
		keyRefresh + "a": at(time.Hour),
		keyRefresh + "b": at(2 * time.Hour),
		keyFamily + "f1": at(2 * time.Hour),
		keyRefresh + "x": at(time.Hour),
		keyFamily + "f2": at(3 * time.Hour), // dead: as long as its entry
		keyOnce + "code": at(time.Minute),
		keyLog:           at(3 * time.Hour), // its longest entry
		keyLogExp:        at(3 * time.Hour),
		keyLogSeq:        -1, // never: see Redis
		keySigningKeys:   -1, // never: see Redis
	}
	keys, err := srv.admin.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(keys)
	if wantKeys := slices.Sorted(maps.Keys(want)); !reflect.DeepEqual(keys, wantKeys) {
		t.Errorf("KEYS * = %q, want %q", keys, wantKeys)
	}
	for key, at := range want {
		got, err := srv.admin.Do(ctx, "PEXPIRETIME", key).Int64()
		if err != nil || got != at {
			t.Errorf("PEXPIRETIME(%q) = %d, %v, want %d", key, got, err, at)
		}
		if ttl, err := srv.admin.PTTL(ctx, key).Result(); at > 0 && (err != nil || ttl <= 0) {
			t.Errorf("PTTL(%q) = %v, %v, want > 0", key, ttl, err)
		}
	}
}

// waitForRedis waits up to 5s for s to answer again after Redis came back: the pool redials
// within a second of that.
func waitForRedis(t *testing.T, s *Redis) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, _, err := s.RevocationsSince(ctx, 0)
		switch {
		case err == nil:
			return
		case time.Now().After(deadline):
			t.Fatalf("RevocationsSince(0) = %v 5s after Redis came back, want nil", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestRedisLogTrim: an append drops the entries Redis may forget, so the log every instance
// reads does not grow without end, and readers still get the rest in order.
func TestRedisLogTrim(t *testing.T) {
	srv := startRedis(t, redistest.Config{})
	c := newClock()
	s := srv.open(t, c.Now)
	short := Revocation{Kind: RevokedToken, ID: "jti-1", Until: t0.Add(time.Minute)}
	long := Revocation{Kind: RevokedToken, ID: "jti-2", Until: t0.Add(time.Hour)}
	mustRevoke(t, s, short)
	mustRevoke(t, s, long)
	c.Advance(time.Minute + redisSlack)
	last := Revocation{Kind: RevokedFamily, ID: "f1", Until: t0.Add(time.Hour)}
	mustRevoke(t, s, last)
	for _, key := range []string{keyLog, keyLogExp} {
		if n, err := srv.admin.ZCard(ctx, key).Result(); err != nil || n != 2 {
			t.Errorf("ZCARD(%q) = %d, %v, want 2", key, n, err)
		}
	}
	if rs, next := revocations(t, s, 0); !reflect.DeepEqual(rs, []Revocation{long, last}) || next != 3 {
		t.Errorf("RevocationsSince(0) = %+v, %d, want %+v, 3", rs, next, []Revocation{long, last})
	}
}

// storeCalls makes one call of each method; each returns only its error.
func storeCalls(s Store) map[string]func() error {
	return map[string]func() error{
		"RefreshToken": func() error { _, err := s.RefreshToken(ctx, "a"); return err },
		"RotateRefreshToken": func() error {
			return s.RotateRefreshToken(ctx, "a", "b", grant("f1", time.Hour))
		},
		"CreateRefreshToken": func() error { return s.CreateRefreshToken(ctx, "c", grant("f2", time.Hour)) },
		"Revoke": func() error {
			return s.Revoke(ctx, Revocation{Kind: RevokedFamily, ID: "f1", Until: t0.Add(time.Hour)})
		},
		"RevocationsSince": func() error { _, _, err := s.RevocationsSince(ctx, 0); return err },
		"AddSigningKey":    func() error { _, err := s.AddSigningKey(ctx, "next", SigningKey{ID: "k2"}); return err },
		"SigningKeys":      func() error { _, err := s.SigningKeys(ctx); return err },
		"DeleteSigningKey": func() error { return s.DeleteSigningKey(ctx, "current") },
		"PutOnce":          func() error { _, err := s.PutOnce(ctx, "jti", nil, t0.Add(time.Minute)); return err },
		"Take":             func() error { _, err := s.Take(ctx, "code"); return err },
	}
}

// TestRedisDown: while Redis is down or does not answer, every call fails within seconds with a
// fault, never ErrNotFound or ErrReused (which would be answered invalid_grant); once it is back,
// the same store works again.
func TestRedisDown(t *testing.T) {
	tests := []struct {
		name       string
		fail, heal func(*redisServer)
	}{
		{"killed", (*redisServer).Kill, (*redisServer).Restart},
		{"not answering", (*redisServer).Pause, (*redisServer).Resume},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startRedis(t, redistest.Config{})
			c := newClock()
			s := srv.open(t, c.Now)
			mustCreate(t, s, "a", grant("f1", time.Hour))
			if _, err := s.PutOnce(ctx, "code", []byte("grant"), t0.Add(time.Minute)); err != nil {
				t.Fatal(err)
			}
			tt.fail(srv)
			calls := storeCalls(s)
			calls["OpenRedis"] = func() error {
				r, err := OpenRedis(srv.URL(), c.Now)
				if err == nil {
					r.Close()
				} else if !strings.Contains(err.Error(), "ping") {
					return fmt.Errorf("%w, want it to say the ping failed", err)
				}
				return err
			}
			var wg sync.WaitGroup
			for name, call := range calls {
				wg.Go(func() {
					start := time.Now()
					err := call()
					if took := time.Since(start); took > 5*time.Second {
						t.Errorf("%s took %v with Redis %s, want under 5s", name, took, tt.name)
					}
					if err == nil || errors.Is(err, ErrNotFound) || errors.Is(err, ErrReused) {
						t.Errorf("%s = %v with Redis %s, want a fault", name, err, tt.name)
					}
				})
			}
			wg.Wait()

			tt.heal(srv)
			waitForRedis(t, s)
			mustCreate(t, s, "n1", grant("f9", time.Hour))
			mustRotate(t, s, "n1", "n2", grant("f9", time.Hour))
			if _, err := s.RefreshToken(ctx, "n2"); err != nil {
				t.Errorf("RefreshToken(%q) after Redis came back = %v, want nil", "n2", err)
			}
			if ok, err := s.PutOnce(ctx, "code2", []byte("v"), t0.Add(time.Minute)); !ok || err != nil {
				t.Errorf("PutOnce(%q) after Redis came back = %v, %v, want true, nil", "code2", ok, err)
			}
			if v, err := s.Take(ctx, "code2"); err != nil || string(v) != "v" {
				t.Errorf("Take(%q) after Redis came back = %q, %v, want %q", "code2", v, err, "v")
			}
		})
	}
}

// TestRedisOutageKeepsToken: a refresh token presented while Redis is down is not used up; after
// a restart that kept the data, it still rotates.
func TestRedisOutageKeepsToken(t *testing.T) {
	srv := startRedis(t, redistest.Config{Persist: true})
	s := srv.open(t, newClock().Now)
	mustCreate(t, s, "a", grant("f1", time.Hour))
	srv.Kill()
	if err := s.RotateRefreshToken(ctx, "a", "b", grant("f1", time.Hour)); err == nil || errors.Is(err, ErrNotFound) || errors.Is(err, ErrReused) {
		t.Fatalf("RotateRefreshToken(%q) with Redis down = %v, want a fault", "a", err)
	}
	srv.Restart()
	waitForRedis(t, s)
	if _, err := s.RefreshToken(ctx, "a"); err != nil {
		t.Fatalf("RefreshToken(%q) after the restart = %v, want nil", "a", err)
	}
	mustRotate(t, s, "a", "b", grant("f1", time.Hour))
}

// TestRedisLateWriteDoesNothing: a rotation whose write reaches Redis only after its caller gave
// up (the server paused between the read and the write, as in a partition) does nothing, so the
// token the client will present again is still live instead of counting as reused.
func TestRedisLateWriteDoesNothing(t *testing.T) {
	srv := startRedis(t, redistest.Config{})
	s := srv.open(t, newClock().Now)
	mustCreate(t, s, "a", grant("f1", time.Hour))
	decide := s.rotation(ctx, "a", "b", grant("f1", time.Hour))
	err := s.update(ctx, func() (redisWrite, error) {
		w, err := decide()
		srv.Pause()
		return w, err
	})
	if err == nil || errors.Is(err, ErrNotFound) || errors.Is(err, ErrReused) {
		t.Errorf("RotateRefreshToken(%q) with Redis paused = %v, want a fault", "a", err)
	}
	srv.Resume() // Redis now runs the write it was sent
	for _, tt := range []struct {
		hash string
		want error
	}{{"a", nil}, {"b", ErrNotFound}} {
		if _, err := s.RefreshToken(ctx, tt.hash); err != tt.want {
			t.Errorf("RefreshToken(%q) after the late write = %v, want %v", tt.hash, err, tt.want)
		}
	}
}

func TestOpenRedis(t *testing.T) {
	const secret = "s3cret-pw"
	withPassword := startRedis(t, redistest.Config{Password: secret})
	overTLS := startRedis(t, redistest.Config{Password: secret, TLS: true})
	tests := []struct {
		name string
		url  string
		ok   bool
	}{
		{"password", withPassword.URL(), true},
		{"tls", overTLS.URL(), true},
		{"no password", "redis://" + withPassword.Addr(), false},
		{"wrong password", "redis://:wrong-" + secret + "@" + withPassword.Addr(), false},
		{"plain to a tls port", "redis://:" + secret + "@" + overTLS.Addr(), false},
		{"tls to a plain port", "rediss://:" + secret + "@" + withPassword.Addr() + "?skip_verify=true", false},
		{"nothing listening", fmt.Sprintf("redis://127.0.0.1:%d", redistest.FreePort(t)), false},
		{"bad port", "redis://:" + secret + "@127.0.0.1:port", false},
		{"bad scheme", "http://:" + secret + "@127.0.0.1", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			s, err := OpenRedis(tt.url, newClock().Now)
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("OpenRedis took %v, want under 5s", took)
			}
			if !tt.ok {
				if err == nil {
					s.Close()
					t.Fatalf("OpenRedis(%q) = nil error, want one", tt.url)
				}
				// Errors are logged: they must not carry the password.
				if strings.Contains(err.Error(), secret) {
					t.Errorf("OpenRedis(%q) = %q, which reveals the password", tt.url, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("OpenRedis(%q) = %v", tt.url, err)
			}
			defer s.Close()
			mustCreate(t, s, "a", grant("f1", time.Hour))
			mustRotate(t, s, "a", "b", grant("f1", time.Hour))
		})
	}
}

// BenchmarkRedisRotate measures rotations per second (see benchmarkRotate) against a local
// redis-server that does not persist.
func BenchmarkRedisRotate(b *testing.B) {
	benchmarkRotate(b, startRedis(b, redistest.Config{}).open(b, time.Now))
}
