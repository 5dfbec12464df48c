package tests

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/tokengate/tokengate/internal/jwtpart"
)

// TestLifecycleIntrospectionAndRevocation drives RFC 7662 and RFC 7009 through Caddy: what a client
// may learn of tokens, and how fast a revocation reaches bearer_auth, whose verified-token cache
// holds every token used before.
func TestLifecycleIntrospectionAndRevocation(t *testing.T) {
	t.Parallel()
	c, _ := startTokengate(t, "1h")
	user := aliceToken(t, c, "openid", "offline_access", "api.read")
	machine, err := svcConfig(c, oauth2.AuthStyleInHeader, "api.read", "api.write").Token(testContext(t))
	if err != nil {
		t.Fatalf("client_credentials for svc: %v", err)
	}

	t.Run("introspection", func(t *testing.T) {
		// RFC 7662 §2.2: the client the refresh token was issued to learns what it grants.
		answer := introspect(t, c, "web", "web-secret", user.RefreshToken)
		for name, want := range map[string]any{"active": true, "client_id": "web", "sub": "alice", "iss": c.Base,
			"scope": "openid offline_access api.read", "token_type": "refresh_token"} {
			if answer[name] != want {
				t.Errorf("introspecting web's refresh token: %s = %v, want %v (answer %v)", name, answer[name], want, answer)
			}
		}
		// refresh_token_ttl defaults to 720h: the refresh token outlives its access token.
		if exp, _ := answer["exp"].(float64); time.Unix(int64(exp), 0).Before(time.Now().Add(2 * time.Hour)) {
			t.Errorf("introspecting web's refresh token: exp = %v, want about 720h from now", answer["exp"])
		}
		if aud, _ := answer["aud"].([]any); !slices.Contains(aud, any("api")) {
			t.Errorf("introspecting web's refresh token: aud = %v, want it to hold api", answer["aud"])
		}
		// §2.1: token_type_hint only orders the lookups; a wrong hint still finds the token.
		status, body := postForm(t, c, "/connect/introspect", "web", "web-secret",
			url.Values{"token": {user.AccessToken}, "token_type_hint": {"refresh_token"}})
		if status != http.StatusOK || !strings.Contains(string(body), `"active":true`) || !strings.Contains(string(body), `"token_type":"Bearer"`) {
			t.Errorf("introspecting web's access token with the hint refresh_token: HTTP %d %s, want an active Bearer token", status, body)
		}

		// §2.2: a token of another client is exactly {"active":false}, whichever kind it is.
		wantInactive(t, "web's refresh token as svc", introspect(t, c, "svc", "svc-secret", user.RefreshToken))
		wantInactive(t, "web's access token as svc", introspect(t, c, "svc", "svc-secret", user.AccessToken))
		wantInactive(t, "svc's access token as web", introspect(t, c, "web", "web-secret", machine.AccessToken))

		// §2.1: the endpoint is protected; a caller that does not authenticate learns nothing.
		for _, tc := range []struct {
			name   string
			client string // "" sends no credentials
			secret string
		}{
			{"no credentials", "", ""},
			{"wrong secret", "web", "not-web-secret"},
			{"unknown client", "nobody", "web-secret"},
		} {
			status, body := introspectAs(t, c, tc.client, tc.secret, user.AccessToken)
			if status != http.StatusUnauthorized || !strings.Contains(string(body), `"invalid_client"`) || strings.Contains(string(body), "active") {
				t.Errorf("introspecting with %s: HTTP %d %s, want 401 invalid_client and nothing about the token", tc.name, status, body)
			}
		}
	})

	t.Run("access token", func(t *testing.T) {
		// Both routes verify and cache the token before it is revoked.
		callUpstream(t, c, "/api/cached", machine.AccessToken, nil)
		callUpstream(t, c, "/admin/cached", machine.AccessToken, nil)

		// RFC 7009 §2.1: the server checks the token was issued to the client asking. web cannot
		// revoke svc's token, and its 200 (§2.2) says nothing.
		if status, body := postForm(t, c, "/connect/revocation", "web", "web-secret", url.Values{"token": {machine.AccessToken}}); status != http.StatusOK {
			t.Errorf("web revoking svc's token: HTTP %d %s, want 200", status, body)
		}
		callUpstream(t, c, "/api/after-foreign-revocation", machine.AccessToken, nil)

		if status, body := postForm(t, c, "/connect/revocation", "svc", "svc-secret", url.Values{"token": {machine.AccessToken}}); status != http.StatusOK {
			t.Fatalf("svc revoking its token: HTTP %d %s, want 200", status, body)
		}
		// The very next request on either route is refused, the cache notwithstanding.
		for _, path := range []string{"/api/revoked", "/admin/revoked"} {
			r := call(t, c, path, machine.AccessToken, nil)
			if r.status != http.StatusUnauthorized || !strings.Contains(r.header.Get("WWW-Authenticate"), `error="invalid_token"`) {
				t.Errorf("GET %s with a revoked, cached token: HTTP %d WWW-Authenticate %q, want 401 invalid_token",
					path, r.status, r.header.Get("WWW-Authenticate"))
			}
		}
		wantInactive(t, "a revoked access token", introspect(t, c, "svc", "svc-secret", machine.AccessToken))
	})

	t.Run("refresh token family", func(t *testing.T) {
		// Introspection by svc above took nothing from web: its refresh token still rotates, and
		// the family now holds two access tokens, both cached by the gate.
		next := mustRefresh(t, c, "web", user.RefreshToken, "web's refresh token after introspections")
		callUpstream(t, c, "/api/first", user.AccessToken, nil)
		callUpstream(t, c, "/api/second", next.AccessToken, nil)

		revoke(t, c, next.RefreshToken)
		// RFC 7009 §2.1: revoking a refresh token revokes its grant: the refresh token fails and
		// every access token of the family is refused from the next request on.
		wantRefreshRefused(t, c, "web", next.RefreshToken, "a revoked refresh token", false)
		wantGate(t, c, user.AccessToken, http.StatusUnauthorized, "the family's first access token")
		wantGate(t, c, next.AccessToken, http.StatusUnauthorized, "the family's second access token")
		wantInactive(t, "a revoked refresh token", introspect(t, c, "web", "web-secret", next.RefreshToken))
	})
}

