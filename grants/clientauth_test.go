package grants

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokengate/tokengate/internal/bcrypttest"
)

// The hot path: a client whose bcrypt secret was verified once asks for a token again. Client
// authentication must cost it no more than a cache lookup.
func BenchmarkClientCredentialsCachedSecret(b *testing.B) {
	f := newFixture(b)
	f.expectOK("first request", f.post(vals("grant_type", "client_credentials")))
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		f.srv.ServeHTTP(w, cachedSecretRequest())
		if w.Code != 200 {
			b.Fatalf("HTTP %d %s", w.Code, w.Body)
		}
	}
}

// The client authentication part of the hot path alone.
func BenchmarkAuthenticateCachedSecret(b *testing.B) {
	f := newFixture(b)
	f.expectOK("first request", f.post(vals("grant_type", "client_credentials")))
	r := cachedSecretRequest()
	form := form{"grant_type": "client_credentials"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.srv.authenticateClient(context.Background(), r, form, f.Now()); err != nil {
			b.Fatal(err)
		}
	}
}

// cachedSecretRequest is a client_credentials request from app, whose secret the benchmarks verify
// before they start.
func cachedSecretRequest() *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/connect/token", strings.NewReader("grant_type=client_credentials"))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.SetBasicAuth("app", "app-secret")
	return r
}

// fromAddress makes the fixture's Server read a request's address from X-Test-Address, as it reads
// a trusted proxy's X-Forwarded-For.
func fromAddress(_ *fixture, cfg *Config) {
	cfg.ClientIP = func(r *http.Request) string { return r.Header.Get("X-Test-Address") }
}

// withBcryptClient registers client id with a bcrypt hash of secret at cost, as `caddy
// hash-password` would write it; the dearest cost configured is then at least cost.
func withBcryptClient(t *testing.T, id, secret string, cost int) func(*fixture, *Config) {
	h := bcrypttest.HashAt(t, secret, cost)
	return func(_ *fixture, cfg *Config) {
		cfg.Clients = append(cfg.Clients, &Client{ID: id, Secrets: secrets(t, h), Grants: []string{"client_credentials"}, Scopes: []string{"api.read"}})
	}
}

// Wrong secrets sent under a client's id from one address, until that address is throttled, never
// make the client get 429 from another address: not with its right secret, and not as a public
// client presenting none. Only the address that failed gets 429, before any compare.
func TestWrongSecretsDoNotLockTheClientOut(t *testing.T) {
	f := newFixture(t, fromAddress)
	from := func(address string) map[string]string { return map[string]string{"X-Test-Address": address} }
	cc := "grant_type=client_credentials"
	login := "grant_type=password&username=alice&password=alice-pw"
	for _, tc := range []struct {
		name         string
		wrong, right request
	}{
		{"confidential", request{body: cc, basic: [2]string{"app", "guess"}}, request{body: cc, basic: [2]string{"app", "app-secret"}}},
		{"public", request{body: login, basic: [2]string{"spa", "guess"}}, request{body: login + "&client_id=spa"}},
	} {
		attacker, victim := tc.wrong, tc.right
		attacker.header, victim.header = from("203.0.113.66"), from("198.51.100.7")
		var throttled bool
		for i := 0; i < 200 && !throttled; i++ {
			throttled = f.do(attacker).status == http.StatusTooManyRequests
		}
		if !throttled {
			t.Fatalf("%s: 200 wrong secrets within a minute from one address were never answered 429", tc.name)
		}
		f.expectOK(tc.name+" client from another address", f.do(victim))
		victim.header = attacker.header
		if resp := f.do(victim); resp.status != http.StatusTooManyRequests {
			t.Errorf("%s: right secret from the throttled address: %d %s, want 429", tc.name, resp.status, resp.raw)
		}
	}
}

// Unknown client ids never queue ahead of registered clients: while 100 of them are under way from
// one address, a registered client's first request from another address (a bcrypt secret not
// verified yet) is answered within 3 s. A dearer client makes each unknown id's failure a cost-9
// compare's worth (the race detector makes bcrypt some 20 times slower, so the costs are low and
// were each unknown id a compare, the registered client would wait some 30 s). Past a few, the
// flooding address gets 429 at once.
func TestUnknownClientsDoNotQueueAheadOfRegistered(t *testing.T) {
	f := newFixture(t, fromAddress, withBcryptClient(t, "job", "job-secret", 8), withBcryptClient(t, "vault", "vault-secret", 9))
	flood := make(chan int, 100)
	var started sync.WaitGroup
	for i := range 100 {
		started.Add(1)
		go func() {
			started.Done()
			flood <- f.do(request{body: "grant_type=client_credentials", basic: [2]string{fmt.Sprint("made-up-", i), "guess"},
				header: map[string]string{"X-Test-Address": "203.0.113.66"}}).status
		}()
	}
	started.Wait()
	time.Sleep(20 * time.Millisecond) // the flood is under way
	start := time.Now()
	resp := f.do(request{body: "grant_type=client_credentials", basic: [2]string{"job", "job-secret"},
		header: map[string]string{"X-Test-Address": "198.51.100.7"}})
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("the registered client was answered after %v, want within 3s", d)
	}
	f.expectOK("the registered client", resp)
	statuses := map[int]int{}
	for range 100 {
		statuses[<-flood]++
	}
	if statuses[http.StatusTooManyRequests] == 0 || statuses[http.StatusUnauthorized]+statuses[http.StatusTooManyRequests] != 100 {
		t.Errorf("the flood of unknown ids got %v, want 401 for a few and 429 for the rest", statuses)
	}
}

