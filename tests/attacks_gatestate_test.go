package tests

import (
	"context"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/tokengate/tokengate/internal/testkeys"
	"github.com/tokengate/tokengate/tokens"
)

// svcToken gets a client_credentials token for svc and fails the test unless it does.
func svcToken(t *testing.T, c *Caddy) string {
	t.Helper()
	a, err := requestToken(testContext(t), c, "svc", url.Values{"grant_type": {"client_credentials"}})
	if err != nil || a.Status != http.StatusOK || a.AccessToken == "" {
		t.Fatalf("client_credentials for svc: %v (%v), want 200 with a token", a, err)
	}
	return a.AccessToken
}

// A reload that replaces signing_key_file withdraws the old key at once, tokens bearer_auth has
// cached included, unless the old key stays as a second, verify-only line; a reload that changes
// the issuer refuses the old issuer's tokens (the verified-token cache outlives reloads).
func TestAttackGateStateKeyAndIssuerReplaced(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	keyA, keyB := testkeys.WriteFile(t, dir, tokens.ES256, "a.pem"), testkeys.WriteFile(t, dir, tokens.ES256, "b.pem")
	config := func(issuer string, keyFiles ...string) string {
		cfg := &lifecycleConfig{issuer: issuer, clients: []string{"svc"}}
		for _, f := range keyFiles {
			cfg.options = append(cfg.options, "signing_key_file es256 "+f+" kid-"+strings.TrimSuffix(filepath.Base(f), ".pem"))
		}
		return cfg.caddyfile()
	}
	const issuer = "http://tokengate.test"
	c := startCaddy(t, config(issuer, keyA))
	signedByA := svcToken(t, c)
	wantGate(t, c, signedByA, http.StatusOK, "a token of key file A, cached")

	c.Reload(t, config(issuer, keyB, keyA))
	wantGate(t, c, signedByA, http.StatusOK, "a token of A, with A kept as a second signing_key_file")
	if kid := kidOf(t, svcToken(t, c)); kid != "kid-b" {
		t.Errorf("with key files B then A, a new token's kid = %q, want kid-b: the first signs", kid)
	}

	c.Reload(t, config(issuer, keyB))
	wantGate(t, c, signedByA, http.StatusUnauthorized, "a cached token of A after a reload without A")
	signedByB := svcToken(t, c)
	wantGate(t, c, signedByB, http.StatusOK, "a token of B, cached")

	c.Reload(t, config("http://renamed.test", keyB))
	wantGate(t, c, signedByB, http.StatusUnauthorized, "a cached token of the old issuer after the issuer changed")
	wantGate(t, c, svcToken(t, c), http.StatusOK, "a token of the new issuer")
}

// One client revoking its tokens one by one, or one token again and again, cannot grow the
// deny-list (the store's revocation log, read by every instance) without bound; every revoked
// token stays refused.
func TestAttackGateStateDenyListBounded(t *testing.T) {
	t.Parallel()
	r := startRedis(t, false)
	c := startCaddy(t, (&lifecycleConfig{
		options: []string{"store redis " + r.URL()},
		clients: []string{"web", "svc"},
	}).caddyfile())
	rdb := redis.NewClient(&redis.Options{Addr: r.Addr()})
	t.Cleanup(func() { rdb.Close() })
	logSize := func() int64 {
		n, err := rdb.ZCard(context.Background(), "tokengate:revocations").Result()
		if err != nil {
			t.Fatalf("ZCARD of the revocation log: %v", err)
		}
		return n
	}
	revokeAs := func(client, token string) {
		t.Helper()
		if status, body := postForm(t, c, "/connect/revocation", client, client+"-secret", url.Values{"token": {token}}); status != http.StatusOK {
			t.Fatalf("revoking a token of %s: HTTP %d %s, want 200", client, status, body)
		}
	}

	// One token revoked twenty times is one entry.
	once := svcToken(t, c)
	for range 20 {
		revokeAs("svc", once)
	}
	if n := logSize(); n != 1 {
		t.Errorf("after revoking one token 20 times the log holds %d entries, want 1", n)
	}
	wantGate(t, c, once, http.StatusUnauthorized, "a token revoked 20 times")

	// Thirty access tokens of one refresh family, each used (cached) and revoked: the family dies,
	// and the log holds a handful of entries, not thirty.
	session := signIn(t, c, "web")
	var issued []string
	for i := range 30 {
		issued = append(issued, session.AccessToken)
		wantGate(t, c, session.AccessToken, http.StatusOK, "an access token of the family before its revocation")
		revokeAs("web", session.AccessToken)
		if i < 29 {
			next, err := refreshToken(testContext(t), c, "web", session.RefreshToken)
			if err != nil {
				t.Fatal(err)
			}
			if next.Status != http.StatusOK {
				break // the family was revoked whole: its refresh token is dead too
			}
			session = next
		}
	}
	if n := logSize(); n > 12 {
		t.Errorf("after revoking %d access tokens of one family the log holds %d entries, want a handful", len(issued), n)
	}
	for _, tok := range issued {
		wantGate(t, c, tok, http.StatusUnauthorized, "a revoked access token of the family")
	}
	wantRefreshRefused(t, c, "web", session.RefreshToken, "the refresh token of a family revoked token by token", false)

	// Thirty of svc's tokens without a grant, each revoked: all stay refused.
	var grantless []string
	for range 30 {
		tok := svcToken(t, c)
		wantGate(t, c, tok, http.StatusOK, "svc's token before its revocation")
		revokeAs("svc", tok)
		grantless = append(grantless, tok)
	}
	for _, tok := range grantless {
		wantGate(t, c, tok, http.StatusUnauthorized, "a revoked token of svc")
	}
	wantGate(t, c, svcToken(t, c), http.StatusOK, "svc's token issued after the revocations")
}

// bearer_auth removes the Authorization header it validated, so the upstream never sees (nor logs)
// the token, unless the route says forward_token.
func TestAttackGateStateTokenNotForwarded(t *testing.T) {
	t.Parallel()
	upstream := startUpstream(t)
	cfg := &lifecycleConfig{clients: []string{"svc"}}
	site := strings.NewReplacer(`	bearer_auth /api/* {
		audience api
		scope api.read
	}
	respond /api/* "upstream reached" 200`, `	bearer_auth /api/* {
		audience api
	}
	bearer_auth /forward/* {
		audience api
		forward_token
	}
	reverse_proxy `+upstream.URL).Replace(cfg.caddyfile())
	c := startCaddy(t, site)
	tok := svcToken(t, c)
	if got := callUpstream(t, c, "/api/x", tok, nil).Header.Get("Authorization"); got != "" {
		t.Errorf("the upstream of bearer_auth received Authorization %.20q..., want none", got)
	}
	if got := callUpstream(t, c, "/forward/x", tok, nil).Header.Get("Authorization"); got != "Bearer "+tok {
		t.Errorf("the upstream of bearer_auth with forward_token received Authorization %.20q..., want the token", got)
	}
}