// introspectAs asks /connect/introspect about token with HTTP Basic as client, or with no
// credentials when client is empty, and returns the status and body.
func introspectAs(t *testing.T, c *Caddy, client, secret, token string) (int, []byte) {
	t.Helper()
	var header http.Header
	if client != "" {
		header = basicAuth(client, secret)
	}
	r := send(t, c, request{path: "/connect/introspect", header: header, body: url.Values{"token": {token}}.Encode()})
	return r.status, r.body
}

// TestLifecycleRestart stops and starts Caddy on the default store (bolt, in Caddy's data
// directory): refresh tokens, rotations, revocations and the signing key must all survive.
func TestLifecycleRestart(t *testing.T) {
	t.Parallel()
	c := startCaddy(t, (&lifecycleConfig{clients: []string{"web"}}).caddyfile())
	kept := signIn(t, c, "web")
	revokedAccess := signIn(t, c, "web")
	revokedFamily := signIn(t, c, "web")
	rotated := signIn(t, c, "web")
	for _, tok := range []tokenAnswer{kept, revokedAccess, revokedFamily, rotated} {
		wantGate(t, c, tok.AccessToken, http.StatusOK, "before the restart")
	}
	revoke(t, c, revokedAccess.AccessToken)
	revoke(t, c, revokedFamily.RefreshToken)
	successor := mustRefresh(t, c, "web", rotated.RefreshToken, "rotating before the restart")
	kid := kidOf(t, kept.AccessToken)

	c.Restart(t)

	// The key was kept: a token signed before passes, the key is still published, and it signs on.
	wantGate(t, c, kept.AccessToken, http.StatusOK, "an access token signed before the restart")
	if kids := jwksKids(t, c); !slices.Contains(kids, kid) {
		t.Errorf("JWKS kids after the restart = %q, want them to hold %q", kids, kid)
	}
	if got := kidOf(t, signIn(t, c, "web").AccessToken); got != kid {
		t.Errorf("kid of a token signed after the restart = %q, want %q: the restart made a new key", got, kid)
	}

	// Revocations were kept: the deny-list is read back before the first request.
	wantGate(t, c, revokedAccess.AccessToken, http.StatusUnauthorized, "an access token revoked before the restart")
	wantGate(t, c, revokedFamily.AccessToken, http.StatusUnauthorized, "an access token of a family revoked before the restart")
	wantRefreshRefused(t, c, "web", revokedFamily.RefreshToken, "a refresh token revoked before the restart", false)

	// A live refresh token works once.
	again := mustRefresh(t, c, "web", kept.RefreshToken, "a refresh token issued before the restart")
	wantGate(t, c, again.AccessToken, http.StatusOK, "an access token refreshed after the restart")
	wantRefreshRefused(t, c, "web", kept.RefreshToken, "a refresh token used once after the restart", false)

	// A refresh token rotated before the restart stays dead, and presenting it still kills its
	// family (RFC 9700 §4.14.2): the rotation's record survived too.
	wantRefreshRefused(t, c, "web", rotated.RefreshToken, "a refresh token rotated before the restart", false)
	wantRefreshRefused(t, c, "web", successor.RefreshToken, "the successor of a reused refresh token", false)
	wantGate(t, c, successor.AccessToken, http.StatusUnauthorized, "an access token of a family killed by reuse")
}

