package endpoints

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tokengate/tokengate/store"
	"github.com/tokengate/tokengate/tokens"
)

func (f *fixture) userinfo(method, auth, body, query string) (*page, map[string]any) {
	f.t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+UserinfoPath+query, strings.NewReader(body))
	if err != nil {
		f.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	got := f.browser().do(req)
	var claims map[string]any
	json.Unmarshal([]byte(got.body), &claims)
	return got, claims
}

// TestUserinfoClaimsByScope: sub always; profile and email claims only with their scope; the user's
// other claims (tenant, their own) with openid; never the token's registered claims nor the
// client's static claims.
func TestUserinfoClaimsByScope(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		scope string
		want  map[string]any
	}{
		{"openid", map[string]any{"sub": "alice", "department": "research", "tenant": "acme"}},
		{"openid profile", map[string]any{"sub": "alice", "department": "research", "tenant": "acme", "name": "Alice Liddell", "given_name": "Alice"}},
		{"openid email api.read", map[string]any{"sub": "alice", "department": "research", "tenant": "acme", "email": "alice@example.com", "email_verified": true}},
	} {
		token := f.accessToken(tc.scope, "g1")
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			got, claims := f.userinfo(method, "Bearer "+token, "", "")
			if got.status != http.StatusOK || got.header.Get("Content-Type") != "application/json" || got.header.Get("Cache-Control") != "no-store" {
				t.Errorf("%s userinfo (%s) = %d %q %q, want 200 JSON no-store", method, tc.scope, got.status, got.header.Get("Content-Type"), got.header.Get("Cache-Control"))
			}
			if a, b := mustJSON(claims), mustJSON(tc.want); a != b {
				t.Errorf("%s userinfo (%s) = %s, want %s", method, tc.scope, a, b)
			}
		}
	}
	// RFC 6750 §2.2: the token as a form parameter of a POST.
	body := url.Values{"access_token": {f.accessToken("openid", "g1")}}.Encode()
	if got, claims := f.userinfo(http.MethodPost, "", body, ""); got.status != http.StatusOK || claims["sub"] != "alice" {
		t.Errorf("userinfo with the token in the body = %d %v, want 200 sub alice", got.status, claims)
	}
}

// TestUserinfoRefusals: RFC 6750 §3 answers for a missing, bad, foreign, revoked or under-scoped
// token, and for a token sent two ways.
func TestUserinfoRefusals(t *testing.T) {
	f := newFixture(t)
	good := f.accessToken("openid profile", "g1")
	revoked := f.accessToken("openid", "g-dead")
	if err := f.store.Revoke(context.Background(), store.Revocation{Kind: store.RevokedFamily, ID: "g-dead", Until: f.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := f.deny.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	other := newFixture(t)
	foreign := other.accessToken("openid", "g1")
	idToken, err := f.minter.IDToken(tokens.IDToken{Subject: "alice", ClientID: "web", TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	realm := `realm="` + f.issuer + `"`
	for _, tc := range []struct {
		name, method, auth, body, query string
		status                          int
		challenge                       string
	}{
		{"no token", http.MethodGet, "", "", "", http.StatusUnauthorized, "Bearer " + realm},
		{"Basic", http.MethodGet, "Basic d2ViOndlYi1zZWNyZXQ=", "", "", http.StatusUnauthorized, "Bearer " + realm},
		{"garbage", http.MethodGet, "Bearer abc", "", "", http.StatusUnauthorized, "Bearer " + realm + `, error="invalid_token"`},
		{"tampered", http.MethodGet, "Bearer " + good[:len(good)-4] + "AAAA", "", "", http.StatusUnauthorized, "Bearer " + realm + `, error="invalid_token"`},
		{"another issuer's key", http.MethodGet, "Bearer " + foreign, "", "", http.StatusUnauthorized, "Bearer " + realm + `, error="invalid_token"`},
		{"an ID token", http.MethodGet, "Bearer " + idToken, "", "", http.StatusUnauthorized, "Bearer " + realm + `, error="invalid_token"`},
		{"revoked grant", http.MethodGet, "Bearer " + revoked, "", "", http.StatusUnauthorized, "Bearer " + realm + `, error="invalid_token"`},
		{"no openid", http.MethodGet, "Bearer " + f.accessToken("api.read profile", "g1"), "", "", http.StatusForbidden,
			"Bearer " + realm + `, error="insufficient_scope", scope="openid"`},
		{"header and body", http.MethodPost, "Bearer " + good, "access_token=" + good, "", http.StatusBadRequest, "Bearer " + realm + `, error="invalid_request"`},
		{"query", http.MethodGet, "", "", "?access_token=" + good, http.StatusBadRequest, "Bearer " + realm + `, error="invalid_request"`},
	} {
		got, claims := f.userinfo(tc.method, tc.auth, tc.body, tc.query)
		if got.status != tc.status || got.header.Get("WWW-Authenticate") != tc.challenge {
			t.Errorf("%s: userinfo = %d %q, want %d %q", tc.name, got.status, got.header.Get("WWW-Authenticate"), tc.status, tc.challenge)
		}
		if claims != nil {
			t.Errorf("%s: userinfo answered claims %v", tc.name, claims)
		}
	}
	f.Advance(time.Hour + time.Minute)
	if got, _ := f.userinfo(http.MethodGet, "Bearer "+good, "", ""); got.status != http.StatusUnauthorized {
		t.Errorf("an expired token: userinfo = %d, want 401", got.status)
	}
}

// TestUserinfoMethods: GET and POST, an OPTIONS preflight for browser apps, nothing else.
func TestUserinfoMethods(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		method string
		status int
		header string
		value  string
	}{
		{http.MethodOptions, http.StatusNoContent, "Access-Control-Allow-Headers", "Authorization, Content-Type"},
		{http.MethodPut, http.StatusMethodNotAllowed, "Allow", "GET, POST, OPTIONS"},
		{http.MethodDelete, http.StatusMethodNotAllowed, "Allow", "GET, POST, OPTIONS"},
	} {
		got, _ := f.userinfo(tc.method, "Bearer "+f.accessToken("openid", "g1"), "", "")
		if got.status != tc.status || got.header.Get(tc.header) != tc.value {
			t.Errorf("%s %s = %d %s %q, want %d %q", tc.method, UserinfoPath, got.status, tc.header, got.header.Get(tc.header), tc.status, tc.value)
		}
	}
}
