package grants

import (
	"context"
	"testing"
	"time"
)

// withTokenExchange registers the token exchange and a client "exchanger" allowed it, with
// audiences api and downstream, which may exchange tokens for api (app's); and "frontend", whose
// client_credentials tokens are for the exchanger itself.
func withTokenExchange(f *fixture, cfg *Config) {
	cfg.Extensions = append(cfg.Extensions, new(TokenExchange))
	cfg.Clients = append(cfg.Clients, &Client{ID: "exchanger", Secrets: secrets(f.t, "exchanger-secret"),
		Grants: []string{GrantTypeTokenExchange}, Scopes: []string{"api.read", "api.write"}, Audience: []string{"api", "downstream"},
		ExchangeAudiences: []string{"api"}},
		&Client{ID: "frontend", Secrets: secrets(f.t, "frontend-secret"), Grants: []string{"client_credentials"},
			Scopes: []string{"api.read"}, Audience: []string{"exchanger"}})
}

// clientCredentials returns a client_credentials access token of client, whose secret is
// <client>-secret.
func (f *fixture) clientCredentials(client string) string {
	f.t.Helper()
	resp := f.do(request{body: "grant_type=client_credentials", basic: [2]string{client, client + "-secret"}})
	f.expectOK(client+"'s client_credentials token", resp)
	return resp.str("access_token")
}

// RFC 8693 §2.2.2: a client exchanges only the tokens addressed to it, by its client_id or its
// exchange audiences.
func TestTokenExchangeOnlyOfTokensForTheClient(t *testing.T) {
	f := newFixture(t, withTokenExchange)
	f.expectOK("a token whose aud is the exchanger's client_id", f.exchange(subjectOf(f.clientCredentials("frontend"))...))
	f.expectOK("a token of an exchange audience", f.exchange(subjectOf(f.clientCredentials("app"))...))
	// plain's tokens are for the issuer, which the exchanger does not speak for.
	f.expectError("a token for another audience", f.exchange(subjectOf(f.do(request{body: "grant_type=client_credentials",
		basic: [2]string{"plain", "p:%+& secret"}}).str("access_token"))...), 400, CodeInvalidRequest)
	f.reload(func(cfg *Config) { cfg.client("exchanger").ExchangeAudiences = nil })
	f.expectError("a token of an audience no longer the exchanger's", f.exchange(subjectOf(f.clientCredentials("app"))...), 400, CodeInvalidRequest)
}

// An exchanged token dies with its subject token, whichever grant issued it, and so does a token
// exchanged from it in turn; revoking an exchanged token leaves its subject token alive.
func TestTokenExchangeRevokedWithItsSubject(t *testing.T) {
	f := newFixture(t, withTokenExchange)
	active := func(token string) bool {
		c, err := f.verifier.VerifyAccessToken(token)
		if err != nil {
			t.Fatal(err)
		}
		return !f.deny.Revoked(c.JTI, c.GrantID, c.DerivedFrom...)
	}
	revoke := func(client, token string) {
		t.Helper()
		if r := f.do(request{target: "/connect/revocation", body: vals("token", token).Encode(), basic: [2]string{client, client + "-secret"}}); r.status != 200 {
			t.Fatalf("revocation: %d %s", r.status, r.raw)
		}
	}
	exchanged := func(subject string) string {
		t.Helper()
		resp := f.exchange(subjectOf(subject)...)
		f.expectOK("exchange", resp)
		return resp.str("access_token")
	}
	subject := f.clientCredentials("frontend")
	first := exchanged(subject)
	second := exchanged(first)
	if c, _ := f.verifier.VerifyAccessToken(second); len(c.DerivedFrom) != 2 {
		t.Errorf("a second hop's derived_from = %q, want the jtis of both tokens before it", c.DerivedFrom)
	}
	revoke("exchanger", first)
	if active(second) || !active(subject) {
		t.Errorf("after the first exchanged token was revoked: second active %v, subject active %v, want false, true", active(second), active(subject))
	}

	other := exchanged(subject)
	revoke("frontend", subject)
	if active(other) {
		t.Error("a token exchanged from a revoked client_credentials token is active")
	}
	f.expectError("exchanging a token exchanged from a revoked one", f.exchange(subjectOf(other)...), 400, CodeInvalidRequest)

	// A person's access token, of a refresh family: revoking the access token alone is enough.
	user := f.login("offline_access api.read").str("access_token")
	fromUser := exchanged(user)
	revoke("app", user)
	if active(fromUser) {
		t.Error("a token exchanged from a revoked password-grant access token is active")
	}
}

