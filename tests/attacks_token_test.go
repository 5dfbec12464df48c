package tests

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokengate/tokengate/internal/jwtpart"
)

// attackTokenCaddyfile is the token endpoint under attack: the machine client svc, a client foo+bar
// whose id and secret need form-urlencoding, the confidential web and the public spa (both password
// and refresh_token), a client cafe for Unicode look-alikes, and the users alice and carol. It signs
// with RS256 (RFC 9068 §2.1 makes RS256 support a MUST), and /api/* is guarded so that the gate is
// seen to accept what the endpoint issues.
const attackTokenCaddyfile = `{
	tokengate {
		issuer {{BASE}}
		store memory
		signing_key rs256
		access_token_ttl {{ACCESS_TTL}}
		refresh_token_ttl {{REFRESH_TTL}}
` + svcClient + `
		client foo+bar {
			secret a:b%c+d&e=f
			grants client_credentials
			scopes api.read
			audience api
		}
		client web {
			secret web-secret
			grants password refresh_token
			scopes openid profile offline_access api.read api.write
			audience api
		}
		client spa {
			public
			grants password refresh_token
			scopes openid offline_access api.read
			audience api
		}
		client cafe {
			secret cafe-secret
			grants client_credentials
			scopes api.read
			audience api
		}
		users local {
			user alice {{ALICE_HASH}} {
				claim email alice@example.com
			}
			user carol {{ALICE_HASH}}
		}
	}
}

{{BASE}} {
	tokengate
	bearer_auth /api/* {
		audience api
	}
	respond /api/* "hello {http.auth.user.id}" 200
}
`

// startAttackTokengate starts Caddy on attackTokenCaddyfile with the given token lifetimes.
func startAttackTokengate(t *testing.T, accessTTL, refreshTTL string) *Caddy {
	t.Helper()
	return startCaddy(t, strings.NewReplacer(
		"{{ACCESS_TTL}}", accessTTL,
		"{{REFRESH_TTL}}", refreshTTL,
		"{{ALICE_HASH}}", aliceHash(),
	).Replace(attackTokenCaddyfile))
}

// svcBasic is the client svc's own, correct Basic header.
var svcBasic = basicAuth("svc", "svc-secret")

// aliceGrant signs alice in through client (web with its secret, or the public spa) with scope.
func aliceGrant(t *testing.T, c *Caddy, client, scope string) tokenAnswer {
	t.Helper()
	body := formBody("grant_type", "password", "username", "alice", "password", alicePassword, "scope", scope)
	return wantToken(t, "password grant for alice through "+client, postToken(t, c, clientAuth(client), body))
}

// refresh redeems refreshToken as client, with scope when not empty.
func refresh(t *testing.T, c *Caddy, client, refreshToken, scope string) reply {
	t.Helper()
	pairs := []string{"grant_type", "refresh_token", "refresh_token", refreshToken}
	if scope != "" {
		pairs = append(pairs, "scope", scope)
	}
	return postToken(t, c, clientAuth(client), formBody(pairs...))
}

// clientAuth authenticates web with Basic; the public spa sends its id the way libraries that
// always use Basic do, with an empty secret.
func clientAuth(client string) http.Header {
	if client == "spa" {
		return basicAuth("spa", "")
	}
	return basicAuth(client, client+"-secret")
}

