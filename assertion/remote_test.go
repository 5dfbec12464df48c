package assertion

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
)

// jwksServer is an issuer's jwks_uri that counts its fetches.
type jwksServer struct {
	*httptest.Server
	fetches atomic.Int32

	mu           sync.Mutex
	body         []byte
	status       int
	cacheControl string
	paths        []string
	// hold, when set, blocks each request until it is closed.
	hold chan struct{}
}

func newJWKSServer(t *testing.T, body []byte) *jwksServer {
	s := &jwksServer{body: body, status: http.StatusOK}
	s.Server = httptest.NewTLSServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) serve(w http.ResponseWriter, r *http.Request) {
	s.fetches.Add(1)
	s.mu.Lock()
	hold, body, status, cc := s.hold, s.body, s.status, s.cacheControl
	s.paths = append(s.paths, r.URL.RequestURI())
	s.mu.Unlock()
	if hold != nil {
		select {
		case <-hold:
		case <-r.Context().Done():
			return
		}
	}
	if cc != "" {
		w.Header().Set("Cache-Control", cc)
	}
	w.WriteHeader(status)
	w.Write(body)
}

// holdRequests makes every request wait until the returned channel is closed.
func (s *jwksServer) holdRequests() chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hold = make(chan struct{})
	return s.hold
}

func (s *jwksServer) set(body []byte, status int, cacheControl string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.body, s.status, s.cacheControl = body, status, cacheControl
}

func (s *jwksServer) remote(t *testing.T, clk *clock) *RemoteJWKS {
	t.Helper()
	r, err := NewRemoteJWKS(s.URL+"/jwks", s.Client(), clk.Now)
	if err != nil {
		t.Fatalf("NewRemoteJWKS: %v", err)
	}
	return r
}

func (s *jwksServer) wantFetches(t *testing.T, when string, want int32) {
	t.Helper()
	if got := s.fetches.Load(); got != want {
		t.Errorf("%s: %d fetches, want %d", when, got, want)
	}
}

func keysOf(t *testing.T, r *RemoteJWKS, kid string) int {
	t.Helper()
	keys, err := r.Keys(context.Background(), kid)
	if err != nil {
		t.Fatalf("Keys(%q) = %v", kid, err)
	}
	return len(keys)
}

func TestRemoteJWKSCaches(t *testing.T) {
	s := newJWKSServer(t, clientJWKS(t))
	clk := newClock()
	r := s.remote(t, clk)
	s.wantFetches(t, "before use", 0)
	if n := keysOf(t, r, "ec-1"); n != 1 {
		t.Errorf("Keys(ec-1) = %d keys, want 1", n)
	}
	keysOf(t, r, "")
	keysOf(t, r, "rsa-1")
	s.wantFetches(t, "three lookups", 1)
	s.wantCachedFor(t, r, clk, defaultTTL, "the default TTL")
}

// wantCachedFor checks that the keys r fetched once, just now, serve every lookup until ttl (named
// what) has passed, and are fetched again then.
func (s *jwksServer) wantCachedFor(t *testing.T, r *RemoteJWKS, clk *clock, ttl time.Duration, what string) {
	t.Helper()
	clk.Advance(ttl - time.Second)
	keysOf(t, r, "ec-1")
	s.wantFetches(t, "just before "+what, 1)
	clk.Advance(time.Second)
	keysOf(t, r, "ec-1")
	s.wantFetches(t, "at "+what, 2)
}

func TestRemoteJWKSHonoursMaxAge(t *testing.T) {
	s := newJWKSServer(t, clientJWKS(t))
	s.set(clientJWKS(t), http.StatusOK, "public, max-age=120")
	clk := newClock()
	r := s.remote(t, clk)
	keysOf(t, r, "ec-1")
	s.wantCachedFor(t, r, clk, 120*time.Second, "max-age")
}

