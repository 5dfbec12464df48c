package tests

import (
	"net/http"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tokengate/tokengate/internal/redistest"
)

// startRedis starts a redis-server for t (see redistest.Start); with persist it keeps its data in
// an append-only file, so that it comes back with everything after a kill. It is killed when the
// test ends, after the Caddy instances started later have stopped.
func startRedis(t *testing.T, persist bool) *redistest.Server {
	t.Helper()
	return redistest.Start(t, "store redis", redistest.Config{Persist: persist})
}

// startOnRedis starts two Caddy instances at the same moment on one Redis, with one issuer, as
// a deployment behind a load balancer would run them.
func startOnRedis(t *testing.T, r *redistest.Server) (a, b *Caddy) {
	t.Helper()
	caddyfile := (&lifecycleConfig{
		issuer:  "http://tokengate.test",
		options: []string{"store redis " + r.URL()},
		clients: []string{"web"},
	}).caddyfile()
	caddies := startTogether(t, caddyfile, caddyfile)
	return caddies[0], caddies[1]
}

// startTogether starts one Caddy per caddyfile at the same moment, so that they race for whatever
// they create in a shared store. startCaddy may fail the test from these goroutines: that marks it
// failed and ends only the goroutine, so the test stops here once all have returned.
func startTogether(t *testing.T, caddyfiles ...string) []*Caddy {
	t.Helper()
	caddies := make([]*Caddy, len(caddyfiles))
	var wg sync.WaitGroup
	for i, caddyfile := range caddyfiles {
		wg.Go(func() { caddies[i] = startCaddy(t, caddyfile) })
	}
	wg.Wait()
	if slices.Contains(caddies, nil) {
		t.FailNow()
	}
	return caddies
}

