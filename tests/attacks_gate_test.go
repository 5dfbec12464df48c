package tests

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tokengate/tokengate/internal/assertiontest"
)

// attackGateCaddyfile puts bearer_auth in front of a catch-all reverse_proxy on {{BASE}}, the set-up
// where a request that slips past the gate's matcher reaches the upstream; on
// {{SHARED_MATCHER_SITE}}, the documented shape, bearer_auth and reverse_proxy share one matcher.
// tokengate signs with a key the test wrote (kid gate-key), so the test can sign tokens that differ
// from a valid one in exactly one way: each refusal is then the work of the check under attack, not
// of the signature.
const attackGateCaddyfile = `{
	tokengate {
		issuer {{BASE}}
		store memory
		signing_key_file es256 {{KEY_FILE}} gate-key
` + svcClient + `
		client web {
			secret web-secret
			grants password refresh_token
			scopes openid offline_access api.read
			audience api
		}
		users local {
			user alice {{ALICE_HASH}} {
				claim email alice@example.com
			}
		}
	}
}

{{BASE}} {
	tokengate
` + apiReadGuard + `		header email X-Email
	}
	bearer_auth /admin/* {
		audience api
		scope api.write
	}
	reverse_proxy {{UPSTREAM}}
}

{{SHARED_MATCHER_SITE}} {
	bearer_auth /api/* {
		audience api
	}
	reverse_proxy /api/* {{UPSTREAM}}
}
`

// gateKID is the kid of the key attackGateCaddyfile signs with.
const gateKID = "gate-key"

// gateUnderAttack is a running attackGateCaddyfile with the key it signs with.
type gateUnderAttack struct {
	*Caddy
	up  *Upstream
	key *ecdsa.PrivateKey
	// sharedMatcherSite is the host:port of the site where bearer_auth and reverse_proxy share one
	// matcher.
	sharedMatcherSite string
}

// startAttackGate writes a new ES256 key and starts Caddy on attackGateCaddyfile with it.
func startAttackGate(t *testing.T) *gateUnderAttack {
	t.Helper()
	key := assertiontest.ECKey(t)
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "signing.pem")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	up := startUpstream(t)
	sharedMatcherSite := "127.0.0.1:" + freePort(t)
	c := startCaddy(t, strings.NewReplacer(
		"{{SHARED_MATCHER_SITE}}", "http://"+sharedMatcherSite,
		"{{KEY_FILE}}", keyFile,
		"{{ALICE_HASH}}", aliceHash(),
		"{{UPSTREAM}}", up.URL,
	).Replace(attackGateCaddyfile))
	return &gateUnderAttack{Caddy: c, up: up, key: key, sharedMatcherSite: sharedMatcherSite}
}

// claims are those of a valid access token for alice through web, as tokengate would mint it.
func (g *gateUnderAttack) claims() jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{
		"iss": g.Base, "sub": "alice", "aud": []string{"api"}, "client_id": "web", "scope": "api.read",
		"jti": rand.Text(), "iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
	}
}

// forge signs claims with method and key under a header that is a valid access token's (typ
// at+jwt, kid gate-key) changed by edits: a nil value removes the field.
func forge(t *testing.T, method jwt.SigningMethod, key any, edits map[string]any, claims jwt.MapClaims) string {
	t.Helper()
	header := map[string]any{"typ": "at+jwt", "kid": gateKID}
	maps.Copy(header, edits)
	return assertiontest.SignJWT(t, method, key, header, claims)
}

// sign is forge with the gate's own key: a token tokengate would take, but for edits and claims.
func (g *gateUnderAttack) sign(t *testing.T, edits map[string]any, claims jwt.MapClaims) string {
	t.Helper()
	return forge(t, jwt.SigningMethodES256, g.key, edits, claims)
}

// with returns the valid claims with one changed: a nil value removes it.
func (g *gateUnderAttack) with(name string, v any) jwt.MapClaims {
	c := g.claims()
	if v == nil {
		delete(c, name)
	} else {
		c[name] = v
	}
	return c
}

// get sends GET path with the Authorization header auth (none when empty) and extra headers.
func (g *gateUnderAttack) get(t *testing.T, path, auth string, extra http.Header) reply {
	t.Helper()
	header := http.Header{}
	for name, values := range extra {
		header[name] = values
	}
	if auth != "" {
		header.Set("Authorization", auth)
	}
	return send(t, g.Caddy, request{method: http.MethodGet, path: path, header: header})
}