func TestCacheTTL(t *testing.T) {
	for _, tt := range []struct {
		cacheControl string
		want         time.Duration
	}{
		{"", defaultTTL},
		{"max-age=600", 10 * time.Minute},
		{`public, max-age="600"`, 10 * time.Minute},
		{"MAX-AGE=120, must-revalidate", 2 * time.Minute},
		{"max-age=10", minTTL},
		{"max-age=0", minTTL},
		{"no-store", minTTL},
		{"max-age=600, no-cache", minTTL},
		{"max-age=31536000", maxTTL},
		{"max-age=99999999999999999999999", maxTTL},
		{"max-age=-5", defaultTTL},
		{"max-age=soon", defaultTTL},
	} {
		h := http.Header{}
		if tt.cacheControl != "" {
			h.Set("Cache-Control", tt.cacheControl)
		}
		if got := cacheTTL(h); got != tt.want {
			t.Errorf("cacheTTL(%q) = %v, want %v", tt.cacheControl, got, tt.want)
		}
	}
}

// TestRemoteJWKSUnknownKidCoolDown: an attacker spraying kids (RFC 8725 §3.10: a kid only selects
// among trusted keys) causes at most one fetch per cool-down, and the kid never reaches the request.
func TestRemoteJWKSUnknownKidCoolDown(t *testing.T) {
	s := newJWKSServer(t, clientJWKS(t))
	clk := newClock()
	r := s.remote(t, clk)
	keysOf(t, r, "ec-1")
	s.wantFetches(t, "first use", 1)
	// Just after a fetch, an unknown kid waits for the cool-down.
	if n := keysOf(t, r, "unknown"); n != 0 {
		t.Errorf("Keys(unknown) = %d keys, want 0", n)
	}
	s.wantFetches(t, "an unknown kid within the cool-down of the first fetch", 1)
	clk.Advance(defaultCoolDown)
	for i := range 100 {
		keysOf(t, r, fmt.Sprintf("../../dev/null?%d' OR 1=1", i))
	}
	s.wantFetches(t, "100 unknown kids", 2)
	clk.Advance(defaultCoolDown - time.Second)
	keysOf(t, r, "still-unknown")
	s.wantFetches(t, "an unknown kid within the cool-down", 2)

	// The issuer rotates: the new kid is found by the next refetch after the cool-down.
	s.set(jwksJSON(t, jose.JSONWebKey{Key: &attackerEC.PublicKey, KeyID: "ec-2"}), http.StatusOK, "")
	clk.Advance(time.Second)
	if n := keysOf(t, r, "ec-2"); n != 1 {
		t.Errorf("Keys(ec-2) after rotation = %d keys, want 1", n)
	}
	s.wantFetches(t, "rotation", 3)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.paths {
		if p != "/jwks" {
			t.Errorf("request URI %q, want /jwks: a kid must never reach a request", p)
		}
	}
}

// TestRemoteJWKSCoalesces: concurrent lookups while a fetch is under way wait for it, not start
// their own.
func TestRemoteJWKSCoalesces(t *testing.T) {
	s := newJWKSServer(t, clientJWKS(t))
	hold := s.holdRequests()
	r := s.remote(t, newClock())
	var wg sync.WaitGroup
	var failed atomic.Int32
	for range 20 {
		wg.Go(func() {
			if keys, err := r.Keys(context.Background(), "ec-1"); err != nil || len(keys) != 1 {
				failed.Add(1)
			}
		})
	}
	for s.fetches.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // let the others pile up behind the fetch
	close(hold)
	wg.Wait()
	s.wantFetches(t, "20 concurrent lookups", 1)
	if n := failed.Load(); n != 0 {
		t.Errorf("%d concurrent lookups failed, want 0", n)
	}
}

func TestRemoteJWKSBodyCap(t *testing.T) {
	set := clientJWKS(t)
	pad := func(n int) []byte { // valid JSON of exactly n bytes
		return append(append(set[:len(set)-1:len(set)-1], strings.Repeat(" ", n-len(set))...), '}')
	}
	s := newJWKSServer(t, pad(defaultMaxBody))
	if n := keysOf(t, s.remote(t, newClock()), "ec-1"); n != 1 {
		t.Errorf("Keys(a set of exactly %d bytes) = %d keys, want 1", defaultMaxBody, n)
	}
	s.set(pad(defaultMaxBody+1), http.StatusOK, "")
	_, err := s.remote(t, newClock()).Keys(context.Background(), "ec-1")
	if err == nil || !strings.Contains(err.Error(), "over") {
		t.Errorf("Keys(a set of %d bytes) = %v, want an error naming the cap", defaultMaxBody+1, err)
	}
}

