package grants

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/tokengate/tokengate/store"
)

func (f *fixture) introspect(token string, who [2]string, extra ...string) *response {
	f.t.Helper()
	return f.do(request{target: "/connect/introspect", body: vals(append([]string{"token", token}, extra...)...).Encode(), basic: who})
}

func (f *fixture) revoke(token string, who [2]string) *response {
	f.t.Helper()
	return f.do(request{target: "/connect/revocation", body: vals("token", token).Encode(), basic: who})
}

var (
	app     = [2]string{"app", "app-secret"}
	other   = [2]string{"other", "other-secret"}
	auditor = [2]string{"auditor", "auditor-secret"}
)

func (f *fixture) expectInactive(what string, resp *response) {
	f.t.Helper()
	if resp.status != http.StatusOK || resp.raw != "{\"active\":false}\n" {
		f.t.Errorf("%s: %d %q, want exactly {\"active\":false}", what, resp.status, resp.raw)
	}
}

func TestIntrospection(t *testing.T) {
	f := newFixture(t)
	login := f.login("openid offline_access api.read")
	access := login.str("access_token")

	resp := f.introspect(access, app)
	if resp.status != 200 || resp.json["active"] != true || resp.str("sub") != "alice" || resp.str("client_id") != "app" ||
		resp.str("scope") != "openid offline_access api.read" || resp.str("iss") != issuer || resp.str("token_type") != "Bearer" ||
		resp.json["exp"] == nil || resp.json["iat"] == nil || resp.json["aud"] == nil {
		t.Errorf("own access token: %d %s", resp.status, resp.raw)
	}
	resp = f.introspect(login.str("refresh_token"), app, "token_type_hint", "refresh_token")
	if resp.json["active"] != true || resp.str("token_type") != "refresh_token" || resp.str("sub") != "alice" || resp.json["iat"] == nil {
		t.Errorf("own refresh token: %s", resp.raw)
	}
	// The hint orders the lookups but is not trusted.
	if resp := f.introspect(access, app, "token_type_hint", "refresh_token"); resp.json["active"] != true {
		t.Errorf("access token with a refresh_token hint: %s", resp.raw)
	}

	f.expectInactive("another client's token", f.introspect(access, other))
	if resp := f.introspect(access, auditor); resp.json["active"] != true {
		t.Errorf("introspect_any: %s", resp.raw)
	}
	f.expectInactive("garbage", f.introspect("garbage", app))
	f.expectInactive("a tampered token", f.introspect(access+"x", app))
	f.expectInactive("an ID token", f.introspect(login.str("id_token"), app))

	rotated := f.refresh(login.str("refresh_token"))
	f.expectOK("refresh", rotated)
	f.expectInactive("a rotated refresh token", f.introspect(login.str("refresh_token"), app))

	f.Advance(2 * time.Hour)
	f.expectInactive("an expired access token", f.introspect(rotated.str("access_token"), app))
}

func TestIntrospectionNeedsAConfidentialClient(t *testing.T) {
	f := newFixture(t)
	access := f.login("offline_access api.read").str("access_token")
	f.expectError("no credentials", f.do(request{target: "/connect/introspect", body: vals("token", access).Encode()}), 401, CodeInvalidClient)
	f.expectError("wrong secret", f.introspect(access, [2]string{"app", "wrong"}), 401, CodeInvalidClient)
	f.expectError("public client", f.do(request{target: "/connect/introspect", body: vals("token", access, "client_id", "spa").Encode()}), 401, CodeInvalidClient)
	f.expectError("missing token", f.do(request{target: "/connect/introspect", body: "", basic: app}), 400, CodeInvalidRequest)
	f.expectError("GET", f.do(request{method: http.MethodGet, target: "/connect/introspect", basic: app}), 405, CodeInvalidRequest)
}

func TestRevokeAccessToken(t *testing.T) {
	f := newFixture(t)
	login := f.login("offline_access api.read")
	access := login.str("access_token")
	if resp := f.revoke(access, other); resp.status != 200 {
		t.Fatalf("revoking another client's token: %d %s, want 200", resp.status, resp.raw)
	}
	if resp := f.introspect(access, app); resp.json["active"] != true {
		t.Fatal("another client revoked app's token")
	}
	if resp := f.revoke(access, app); resp.status != 200 || resp.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("revoke: %d %v", resp.status, resp.header)
	}
	f.expectInactive("a revoked access token", f.introspect(access, app))
	claims, _ := f.verifier.VerifyAccessToken(access)
	if !f.deny.Revoked(claims.JTI, "") {
		t.Error("the gate's deny-list did not learn of the revocation at once")
	}
	// Revoking the access token leaves the refresh token alive.
	f.expectOK("refresh after the access token was revoked", f.refresh(login.str("refresh_token")))
}