// TestLifecycleReload changes the configuration under a running Caddy (`caddy reload`): tokens of
// clients that stay survive, a removed client's tokens die at once,
// and an added client works.
func TestLifecycleReload(t *testing.T) {
	t.Parallel()
	c := startCaddy(t, (&lifecycleConfig{clients: []string{"web", "partner"}}).caddyfile())
	kept := signIn(t, c, "web")
	removed := signIn(t, c, "partner")
	wantGate(t, c, kept.AccessToken, http.StatusOK, "web's token before the reload")
	wantGate(t, c, removed.AccessToken, http.StatusOK, "partner's token before the reload")

	c.Reload(t, (&lifecycleConfig{clients: []string{"web", "newcomer"}}).caddyfile())

	wantGate(t, c, kept.AccessToken, http.StatusOK, "web's token after the reload")
	next := mustRefresh(t, c, "web", kept.RefreshToken, "web's refresh token after the reload")
	wantGate(t, c, next.AccessToken, http.StatusOK, "web's refreshed token after the reload")

	wantGate(t, c, removed.AccessToken, http.StatusUnauthorized, "the cached token of a client the reload removed")
	wantRefreshRefused(t, c, "partner", removed.RefreshToken, "the refresh token of a client the reload removed", true)

	added, err := requestToken(testContext(t), c, "newcomer", url.Values{"grant_type": {"client_credentials"}})
	if err != nil || added.Status != http.StatusOK {
		t.Fatalf("client_credentials for a client the reload added: %v (%v), want 200", added, err)
	}
	wantGate(t, c, added.AccessToken, http.StatusOK, "the token of a client the reload added")
}

