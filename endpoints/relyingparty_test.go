package endpoints

import (
	"context"
	"net/http"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// TestRelyingPartyFlow runs the authorization code flow as widely used relying-party libraries do
// it (x/oauth2 with PKCE, go-oidc): discovery, the browser's sign-in, the exchange, the ID token
// with its nonce, userinfo, and the discovered end-session endpoint.
func TestRelyingPartyFlow(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	provider, err := oidc.NewProvider(ctx, f.issuer)
	if err != nil {
		t.Fatalf("oidc.NewProvider(%q): %v", f.issuer, err)
	}
	cfg := oauth2.Config{ClientID: "web", ClientSecret: "web-secret", Endpoint: provider.Endpoint(),
		RedirectURL: "https://web.example.com/cb", Scopes: []string{oidc.ScopeOpenID, "profile", "email"}}
	pkce := oauth2.GenerateVerifier()
	authURL := cfg.AuthCodeURL("state-1", oauth2.S256ChallengeOption(pkce), oidc.Nonce("nonce-1"))

	b := f.browser()
	req, err := http.NewRequest(http.MethodGet, authURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	loc := b.signIn(b.do(req), "alice", "alice-pw").location(t)
	if loc.Query().Get("state") != "state-1" || loc.Query().Get("iss") != f.issuer {
		t.Errorf("callback %q, want state-1 and iss", loc)
	}
	tok, err := cfg.Exchange(ctx, loc.Query().Get("code"), oauth2.VerifierOption(pkce))
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	rawID, _ := tok.Extra("id_token").(string)
	idt, err := provider.Verifier(&oidc.Config{ClientID: "web", Now: f.Now}).Verify(ctx, rawID)
	if err != nil {
		t.Fatalf("go-oidc Verify: %v", err)
	}
	if idt.Subject != "alice" || idt.Nonce != "nonce-1" {
		t.Errorf("ID token sub %q nonce %q, want alice nonce-1", idt.Subject, idt.Nonce)
	}
	info, err := provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil {
		t.Fatalf("UserInfo: %v", err)
	}
	var claims struct {
		Name  string `json:"name"`
		Email string `json:"email"`
	}
	if err := info.Claims(&claims); err != nil || info.Subject != "alice" || claims.Name != "Alice Liddell" || claims.Email != "alice@example.com" {
		t.Errorf("UserInfo = %q %+v (%v), want alice, her name and email", info.Subject, claims, err)
	}
	var meta struct {
		EndSession string `json:"end_session_endpoint"`
	}
	if err := provider.Claims(&meta); err != nil || meta.EndSession != f.issuer+EndSessionPath {
		t.Errorf("end_session_endpoint = %q (%v), want %q", meta.EndSession, err, f.issuer+EndSessionPath)
	}
}