// challengeSyntax is an RFC 6750 §3 challenge as the gate may write it: quoted values without an
// unescaped quote, control character or backslash.
var challengeSyntax = regexp.MustCompile(`^Bearer( [a-z_]+="[\x20\x21\x23-\x5b\x5d-\x7e]*"(, [a-z_]+="[\x20\x21\x23-\x5b\x5d-\x7e]*")*)?$`)

// wantRefused checks that a request carrying token was refused with status and the RFC 6750 error
// code (none when ""), that the upstream never saw it, and that the answer does not echo the token.
func (g *gateUnderAttack) wantRefused(t *testing.T, what, token string, status int, code string, request func() reply) {
	t.Helper()
	before := g.up.Requests()
	r := request()
	challenge := r.header.Get("WWW-Authenticate")
	if r.status != status || g.up.Requests() != before {
		t.Errorf("%s: HTTP %d %.100q (WWW-Authenticate %q, upstream reached %t), want %d from the gate",
			what, r.status, r.body, challenge, g.up.Requests() != before, status)
		return
	}
	if !challengeSyntax.MatchString(challenge) {
		t.Errorf("%s: WWW-Authenticate = %q, want an RFC 6750 Bearer challenge", what, challenge)
	}
	if got := strings.Contains(challenge, `error="`); got != (code != "") || !strings.Contains(challenge, code) {
		t.Errorf("%s: WWW-Authenticate = %q, want error %q", what, challenge, code)
	}
	// The token never comes back, in the challenge or the body: answers get logged and cached.
	if len(token) >= 8 && (strings.Contains(challenge, token[:8]) || strings.Contains(string(r.body), token[:8])) {
		t.Errorf("%s: answer = %q %q, want it not to echo the token", what, challenge, r.body)
	}
}

// jwks fetches the gate's JWKS and returns the raw JSON of the key gate-key and of the whole set.
func (g *gateUnderAttack) jwks(t *testing.T) (key, set []byte) {
	t.Helper()
	r := g.get(t, "/.well-known/openid-configuration/jwks", "", nil)
	var doc struct{ Keys []json.RawMessage }
	if err := json.Unmarshal(r.body, &doc); err != nil || r.status != http.StatusOK {
		t.Fatalf("JWKS = HTTP %d %s (%v), want 200 and a key set", r.status, r.body, err)
	}
	for _, k := range doc.Keys {
		var jwk struct{ Kid string }
		if json.Unmarshal(k, &jwk) == nil && jwk.Kid == gateKID {
			return k, r.body
		}
	}
	t.Fatalf("JWKS = %s, want a key with kid %q", r.body, gateKID)
	return nil, nil
}

// publicKeyForms are the public key's byte forms an HMAC confusion attack tries as the secret.
func publicKeyForms(t *testing.T, jwk, set []byte) map[string][]byte {
	t.Helper()
	var k struct{ X, Y string }
	if err := json.Unmarshal(jwk, &k); err != nil {
		t.Fatal(err)
	}
	x, errX := base64.RawURLEncoding.DecodeString(k.X)
	y, errY := base64.RawURLEncoding.DecodeString(k.Y)
	if errX != nil || errY != nil {
		t.Fatalf("JWK %s: x, y = %v, %v, want base64url", jwk, errX, errY)
	}
	point := slices.Concat([]byte{4}, x, y)
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), point)
	if err != nil {
		t.Fatalf("JWK %s: %v, want a P-256 point", jwk, err)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return map[string][]byte{
		"the JWK":          jwk,
		"the JWKS":         set,
		"the PEM":          pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}),
		"the DER":          der,
		"the raw point":    point,
		"the x coordinate": x,
	}
}

// jwkOf is the public JWK of key, as an embedded jwk header or a jku document carries it.
func jwkOf(t *testing.T, key *ecdsa.PrivateKey, kid string) map[string]any {
	t.Helper()
	point, err := key.PublicKey.Bytes() // 0x04, x, y
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding.EncodeToString
	return map[string]any{"kty": "EC", "crv": "P-256", "kid": kid, "alg": "ES256", "use": "sig",
		"x": enc(point[1:33]), "y": enc(point[33:])}
}