// Transport and format of /connect/token (RFC 6749 §3.2: POST, form-encoded, each parameter once).
func TestAttackTokenFormat(t *testing.T) {
	t.Parallel()
	c := startAttackTokengate(t, "1h", "720h")
	cc := formBody("grant_type", "client_credentials")

	t.Run("success", func(t *testing.T) {
		r := postToken(t, c, svcBasic, cc)
		tok := wantToken(t, "client_credentials", r)
		for name, want := range map[string]string{"Cache-Control": "no-store", "Pragma": "no-cache"} {
			if got := r.header.Get(name); got != want {
				t.Errorf("%s = %q, want %q", name, got, want)
			}
		}
		if got := r.header.Get("Content-Type"); !strings.HasPrefix(got, "application/json") {
			t.Errorf("Content-Type = %q, want application/json", got)
		}
		if !strings.EqualFold(tok.TokenType, "Bearer") || tok.ExpiresIn <= 0 {
			t.Errorf("token_type, expires_in = %q, %d, want Bearer and a positive lifetime", tok.TokenType, tok.ExpiresIn)
		}
	})

	t.Run("error text", func(t *testing.T) {
		// Each input is built to be echoed in error_description; none may reach the wire unfiltered.
		weird := "é\"\\\r\n\tü"
		for _, tc := range []struct {
			name, body, code string
		}{
			{"repeated parameter", formBody("grant_type", "client_credentials", weird, "1", weird, "2"), "invalid_request"},
			{"NUL in a parameter", formBody("grant_type", "client_credentials", weird, "a\x00b"), "invalid_request"},
			{"unicode grant_type", formBody("grant_type", weird), "unsupported_grant_type"},
			{"unicode scope", formBody("grant_type", "client_credentials", "scope", "api.read "+weird), "invalid_scope"},
			{"unicode username", formBody("grant_type", "password", "username", weird, "password", weird), "invalid_grant"},
		} {
			header := svcBasic
			if tc.code == "invalid_grant" {
				header = basicAuth("web", "web-secret")
			}
			wantError(t, tc.name, postToken(t, c, header, tc.body), tc.code)
		}
	})

	t.Run("method", func(t *testing.T) {
		for _, method := range []string{http.MethodGet, http.MethodPut, http.MethodDelete} {
			r := send(t, c, request{method: method, path: "/connect/token", query: cc, header: svcBasic, body: cc})
			if r.status != http.StatusMethodNotAllowed {
				wantError(t, method+" /connect/token", r, "invalid_request")
			}
			if bytes.Contains(r.body, []byte("access_token")) {
				t.Errorf("%s /connect/token: body = %s, want no token", method, r.body)
			}
		}
	})

	t.Run("content type", func(t *testing.T) {
		for _, tc := range []struct {
			name, contentType, body string
		}{
			{"JSON body", "application/json", `{"grant_type":"client_credentials"}`},
			{"form body labelled JSON", "application/json", cc},
			{"no Content-Type", "-", cc},
			{"text/plain", "text/plain", cc},
			{"multipart", "multipart/form-data; boundary=x", "--x\r\nContent-Disposition: form-data; name=\"grant_type\"\r\n\r\nclient_credentials\r\n--x--\r\n"},
		} {
			r := send(t, c, request{path: "/connect/token", header: svcBasic, contentType: tc.contentType, body: tc.body})
			wantError(t, tc.name, r, "invalid_request")
		}
		r := send(t, c, request{path: "/connect/token", header: svcBasic, contentType: "application/x-www-form-urlencoded; charset=UTF-8", body: cc})
		wantToken(t, "form body with charset=UTF-8", r)
	})

	t.Run("duplicates", func(t *testing.T) {
		for _, tc := range []struct {
			name, query, body string
		}{
			{"grant_type twice", "", formBody("grant_type", "client_credentials", "grant_type", "client_credentials")},
			{"scope twice", "", formBody("grant_type", "client_credentials", "scope", "api.read", "scope", "api.write")},
			{"grant_type in query and body", "grant_type=client_credentials", cc},
			{"scope in query and body", "scope=api.write", formBody("grant_type", "client_credentials", "scope", "api.read")},
		} {
			wantError(t, tc.name, send(t, c, request{path: "/connect/token", query: tc.query, header: svcBasic, body: tc.body}), "invalid_request")
		}
	})

	t.Run("empty values", func(t *testing.T) {
		// RFC 6749 §3.2: a parameter without a value is omitted.
		tok := wantToken(t, "scope=", postToken(t, c, svcBasic, formBody("grant_type", "client_credentials", "scope", "")))
		if got := strings.Fields(tok.Scope); !sameSet(got, []string{"api.read", "api.write"}) {
			t.Errorf("scope with scope= = %q, want the default api.read api.write", tok.Scope)
		}
		wantToken(t, "Basic plus client_secret=", postToken(t, c, svcBasic, formBody("grant_type", "client_credentials", "client_secret", "")))
		wantError(t, "grant_type=", postToken(t, c, svcBasic, formBody("grant_type", "")), "invalid_request")
	})

	t.Run("unknown parameter", func(t *testing.T) {
		wantToken(t, "an unknown parameter", postToken(t, c, svcBasic, formBody("grant_type", "client_credentials", "frobnicate", "yes")))
	})

	t.Run("grant_type", func(t *testing.T) {
		wantError(t, "no grant_type", postToken(t, c, svcBasic, formBody("scope", "api.read")), "invalid_request")
		for _, g := range []string{"magic", "CLIENT_CREDENTIALS", "client_credentials ", "urn:example:unknown"} {
			wantError(t, "grant_type="+g, postToken(t, c, svcBasic, formBody("grant_type", g)), "unsupported_grant_type")
		}
	})

	t.Run("query parameters", func(t *testing.T) {
		r := send(t, c, request{path: "/connect/token", query: cc, header: svcBasic, contentType: "application/x-www-form-urlencoded"})
		wantError(t, "every parameter in the query", r, "invalid_request")
		// §2.3.1: credentials in the URL never authenticate.
		r = send(t, c, request{path: "/connect/token", query: formBody("client_id", "svc", "client_secret", "svc-secret"), body: cc})
		wantError(t, "credentials in the query", r, "invalid_request")
	})

	t.Run("malformed bodies", func(t *testing.T) {
		for _, body := range []string{
			"grant_type=client_credentials&scope=%zz",
			"grant_type=client_credentials;scope=api.read",
			"grant_type=client_credentials%00",
			"grant_type=client_credentials&scope=api.read\x00",
			"grant_type=client_credentials&scope=%ff%fe",
			"%",
			"&&&=&=",
		} {
			r := postToken(t, c, svcBasic, body)
			if r.status != http.StatusBadRequest {
				t.Errorf("body %q: HTTP %d %s, want 400", body, r.status, r.body)
			}
		}
	})

	t.Run("oversized", func(t *testing.T) {
		// fosite caps a token request at 1 MiB; a bigger one is refused quickly, not parsed. Only a
		// little over, so that the server reads the whole body and the answer is not lost to a reset.
		r := postToken(t, c, svcBasic, cc+"&pad="+strings.Repeat("a", 1<<20+64<<10))
		if r.status != http.StatusRequestEntityTooLarge && r.status != http.StatusBadRequest {
			t.Errorf("a body over 1 MiB: HTTP %d, want 413 or 400", r.status)
		}
		if r.elapsed > 3*time.Second {
			t.Errorf("a body over 1 MiB: answered in %v, want under 3s", r.elapsed)
		}
		r = refresh(t, c, "web", strings.Repeat("A", 1_000_000), "")
		wantError(t, "a 1 MB refresh_token", r, "invalid_grant")
		if r.elapsed > 3*time.Second {
			t.Errorf("a 1 MB refresh_token: answered in %v, want under 3s", r.elapsed)
		}
	})

	t.Run("refresh token entropy", func(t *testing.T) {
		seen := map[string]bool{}
		for range 4 {
			rt := aliceGrant(t, c, "web", "offline_access").RefreshToken
			// 128 bits need 22 characters of base64url; RFC 6749 A.17 allows only VSCHAR.
			if len(rt) < 22 || strings.IndexFunc(rt, func(r rune) bool { return r < 0x20 || r > 0x7e }) >= 0 {
				t.Errorf("refresh_token = %q, want at least 22 VSCHAR characters (128 bits)", rt)
			}
			if seen[rt] {
				t.Errorf("refresh_token = %q, issued twice, want a fresh random one", rt)
			}
			seen[rt] = true
		}
	})

	t.Run("scope in response", func(t *testing.T) {
		tok := wantToken(t, "no scope", postToken(t, c, svcBasic, cc))
		if got := strings.Fields(tok.Scope); !sameSet(got, []string{"api.read", "api.write"}) {
			t.Errorf("scope without a requested scope = %q, want the granted api.read api.write", tok.Scope)
		}
	})
}

