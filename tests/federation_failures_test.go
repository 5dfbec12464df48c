package tests

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"

	"github.com/tokengate/tokengate/internal/jwtpart"
)

// fakeOP is an OpenID Provider whose token endpoint answers what the test sets: the attacks and
// faults of the callback's steps, which a well-behaved OP never sends.
type fakeOP struct {
	srv *httptest.Server
	key *ecdsa.PrivateKey

	mu sync.Mutex
	// answer makes the token endpoint's answer; nonce is the one the sign-in sent.
	answer func(w http.ResponseWriter, nonce string)
	nonce  string
	// userinfoSub is the userinfo's sub; "" answers the ID token's.
	userinfoSub string
	// discoveryDown makes the discovery document answer 503.
	discoveryDown bool
}

const fakeKID = "fake-1"

func startFakeOP(t *testing.T) *fakeOP {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	op := &fakeOP{key: key}
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		op.mu.Lock()
		down := op.discoveryDown
		op.mu.Unlock()
		if down {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		base := op.srv.URL
		json.NewEncoder(w).Encode(map[string]any{
			"issuer": base, "authorization_endpoint": base + "/authorize", "token_endpoint": base + "/token",
			"jwks_uri": base + "/jwks", "userinfo_endpoint": base + "/userinfo",
			"id_token_signing_alg_values_supported": []string{"ES256"},
			"response_types_supported":              []string{"code"}, "subject_types_supported": []string{"public"},
		})
	})
	mux.HandleFunc("/jwks", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: fakeKID, Algorithm: "ES256", Use: "sig"}}})
	})
	mux.HandleFunc("/token", func(w http.ResponseWriter, r *http.Request) {
		op.mu.Lock()
		answer, nonce := op.answer, op.nonce
		op.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		answer(w, nonce)
	})
	mux.HandleFunc("/userinfo", func(w http.ResponseWriter, r *http.Request) {
		op.mu.Lock()
		sub := op.userinfoSub
		op.mu.Unlock()
		if sub == "" {
			sub = "person-1"
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"sub": sub, "name": "Person One"})
	})
	op.srv = httptest.NewServer(mux)
	t.Cleanup(op.srv.Close)
	return op
}

// idToken signs claims over a valid ID token for the sign-in: the changes replace or, when nil,
// remove its claims.
func (op *fakeOP) idToken(t *testing.T, nonce string, changes map[string]any) string {
	t.Helper()
	now := time.Now()
	claims := jwt.MapClaims{"iss": op.srv.URL, "sub": "person-1", "aud": "tokengate", "exp": now.Add(time.Minute).Unix(),
		"iat": now.Unix(), "nonce": nonce, "email": "person@example.com", "email_verified": true}
	for k, v := range changes {
		if v == nil {
			delete(claims, k)
		} else {
			claims[k] = v
		}
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, claims)
	tok.Header["kid"] = fakeKID
	signed, err := tok.SignedString(op.key)
	if err != nil {
		t.Fatal(err)
	}
	return signed
}

// tokenAnswer answers a token response holding idToken.
func tokenAnswerWith(idToken string) func(http.ResponseWriter, string) {
	return func(w http.ResponseWriter, _ string) {
		json.NewEncoder(w).Encode(map[string]any{"access_token": "upstream-at", "token_type": "Bearer", "expires_in": 60, "id_token": idToken})
	}
}

// federationFailures declares the upstream OP, the fake OP "fake" limited to example.com
// addresses, and "down", which never answers.
var federationFailures = federationConfig("https://rp.example/callback", "zitadel fake down", zitadelBlock+`
		oidc fake {
			issuer {{FAKE}}
			client_id tokengate
			client_secret fake-secret
			allowed_domains example.com
		}
		oidc down {
			issuer {{DOWN}}
			client_id tokengate
		}
`)

// beginAt starts a sign-in of rp at provider and returns the upstream request's state and nonce.
func beginAt(t *testing.T, f *formClient, c *Caddy, provider string) (codeRequest, url.Values) {
	t.Helper()
	req := newCodeRequest("rp", url.Values{"acr_values": {"idp:" + provider}, "scope": {"openid email"}})
	page := f.submit(req.url(c), nil)
	if page.location == nil || page.location.Host == "rp.example" {
		t.Fatalf("idp:%s: HTTP %d to %v, want a redirect to the upstream", provider, page.status, page.location)
	}
	return req, page.location.Query()
}