// Forged, malformed, foreign and mistyped tokens (RFC 9068 §4, RFC 8725 §3), each refused with
// 401 invalid_token (RFC 6750 §3.1) before the upstream sees the request.
func TestAttackGateForgedTokens(t *testing.T) {
	t.Parallel()
	g := startAttackGate(t)

	// The control: a token signed with the gate's key and valid claims passes, so every refusal
	// below comes from the one thing its case changes.
	valid := g.sign(t, nil, g.claims())
	echo := callUpstream(t, g.Caddy, "/api/control", valid, nil)
	if got := echo.Header.Values("X-User"); !slices.Equal(got, []string{"alice"}) {
		t.Fatalf("the control token: upstream X-User = %q, want [alice]", got)
	}

	// A key of the attacker's own, and a server that hands out its JWKS, counting who asks.
	attacker := assertiontest.ECKey(t)
	attackerJWK := jwkOf(t, attacker, "attacker")
	var fetched atomic.Int32
	keyServer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetched.Add(1)
		json.NewEncoder(w).Encode(map[string]any{"keys": []any{attackerJWK}})
	}))
	t.Cleanup(keyServer.Close)

	parts := strings.Split(valid, ".")
	enc := base64.RawURLEncoding.EncodeToString
	tamperedClaims, err := json.Marshal(g.with("sub", "admin"))
	if err != nil {
		t.Fatal(err)
	}
	none := jwt.UnsafeAllowNoneSignatureType
	// The gate allows at most 5 s of leeway (RFC 7519 §4.1.4): 10 s is beyond it.
	past, future := time.Now().Add(-10*time.Second).Unix(), time.Now().Add(10*time.Second).Unix()

	cases := []struct{ name, token string }{
		// RFC 7515 §7.1: not a JWS compact serialization.
		{"two segments", parts[0] + "." + parts[1]},
		{"four segments", valid + "." + parts[2]},
		{"empty segments", ".."},
		{"not base64url", "!!!." + parts[1] + "." + parts[2]},
		{"padded signature", valid + "=="},
		{"standard-base64 signature", parts[0] + "." + parts[1] + "." + strings.NewReplacer("-", "+", "_", "/").Replace(parts[2]) + "+/"},
		{"header not JSON", enc([]byte("not json")) + "." + parts[1] + "." + parts[2]},
		// RFC 8725 §3.1: signatures that are not the gate's.
		{"alg none", forge(t, jwt.SigningMethodNone, none, map[string]any{"alg": "none"}, g.claims())},
		{"alg none with a signature", strings.TrimSuffix(forge(t, jwt.SigningMethodNone, none, nil, g.claims()), ".") + "." + parts[2]},
		{"alg None", forge(t, jwt.SigningMethodNone, none, map[string]any{"alg": "None"}, g.claims())},
		{"another key under gate-key", forge(t, jwt.SigningMethodES256, attacker, nil, g.claims())},
		{"tampered payload", parts[0] + "." + enc(tamperedClaims) + "." + parts[2]},
		{"stripped signature", parts[0] + "." + parts[1] + "."},
		{"all-zero ES256 signature", parts[0] + "." + parts[1] + "." + enc(make([]byte, 64))},
		{"signature of another token", parts[0] + "." + parts[1] + "." + strings.Split(g.sign(t, nil, g.claims()), ".")[2]},
		// RFC 9068 §4: lifetime.
		{"exp past", g.sign(t, nil, g.with("exp", past))},
		{"no exp", g.sign(t, nil, g.with("exp", nil))},
		{"exp a string", g.sign(t, nil, g.with("exp", fmt.Sprint(future)))},
		{"nbf future", g.sign(t, nil, g.with("nbf", future))},
		{"expired and forged", forge(t, jwt.SigningMethodES256, attacker, nil, g.with("exp", past))},
		// RFC 9068 §4: issuer.
		{"iss with a trailing slash", g.sign(t, nil, g.with("iss", g.Base+"/"))},
		{"iss in capitals", g.sign(t, nil, g.with("iss", strings.ToUpper(g.Base)))},
		{"iss foreign", g.sign(t, nil, g.with("iss", "https://evil.example"))},
		{"no iss", g.sign(t, nil, g.with("iss", nil))},
		// RFC 9068 §4: audience.
		{"no aud", g.sign(t, nil, g.with("aud", nil))},
		{"aud []", g.sign(t, nil, g.with("aud", []string{}))},
		{`aud ""`, g.sign(t, nil, g.with("aud", ""))},
		{"aud of another resource", g.sign(t, nil, g.with("aud", []string{"billing"}))},
		{"aud in capitals", g.sign(t, nil, g.with("aud", "API"))},
		// RFC 9068 §4, RFC 8725 §3.11: not an access token.
		{"typ JWT", g.sign(t, map[string]any{"typ": "JWT"}, g.claims())},
		{"no typ", g.sign(t, map[string]any{"typ": nil}, g.claims())},
		{"typ id_token", g.sign(t, map[string]any{"typ": "id_token+jwt"}, g.claims())},
		// RFC 9068 §2.2: the claims an access token must carry.
		{"no sub", g.sign(t, nil, g.with("sub", nil))},
		{"no client_id", g.sign(t, nil, g.with("client_id", nil))},
		{"no jti", g.sign(t, nil, g.with("jti", nil))},
		{"no iat", g.sign(t, nil, g.with("iat", nil))},
		{"a client that is not configured", g.sign(t, nil, g.with("client_id", "ghost"))},
		// RFC 8725 §3.10: keys named or carried by the token itself.
		{"unknown crit", g.sign(t, map[string]any{"crit": []string{"urn:example:x"}, "urn:example:x": true}, g.claims())},
		{"crit naming exp", g.sign(t, map[string]any{"crit": []string{"exp"}}, g.claims())},
		{"no kid", g.sign(t, map[string]any{"kid": nil}, g.claims())},
		{"unknown kid", g.sign(t, map[string]any{"kid": "nope"}, g.claims())},
		{"kid a number", g.sign(t, map[string]any{"kid": 1}, g.claims())},
		{"kid path traversal, HS256 with an empty key", forge(t, jwt.SigningMethodHS256, []byte{}, map[string]any{"kid": "../../../../dev/null"}, g.claims())},
		{"kid SQL injection", forge(t, jwt.SigningMethodHS256, []byte("x"), map[string]any{"kid": "' OR 1=1 --"}, g.claims())},
		{"kid a URL", forge(t, jwt.SigningMethodES256, attacker, map[string]any{"kid": keyServer.URL}, g.claims())},
		{"jku at the attacker's JWKS", forge(t, jwt.SigningMethodES256, attacker, map[string]any{"kid": "attacker", "jku": keyServer.URL}, g.claims())},
		{"jku with kid gate-key", forge(t, jwt.SigningMethodES256, attacker, map[string]any{"jku": keyServer.URL}, g.claims())},
		{"x5u at the attacker", forge(t, jwt.SigningMethodES256, attacker, map[string]any{"x5u": keyServer.URL}, g.claims())},
		{"embedded jwk", forge(t, jwt.SigningMethodES256, attacker, map[string]any{"kid": "attacker", "jwk": attackerJWK}, g.claims())},
		{"embedded jwk with kid gate-key", forge(t, jwt.SigningMethodES256, attacker, map[string]any{"jwk": jwkOf(t, attacker, gateKID)}, g.claims())},
	}
	// RFC 8725 §3.1: HS256 keyed with the public key, in every form it is published or written.
	jwk, set := g.jwks(t)
	for form, secret := range publicKeyForms(t, jwk, set) {
		cases = append(cases, struct{ name, token string }{"HS256 keyed with " + form, forge(t, jwt.SigningMethodHS256, secret, nil, g.claims())})
	}
	// RFC 8725 §3.11: tokens tokengate itself issues that are not access tokens.
	tok := wantToken(t, "password grant for alice", postToken(t, g.Caddy, basicAuth("web", "web-secret"),
		formBody("grant_type", "password", "username", "alice", "password", alicePassword, "scope", "openid offline_access api.read")))
	cases = append(cases,
		struct{ name, token string }{"an ID token", tok.IDToken},
		struct{ name, token string }{"a refresh token", tok.RefreshToken},
	)

	for _, tc := range cases {
		g.wantRefused(t, tc.name, tc.token, http.StatusUnauthorized, "invalid_token", func() reply {
			return g.get(t, "/api/forged", "Bearer "+tc.token, nil)
		})
	}
	if n := fetched.Load(); n != 0 {
		t.Errorf("fetches of the attacker's jku/x5u/kid URL = %d, want 0 (RFC 8725 §3.10)", n)
	}
}