// waitGate polls bearer_auth at c with token until it answers status, for at most within, and
// returns how long that took.
func waitGate(t *testing.T, c *Caddy, token string, status int, within time.Duration, what string) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		got, err := gateStatus(testContext(t), c, token, "poll")
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if got == status {
			return time.Since(start)
		}
		if time.Since(start) > within {
			t.Errorf("%s: bearer_auth still answers HTTP %d after %v, want %d", what, got, within, status)
			return time.Since(start)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRedisTwoInstances runs two Caddy instances on one Redis: with `store redis` they share one
// state, so whatever happens on one holds on the other.
func TestRedisTwoInstances(t *testing.T) {
	t.Parallel()
	a, b := startOnRedis(t, startRedis(t, false))

	// Started together, they agreed on one signing key (create-if-absent, then read back).
	kidsA, kidsB := jwksKids(t, a), jwksKids(t, b)
	if !slices.Equal(kidsA, kidsB) {
		t.Errorf("JWKS kids of A = %q, of B = %q, want the same keys", kidsA, kidsB)
	}
	tok := signIn(t, a, "web")
	fromB := signIn(t, b, "web")
	if ka, kb := kidOf(t, tok.AccessToken), kidOf(t, fromB.AccessToken); ka != kb {
		t.Errorf("A signs with kid %q, B with %q, want one key", ka, kb)
	}

	t.Run("token from A at B", func(t *testing.T) {
		wantGate(t, b, tok.AccessToken, http.StatusOK, "A's access token at B")
		wantGate(t, a, fromB.AccessToken, http.StatusOK, "B's access token at A")
	})

	t.Run("rotation", func(t *testing.T) {
		next := mustRefresh(t, a, "web", tok.RefreshToken, "refreshing at A")
		wantGate(t, b, next.AccessToken, http.StatusOK, "the refreshed token at B")
		// RFC 9700 §4.14.2: presented again at B, the rotated token is dead and kills its family
		// there too, so A refuses the family's access token once it learned of it.
		wantRefreshRefused(t, b, "web", tok.RefreshToken, "a refresh token rotated on A, at B", false)
		wantRefreshRefused(t, a, "web", next.RefreshToken, "the successor of a reused token, at A", false)
		took := waitGate(t, a, next.AccessToken, http.StatusUnauthorized, 2*time.Second, "A, after B saw a reuse")
		t.Logf("A refused the family B killed after %v", took)
	})

	t.Run("parallel refreshes", func(t *testing.T) {
		// Of concurrent refreshes of one token, half at A and half at B, exactly one wins.
		shared := signIn(t, a, "web")
		const n = 16
		answers := make([]tokenAnswer, n)
		errs := make([]error, n)
		ready := make(chan struct{})
		var wg sync.WaitGroup
		for i := range n {
			c := []*Caddy{a, b}[i%2]
			wg.Go(func() {
				<-ready
				answers[i], errs[i] = refreshToken(testContext(t), c, "web", shared.RefreshToken)
			})
		}
		close(ready)
		wg.Wait()
		wins := 0
		for i, ans := range answers {
			switch {
			case errs[i] != nil:
				t.Errorf("refresh %d: %v", i, errs[i])
			case ans.Status == http.StatusOK:
				wins++
			case ans.Error != "invalid_grant":
				t.Errorf("refresh %d: %v, want 200 or invalid_grant", i, ans)
			}
		}
		if wins != 1 {
			t.Errorf("%d of %d parallel refreshes of one token succeeded, want exactly 1", wins, n)
		}
	})

	t.Run("revocation", func(t *testing.T) {
		access := signIn(t, a, "web")
		family := signIn(t, a, "web")
		// B verifies and caches both tokens before A revokes them.
		wantGate(t, b, access.AccessToken, http.StatusOK, "before the revocation")
		wantGate(t, b, family.AccessToken, http.StatusOK, "before the revocation")
		revoke(t, a, access.AccessToken)
		revoke(t, a, family.RefreshToken)
		// Each instance learns of a revocation on another within a second: it polls the log each second.
		t.Logf("B refused an access token revoked at A after %v",
			waitGate(t, b, access.AccessToken, http.StatusUnauthorized, 2*time.Second, "B, after A revoked an access token"))
		t.Logf("B refused a family revoked at A after %v",
			waitGate(t, b, family.AccessToken, http.StatusUnauthorized, 2*time.Second, "B, after A revoked a refresh token"))
		wantRefreshRefused(t, b, "web", family.RefreshToken, "a refresh token revoked at A, at B", false)
	})
}

// outageBound is how fast a request must be answered while Redis is down: a 503 within a few
// seconds.
const outageBound = 5 * time.Second

// TestRedisOutage kills Redis (SIGKILL) under two instances and starts it again: tokengate answers
// 503 temporarily_unavailable within a few seconds, never invalid_grant nor a hang, while
// bearer_auth keeps accepting valid tokens by their signature; and a refresh token presented
// during the outage works once Redis is back.
func TestRedisOutage(t *testing.T) {
	t.Parallel()
	r := startRedis(t, true)
	a, b := startOnRedis(t, r)
	held := signIn(t, a, "web")   // presented only during the outage, then after it
	unseen := signIn(t, b, "web") // its access token reaches a gate first during the outage
	cached := signIn(t, a, "web")
	wantGate(t, a, cached.AccessToken, http.StatusOK, "before the outage")
	wantGate(t, b, cached.AccessToken, http.StatusOK, "before the outage")

	r.Kill()
	down := time.Now()
	outageChecks(t, []*Caddy{a, b}, held, unseen, cached)
	// Once the deny-list's sync (each second) has failed too, the gate still accepts.
	time.Sleep(time.Until(down.Add(1200 * time.Millisecond)))
	outageChecks(t, []*Caddy{a, b}, held, unseen, cached)
	r.Restart()
	refreshAfterOutage(t, b, held.RefreshToken)
}

// outageChecks checks each instance while the store is down: grants that need it answer 503
// temporarily_unavailable (a password grant that stores a refresh token, and a refresh of held),
// and bearer_auth accepts unseen (never verified before) and cached by their signature alone.
func outageChecks(t *testing.T, instances []*Caddy, held, unseen, cached tokenAnswer) {
	t.Helper()
	for _, c := range instances {
		ans, err := requestToken(testContext(t), c, "web", url.Values{"grant_type": {"password"},
			"username": {"alice"}, "password": {alicePassword}, "scope": {"offline_access api.read"}})
		wantUnavailable(t, "a password grant at "+c.Base+" while Redis is down", ans, err)
		ans, err = refreshToken(testContext(t), c, "web", held.RefreshToken)
		wantUnavailable(t, "a refresh at "+c.Base+" while Redis is down", ans, err)
		wantGate(t, c, unseen.AccessToken, http.StatusOK, "a token never seen before, while Redis is down")
		wantGate(t, c, cached.AccessToken, http.StatusOK, "a cached token, while Redis is down")
	}
}

// refreshAfterOutage checks that refresh, presented during an outage, works at c once Redis is
// back: the outage did not use it up. Redis answers before the instance notices: its client pool
// redials a second after its last failed dial, so 503s are allowed for a moment first.
func refreshAfterOutage(t *testing.T, c *Caddy, refresh string) {
	t.Helper()
	for up := time.Now(); ; time.Sleep(20 * time.Millisecond) {
		ans, err := refreshToken(testContext(t), c, "web", refresh)
		if err == nil && ans.Status == http.StatusOK {
			return
		}
		if err != nil || ans.Status != http.StatusServiceUnavailable || time.Since(up) > 3*time.Second {
			t.Fatalf("refreshing, after the outage, a token presented during it: %v (%v), want 200", ans, err)
		}
	}
}

// wantUnavailable checks an answer of the token endpoint while the store is down: 503
// temporarily_unavailable within a few seconds, never invalid_grant.
func wantUnavailable(t *testing.T, what string, ans tokenAnswer, err error) {
	t.Helper()
	if err != nil {
		t.Errorf("%s: %v, want 503 temporarily_unavailable within %v", what, err, outageBound)
		return
	}
	if ans.Status != http.StatusServiceUnavailable || ans.Error != "temporarily_unavailable" || ans.Took > outageBound {
		t.Errorf("%s: %v, want 503 temporarily_unavailable within %v", what, ans, outageBound)
	}
}