// Client authentication (RFC 6749 §2.3: one method per request, invalid_client for any failure).
func TestAttackClientAuth(t *testing.T) {
	t.Parallel()
	c := startAttackTokengate(t, "1h", "720h")
	cc := formBody("grant_type", "client_credentials")

	t.Run("form-urlencoded Basic", func(t *testing.T) {
		wantToken(t, "Basic foo+bar with a secret holding :%+&=", postToken(t, c, basicAuth("foo+bar", "a:b%c+d&e=f"), cc))
		wantToken(t, "client_secret_post foo+bar", postToken(t, c, nil, cc+"&"+formBody("client_id", "foo+bar", "client_secret", "a:b%c+d&e=f")))
		// Unencoded, "+" is a space: the server decodes, so the raw id names another client.
		wantInvalidClient(t, "Basic foo+bar unencoded", postToken(t, c, basicAuthRaw("foo+bar:a:b%c+d&e=f"), cc), true)
	})

	t.Run("wrong secret", func(t *testing.T) {
		wantInvalidClient(t, "Basic with a wrong secret", postToken(t, c, basicAuth("svc", "svc-secreT"), cc), true)
		wantInvalidClient(t, "post with a wrong secret", postToken(t, c, nil, cc+"&"+formBody("client_id", "svc", "client_secret", "nope")), false)
	})

	t.Run("malformed Basic", func(t *testing.T) {
		for _, h := range []string{
			"Basic !!!not-base64!!!",
			"Basic " + "c3ZjOnN2Yy1zZWNyZXQ", // unpadded
			"Basic",
			"Basic ",
			basicAuthRaw("svc").Get("Authorization"),
			basicAuthRaw(":svc-secret").Get("Authorization"),
			basicAuthRaw("svc:%zz").Get("Authorization"),
			basicAuthRaw("%zz:svc-secret").Get("Authorization"),
			basicAuthRaw("svc:\xff\xfe").Get("Authorization"),
		} {
			// RFC 6749 §5.2: however malformed, it tried Basic, so the 401 carries a Basic challenge.
			wantInvalidClient(t, "Authorization: "+h, postToken(t, c, http.Header{"Authorization": {h}}, cc), true)
		}
	})

	t.Run("no authentication", func(t *testing.T) {
		wantInvalidClient(t, "svc naming itself only", postToken(t, c, nil, cc+"&client_id=svc"), false)
		wantInvalidClient(t, "no client at all", postToken(t, c, nil, cc), false)
		wantInvalidClient(t, "svc with an empty Basic secret", postToken(t, c, basicAuth("svc", ""), cc), true)
	})

	t.Run("unknown client and wrong secret alike", func(t *testing.T) {
		for _, tc := range []struct {
			name                   string
			unknown, wrong         http.Header
			unknownBody, wrongBody string
		}{
			{"Basic", basicAuth("nobody", "svc-secret"), basicAuth("svc", "not-the-secret"), cc, cc},
			{"post", nil, nil, cc + "&" + formBody("client_id", "nobody", "client_secret", "svc-secret"),
				cc + "&" + formBody("client_id", "svc", "client_secret", "not-the-secret")},
		} {
			unknown, wrong := postToken(t, c, tc.unknown, tc.unknownBody), postToken(t, c, tc.wrong, tc.wrongBody)
			if unknown.status != wrong.status || !bytes.Equal(unknown.body, wrong.body) {
				t.Errorf("%s: unknown client = HTTP %d %q, want what a wrong secret gets: HTTP %d %q", tc.name, unknown.status, unknown.body, wrong.status, wrong.body)
			}
			unknown.header.Del("Date")
			wrong.header.Del("Date")
			for name := range mergedKeys(unknown.header, wrong.header) {
				if got, want := unknown.header.Values(name), wrong.header.Values(name); !slices.Equal(got, want) {
					t.Errorf("%s: unknown client's %s = %q, want a wrong secret's %q", tc.name, name, got, want)
				}
			}
		}
	})

	t.Run("constant time", func(t *testing.T) {
		t.Skip("timing through a real Caddy on a shared 2-core machine is too noisy to assert; " +
			"grants compares SHA-256 digests with subtle.ConstantTimeCompare, and every failure lasts as long (TestAttackClientTiming)")
	})

	t.Run("two methods", func(t *testing.T) {
		assertion := unsignedAssertion("svc", c.URL("/connect/token"))
		for _, tc := range []struct {
			name   string
			header http.Header
			body   string
		}{
			{"Basic and a body secret", svcBasic, cc + "&client_secret=svc-secret"},
			{"Basic and an assertion", svcBasic, cc + "&" + formBody("client_assertion_type", jwtBearerAssertionType, "client_assertion", assertion)},
			{"a body secret and an assertion", nil, cc + "&" + formBody("client_id", "svc", "client_secret", "svc-secret",
				"client_assertion_type", jwtBearerAssertionType, "client_assertion", assertion)},
		} {
			wantError(t, tc.name, postToken(t, c, tc.header, tc.body), "invalid_request")
		}
	})

	t.Run("wrong method", func(t *testing.T) {
		// svc is registered for a secret: an assertion (alg none, at that) does not stand in for it.
		body := cc + "&" + formBody("client_id", "svc", "client_assertion_type", jwtBearerAssertionType,
			"client_assertion", unsignedAssertion("svc", c.URL("/connect/token")))
		wantInvalidClient(t, "svc with an unsigned client_assertion", postToken(t, c, nil, body), false)
		// A public client proves nothing; one that sends a secret is an impostor.
		spa := formBody("grant_type", "password", "username", "alice", "password", alicePassword)
		wantInvalidClient(t, "the public spa with a secret", postToken(t, c, basicAuth("spa", "guess"), spa), true)
	})

	t.Run("contradicting client_id", func(t *testing.T) {
		for _, id := range []string{"web", "SVC", "svc "} {
			r := postToken(t, c, svcBasic, cc+"&"+formBody("client_id", id))
			wantErrorIn(t, "Basic svc with client_id="+id, r, "invalid_client", "invalid_request")
		}
	})

	t.Run("look-alike client ids", func(t *testing.T) {
		for _, tc := range []struct{ id, secret string }{
			{"ѕvc", "svc-secret"}, // Cyrillic dze
			{"ｓｖｃ", "svc-secret"}, // fullwidth, NFKC-equal to svc
			{"SVC", "svc-secret"},
			{"svc ", "svc-secret"},
			{" svc", "svc-secret"},
			{"svc\x00", "svc-secret"},
			{"svc\x00x", "svc-secret"},
			{"café", "cafe-secret"},
			{"cafe\u0301", "cafe-secret"}, // NFD
		} {
			wantInvalidClient(t, "Basic as "+tc.id, postToken(t, c, basicAuth(tc.id, tc.secret), cc), true)
			r := postToken(t, c, nil, cc+"&"+formBody("client_id", tc.id, "client_secret", tc.secret))
			// A NUL in the body is refused before anyone is looked up.
			wantErrorIn(t, "post as "+tc.id, r, "invalid_client", "invalid_request")
		}
	})
}

