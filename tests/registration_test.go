package tests

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// registrationCaddyfile is cimdCaddyfile with registration instead of metadata documents, on a
// bolt store so that registered clients survive a restart.
var registrationCaddyfile = strings.NewReplacer(
	"store memory", "store bolt {{DATA}}/tokengate.db",
	"client_id_metadata_documents {\n\t\t\tallow_loopback", "registration {\n\t\t\trate 5 1h",
).Replace(cimdCaddyfile)

// register POSTs metadata (JSON) to the registration endpoint and decodes the answer.
func register(t *testing.T, c *Caddy, metadata string) (reply, map[string]any) {
	t.Helper()
	r := send(t, c, request{path: "/connect/register", contentType: "application/json", body: metadata})
	var answer map[string]any
	json.Unmarshal(r.body, &answer)
	return r, answer
}

// signInAndAllow walks auth through the sign-in and consent pages as alice and returns the code.
func signInAndAllow(t *testing.T, c *Caddy, browser *formClient, auth mcpAuthorization) string {
	t.Helper()
	page := browser.submit(auth.url(c), nil)
	if strings.Contains(page.body, `type="password"`) {
		form := page.fields
		form.Set("username", "alice")
		form.Set("password", alicePassword)
		page = browser.submit(c.URL("/connect/authorize"), form)
	}
	back := consent(t, browser, c, page, "allow")
	if back.location == nil || back.location.Query().Get("code") == "" || back.location.Query().Get("state") != auth.state {
		t.Fatalf("allow: HTTP %d to %v, want a code and the state", back.status, back.location)
	}
	return back.location.Query().Get("code")
}

// TestRegistration is an MCP client without a metadata document: it registers (RFC 7591), signs
// alice in through the consent page, calls the protected route; its registration survives a restart.
// Bad metadata gets RFC 7591's error codes, and a flood from one address 429, a reload notwithstanding.
func TestRegistration(t *testing.T) {
	t.Parallel()
	upstream := startUpstream(t)
	cf := strings.NewReplacer("{{ALICE_HASH}}", aliceHash(), "{{UPSTREAM}}", upstream.URL).Replace(registrationCaddyfile)
	c := startCaddy(t, cf)

	r, answer := register(t, c, `{"redirect_uris":["http://127.0.0.1/callback"],"token_endpoint_auth_method":"none",
		"grant_types":["authorization_code","refresh_token"],"response_types":["code"],"client_name":"Registered MCP client"}`)
	clientID, _ := answer["client_id"].(string)
	if r.status != http.StatusCreated || clientID == "" || strings.HasPrefix(clientID, "https://") || answer["client_secret"] != nil ||
		r.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("registering: HTTP %d %s", r.status, r.body)
	}
	auth := newMCPAuthorization(clientID, "http://127.0.0.1:61000/callback")
	browser := newFormClient(t)
	tokens := auth.redeem(t, c, signInAndAllow(t, c, browser, auth))
	if tokens.Status != http.StatusOK || tokens.RefreshToken == "" {
		t.Fatalf("redeeming the code: %s", tokens)
	}
	if echo := callUpstream(t, c, "/mcp", tokens.AccessToken, nil); echo.Header.Get("X-User") != "alice" {
		t.Errorf("the upstream saw X-User %q, want alice", echo.Header.Get("X-User"))
	}

	for metadata, code := range map[string]string{
		`{"redirect_uris":["http://evil.example/cb"]}`:                                    "invalid_redirect_uri",
		`{"client_name":"no redirect"}`:                                                   "invalid_redirect_uri",
		`{"redirect_uris":["https://a.example/cb"],"grant_types":["client_credentials"]}`: "invalid_client_metadata",
	} {
		if r, answer := register(t, c, metadata); r.status != http.StatusBadRequest || answer["error"] != code {
			t.Errorf("registering %s: HTTP %d %s, want 400 %s", metadata, r.status, r.body, code)
		}
	}

	// A flood from one address: past 5 an hour, 429 with Retry-After, also after a reload (of a
	// changed configuration: Caddy skips reloading one that is the same).
	c.Reload(t, strings.Replace(cf, "rate 5 1h", "rate 5 1h\n\t\t\tmax_clients 999", 1))
	created := 0
	for range 3 {
		r, _ = register(t, c, `{"redirect_uris":["https://a.example/cb"],"token_endpoint_auth_method":"none"}`)
		if r.status == http.StatusCreated {
			created++
		}
	}
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") == "" || created != 1 {
		t.Errorf("after 4 registrations and a reload, 3 more: %d created, the last HTTP %d %s, Retry-After %q; want 1 (5 an hour), then 429",
			created, r.status, r.body, r.header.Get("Retry-After"))
	}

	c.Restart(t)
	again := newMCPAuthorization(clientID, "http://127.0.0.1:61001/callback")
	if got := auth.redeem(t, c, "used-up"); got.Error != "invalid_grant" {
		t.Errorf("after a restart the registered client's request: %s, want invalid_grant (the client is known)", got)
	}
	if tokens := again.redeem(t, c, signInAndAllow(t, c, newFormClient(t), again)); tokens.Status != http.StatusOK {
		t.Errorf("after a reload and a restart: %s", tokens)
	}
}