// exchange posts a token exchange as the exchanger.
func (f *fixture) exchange(kv ...string) *response {
	f.t.Helper()
	return f.do(request{body: vals(append([]string{"grant_type", GrantTypeTokenExchange}, kv...)...).Encode(),
		basic: [2]string{"exchanger", "exchanger-secret"}})
}

func subjectOf(subject string) []string {
	return []string{"subject_token", subject, "subject_token_type", TokenTypeAccessToken}
}

// RFC 8693: the exchanged token is the subject's, the exchanger's, never wider than the subject
// token, and dies with the subject token's grant.
func TestTokenExchange(t *testing.T) {
	f := newFixture(t, withTokenExchange)
	user := f.post(vals("grant_type", "password", "username", "alice", "password", "alice-pw", "scope", "api.read offline_access"))
	f.expectOK("alice's token", user)
	subject := user.str("access_token")
	resp := f.exchange(append(subjectOf(subject), "audience", "downstream")...)
	f.expectOK("exchange", resp)
	if resp.str("issued_token_type") != TokenTypeAccessToken || resp.str("refresh_token") != "" {
		t.Errorf("exchange response = %s, want issued_token_type access_token and no refresh token", resp.raw)
	}
	c, err := f.verifier.VerifyAccessToken(resp.str("access_token"))
	if err != nil {
		t.Fatal(err)
	}
	s, _ := f.verifier.VerifyAccessToken(subject)
	if c.Subject != "alice" || c.ClientID != "exchanger" || c.Scope != "api.read" || len(c.Audience) != 1 || c.Audience[0] != "downstream" {
		t.Errorf("exchanged token sub, client_id, scope, aud = %q, %q, %q, %q, want alice, exchanger, api.read, [downstream]", c.Subject, c.ClientID, c.Scope, c.Audience)
	}
	if c.GrantID != s.GrantID || c.ExpiresAt.After(s.ExpiresAt) {
		t.Errorf("exchanged token gid %q exp %v, want the subject token's gid %q and exp by %v", c.GrantID, c.ExpiresAt, s.GrantID, s.ExpiresAt)
	}

	for _, tc := range []struct {
		name string
		kv   []string
		code string
	}{
		{"no subject_token", []string{"subject_token_type", TokenTypeAccessToken}, CodeInvalidRequest},
		{"no subject_token_type", []string{"subject_token", subject}, CodeInvalidRequest},
		{"an ID token type", []string{"subject_token", subject, "subject_token_type", "urn:ietf:params:oauth:token-type:id_token"}, CodeInvalidRequest},
		{"a forged subject token", subjectOf(subject[:len(subject)-4] + "AAAA"), CodeInvalidRequest},
		{"a refresh token as subject", subjectOf(user.str("refresh_token")), CodeInvalidRequest},
		{"a wider scope", append(subjectOf(subject), "scope", "api.write"), CodeInvalidScope},
		{"a scope the exchanger lacks", append(subjectOf(subject), "scope", "openid"), CodeInvalidScope},
		{"a foreign audience", append(subjectOf(subject), "audience", "https://evil.example.com"), CodeInvalidTarget},
		{"a refresh token asked for", append(subjectOf(subject), "requested_token_type", "urn:ietf:params:oauth:token-type:refresh_token"), CodeInvalidRequest},
		{"actor_token_type without actor_token", append(subjectOf(subject), "actor_token_type", TokenTypeAccessToken), CodeInvalidRequest},
	} {
		f.expectError(tc.name, f.exchange(tc.kv...), 400, tc.code)
	}
	f.expectError("a client without the grant", f.post(vals(append([]string{"grant_type", GrantTypeTokenExchange}, subjectOf(subject)...)...)),
		400, CodeUnauthorizedClient)

	// Revoking alice's grant revokes what was exchanged from it.
	if r := f.do(request{target: "/connect/revocation", body: vals("token", user.str("refresh_token")).Encode(), basic: [2]string{"app", "app-secret"}}); r.status != 200 {
		t.Fatalf("revocation: %d %s", r.status, r.raw)
	}
	in := f.do(request{target: "/connect/introspect", body: vals("token", resp.str("access_token")).Encode(), basic: [2]string{"exchanger", "exchanger-secret"}})
	if in.raw != `{"active":false}`+"\n" {
		t.Errorf("the exchanged token after its subject's grant was revoked: %s, want inactive", in.raw)
	}
	f.expectError("a revoked subject token", f.exchange(subjectOf(subject)...), 400, CodeInvalidRequest)
}