func TestRemoteJWKSTimeout(t *testing.T) {
	s := newJWKSServer(t, clientJWKS(t))
	s.holdRequests() // never answers
	r := s.remote(t, newClock())
	r.timeout = 100 * time.Millisecond
	start := time.Now()
	_, err := r.Keys(context.Background(), "ec-1")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Keys(a hung issuer) = %v, want a deadline error", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Keys(a hung issuer) took %v, want about %v", d, r.timeout)
	}
}

// TestRemoteJWKSFailures: a failing issuer is retried once per cool-down, its last good keys are
// kept for a while, and a verifier reports the fault as ErrUnavailable.
func TestRemoteJWKSFailures(t *testing.T) {
	s := newJWKSServer(t, clientJWKS(t))
	s.set([]byte("oops"), http.StatusInternalServerError, "")
	clk := newClock()
	r := s.remote(t, clk)
	cfg := clientConfig(t, clk)
	cfg.Keys = r
	v := newVerifier(t, cfg)
	ctx := context.Background()
	_, err := v.Verify(ctx, sign(t, jwt.SigningMethodES256, ecKey, kid("ec-1"), clientClaims()))
	if !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "status 500") {
		t.Errorf("Verify(issuer down) = %v, want ErrUnavailable naming status 500", err)
	}
	if _, err := r.Keys(ctx, "ec-1"); err == nil {
		t.Error("Keys(within the cool-down of a failure) = nil error, want the failure")
	}
	s.wantFetches(t, "a failure, then a lookup within the cool-down", 1)

	s.set(clientJWKS(t), http.StatusOK, "max-age=60")
	clk.Advance(defaultCoolDown)
	if _, err := v.Verify(ctx, sign(t, jwt.SigningMethodES256, ecKey, kid("ec-1"), clientClaims())); err != nil {
		t.Errorf("Verify(issuer back) = %v, want nil", err)
	}
	s.wantFetches(t, "after the cool-down", 2)

	// Down again: the cached keys are used, and refetched once per cool-down only.
	s.set(nil, http.StatusBadGateway, "")
	clk.Advance(time.Minute)
	keysOf(t, r, "ec-1")
	keysOf(t, r, "ec-1")
	s.wantFetches(t, "stale keys, issuer down", 3)
	// An unknown kid still ends in ErrInvalid once no refetch is due.
	_, err = v.Verify(ctx, sign(t, jwt.SigningMethodES256, ecKey, kid("ec-9"), clientClaims()))
	wantInvalid(t, "Verify(unknown kid, issuer down)", err, "no ES256 key with this kid")

	// Not forever: past maxStale the keys are dropped.
	clk.Advance(maxStale)
	if _, err := r.Keys(ctx, "ec-1"); err == nil || !strings.Contains(err.Error(), "no successful fetch") {
		t.Errorf("Keys(%v after the last success) = %v, want an error", maxStale, err)
	}
}

// TestRemoteJWKSNeverUsesSymmetricKeys: an "oct" key in an issuer's public key set is skipped, so
// an assertion HMAC-signed with it (its bytes are public) is refused while the set's other keys work.
func TestRemoteJWKSNeverUsesSymmetricKeys(t *testing.T) {
	set := jwksJSON(t,
		jose.JSONWebKey{Key: hmacSecret, KeyID: "oct-1", Algorithm: "HS256"},
		jose.JSONWebKey{Key: &ecKey.PublicKey, KeyID: "ec-1"},
	)
	s := newJWKSServer(t, set)
	clk := newClock()
	cfg := clientConfig(t, clk)
	cfg.Keys = s.remote(t, clk)
	v := newVerifier(t, cfg)
	ctx := context.Background()
	for _, h := range []map[string]any{kid("oct-1"), nil} {
		_, err := v.Verify(ctx, sign(t, jwt.SigningMethodHS256, hmacSecret, h, clientClaims()))
		wantInvalid(t, fmt.Sprintf("Verify(HS256 with the oct key, header %v)", h), err, "no HS256 key")
	}
	if _, err := v.Verify(ctx, sign(t, jwt.SigningMethodES256, ecKey, kid("ec-1"), clientClaims())); err != nil {
		t.Errorf("Verify(ES256) = %v, want nil", err)
	}
}

