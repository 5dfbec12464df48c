package tests

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"
)

// introspect asks /connect/introspect about token as client and returns the decoded answer.
func introspect(t *testing.T, c *Caddy, client, secret, token string) map[string]any {
	t.Helper()
	status, body := postForm(t, c, "/connect/introspect", client, secret, url.Values{"token": {token}})
	var answer map[string]any
	if err := json.Unmarshal(body, &answer); status != http.StatusOK || err != nil {
		t.Fatalf("introspecting as %s: HTTP %d %s (%v), want 200 and JSON", client, status, body, err)
	}
	return answer
}

// revoke asks /connect/revocation, as the client "web", to revoke token; RFC 7009 §2.2 answers 200.
func revoke(t *testing.T, c *Caddy, token string) {
	t.Helper()
	if status, body := postForm(t, c, "/connect/revocation", "web", "web-secret", url.Values{"token": {token}}); status != http.StatusOK {
		t.Fatalf("revoking a token of web: HTTP %d %s, want 200", status, body)
	}
}

// wantInactive checks an introspection answer is exactly {"active":false} (RFC 7662 §2.2: nothing
// about a token the caller may not see).
func wantInactive(t *testing.T, what string, answer map[string]any) {
	t.Helper()
	if len(answer) != 1 || answer["active"] != false {
		t.Errorf("introspecting %s = %v, want exactly {\"active\":false}", what, answer)
	}
}

func TestIntrospectionAndRevocation(t *testing.T) {
	t.Parallel()
	c, _ := startTokengate(t, "1h")
	web := webConfig(c, "openid", "offline_access", "api.read")
	tok := aliceToken(t, c, "openid", "offline_access", "api.read")

	answer := introspect(t, c, "web", "web-secret", tok.AccessToken)
	for name, want := range map[string]any{"active": true, "sub": "alice", "client_id": "web", "iss": c.Base} {
		if answer[name] != want {
			t.Errorf("introspecting web's own access token: %s = %v, want %v (answer %v)", name, answer[name], want, answer)
		}
	}
	for _, name := range []string{"scope", "exp", "iat", "aud", "token_type"} {
		if _, ok := answer[name]; !ok {
			t.Errorf("introspecting web's own access token: no %s in %v", name, answer)
		}
	}
	wantInactive(t, "web's token as svc", introspect(t, c, "svc", "svc-secret", tok.AccessToken))
	wantInactive(t, "garbage", introspect(t, c, "web", "web-secret", "not-a-token"))

	t.Run("access token", func(t *testing.T) {
		callUpstream(t, c, "/api/before-revocation", tok.AccessToken, nil)
		revoke(t, c, tok.AccessToken)
		r := call(t, c, "/api/after-revocation", tok.AccessToken, nil)
		if r.status != http.StatusUnauthorized || !strings.Contains(r.header.Get("WWW-Authenticate"), `error="invalid_token"`) {
			t.Errorf("a revoked access token: HTTP %d WWW-Authenticate %q, want 401 invalid_token", r.status, r.header.Get("WWW-Authenticate"))
		}
		wantInactive(t, "a revoked access token", introspect(t, c, "web", "web-secret", tok.AccessToken))
	})

	t.Run("refresh token", func(t *testing.T) {
		other := aliceToken(t, c, "openid", "offline_access", "api.read")
		callUpstream(t, c, "/api/before-revocation", other.AccessToken, nil)
		revoke(t, c, other.RefreshToken)
		_, err := web.TokenSource(testContext(t), &oauth2.Token{RefreshToken: other.RefreshToken}).Token()
		wantTokenError(t, "a revoked refresh token", err, "invalid_grant", http.StatusBadRequest)
		// The family is dead, and with it the access tokens it issued.
		if r := call(t, c, "/api/after-revocation", other.AccessToken, nil); r.status != http.StatusUnauthorized {
			t.Errorf("an access token of a revoked refresh family: HTTP %d, want 401", r.status)
		}
	})
}
