package tests

import (
	"errors"
	"maps"
	"net/http"
	"net/url"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/tokengate/tokengate/internal/bcrypttest"
)

// tokengateCaddyfile is the configuration the token tests share: a machine client "svc"
// (client_credentials), a user-facing client "web" (password and refresh_token, OpenID Connect), the
// users alice and bob (who shares her password), and a site that serves the endpoints and guards an upstream: /api/* needs scope
// api.read, /admin/* needs api.write.
const tokengateCaddyfile = `{
	tokengate {
		issuer {{BASE}}
		store bolt {{DATA}}/tokengate.db
		access_token_ttl {{ACCESS_TTL}}
` + svcClient + `
		client web {
			secret web-secret
			grants password refresh_token
			scopes openid profile offline_access api.read
			audience api
		}
		users local {
			user alice {{ALICE_HASH}} {
				claim email alice@example.com
			}
			user bob {{ALICE_HASH}}
		}
	}
}

{{BASE}} {
	tokengate
` + apiReadGuard + `		header client_id X-Client-Id
	}
	bearer_auth /admin/* {
		audience api
		scope api.write
		header sub X-User
	}
	@guarded path /api/* /admin/*
	reverse_proxy @guarded {{UPSTREAM}}
}
`

// startTokengate starts Caddy on tokengateCaddyfile, in front of a new Upstream, with access tokens
// that live for accessTTL.
func startTokengate(t *testing.T, accessTTL string) (*Caddy, *Upstream) {
	t.Helper()
	up := startUpstream(t)
	caddyfile := strings.NewReplacer(
		"{{ACCESS_TTL}}", accessTTL,
		"{{ALICE_HASH}}", aliceHash(),
		"{{UPSTREAM}}", up.URL,
	).Replace(tokengateCaddyfile)
	return startCaddy(t, caddyfile), up
}

// svcClient declares, inside a tokengate option, the client svcConfig speaks for: client_credentials
// with the scopes api.read and api.write, for the audience api.
const svcClient = `		client svc {
			secret svc-secret
			grants client_credentials
			scopes api.read api.write
			audience api
		}`

// svcConfig is the client_credentials client "svc", authenticating with style.
func svcConfig(c *Caddy, style oauth2.AuthStyle, scopes ...string) *clientcredentials.Config {
	return &clientcredentials.Config{
		ClientID:     "svc",
		ClientSecret: "svc-secret",
		TokenURL:     c.URL("/connect/token"),
		Scopes:       scopes,
		AuthStyle:    style,
	}
}

// webConfig is the client "web", which signs users in with the password grant.
func webConfig(c *Caddy, scopes ...string) *oauth2.Config {
	return &oauth2.Config{
		ClientID:     "web",
		ClientSecret: "web-secret",
		Endpoint:     oauth2.Endpoint{TokenURL: c.URL("/connect/token"), AuthStyle: oauth2.AuthStyleInHeader},
		Scopes:       scopes,
	}
}

// aliceToken signs alice in through the client "web" with the password grant.
func aliceToken(t *testing.T, c *Caddy, scopes ...string) *oauth2.Token {
	t.Helper()
	tok, err := webConfig(c, scopes...).PasswordCredentialsToken(testContext(t), "alice", alicePassword)
	if err != nil {
		t.Fatalf("password grant for alice: %v", err)
	}
	return tok
}

// wantTokenError checks that err is the RFC 6749 §5.2 error code with HTTP status.
func wantTokenError(t *testing.T, what string, err error, code string, status int) *oauth2.RetrieveError {
	t.Helper()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		t.Fatalf("%s: error %v, want a token endpoint error %q", what, err, code)
	}
	if re.ErrorCode != code || re.Response.StatusCode != status {
		t.Errorf("%s: error %q (HTTP %d), want %q (HTTP %d); body %s", what, re.ErrorCode, re.Response.StatusCode, code, status, re.Body)
	}
	return re
}