func TestNewRemoteJWKSURL(t *testing.T) {
	for _, tt := range []struct {
		uri string
		ok  bool
	}{
		{"https://idp.example.com/jwks", true},
		{"http://127.0.0.1:8080/jwks", true},
		{"http://localhost/jwks", true},
		{"http://[::1]/jwks", true},
		{"http://idp.example.com/jwks", false},
		{"http://127.0.0.1.evil.example/jwks", false},
		{"ftp://idp.example.com/jwks", false},
		{"file:///etc/jwks.json", false},
		{"https:///jwks", false},
		{"://", false},
	} {
		_, err := NewRemoteJWKS(tt.uri, nil, nil)
		if (err == nil) != tt.ok {
			t.Errorf("NewRemoteJWKS(%q) = %v, want ok %v", tt.uri, err, tt.ok)
		}
	}
}

// redirector answers https://idp.example.com with a redirect to plain http, and plain http with a
// key set, as a network attacker on the redirect target would. It counts the plain http requests.
type redirector struct {
	body      []byte
	plainHTTP atomic.Int32
}

func (rd *redirector) RoundTrip(req *http.Request) (*http.Response, error) {
	resp := &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Request: req,
		Body: io.NopCloser(strings.NewReader(string(rd.body)))}
	if req.URL.Scheme == "https" {
		resp.StatusCode = http.StatusFound
		resp.Header.Set("Location", "http://idp.example.com/jwks")
	} else {
		rd.plainHTTP.Add(1)
	}
	return resp, nil
}

func TestRemoteJWKSRefusesDowngradeRedirect(t *testing.T) {
	rd := &redirector{body: clientJWKS(t)}
	r, err := NewRemoteJWKS("https://idp.example.com/jwks", &http.Client{Transport: rd}, newClock().Now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Keys(context.Background(), "ec-1"); err == nil || !strings.Contains(err.Error(), "not followed") {
		t.Errorf("Keys(redirected to http) = %v, want a redirect not followed", err)
	}
	if n := rd.plainHTTP.Load(); n != 0 {
		t.Errorf("the plain http URL was asked %d times, want 0", n)
	}
}

// TestRemoteJWKSNeverFollowsARedirect: a jwks_uri that redirects, here to an internal address (a
// loopback server answering a valid key set, which a check of the target URL would let through),
// fails the fetch, and the target is never asked; so does a redirect to another path of its host.
func TestRemoteJWKSNeverFollowsARedirect(t *testing.T) {
	var internalHits atomic.Int32
	internal := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		internalHits.Add(1)
		w.Write(clientJWKS(t))
	}))
	defer internal.Close()
	for _, status := range []int{http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
		http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		issuer := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch r.URL.Path {
			case "/keys":
				w.Write(clientJWKS(t))
			case "/moved":
				http.Redirect(w, r, "/keys", status)
			default:
				http.Redirect(w, r, internal.URL+"/jwks", status)
			}
		}))
		defer issuer.Close()
		for _, path := range []string{"/jwks", "/moved"} {
			r, err := NewRemoteJWKS(issuer.URL+path, issuer.Client(), newClock().Now)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := r.Keys(context.Background(), "ec-1"); err == nil || !strings.Contains(err.Error(), "not followed") {
				t.Errorf("Keys(%s answering %d) = %v, want a redirect not followed", path, status, err)
			}
		}
	}
	if n := internalHits.Load(); n != 0 {
		t.Errorf("the redirect target was asked %d times, want 0", n)
	}
}

// TestRemoteJWKSWaiterGivesUp: a caller whose request ends stops waiting; the fetch goes on for
// the others.
func TestRemoteJWKSWaiterGivesUp(t *testing.T) {
	s := newJWKSServer(t, clientJWKS(t))
	hold := s.holdRequests()
	r := s.remote(t, newClock())
	first := make(chan error, 1)
	go func() {
		_, err := r.Keys(context.Background(), "ec-1")
		first <- err
	}()
	for s.fetches.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := r.Keys(ctx, "ec-1"); !errors.Is(err, context.Canceled) {
		t.Errorf("Keys(cancelled, during a fetch) = %v, want context.Canceled", err)
	}
	close(hold)
	if err := <-first; err != nil {
		t.Errorf("Keys(first caller) = %v, want nil", err)
	}
	s.wantFetches(t, "one fetch", 1)
}