// How the gate reads the request (RFC 6750 §2), what it lets through, and what it answers (§3).
func TestAttackGateRequests(t *testing.T) {
	t.Parallel()
	g := startAttackGate(t)
	valid := g.sign(t, nil, g.claims())
	realm := `realm="` + g.Base + `"`

	t.Run("no credentials", func(t *testing.T) {
		g.wantRefused(t, "no Authorization", "", http.StatusUnauthorized, "", func() reply { return g.get(t, "/api/x", "", nil) })
		if got := g.get(t, "/api/x", "", nil).header.Get("WWW-Authenticate"); got != "Bearer "+realm {
			t.Errorf("WWW-Authenticate = %q, want %q", got, "Bearer "+realm)
		}
	})

	t.Run("other schemes", func(t *testing.T) {
		before := g.up.Requests()
		for _, auth := range []string{
			basicAuth("alice", alicePassword).Get("Authorization"),
			"Digest username=\"alice\"",
			"Token " + valid,
			"Bearer",
			"Bearer ",
			"Bearer" + valid,
		} {
			r := g.get(t, "/api/x", auth, nil)
			if r.status != http.StatusUnauthorized || !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("Authorization %.30q = HTTP %d, WWW-Authenticate %q, want 401 and a Bearer challenge", auth, r.status, r.header.Get("WWW-Authenticate"))
			}
		}
		if g.up.Requests() != before {
			t.Errorf("upstream requests = %d, want %d: a request without a bearer token went through", g.up.Requests(), before)
		}
		g.wantRefused(t, "Basic", "", http.StatusUnauthorized, "", func() reply {
			return g.get(t, "/api/x", basicAuth("alice", alicePassword).Get("Authorization"), nil)
		})
	})

	t.Run("scheme case", func(t *testing.T) {
		for _, scheme := range []string{"Bearer", "bearer", "BEARER", "bEaReR"} {
			if r := g.get(t, "/api/x", scheme+" "+valid, nil); r.status != http.StatusOK {
				t.Errorf("Authorization: %s <token> = HTTP %d %s, want 200", scheme, r.status, r.body)
			}
		}
	})

	t.Run("token in several places", func(t *testing.T) {
		withQuery := func(path, auth string) func() reply {
			return func() reply {
				return send(t, g.Caddy, request{method: http.MethodGet, path: path, query: "access_token=" + valid,
					header: http.Header{"Authorization": {auth}}})
			}
		}
		g.wantRefused(t, "header and query", valid, http.StatusBadRequest, "invalid_request", withQuery("/api/x", "Bearer "+valid))
		g.wantRefused(t, "header and form body", valid, http.StatusBadRequest, "invalid_request", func() reply {
			return send(t, g.Caddy, request{path: "/api/x", header: http.Header{"Authorization": {"Bearer " + valid}},
				body: formBody("access_token", valid)})
		})
		g.wantRefused(t, "two Authorization headers", valid, http.StatusBadRequest, "invalid_request", func() reply {
			return send(t, g.Caddy, request{method: http.MethodGet, path: "/api/x", header: http.Header{"Authorization": {"Bearer " + valid, "Bearer " + valid}}})
		})
		// RFC 6750 §2.3 is not offered: a query-only or body-only token is refused, never used.
		before := g.up.Requests()
		for what, r := range map[string]reply{
			"query only": send(t, g.Caddy, request{method: http.MethodGet, path: "/api/x", query: "access_token=" + valid}),
			"body only":  send(t, g.Caddy, request{path: "/api/x", body: formBody("access_token", valid)}),
		} {
			if r.status != http.StatusBadRequest && r.status != http.StatusUnauthorized {
				t.Errorf("token in the %s = HTTP %d %s, want 400 or 401", what, r.status, r.body)
			}
		}
		if g.up.Requests() != before {
			t.Errorf("upstream requests = %d, want %d: a query-only or body-only token was used", g.up.Requests(), before)
		}
	})

	t.Run("missing scope", func(t *testing.T) {
		g.wantRefused(t, "api.read token on /admin/*", valid, http.StatusForbidden, "insufficient_scope", func() reply {
			return g.get(t, "/admin/x", "Bearer "+valid, nil)
		})
		if got := g.get(t, "/admin/x", "Bearer "+valid, nil).header.Get("WWW-Authenticate"); !strings.Contains(got, `scope="api.write"`) {
			t.Errorf("WWW-Authenticate = %q, want it to name scope=\"api.write\"", got)
		}
	})

	t.Run("revoked tokens", func(t *testing.T) {
		web := basicAuth("web", "web-secret")
		grant := func() tokenAnswer {
			return wantToken(t, "password grant", postToken(t, g.Caddy, web,
				formBody("grant_type", "password", "username", "alice", "password", alicePassword, "scope", "offline_access api.read")))
		}
		// Revoked at /connect/revocation, after a request that put the token in the gate's cache.
		tok := grant()
		callUpstream(t, g.Caddy, "/api/before-revocation", tok.AccessToken, nil)
		r := send(t, g.Caddy, request{path: "/connect/revocation", header: web, body: formBody("token", tok.AccessToken)})
		if r.status != http.StatusOK {
			t.Fatalf("revoking = HTTP %d %s, want 200", r.status, r.body)
		}
		g.wantRefused(t, "a revoked access token", tok.AccessToken, http.StatusUnauthorized, "invalid_token", func() reply {
			return g.get(t, "/api/after-revocation", "Bearer "+tok.AccessToken, nil)
		})

		// A refresh token used twice kills its family, and every access token the family issued.
		first := grant()
		second := wantToken(t, "refresh", refresh(t, g.Caddy, "web", first.RefreshToken, ""))
		callUpstream(t, g.Caddy, "/api/before-reuse", second.AccessToken, nil)
		wantError(t, "reusing the rotated refresh token", refresh(t, g.Caddy, "web", first.RefreshToken, ""), "invalid_grant")
		for what, at := range map[string]string{"the family's newest": second.AccessToken, "the family's first": first.AccessToken} {
			g.wantRefused(t, what+" access token after a reuse", at, http.StatusUnauthorized, "invalid_token", func() reply {
				return g.get(t, "/api/after-reuse", "Bearer "+at, nil)
			})
		}
	})

	t.Run("huge tokens", func(t *testing.T) {
		for _, n := range []int{7 << 10, 9 << 10, 30 << 10, 1 << 20} {
			r := g.get(t, "/api/x", "Bearer "+strings.Repeat(".", n), nil)
			if r.status != http.StatusUnauthorized && r.status != http.StatusRequestHeaderFieldsTooLarge {
				t.Errorf("Bearer and %d dots = HTTP %d, want 401 or 431", n, r.status)
			}
			if r.elapsed > time.Second {
				t.Errorf("Bearer and %d dots = answered in %v, want under 1s", n, r.elapsed)
			}
		}
	})

	t.Run("spoofed identity headers", func(t *testing.T) {
		svc := wantToken(t, "svc", postToken(t, g.Caddy, basicAuth("svc", "svc-secret"), formBody("grant_type", "client_credentials")))
		spoof := http.Header{"X-User": {"root"}, "X-Email": {"root@example.com"}, "x-email": {"lower@example.com"}, "X_Email": {"underscore@example.com"}}
		for _, tc := range []struct {
			name, token, user string
			email             []string
		}{
			// svc's token has no email claim: the spoofed copies must go anyway (Caddy CVE-2026-30851).
			{"without an email claim", svc.AccessToken, "svc", nil},
			{"with an email claim", g.sign(t, nil, g.with("email", "alice@example.com")), "alice", []string{"alice@example.com"}},
		} {
			echo := callUpstream(t, g.Caddy, "/api/whoami", tc.token, spoof)
			if got := echo.Header.Values("X-User"); !slices.Equal(got, []string{tc.user}) {
				t.Errorf("%s: upstream X-User = %q, want [%s]", tc.name, got, tc.user)
			}
			var emails []string
			for name, values := range echo.Header {
				if strings.EqualFold(strings.ReplaceAll(name, "_", "-"), "X-Email") {
					emails = append(emails, values...)
				}
			}
			if !slices.Equal(emails, tc.email) {
				t.Errorf("%s: upstream X-Email in any spelling = %q, want %q", tc.name, emails, tc.email)
			}
		}
	})

	t.Run("challenges echo nothing", func(t *testing.T) {
		for _, token := range []string{`abcdefgh"injected="x`, `abcdefgh\", error="none`, "abcdefgh%0d%0aSet-Cookie:x"} {
			g.wantRefused(t, "token "+token, token, http.StatusUnauthorized, "invalid_token", func() reply {
				return g.get(t, "/api/x", "Bearer "+token, nil)
			})
		}
	})
}