func TestClientCredentials(t *testing.T) {
	t.Parallel()
	c, _ := startTokengate(t, "1h")
	// RFC 6749 §2.3.1: the client may send its secret in the Authorization header or in the body.
	for _, tc := range []struct {
		name  string
		style oauth2.AuthStyle
	}{
		{"client_secret_basic", oauth2.AuthStyleInHeader},
		{"client_secret_post", oauth2.AuthStyleInParams},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := time.Now()
			tok, err := svcConfig(c, tc.style, "api.read").Token(testContext(t))
			if err != nil {
				t.Fatalf("Token() = %v", err)
			}
			if tok.AccessToken == "" || tok.Type() != "Bearer" {
				t.Errorf("access_token %q token_type %q, want a token of type Bearer", tok.AccessToken, tok.Type())
			}
			if got := tok.Extra("scope"); got != "api.read" {
				t.Errorf("scope = %q, want %q", got, "api.read")
			}
			// RFC 6749 §4.4.3: no refresh token for client credentials.
			if tok.RefreshToken != "" {
				t.Errorf("refresh_token = %q, want none", tok.RefreshToken)
			}
			if ttl := tok.Expiry.Sub(before); ttl < 59*time.Minute || ttl > 61*time.Minute {
				t.Errorf("expires_in gives %v, want access_token_ttl 1h", ttl)
			}
		})
	}

	t.Run("wrong secret", func(t *testing.T) {
		cfg := svcConfig(c, oauth2.AuthStyleInHeader)
		cfg.ClientSecret = "not-the-secret"
		_, err := cfg.Token(testContext(t))
		re := wantTokenError(t, "wrong secret", err, "invalid_client", http.StatusUnauthorized)
		// RFC 6749 §5.2: a client that tried Basic is answered with a Basic challenge.
		if got := re.Response.Header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Basic") {
			t.Errorf("WWW-Authenticate = %q, want a Basic challenge", got)
		}
	})

	t.Run("unknown client", func(t *testing.T) {
		cfg := svcConfig(c, oauth2.AuthStyleInParams)
		cfg.ClientID = "nobody"
		_, err := cfg.Token(testContext(t))
		wantTokenError(t, "unknown client", err, "invalid_client", http.StatusUnauthorized)
	})

	t.Run("grant not registered", func(t *testing.T) {
		// svc may use client_credentials only: RFC 6749 §5.2 unauthorized_client.
		_, err := webConfig(c).PasswordCredentialsToken(testContext(t), "alice", alicePassword)
		if err != nil {
			t.Fatalf("web may use the password grant: %v", err)
		}
		svc := &oauth2.Config{ClientID: "svc", ClientSecret: "svc-secret", Endpoint: oauth2.Endpoint{
			TokenURL: c.URL("/connect/token"), AuthStyle: oauth2.AuthStyleInHeader}}
		_, err = svc.PasswordCredentialsToken(testContext(t), "alice", alicePassword)
		wantTokenError(t, "svc using the password grant", err, "unauthorized_client", http.StatusBadRequest)
	})

	t.Run("response headers", func(t *testing.T) {
		// RFC 6749 §5.1: token responses must not be cached.
		form := url.Values{"grant_type": {"client_credentials"}}
		resp, err := do(testContext(t), c, request{path: "/connect/token", header: basicAuth("svc", "svc-secret"), body: form.Encode()})
		if err != nil || resp.status != http.StatusOK {
			t.Fatalf("POST /connect/token = %d, %v, want 200", resp.status, err)
		}
		for name, want := range map[string]string{"Cache-Control": "no-store", "Pragma": "no-cache"} {
			if got := resp.header.Get(name); got != want {
				t.Errorf("%s = %q, want %q", name, got, want)
			}
		}
		if got := resp.header.Get("Content-Type"); !strings.HasPrefix(got, "application/json") {
			t.Errorf("Content-Type = %q, want application/json", got)
		}
	})
}

func TestPasswordGrant(t *testing.T) {
	t.Parallel()
	c, _ := startTokengate(t, "1h")
	tok := aliceToken(t, c, "openid", "offline_access", "api.read")
	if tok.AccessToken == "" || tok.Type() != "Bearer" {
		t.Errorf("access_token %q token_type %q, want a token of type Bearer", tok.AccessToken, tok.Type())
	}
	if tok.RefreshToken == "" {
		t.Error("no refresh_token, want one: web may refresh and asked for offline_access")
	}
	if id, _ := tok.Extra("id_token").(string); id == "" {
		t.Error("no id_token, want one: the scope holds openid")
	}

	noOffline := aliceToken(t, c, "openid", "api.read")
	if noOffline.RefreshToken != "" {
		t.Errorf("refresh_token = %q without offline_access, want none", noOffline.RefreshToken)
	}

	for _, tc := range []struct{ user, password string }{
		{"alice", "wrong-password"},
		{"nobody", alicePassword},
	} {
		_, err := webConfig(c, "api.read").PasswordCredentialsToken(testContext(t), tc.user, tc.password)
		wantTokenError(t, "password grant for "+tc.user, err, "invalid_grant", http.StatusBadRequest)
	}
}