// jwtBearerAssertionType is RFC 7523 §2.2's client_assertion_type.
const jwtBearerAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// unsignedAssertion is an alg:none client assertion for client: what a forger without a key sends.
func unsignedAssertion(client, audience string) string {
	enc := base64.RawURLEncoding.EncodeToString
	claims := fmt.Sprintf(`{"iss":%q,"sub":%q,"aud":%q,"jti":"j1","exp":%d}`, client, client, audience, time.Now().Add(time.Minute).Unix())
	return enc([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + enc([]byte(claims)) + "."
}

// mergedKeys is the set of header names in a or b.
func mergedKeys(a, b http.Header) map[string]bool {
	keys := map[string]bool{}
	for name := range a {
		keys[name] = true
	}
	for name := range b {
		keys[name] = true
	}
	return keys
}

// The refresh_token grant (RFC 6749 §6; RFC 9700 §4.14.2: rotation, and reuse kills the family).
func TestAttackRefresh(t *testing.T) {
	t.Parallel()
	c := startAttackTokengate(t, "1h", "720h")
	const full = "openid offline_access api.read"

	t.Run("rotation", func(t *testing.T) {
		// RFC 9700 §2.2.2: rotation is a MUST for public clients.
		for _, client := range []string{"web", "spa"} {
			first := aliceGrant(t, c, client, full)
			next := wantToken(t, client+" refreshing", refresh(t, c, client, first.RefreshToken, ""))
			if next.AccessToken == first.AccessToken || next.RefreshToken == "" || next.RefreshToken == first.RefreshToken {
				t.Errorf("%s refresh = access %t new, refresh %q, want a new access token and a new refresh token (not %q)",
					client, next.AccessToken != first.AccessToken, next.RefreshToken, first.RefreshToken)
			}
		}
	})

	t.Run("reuse kills the family", func(t *testing.T) {
		first := aliceGrant(t, c, "web", full)
		second := wantToken(t, "first refresh", refresh(t, c, "web", first.RefreshToken, ""))
		wantError(t, "the rotated refresh token again", refresh(t, c, "web", first.RefreshToken, ""), "invalid_grant")
		wantError(t, "the family's newest refresh token after the reuse", refresh(t, c, "web", second.RefreshToken, ""), "invalid_grant")
	})

	t.Run("wider scope", func(t *testing.T) {
		g := aliceGrant(t, c, "web", "offline_access api.read")
		// api.write is the client's, but not this grant's.
		wantError(t, "refresh asking for api.write", refresh(t, c, "web", g.RefreshToken, "offline_access api.read api.write"), "invalid_scope")
	})

	t.Run("narrower scope", func(t *testing.T) {
		g := aliceGrant(t, c, "web", "openid offline_access api.read api.write")
		narrow := wantToken(t, "refresh narrowed to api.read", refresh(t, c, "web", g.RefreshToken, "api.read"))
		var claims struct{ Scope string }
		jwtpart.Decode(t, narrow.AccessToken, jwtpart.Payload, &claims)
		if narrow.Scope != "api.read" || claims.Scope != "api.read" {
			t.Errorf("narrowed refresh: scope = %q, access token scope %q, want api.read", narrow.Scope, claims.Scope)
		}
		again := wantToken(t, "refresh without scope after narrowing", refresh(t, c, "web", narrow.RefreshToken, ""))
		if got := strings.Fields(again.Scope); !sameSet(got, []string{"openid", "offline_access", "api.read", "api.write"}) {
			t.Errorf("refresh after narrowing: scope = %q, want the original grant's", again.Scope)
		}
	})

	t.Run("another client's refresh token", func(t *testing.T) {
		web, spa := aliceGrant(t, c, "web", full), aliceGrant(t, c, "spa", full)
		wantError(t, "spa redeeming web's refresh token", refresh(t, c, "spa", web.RefreshToken, ""), "invalid_grant")
		wantError(t, "web redeeming spa's refresh token", refresh(t, c, "web", spa.RefreshToken, ""), "invalid_grant")
		// A foreign attempt uses nothing up: the owners still refresh.
		wantToken(t, "web after spa tried its token", refresh(t, c, "web", web.RefreshToken, ""))
		wantToken(t, "spa after web tried its token", refresh(t, c, "spa", spa.RefreshToken, ""))
	})

	t.Run("unknown, unauthenticated, unauthorized", func(t *testing.T) {
		g := aliceGrant(t, c, "web", full)
		wantError(t, "an unknown refresh token", refresh(t, c, "web", g.RefreshToken+"x", ""), "invalid_grant")
		wantError(t, "no refresh_token", postToken(t, c, basicAuth("web", "web-secret"), formBody("grant_type", "refresh_token")), "invalid_request")
		body := formBody("grant_type", "refresh_token", "refresh_token", g.RefreshToken, "client_id", "web")
		wantInvalidClient(t, "web's refresh token without web's secret", postToken(t, c, nil, body), false)
		wantError(t, "svc (no refresh_token grant) with web's refresh token", refresh(t, c, "svc", g.RefreshToken, ""), "unauthorized_client")
		wantToken(t, "web after the failed attempts", refresh(t, c, "web", g.RefreshToken, ""))
	})

	t.Run("other tokens as refresh_token", func(t *testing.T) {
		g := aliceGrant(t, c, "web", full)
		wantError(t, "the access token as refresh_token", refresh(t, c, "web", g.AccessToken, ""), "invalid_grant")
		wantError(t, "the ID token as refresh_token", refresh(t, c, "web", g.IDToken, ""), "invalid_grant")
	})

	t.Run("parallel refreshes", func(t *testing.T) {
		g := aliceGrant(t, c, "web", full)
		const racers = 8
		statuses := make([]int, racers)
		var wg sync.WaitGroup
		for i := range racers {
			wg.Go(func() {
				r, err := do(testContext(t), c, request{path: "/connect/token", header: basicAuth("web", "web-secret"),
					body: formBody("grant_type", "refresh_token", "refresh_token", g.RefreshToken)})
				if err != nil {
					t.Error(err)
				}
				statuses[i] = r.status
			})
		}
		wg.Wait()
		if ok := slices.DeleteFunc(slices.Clone(statuses), func(s int) bool { return s != http.StatusOK }); len(ok) != 1 {
			t.Errorf("%d parallel refreshes of one token = HTTP %v, want exactly one 200", racers, statuses)
		}
	})
}

// A refresh family that lives 3 s: its expiry, and the ID tokens a refresh issues (OIDC Core §12.2).
func TestAttackRefreshExpiry(t *testing.T) {
	t.Parallel()
	c := startAttackTokengate(t, "1h", "3s")
	start := time.Now()
	first := aliceGrant(t, c, "web", "openid offline_access")
	time.Sleep(1100 * time.Millisecond) // iat has a resolution of one second
	next := wantToken(t, "refresh within the family's life", refresh(t, c, "web", first.RefreshToken, ""))

	// OIDC Core §12.2: the refreshed ID token is about the same authentication.
	type idClaims struct {
		Iss, Sub, Azp string
		Aud           any
		AuthTime      int64 `json:"auth_time"`
		Iat           int64
	}
	var before, after idClaims
	jwtpart.Decode(t, first.IDToken, jwtpart.Payload, &before)
	jwtpart.Decode(t, next.IDToken, jwtpart.Payload, &after)
	if before.Iss != after.Iss || before.Sub != after.Sub || before.Azp != after.Azp ||
		fmt.Sprint(before.Aud) != fmt.Sprint(after.Aud) || before.AuthTime != after.AuthTime || before.AuthTime == 0 {
		t.Errorf("refreshed id_token = %+v, want iss, sub, aud, azp and auth_time of the first %+v", after, before)
	}
	if after.Iat <= before.Iat {
		t.Errorf("refreshed id_token iat = %d, want later than the first's %d", after.Iat, before.Iat)
	}

	time.Sleep(time.Until(start.Add(3300 * time.Millisecond)))
	wantError(t, "a refresh token past refresh_token_ttl", refresh(t, c, "web", next.RefreshToken, ""), "invalid_grant")
}

// The client_credentials, password and extension grants, and the access tokens they issue (RFC 9068).
func TestAttackGrants(t *testing.T) {
	t.Parallel()
	c := startAttackTokengate(t, "1h", "720h")
	cc := formBody("grant_type", "client_credentials")
	web := basicAuth("web", "web-secret")

	t.Run("client_credentials for a public client", func(t *testing.T) {
		wantError(t, "spa (public) by Basic", postToken(t, c, basicAuth("spa", ""), cc), "unauthorized_client")
		wantError(t, "spa (public) by client_id", postToken(t, c, nil, cc+"&client_id=spa"), "unauthorized_client")
		if tok := wantToken(t, "svc", postToken(t, c, svcBasic, cc)); tok.RefreshToken != "" {
			t.Errorf("client_credentials refresh_token = %q, want none (RFC 6749 §4.4.3)", tok.RefreshToken)
		}
	})

	t.Run("grant and scope not allowed", func(t *testing.T) {
		wantError(t, "web using client_credentials", postToken(t, c, web, cc), "unauthorized_client")
		wantError(t, "svc using password", postToken(t, c, svcBasic,
			formBody("grant_type", "password", "username", "alice", "password", alicePassword)), "unauthorized_client")
		for _, scope := range []string{"admin", "api.read admin", "openid", "api.réad", `api"read`, `api\read`, "api.read\x7f"} {
			wantError(t, "svc asking for scope "+scope, postToken(t, c, svcBasic, cc+"&"+formBody("scope", scope)), "invalid_scope")
		}
	})

	t.Run("default scope", func(t *testing.T) {
		tok := wantToken(t, "svc without scope", postToken(t, c, svcBasic, cc))
		var claims struct{ Scope string }
		jwtpart.Decode(t, tok.AccessToken, jwtpart.Payload, &claims)
		if got := strings.Fields(claims.Scope); !sameSet(got, []string{"api.read", "api.write"}) {
			t.Errorf("access token scope without a requested scope = %q, want svc's api.read api.write", claims.Scope)
		}
	})

	t.Run("password parameters", func(t *testing.T) {
		for _, tc := range []struct{ name, body string }{
			{"no username", formBody("grant_type", "password", "password", alicePassword)},
			{"no password", formBody("grant_type", "password", "username", "alice")},
			{"empty password", formBody("grant_type", "password", "username", "alice", "password", "")},
		} {
			wantError(t, tc.name, postToken(t, c, web, tc.body), "invalid_request")
		}
		wrong := postToken(t, c, web, formBody("grant_type", "password", "username", "alice", "password", "wrong"))
		unknown := postToken(t, c, web, formBody("grant_type", "password", "username", "nobody", "password", "wrong"))
		wantError(t, "a wrong password", wrong, "invalid_grant")
		if unknown.status != wrong.status || !bytes.Equal(unknown.body, wrong.body) {
			t.Errorf("an unknown user = HTTP %d %s, want what a wrong password gets: HTTP %d %s", unknown.status, unknown.body, wrong.status, wrong.body)
		}
	})

	t.Run("password throttling", func(t *testing.T) {
		guess := formBody("grant_type", "password", "username", "carol", "password", "wrong")
		var last reply
		for attempt := 1; attempt <= 10; attempt++ {
			last = postToken(t, c, web, guess)
			if last.status != http.StatusTooManyRequests {
				wantError(t, fmt.Sprintf("wrong password %d for carol", attempt), last, "invalid_grant")
			}
		}
		if last.status != http.StatusTooManyRequests || last.header.Get("Retry-After") == "" {
			t.Errorf("10th wrong password = HTTP %d, Retry-After %q, want 429 with Retry-After", last.status, last.header.Get("Retry-After"))
		}
		right := postToken(t, c, web, formBody("grant_type", "password", "username", "carol", "password", alicePassword))
		if right.status != http.StatusOK && right.status != http.StatusTooManyRequests {
			t.Errorf("carol's right password while throttled = HTTP %d %s, want 200 or 429, never invalid_grant", right.status, right.body)
		}
		aliceGrant(t, c, "web", "api.read") // another username is unaffected
	})

	t.Run("extension grants", func(t *testing.T) {
		for _, g := range []string{"urn:ietf:params:oauth:grant-type:token-exchange", "urn:example:custom"} {
			wantError(t, "unconfigured grant "+g, postToken(t, c, svcBasic, formBody("grant_type", g)), "unsupported_grant_type")
		}
	})

	t.Run("issued access tokens", func(t *testing.T) {
		before := time.Now().Unix()
		for _, tc := range []struct {
			name, sub, client, scope string
			tok                      tokenAnswer
		}{
			{"client_credentials", "svc", "svc", "api.read", wantToken(t, "svc", postToken(t, c, svcBasic, cc+"&scope=api.read"))},
			{"password", "alice", "web", "openid api.read", aliceGrant(t, c, "web", "openid api.read")},
		} {
			var header struct{ Alg, Typ, Kid string }
			jwtpart.Decode(t, tc.tok.AccessToken, jwtpart.Header, &header)
			// RFC 9068 §2.1; this instance signs with RS256, which every resource server must take.
			if header.Typ != "at+jwt" || header.Alg != "RS256" || header.Kid == "" {
				t.Errorf("%s access token header = %+v, want typ at+jwt, alg RS256 and a kid", tc.name, header)
			}
			var claims struct {
				Iss, Sub, Jti, Scope string
				ClientID             string `json:"client_id"`
				Aud                  any
				Exp, Iat             int64
			}
			jwtpart.Decode(t, tc.tok.AccessToken, jwtpart.Payload, &claims)
			if claims.Iss != c.Base || claims.Sub != tc.sub || claims.ClientID != tc.client || claims.Jti == "" || claims.Scope != tc.scope {
				t.Errorf("%s access token = iss %q sub %q client_id %q jti %q scope %q, want %q %q %q, a jti, %q",
					tc.name, claims.Iss, claims.Sub, claims.ClientID, claims.Jti, claims.Scope, c.Base, tc.sub, tc.client, tc.scope)
			}
			if aud := fmt.Sprint(claims.Aud); aud != "api" && aud != "[api]" {
				t.Errorf("%s access token aud = %v, want api", tc.name, claims.Aud)
			}
			if d := claims.Exp - claims.Iat - tc.tok.ExpiresIn; claims.Iat < before-5 || d < -1 || d > 1 {
				t.Errorf("%s access token iat, exp = %d, %d with expires_in %d, want exp - iat = expires_in", tc.name, claims.Iat, claims.Exp, tc.tok.ExpiresIn)
			}
			r := send(t, c, request{method: http.MethodGet, path: "/api/who", header: http.Header{"Authorization": {"Bearer " + tc.tok.AccessToken}}})
			if want := "hello " + tc.sub; r.status != http.StatusOK || string(r.body) != want {
				t.Errorf("GET /api/who with the %s token = HTTP %d %q, want 200 %q", tc.name, r.status, r.body, want)
			}
		}
	})
}