// RFC 8693 §4.1: with an actor token the new token says who acts for whom, and a chain nests.
func TestTokenExchangeDelegation(t *testing.T) {
	f := newFixture(t, withTokenExchange)
	subject := f.post(vals("grant_type", "password", "username", "alice", "password", "alice-pw", "scope", "api.read"))
	actor := f.do(request{body: "grant_type=client_credentials", basic: [2]string{"plain", "p:%+& secret"}})
	f.expectOK("subject", subject)
	f.expectOK("actor", actor)
	resp := f.exchange(append(subjectOf(subject.str("access_token")), "actor_token", actor.str("access_token"), "actor_token_type", TokenTypeAccessToken)...)
	f.expectOK("delegation", resp)
	c, _ := f.verifier.VerifyAccessToken(resp.str("access_token"))
	act, _ := c.All["act"].(map[string]any)
	if c.Subject != "alice" || act["sub"] != "plain" || act["client_id"] != "plain" {
		t.Fatalf("delegated token sub %q act %v, want alice acted for by plain", c.Subject, c.All["act"])
	}
	again := f.exchange(append(subjectOf(resp.str("access_token")), "actor_token", actor.str("access_token"), "actor_token_type", TokenTypeAccessToken)...)
	f.expectOK("a second hop", again)
	c, _ = f.verifier.VerifyAccessToken(again.str("access_token"))
	if act, _ := c.All["act"].(map[string]any); act["act"] == nil {
		t.Errorf("second hop act = %v, want the first act nested", c.All["act"])
	}
	f.expectError("a forged actor token", f.exchange(append(subjectOf(subject.str("access_token")), "actor_token", "a.b.c", "actor_token_type", TokenTypeAccessToken)...),
		400, CodeInvalidRequest)
}

// rogue is an extension that grants more than configuration allows.
type rogue struct{ res ExtensionResult }

func (*rogue) GrantType() string { return "urn:example:rogue" }

func (r *rogue) Grant(context.Context, ExtensionRequest) (ExtensionResult, *Error) { return r.res, nil }

// Whatever an extension returns, the token stays within the client's scopes, audiences and
// claims: a faulty extension is a 500, not a wider token.
func TestExtensionResultIsChecked(t *testing.T) {
	r := &rogue{}
	f := newFixture(t, func(_ *fixture, cfg *Config) {
		cfg.Extensions = append(cfg.Extensions, r)
		cfg.Clients = append(cfg.Clients, &Client{ID: "ext", Secrets: secrets(t, "ext-secret"), Grants: []string{"urn:example:rogue"},
			Scopes: []string{"api.read"}, Audience: []string{"api"}})
	})
	for _, tc := range []struct {
		name string
		res  ExtensionResult
		code string
	}{
		{"a scope not the client's", ExtensionResult{Subject: "x", Scope: []string{"api.admin"}}, CodeServerError},
		{"an audience not the client's", ExtensionResult{Subject: "x", Scope: []string{"api.read"}, Audience: []string{"other"}}, CodeServerError},
		{"a registered claim", ExtensionResult{Subject: "x", Scope: []string{"api.read"}, Claims: map[string]any{"sub": "root"}}, CodeServerError},
		{"no subject", ExtensionResult{Scope: []string{"api.read"}}, CodeServerError},
		{"already expired", ExtensionResult{Subject: "x", Scope: []string{"api.read"}, ExpiresBy: f.Now().Add(-time.Second)}, CodeInvalidGrant},
	} {
		r.res = tc.res
		resp := f.do(request{body: "grant_type=urn:example:rogue", basic: [2]string{"ext", "ext-secret"}})
		if resp.str("error") != tc.code {
			t.Errorf("%s: %d %s, want %s", tc.name, resp.status, resp.raw, tc.code)
		}
	}
	r.res = ExtensionResult{Subject: "x", Scope: []string{"api.read"}}
	f.expectOK("a result within bounds", f.do(request{body: "grant_type=urn:example:rogue", basic: [2]string{"ext", "ext-secret"}}))
}