// TestLifecycleKeyRotation watches the JWKS and the kid of fresh tokens while keys rotate every 4 s
// (signing_key_rotation 4s): a key is published at least half an interval before it signs, a
// token signed by the previous key still passes after the switch, and a retired key stays in the
// JWKS until every token it signed has expired, beyond the gate's 5 s of leeway. Its removal comes
// a minute later still (keys.retireMargin, for verifiers with more leeway), past this test's
// budget: the keys package's unit tests hold it to that.
func TestLifecycleKeyRotation(t *testing.T) {
	t.Parallel()
	const (
		interval = 4 * time.Second
		ttl      = 2 * time.Second
		// leeway is what the gate allows past exp: the key must verify that long after.
		leeway = 5 * time.Second
		// poll is how often the test looks.
		poll = 100 * time.Millisecond
	)
	c := startCaddy(t, (&lifecycleConfig{
		options:   []string{"signing_key_rotation " + interval.String()},
		accessTTL: ttl.String(),
		clients:   []string{"svc"},
	}).caddyfile())

	start := time.Now()
	// published is, per kid, the start of the last poll whose JWKS lacked it: the key was published
	// after that, so a slow poll on a busy machine can only lengthen the lead the test sees.
	published := map[string]time.Time{}
	signed := map[string]time.Time{}  // kid -> when a token first carried it
	expires := map[string]time.Time{} // kid -> the latest exp of a token it signed
	var order []string                // kids in the order they signed
	var last tokenAnswer              // the latest token
	var lastExp time.Time             // and its exp
	var previousPoll time.Time        // zero before the first: keys there were published before the test
	// Two switches, and the first key's tokens expired beyond the leeway.
	deadline := start.Add(3*interval + ttl + leeway + 2*time.Second)
	for ; ; time.Sleep(poll) {
		if time.Now().After(deadline) {
			t.Fatalf("after %v, the kids that signed were %q, want three", deadline.Sub(start), order)
		}
		pollStart := time.Now()
		kids := jwksKids(t, c)
		seen := time.Now()
		for _, kid := range kids {
			if _, ok := published[kid]; !ok {
				published[kid] = previousPoll
			}
		}
		previousPoll = pollStart
		for kid, exp := range expires {
			// The JWKS must publish a key until every token it signed has expired, and the gate
			// must verify them for its leeway beyond.
			if !slices.Contains(kids, kid) && seen.Before(exp.Add(leeway)) {
				t.Fatalf("kid %q left the JWKS %v before its last token expired (plus %v of leeway)", kid, exp.Add(leeway).Sub(seen), leeway)
			}
		}

		tok, err := requestToken(testContext(t), c, "svc", url.Values{"grant_type": {"client_credentials"}})
		if err != nil || tok.Status != http.StatusOK {
			t.Fatalf("client_credentials: %v (%v)", tok, err)
		}
		kid := kidOf(t, tok.AccessToken)
		var claims struct {
			Exp int64 `json:"exp"`
		}
		jwtpart.Decode(t, tok.AccessToken, jwtpart.Payload, &claims)
		exp := time.Unix(claims.Exp, 0)
		expires[kid] = exp
		if _, ok := signed[kid]; !ok {
			signed[kid] = time.Now()
			order = append(order, kid)
			if len(order) > 1 {
				// Clients cache the JWKS: a key signs only once it has long been published.
				if at, ok := published[kid]; !ok || signed[kid].Sub(at) < interval/2 {
					t.Errorf("kid %q signed %v after the JWKS first held it (at %v), want at least %v",
						kid, signed[kid].Sub(at), at.Sub(start), interval/2)
				}
				// The previous key's last token, never shown to the gate, still passes after the switch.
				if time.Now().Before(lastExp) {
					wantGate(t, c, last.AccessToken, http.StatusOK, "a token of the previous key after the switch")
				}
			}
		}
		last, lastExp = tok, exp
		if len(order) >= 3 && time.Now().After(expires[order[0]].Add(leeway)) {
			for _, kid := range order {
				t.Logf("kid %s: published %v, signed %v after start", kid,
					published[kid].Sub(start).Round(time.Millisecond), signed[kid].Sub(start).Round(time.Millisecond))
			}
			return
		}
	}
}
