package tests

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// lifecycleClients are the clients a lifecycleConfig may declare, by client_id. Each one's secret
// is its id followed by "-secret"; user clients sign in as alice (alicePassword).
var lifecycleClients = map[string]string{
	"web": `grants password refresh_token
			scopes openid offline_access api.read`,
	"partner": `grants password refresh_token
			scopes offline_access api.read`,
	"svc": `grants client_credentials
			scopes api.read`,
	"newcomer": `grants client_credentials
			scopes api.read`,
}

// lifecycleConfig is a tokengate configuration for the lifecycle tests: one site that serves the
// endpoints and guards /api/* (scope api.read, audience api) in front of a fixed answer.
type lifecycleConfig struct {
	// issuer is the iss of every token; empty means {{BASE}}. Instances sharing one store need one.
	issuer string
	// options are extra lines of the tokengate global option (store, signing_key_rotation).
	options []string
	// accessTTL is access_token_ttl; empty means the default.
	accessTTL string
	// clients are the names, in lifecycleClients, of the clients to declare.
	clients []string
}

// caddyfile renders the configuration for startCaddy.
func (cfg *lifecycleConfig) caddyfile() string {
	var b strings.Builder
	issuer := cmp.Or(cfg.issuer, "{{BASE}}")
	fmt.Fprintf(&b, "{\n\ttokengate {\n\t\tissuer %s\n", issuer)
	for _, opt := range cfg.options {
		fmt.Fprintf(&b, "\t\t%s\n", opt)
	}
	if cfg.accessTTL != "" {
		fmt.Fprintf(&b, "\t\taccess_token_ttl %s\n", cfg.accessTTL)
	}
	for _, id := range cfg.clients {
		fmt.Fprintf(&b, "\t\tclient %s {\n\t\t\tsecret %s-secret\n\t\t\t%s\n\t\t\taudience api\n\t\t}\n", id, id, lifecycleClients[id])
	}
	fmt.Fprintf(&b, "\t\tusers local {\n\t\t\tuser alice %s\n\t\t}\n\t}\n}\n", aliceHash())
	b.WriteString(`
{{BASE}} {
	tokengate
	bearer_auth /api/* {
		audience api
		scope api.read
	}
	respond /api/* "upstream reached" 200
}
`)
	return b.String()
}

// refreshToken redeems refreshToken at c as client (RFC 6749 §6).
func refreshToken(ctx context.Context, c *Caddy, client, refreshToken string) (tokenAnswer, error) {
	return requestToken(ctx, c, client, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshToken}})
}

// signIn signs alice in through client with the password grant, asking for a refresh token, and
// fails the test unless it gets one.
func signIn(t *testing.T, c *Caddy, client string) tokenAnswer {
	t.Helper()
	a, err := requestToken(testContext(t), c, client, url.Values{
		"grant_type": {"password"}, "username": {"alice"}, "password": {alicePassword},
		"scope": {"offline_access api.read"},
	})
	if err != nil || a.Status != http.StatusOK || a.AccessToken == "" || a.RefreshToken == "" {
		t.Fatalf("password grant for alice through %s: %v (%v), want 200 with both tokens", client, a, err)
	}
	return a
}

// mustRefresh redeems refreshToken at c as client and fails the test unless it gets new tokens.
func mustRefresh(t *testing.T, c *Caddy, client, refresh, what string) tokenAnswer {
	t.Helper()
	a, err := refreshToken(testContext(t), c, client, refresh)
	if err != nil || a.Status != http.StatusOK || a.RefreshToken == "" || a.RefreshToken == refresh {
		t.Fatalf("%s: refresh = %v (%v), want 200 with a new refresh token", what, a, err)
	}
	return a
}

// wantRefreshRefused checks that refreshToken no longer works at c: 400 invalid_grant (RFC 6749
// §5.2), or invalid_client when the client itself is gone (unknownClient).
func wantRefreshRefused(t *testing.T, c *Caddy, client, refresh, what string, unknownClient bool) {
	t.Helper()
	a, err := refreshToken(testContext(t), c, client, refresh)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	want := []string{"invalid_grant"}
	if unknownClient {
		want = append(want, "invalid_client")
	}
	if !slices.Contains(want, a.Error) || a.Status >= 500 {
		t.Errorf("%s: refresh = %v, want a 4xx with error %q", what, a, want)
	}
}

// wantGate checks that bearer_auth at c answers token with status: 200 (the upstream answered) or
// 401 (RFC 6750 §3.1 invalid_token).
func wantGate(t *testing.T, c *Caddy, token string, status int, what string) {
	t.Helper()
	got, err := gateStatus(testContext(t), c, token, strings.ReplaceAll(what, " ", "-"))
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if got != status {
		t.Errorf("%s: bearer_auth answered HTTP %d, want %d", what, got, status)
	}
}