// Every failed secret check lasts what a compare at the dearest configured cost lasts, whatever
// failed: an unknown id, a bcrypt client's wrong secret (of a cheaper hash), a plaintext client's
// wrong secret, a public client's secret. Timing then tells no client id from another.
func TestFailuresTakeTheSameTime(t *testing.T) {
	f := newFixture(t, withBcryptClient(t, "job", "job-secret", 5), withBcryptClient(t, "vault", "vault-secret", 7))
	floor := f.srv.limits.secrets.FailureTime(7)
	cc := "grant_type=client_credentials"
	for _, tc := range []struct {
		name string
		req  request
	}{
		{"unknown id", request{body: cc, basic: [2]string{"nobody", "guess"}}},
		{"unknown id, no secret", request{body: cc + "&client_id=nobody"}},
		{"bcrypt client, wrong secret", request{body: cc, basic: [2]string{"job", "guess"}}},
		{"plaintext client, wrong secret", request{body: cc, basic: [2]string{"plain", "guess"}}},
		{"confidential client, no secret", request{body: cc + "&client_id=plain"}},
		{"public client with a secret", request{body: "grant_type=password&username=alice&password=alice-pw", basic: [2]string{"spa", "guess"}}},
	} {
		var took []time.Duration
		for range 3 {
			start := time.Now()
			f.expectError(tc.name, f.do(tc.req), 401, CodeInvalidClient)
			took = append(took, time.Since(start))
		}
		if median := slices.Sorted(slices.Values(took))[1]; median < floor*9/10 || median > floor+floor/2+100*time.Millisecond {
			t.Errorf("%s: failed in %v (median), want about %v, a cost-7 compare", tc.name, median, floor)
		}
	}
}

// RFC 6749 §5.2: a client that tried Basic gets 401 with a Basic challenge, however empty or
// malformed its Basic header was, and also when a public client used it at introspection.
func TestBasicChallenge(t *testing.T) {
	f := newFixture(t)
	for _, header := range []string{"Basic", "Basic ", "basic", "Basic    ", "Basic Og==", "Basic %%%", "Basic YXBw"} {
		resp := f.do(request{body: "grant_type=client_credentials", header: map[string]string{"Authorization": header}})
		f.expectError("Authorization: "+header, resp, 401, CodeInvalidClient)
		if got := resp.header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Basic") {
			t.Errorf("Authorization %q: WWW-Authenticate = %q, want a Basic challenge", header, got)
		}
	}
	access := f.login("offline_access api.read").str("access_token")
	resp := f.do(request{target: "/connect/introspect", body: vals("token", access).Encode(), basic: [2]string{"spa", ""}})
	f.expectError("a public client at introspection", resp, 401, CodeInvalidClient)
	if got := resp.header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Basic") {
		t.Errorf("a public client with Basic at introspection: WWW-Authenticate = %q, want a Basic challenge", got)
	}
}

// rawBasic is an Authorization header of Basic with id ":" secret not form-encoded first, as curl -u
// and Authlib send it.
func rawBasic(id, secret string) map[string]string {
	return map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte(id+":"+secret))}
}

// A secret holding "+" or "%" works sent form-encoded (RFC 6749 §2.3.1) and sent raw, for a
// plaintext and a bcrypt secret; the raw reading is a second attempt, so a wrong secret with two
// readings fails in two compares' time, whether or not the client exists.
func TestRawBasicSecret(t *testing.T) {
	const jobSecret = "job+secret%2F"
	f := newFixture(t, withBcryptClient(t, "job", jobSecret, 5))
	cc := "grant_type=client_credentials"
	f.expectOK("plaintext secret sent raw", f.do(request{body: cc, header: rawBasic("plain", "p:%+& secret")}))
	f.expectOK("bcrypt secret sent raw", f.do(request{body: cc, header: rawBasic("job", jobSecret)}))
	f.expectOK("bcrypt secret form-encoded", f.do(request{body: cc, basic: [2]string{"job", jobSecret}}))
	f.expectOK("bcrypt secret sent raw, verified before", f.do(request{body: cc, header: rawBasic("job", jobSecret)}))
	floor := f.srv.limits.secrets.FailureTime(5)
	for _, id := range []string{"job", "nobody"} {
		start := time.Now()
		f.expectError(id+" with a wrong secret of two readings", f.do(request{body: cc, header: rawBasic(id, "job+guess")}), 401, CodeInvalidClient)
		if took := time.Since(start); took < 2*floor*9/10 {
			t.Errorf("%s: a wrong secret of two readings failed in %v, want at least two compares' %v", id, took, 2*floor)
		}
	}
}