func TestRevokeRefreshTokenKillsFamily(t *testing.T) {
	f := newFixture(t)
	login := f.login("offline_access api.read")
	if resp := f.revoke(login.str("refresh_token"), other); resp.status != 200 {
		t.Fatalf("revoking another client's refresh token: %d", resp.status)
	}
	latest := f.refresh(login.str("refresh_token"))
	f.expectOK("refresh after a foreign revocation attempt", latest)

	if resp := f.revoke(latest.str("refresh_token"), app); resp.status != 200 {
		t.Fatalf("revoke: %d", resp.status)
	}
	f.expectError("refresh after revocation", f.refresh(latest.str("refresh_token")), 400, CodeInvalidGrant)
	f.expectInactive("the family's newest access token", f.introspect(latest.str("access_token"), app))
	f.expectInactive("the family's first access token", f.introspect(login.str("access_token"), app))
}

func TestRevokeUnknownTokenIs200(t *testing.T) {
	f := newFixture(t)
	for _, token := range []string{"unknown", "a.b.c"} {
		if resp := f.revoke(token, app); resp.status != 200 {
			t.Errorf("revoke(%q) = %d %s, want 200", token, resp.status, resp.raw)
		}
	}
	f.expectError("missing token", f.do(request{target: "/connect/revocation", basic: app}), 400, CodeInvalidRequest)
	f.expectError("wrong secret", f.revoke("x", [2]string{"app", "wrong"}), 401, CodeInvalidClient)
}

// failingRevocations is a store whose revocation log is unreachable.
type failingRevocations struct{ *store.Memory }

func (failingRevocations) Revoke(context.Context, store.Revocation) error {
	return errors.New("disk on fire")
}

// fosite CVE-2020-15223: a revocation the store did not record must not answer 200.
func TestRevocationStoreFaultIsNot200(t *testing.T) {
	f := newFixture(t)
	access := f.login("offline_access api.read").str("access_token")
	cfg := f.srv.cfg
	cfg.Store = failingRevocations{f.store}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.srv = srv
	resp := f.revoke(access, app)
	f.expectError("revocation with a failing store", resp, http.StatusServiceUnavailable, CodeTemporarilyUnavail)
	if resp := f.introspect(access, app); resp.json["active"] != true {
		t.Fatal("the token was reported revoked")
	}
}

// A client removed by a reload has its tokens revoked, and they stay
// revoked when it is declared again.
func TestRemovedClientTokensStayRevoked(t *testing.T) {
	f := newFixture(t)
	login := f.login("offline_access api.read")
	f.Advance(time.Second)
	f.deny.Add(store.Revocation{Kind: store.RevokedClient, ID: "app", At: f.Now(), Until: f.Now().Add(800 * time.Hour)})
	f.expectError("refresh after the client's removal", f.refresh(login.str("refresh_token")), 400, CodeInvalidGrant)
	f.expectInactive("access token after the client's removal", f.introspect(login.str("access_token"), app))
	f.Advance(time.Second)
	f.expectOK("a token issued after the client came back", f.refresh(f.login("offline_access api.read").str("refresh_token")))
}

// TestIntrospectedRefreshIssuedAt: a refresh token's iat is its own issue time, read from the
// token, though a family's tokens all store their first token's grant unchanged; a token from
// before tokens carried it answers with the time its grant holds.
func TestIntrospectedRefreshIssuedAt(t *testing.T) {
	f := newFixture(t)
	first := f.login("openid offline_access api.read").str("refresh_token")
	f.Advance(90 * time.Second)
	second := f.refresh(first).str("refresh_token")
	resp := f.introspect(second, app, "token_type_hint", "refresh_token")
	if got, _ := resp.json["iat"].(float64); int64(got) != f.Now().Unix() {
		t.Errorf("a rotated-to token: iat %v, want %d (%s)", resp.json["iat"], f.Now().Unix(), resp.raw)
	}

	_, record := oldFamilyToken(t, f)
	issued := f.Now()
	f.Advance(time.Minute)
	legacy := randomToken()
	if err := f.store.CreateRefreshToken(t.Context(), hashToken(legacy), record); err != nil {
		t.Fatal(err)
	}
	resp = f.introspect(legacy, app, "token_type_hint", "refresh_token")
	if got, _ := resp.json["iat"].(float64); int64(got) != issued.Unix() {
		t.Errorf("a token without its issue time: iat %v, want its grant's %d (%s)", resp.json["iat"], issued.Unix(), resp.raw)
	}
}