// Caddy CVE-2026-27588, CVE-2026-52844: variants of a protected path are guarded
// too. Requests go out on raw TCP so that the path is on the wire exactly as written here.
func TestAttackGatePathVariants(t *testing.T) {
	t.Parallel()
	g := startAttackGate(t)
	apiRead := g.sign(t, nil, g.claims()) // enough for /api/*, not for /admin/*
	catchAll, sharedMatcher := strings.TrimPrefix(g.Base, "http://"), g.sharedMatcherSite
	if r := rawGet(t, catchAll, "/public/x", ""); r.status != http.StatusOK {
		t.Fatalf("GET /public/x = HTTP %d, want 200 from the catch-all upstream", r.status)
	}
	// Case, percent-encoding, repeated slashes and dot segments: Caddy's matcher must see through
	// them, even in front of a catch-all upstream.
	variants := []struct{ path, token string }{
		{"/API/x", ""},
		{"/Api/x", ""},
		{"/%61pi/x", ""},
		{"/%41PI/x", ""},
		{"/ap%69/x", ""},
		{"/api%2Fx", ""},
		{"/api%2fx", ""},
		{"/%2fapi/x", ""},
		{"//api/x", ""},
		{"///api/x", ""},
		{"/./api/x", ""},
		{"/x/../api/x", ""},
		{"/%2e/api/x", ""},
		{"/api/./x", ""},
		{"/api//x", ""},
		{"/api/%2e%2e/api/x", ""},
		{"/ADMIN/x", apiRead},
		{"/%61dmin/x", apiRead},
		{"//admin/x", apiRead},
		{"/api/../admin/x", apiRead},
		{"/api/%2e%2e/admin/x", apiRead},
		{"/api%2F..%2Fadmin/x", apiRead},
	}
	for _, tc := range variants {
		wantNotProxied(t, g, catchAll, tc.path, tc.token)
	}
	// What some upstreams read as /api/x though Caddy does not (Java path parameters, Windows
	// backslashes and trailing dots, trimmed blanks, NUL truncation): where the proxy has the gate's
	// matcher, none of them is proxied at all.
	for _, path := range []string{"/api;/x", "/api;a=b/x", "/api%3b/x", "/api\\x", "/api%5cx", "/api./x", "/api%20/x",
		"/api%09/x", "/api%00/x", "/api%C0%AFx", "/apı/x", "/\u0130api/x"} {
		wantNotProxied(t, g, sharedMatcher, path, "")
	}
	for _, tc := range variants {
		wantNotProxied(t, g, sharedMatcher, tc.path, tc.token)
	}
}

// wantNotProxied sends GET path to host (with token when not empty) and checks that the upstream
// did not see it: the gate refused it, or nothing routes it to the upstream.
func wantNotProxied(t *testing.T, g *gateUnderAttack, host, path, token string) {
	t.Helper()
	before := g.up.Requests()
	r := rawGet(t, host, path, token)
	if g.up.Requests() != before {
		t.Errorf("GET %s on %s (token %t) = HTTP %d %.80q from the upstream, want the gate to refuse it first",
			path, host, token != "", r.status, r.body)
	}
}

// rawGet writes a GET for path, exactly as given, to host on a new connection, with the bearer token
// when not empty.
func rawGet(t *testing.T, host, path, token string) reply {
	t.Helper()
	conn, err := net.DialTimeout("tcp", host, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	auth := ""
	if token != "" {
		auth = "Authorization: Bearer " + token + "\r\n"
	}
	if _, err := fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\n%sConnection: close\r\n\r\n", path, host, auth); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading the body: %v", path, err)
	}
	return reply{status: resp.StatusCode, header: resp.Header, body: body}
}