func TestPasswordThrottling(t *testing.T) {
	t.Parallel()
	c, _ := startTokengate(t, "1h")
	web := webConfig(c, "api.read")
	// From at most the 10th wrong password for one username, 429 with Retry-After (RFC 6749 §4.3.2:
	// protect the password grant against brute force).
	throttled := false
	for attempt := 1; attempt <= 10; attempt++ {
		_, err := web.PasswordCredentialsToken(testContext(t), "alice", "wrong-password")
		var re *oauth2.RetrieveError
		if !errors.As(err, &re) {
			t.Fatalf("wrong password %d: %v, want a token endpoint error", attempt, err)
		}
		switch {
		case re.Response.StatusCode == http.StatusTooManyRequests:
			if re.Response.Header.Get("Retry-After") == "" {
				t.Errorf("wrong password %d: 429 without Retry-After", attempt)
			}
			throttled = true
		case re.ErrorCode != "invalid_grant":
			t.Errorf("wrong password %d: %q (HTTP %d), want invalid_grant or 429", attempt, re.ErrorCode, re.Response.StatusCode)
		}
	}
	if !throttled {
		t.Error("10 wrong passwords for alice were all answered invalid_grant, want 429 by the 10th")
	}

	// The right password is never called wrong while throttled: 200 or 429.
	_, err := web.PasswordCredentialsToken(testContext(t), "alice", alicePassword)
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.Response.StatusCode != http.StatusTooManyRequests {
		t.Errorf("alice's right password while throttled: %q (HTTP %d), want 200 or 429", re.ErrorCode, re.Response.StatusCode)
	} else if err != nil && re == nil {
		t.Fatal(err)
	}

	// Another username is unaffected, even with the same password and from the same address.
	if _, err := web.PasswordCredentialsToken(testContext(t), "bob", alicePassword); err != nil {
		t.Errorf("bob while alice is throttled: %v, want a token", err)
	}
}

func TestRefreshAfterExpiry(t *testing.T) {
	t.Parallel()
	c, _ := startTokengate(t, "1s")
	web := webConfig(c, "openid", "offline_access", "api.read")
	first := aliceToken(t, c, "openid", "offline_access", "api.read")
	// RFC 6749 §5.1: expires_in is the access token's lifetime; without it a client never refreshes.
	if first.Expiry.IsZero() {
		t.Fatalf("expires_in = %v with access_token_ttl 1s, want 1", first.Extra("expires_in"))
	}
	time.Sleep(time.Until(first.Expiry) + 100*time.Millisecond)

	// The token source sees the access token expired and redeems the refresh token.
	next, err := web.TokenSource(testContext(t), first).Token()
	if err != nil {
		t.Fatalf("refreshing an expired access token: %v", err)
	}
	if next.AccessToken == first.AccessToken {
		t.Error("the refresh returned the expired access token")
	}
	if next.RefreshToken == "" || next.RefreshToken == first.RefreshToken {
		t.Errorf("refresh_token %q after refreshing %q, want a new one (rotation)", next.RefreshToken, first.RefreshToken)
	}
	if id, _ := next.Extra("id_token").(string); id == "" {
		t.Error("no id_token on refresh, want one again (OIDC Core §12.2)")
	}
	callUpstream(t, c, "/api/after-refresh", next.AccessToken, nil)
}

func TestRefreshTokenReuseRevokesFamily(t *testing.T) {
	t.Parallel()
	c, _ := startTokengate(t, "1h")
	web := webConfig(c, "openid", "offline_access", "api.read")
	first := aliceToken(t, c, "openid", "offline_access", "api.read")
	refresh := func(refreshToken string) (*oauth2.Token, error) {
		return web.TokenSource(testContext(t), &oauth2.Token{RefreshToken: refreshToken}).Token()
	}
	second, err := refresh(first.RefreshToken)
	if err != nil {
		t.Fatalf("first refresh: %v", err)
	}
	callUpstream(t, c, "/api/before-reuse", second.AccessToken, nil)

	// RFC 9700 §4.14.2: a rotated refresh token presented again kills the whole family.
	_, err = refresh(first.RefreshToken)
	wantTokenError(t, "reusing a rotated refresh token", err, "invalid_grant", http.StatusBadRequest)
	_, err = refresh(second.RefreshToken)
	wantTokenError(t, "the family's current refresh token after a reuse", err, "invalid_grant", http.StatusBadRequest)
	if r := call(t, c, "/api/after-reuse", second.AccessToken, nil); r.status != http.StatusUnauthorized {
		t.Errorf("an access token of a dead family: HTTP %d, want 401", r.status)
	}
}