// wantClientError checks that the browser went back to the client with error and its state, and
// no code.
func wantClientError(t *testing.T, what string, req codeRequest, page formPage, want string) {
	t.Helper()
	if page.location == nil || page.location.Host != "rp.example" {
		t.Fatalf("%s: HTTP %d to %v (%.200s), want a redirect to the client", what, page.status, page.location, page.body)
	}
	q := page.location.Query()
	if q.Get("error") != want || q.Get("state") != req.state || q.Has("code") {
		t.Errorf("%s: back at the client with %v, want error=%s, its state, no code", what, q, want)
	}
}

// wantErrorPage checks the callback answered a 400 page: no redirect, no session.
func wantErrorPage(t *testing.T, what string, page formPage) {
	t.Helper()
	if page.status != http.StatusBadRequest || page.location != nil {
		t.Errorf("%s: HTTP %d to %v, want an error page (400) and no redirect", what, page.status, page.location)
	}
}

func TestFederationFailures(t *testing.T) {
	fake := startFakeOP(t)
	op := listenOP(t)
	c := startCaddy(t, strings.NewReplacer("{{OP}}", op.issuer, "{{FAKE}}", fake.srv.URL, "{{DOWN}}", closedURL(t)).Replace(federationFailures))
	op.serve(t, c.URL("/connect/external/zitadel/callback"))
	callback := func(provider string, q url.Values) string {
		return c.URL("/connect/external/" + provider + "/callback?" + q.Encode())
	}

	// The zitadel OP, up to the moment its answer would reach tokengate.
	upstreamAnswer := func(t *testing.T, f *formClient) (codeRequest, *url.URL) {
		req, _ := beginAt(t, f, c, "zitadel")
		at := f.submit(req.url(c), nil).location
		page := f.submit(at.String(), nil)
		for range 10 {
			switch {
			case page.location != nil && strings.HasPrefix(page.location.String(), c.Base):
				return req, page.location
			case page.location != nil:
				at = page.location
				page = f.submit(at.String(), nil)
			default:
				at = at.ResolveReference(&url.URL{Path: "/login/username"})
				page = f.submit(at.String(), url.Values{"id": {page.fields.Get("id")}, "username": {zitadelUser}, "password": {zitadelPassword}})
			}
		}
		t.Fatal("the upstream never answered")
		return req, nil
	}

	t.Run("replayed state", func(t *testing.T) {
		f := newFormClient(t)
		_, answer := upstreamAnswer(t, f)
		// The browser's pending sign-in cookie, which an attacker who saw it could send again.
		site, _ := url.Parse(c.Base)
		cookies := f.client.Jar.Cookies(site)
		first := f.submit(answer.String(), nil)
		if first.location == nil || first.location.Query().Get("code") == "" {
			t.Fatalf("the first callback: HTTP %d to %v, want a code", first.status, first.location)
		}
		wantErrorPage(t, "the same callback again", f.submit(answer.String(), nil))
		f.client.Jar.SetCookies(site, cookies)
		wantErrorPage(t, "the same callback with the same cookie again", f.submit(answer.String(), nil))
	})
	t.Run("another browser's state", func(t *testing.T) {
		_, answer := upstreamAnswer(t, newFormClient(t))
		wantErrorPage(t, "the callback in another browser", newFormClient(t).submit(answer.String(), nil))
	})
	t.Run("state for another provider", func(t *testing.T) {
		f := newFormClient(t)
		_, answer := upstreamAnswer(t, f)
		wantErrorPage(t, "zitadel's answer at fake's callback", f.submit(callback("fake", answer.Query()), nil))
	})
	t.Run("unknown state", func(t *testing.T) {
		f := newFormClient(t)
		_, answer := upstreamAnswer(t, f)
		q := answer.Query()
		q.Set("state", "forged")
		wantErrorPage(t, "a forged state", f.submit(callback("zitadel", q), nil))
		wantErrorPage(t, "no state", f.submit(callback("zitadel", url.Values{"code": {"x"}}), nil))
	})
	t.Run("iss of another issuer", func(t *testing.T) {
		f := newFormClient(t)
		req, answer := upstreamAnswer(t, f)
		q := answer.Query()
		q.Set("iss", fake.srv.URL)
		wantClientError(t, "a mixed-up iss", req, f.submit(callback("zitadel", q), nil), "server_error")
	})
	for _, tc := range []struct{ sent, want string }{
		{"access_denied", "access_denied"}, {"login_required", "access_denied"},
		{"temporarily_unavailable", "temporarily_unavailable"}, {"invalid_scope", "server_error"},
	} {
		t.Run("upstream error "+tc.sent, func(t *testing.T) {
			f := newFormClient(t)
			req, up := beginAt(t, f, c, "zitadel")
			page := f.submit(callback("zitadel", url.Values{"error": {tc.sent}, "state": {up.Get("state")}}), nil)
			wantClientError(t, "error="+tc.sent, req, page, tc.want)
		})
	}
	t.Run("upstream down", func(t *testing.T) {
		f := newFormClient(t)
		req := newCodeRequest("rp", url.Values{"acr_values": {"idp:down"}, "scope": {"openid email"}})
		wantClientError(t, "idp:down", req, f.submit(req.url(c), nil), "temporarily_unavailable")
	})

	// The fake OP's answers, each after a sign-in begun as a browser does.
	for _, tc := range []struct {
		name   string
		answer func(t *testing.T, nonce string) func(http.ResponseWriter, string)
		want   string
	}{
		{"a valid ID token", func(t *testing.T, nonce string) func(http.ResponseWriter, string) {
			return tokenAnswerWith(fake.idToken(t, nonce, nil))
		}, ""},
		{"wrong nonce", func(t *testing.T, nonce string) func(http.ResponseWriter, string) {
			return tokenAnswerWith(fake.idToken(t, "another", nil))
		}, "server_error"},
		{"no nonce", func(t *testing.T, nonce string) func(http.ResponseWriter, string) {
			return tokenAnswerWith(fake.idToken(t, nonce, map[string]any{"nonce": nil}))
		}, "server_error"},
		{"wrong issuer", func(t *testing.T, nonce string) func(http.ResponseWriter, string) {
			return tokenAnswerWith(fake.idToken(t, nonce, map[string]any{"iss": "https://evil.example"}))
		}, "server_error"},
		{"wrong aud", func(t *testing.T, nonce string) func(http.ResponseWriter, string) {
			return tokenAnswerWith(fake.idToken(t, nonce, map[string]any{"aud": "someone-else"}))
		}, "server_error"},
		{"azp of another client", func(t *testing.T, nonce string) func(http.ResponseWriter, string) {
			return tokenAnswerWith(fake.idToken(t, nonce, map[string]any{"aud": []string{"tokengate", "other"}, "azp": "other"}))
		}, "server_error"},
		{"expired", func(t *testing.T, nonce string) func(http.ResponseWriter, string) {
			return tokenAnswerWith(fake.idToken(t, nonce, map[string]any{"exp": time.Now().Add(-time.Minute).Unix()}))
		}, "server_error"},
		{"no sub", func(t *testing.T, nonce string) func(http.ResponseWriter, string) {
			return tokenAnswerWith(fake.idToken(t, nonce, map[string]any{"sub": ""}))
		}, "server_error"},
		{"unsigned", func(t *testing.T, nonce string) func(http.ResponseWriter, string) {
			raw := fake.idToken(t, nonce, nil)
			parts := strings.Split(raw, ".")
			return tokenAnswerWith(b64url(`{"alg":"none"}`) + "." + parts[1] + ".")
		}, "server_error"},
		{"signed with a key not in the set", func(t *testing.T, nonce string) func(http.ResponseWriter, string) {
			other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"iss": fake.srv.URL, "sub": "person-1", "aud": "tokengate",
				"exp": time.Now().Add(time.Minute).Unix(), "nonce": nonce})
			tok.Header["kid"] = fakeKID
			signed, _ := tok.SignedString(other)
			return tokenAnswerWith(signed)
		}, "server_error"},
		{"no ID token", func(t *testing.T, nonce string) func(http.ResponseWriter, string) {
			return func(w http.ResponseWriter, _ string) { w.Write([]byte(`{"access_token":"x","token_type":"Bearer"}`)) }
		}, "server_error"},
		{"not JSON", func(t *testing.T, nonce string) func(http.ResponseWriter, string) {
			return func(w http.ResponseWriter, _ string) { w.Write([]byte(`<html>`)) }
		}, "server_error"},
		{"token endpoint 400", func(t *testing.T, nonce string) func(http.ResponseWriter, string) {
			return func(w http.ResponseWriter, _ string) {
				w.WriteHeader(http.StatusBadRequest)
				w.Write([]byte(`{"error":"invalid_grant"}`))
			}
		}, "server_error"},
		{"token endpoint 502", func(t *testing.T, nonce string) func(http.ResponseWriter, string) {
			return func(w http.ResponseWriter, _ string) { w.WriteHeader(http.StatusBadGateway) }
		}, "temporarily_unavailable"},
		{"email outside the allowed domains", func(t *testing.T, nonce string) func(http.ResponseWriter, string) {
			return tokenAnswerWith(fake.idToken(t, nonce, map[string]any{"email": "person@example.com.evil.example"}))
		}, "access_denied"},
		{"email not verified", func(t *testing.T, nonce string) func(http.ResponseWriter, string) {
			return tokenAnswerWith(fake.idToken(t, nonce, map[string]any{"email_verified": false}))
		}, "access_denied"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFormClient(t)
			req, up := beginAt(t, f, c, "fake")
			fake.mu.Lock()
			fake.answer = tc.answer(t, up.Get("nonce"))
			fake.mu.Unlock()
			page := f.submit(callback("fake", url.Values{"code": {"upstream-code"}, "state": {up.Get("state")}}), nil)
			if tc.want == "" {
				if page.location == nil || page.location.Query().Get("code") == "" {
					t.Fatalf("a valid answer: HTTP %d to %v (%.200s), want a code", page.status, page.location, page.body)
				}
				tok := redeemRequest(t, c, req, page.location.Query().Get("code"))
				if claims := jwtpart.Claims(t, tok.AccessToken); claims["sub"] != "fake|person-1" || claims["name"] != "Person One" {
					t.Errorf("claims %v, want sub fake|person-1 and userinfo's name", claims)
				}
				return
			}
			wantClientError(t, tc.name, req, page, tc.want)
		})
	}
	t.Run("userinfo about someone else", func(t *testing.T) {
		f := newFormClient(t)
		req, up := beginAt(t, f, c, "fake")
		fake.mu.Lock()
		fake.answer, fake.userinfoSub = tokenAnswerWith(fake.idToken(t, up.Get("nonce"), nil)), "person-2"
		fake.mu.Unlock()
		t.Cleanup(func() { fake.mu.Lock(); fake.userinfoSub = ""; fake.mu.Unlock() })
		wantClientError(t, "userinfo sub", req, f.submit(callback("fake", url.Values{"code": {"c"}, "state": {up.Get("state")}}), nil), "server_error")
	})
	t.Run("slow token endpoint", func(t *testing.T) {
		f := newFormClient(t)
		f.client.Timeout = 20 * time.Second
		req, up := beginAt(t, f, c, "fake")
		fake.mu.Lock()
		fake.answer = func(w http.ResponseWriter, _ string) { time.Sleep(12 * time.Second) }
		fake.mu.Unlock()
		start := time.Now()
		page := f.submit(callback("fake", url.Values{"code": {"c"}, "state": {up.Get("state")}}), nil)
		if took := time.Since(start); took > 11*time.Second {
			t.Errorf("the callback took %v, want the upstream given up after 10 s", took)
		}
		wantClientError(t, "a token endpoint that does not answer", req, page, "temporarily_unavailable")
	})
}

// b64url is s, base64url without padding.
func b64url(s string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(s))
}