func TestBearerAuth(t *testing.T) {
	t.Parallel()
	c, up := startTokengate(t, "1h")
	alice := aliceToken(t, c, "api.read").AccessToken

	t.Run("identity headers", func(t *testing.T) {
		// A client's own X-User must never reach the upstream.
		echo := callUpstream(t, c, "/api/hello", alice, http.Header{"X-User": {"mallory"}})
		if got := echo.Header.Values("X-User"); !slices.Equal(got, []string{"alice"}) {
			t.Errorf("upstream X-User = %q, want [alice]", got)
		}
		if got := echo.Header.Values("X-Client-Id"); !slices.Equal(got, []string{"web"}) {
			t.Errorf("upstream X-Client-Id = %q, want [web]", got)
		}
	})

	// RFC 6750 §3: each refusal carries a Bearer challenge, and the upstream never sees the request.
	for _, tc := range []struct {
		name, path, token string
		status            int
		challenge         []string // parts the WWW-Authenticate header must hold
	}{
		{"no token", "/api/hello", "", http.StatusUnauthorized, []string{`Bearer realm="`}},
		{"garbage token", "/api/hello", "not.a.jwt", http.StatusUnauthorized, []string{`Bearer `, `error="invalid_token"`}},
		{"tampered token", "/api/hello", alice[:len(alice)-4] + "AAAA", http.StatusUnauthorized, []string{`Bearer `, `error="invalid_token"`}},
		{"missing scope", "/admin/users", alice, http.StatusForbidden, []string{`Bearer `, `error="insufficient_scope"`, `scope="api.write"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := up.Requests()
			r := call(t, c, tc.path, tc.token, nil)
			if r.status != tc.status {
				t.Errorf("GET %s: HTTP %d (%s), want %d", tc.path, r.status, r.body, tc.status)
			}
			challenge := r.header.Get("WWW-Authenticate")
			for _, part := range tc.challenge {
				if !strings.Contains(challenge, part) {
					t.Errorf("WWW-Authenticate = %q, want it to hold %q", challenge, part)
				}
			}
			if !strings.HasPrefix(challenge, "Bearer") {
				t.Errorf("WWW-Authenticate = %q, want a Bearer challenge", challenge)
			}
			if up.Requests() != before {
				t.Errorf("the upstream received a request bearer_auth refused")
			}
			// With no handle_errors, a refusal is answered as Caddy answers basic_auth's: the
			// status and the challenge, no body, and no other header.
			if len(r.body) != 0 {
				t.Errorf("GET %s: body %q, want none", tc.path, r.body)
			}
			if names := slices.Sorted(maps.Keys(r.header)); !slices.Equal(names, []string{"Content-Length", "Date", "Server", "Www-Authenticate"}) ||
				r.header.Get("Content-Length") != "0" {
				t.Errorf("GET %s: header %v, want Content-Length 0, Date, Server and WWW-Authenticate only", tc.path, r.header)
			}
		})
	}

	t.Run("scope present", func(t *testing.T) {
		tok, err := svcConfig(c, oauth2.AuthStyleInHeader, "api.write").Token(testContext(t))
		if err != nil {
			t.Fatal(err)
		}
		callUpstream(t, c, "/admin/users", tok.AccessToken, nil)
	})
}

// handleErrorsCaddyfile guards /api/* with bearer_auth on a site whose handle_errors writes its own
// body for every error.
const handleErrorsCaddyfile = `{
	tokengate {
		issuer {{BASE}}
		store memory
` + svcClient + `
	}
}

{{BASE}} {
	tokengate
	bearer_auth /api/* {
		audience api
		scope api.write
	}
	respond /api/* "upstream"
	handle_errors {
		respond "custom {err.status_code}"
	}
}
`

// TestBearerAuthHandleErrors: a site's handle_errors restyles bearer_auth's refusals, while the
// status and the RFC 6750 §3 challenge stay bearer_auth's.
func TestBearerAuthHandleErrors(t *testing.T) {
	t.Parallel()
	c := startCaddy(t, handleErrorsCaddyfile)
	token := func(scope string) string {
		tok, err := svcConfig(c, oauth2.AuthStyleInHeader, scope).Token(testContext(t))
		if err != nil {
			t.Fatal(err)
		}
		return tok.AccessToken
	}
	readOnly, writer := token("api.read"), token("api.write")
	realm := `Bearer realm="` + c.Base + `"`
	for _, tc := range []struct {
		name, query, token string
		status             int
		challenge          string
	}{
		{"no token", "", "", http.StatusUnauthorized, realm},
		{"tampered token", "", readOnly[:len(readOnly)-4] + "AAAA", http.StatusUnauthorized, realm + `, error="invalid_token"`},
		{"missing scope", "", readOnly, http.StatusForbidden, realm + `, error="insufficient_scope", scope="api.write"`},
		{"token in the query too", "access_token=" + writer, writer, http.StatusBadRequest, realm + `, error="invalid_request"`},
	} {
		r := send(t, c, request{method: http.MethodGet, path: "/api/x", query: tc.query, header: bearer(tc.token, nil)})
		want := "custom " + strconv.Itoa(tc.status)
		if r.status != tc.status || string(r.body) != want {
			t.Errorf("%s: HTTP %d %q, want %d %q from handle_errors", tc.name, r.status, r.body, tc.status, want)
		}
		if got := r.header.Get("WWW-Authenticate"); got != tc.challenge {
			t.Errorf("%s: WWW-Authenticate = %q, want %q", tc.name, got, tc.challenge)
		}
	}
	if r := call(t, c, "/api/x", writer, nil); r.status != http.StatusOK || string(r.body) != "upstream" {
		t.Errorf("GET /api/x with a valid token: HTTP %d %q, want 200 %q", r.status, r.body, "upstream")
	}
}

func TestRestartKeepsRefreshTokenAndKey(t *testing.T) {
	t.Parallel()
	c, _ := startTokengate(t, "1h")
	web := webConfig(c, "openid", "offline_access", "api.read")
	tok := aliceToken(t, c, "openid", "offline_access", "api.read")
	kid := kidOf(t, tok.AccessToken)

	c.Restart(t)

	// The bolt store kept the signing key: the token signed before the restart still passes, and
	// its key is still published.
	callUpstream(t, c, "/api/after-restart", tok.AccessToken, nil)
	if kids := jwksKids(t, c); !slices.Contains(kids, kid) {
		t.Errorf("JWKS kids after restart = %q, want them to hold %q", kids, kid)
	}

	// ...and the refresh token.
	next, err := web.TokenSource(testContext(t), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	if err != nil {
		t.Fatalf("refreshing after a restart: %v", err)
	}
	callUpstream(t, c, "/api/refreshed-after-restart", next.AccessToken, nil)
}

// TestBasicSecretRawOrEncoded: RFC 6749 §2.3.1 form-encodes Basic credentials before Base64, as
// golang.org/x/oauth2 does, but curl -u sends them as written. A secret holding "+" and "%" works
// both ways, stored in plaintext or as a bcrypt hash; a wrong one still fails.
func TestBasicSecretRawOrEncoded(t *testing.T) {
	t.Parallel()
	const secret = "s3cr+t%2Fx y"
	curl := needCommand(t, "curl")
	c := startCaddy(t, strings.NewReplacer("{{HASH}}", bcrypttest.Hash(t, secret)).Replace(`{
	tokengate {
		issuer {{BASE}}
		store memory
		client plain {
			secret "s3cr+t%2Fx y"
			grants client_credentials
			scopes api.read
		}
		client hashed {
			secret {{HASH}}
			grants client_credentials
			scopes api.read
		}
	}
}

{{BASE}} {
	tokengate
}
`))
	for _, id := range []string{"plain", "hashed"} {
		encoded := &clientcredentials.Config{ClientID: id, ClientSecret: secret, TokenURL: c.URL("/connect/token"), AuthStyle: oauth2.AuthStyleInHeader}
		if _, err := encoded.Token(testContext(t)); err != nil {
			t.Errorf("%s, secret form-encoded (golang.org/x/oauth2): %v", id, err)
		}
		for _, tc := range []struct {
			secret string
			status int
		}{{secret, http.StatusOK}, {"s3cr+t%2Fx z", http.StatusUnauthorized}} {
			out, err := exec.CommandContext(testContext(t), curl, "-s", "-o", "/dev/null", "-w", "%{http_code}",
				"-u", id+":"+tc.secret, "-d", "grant_type=client_credentials", c.URL("/connect/token")).Output()
			if err != nil {
				t.Fatalf("curl: %v", err)
			}
			if got := string(out); got != strconv.Itoa(tc.status) {
				t.Errorf("curl -u %s:%q = HTTP %s, want %d", id, tc.secret, got, tc.status)
			}
		}
	}
}
