package grants

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
)

const (
	dynamicID       = "https://mcp-client.example/client.json"
	dynamicRedirect = "http://127.0.0.1/callback"
	brokenID        = "https://broken.example/client.json"
	downID          = "https://down.example/client.json"
)

// fakeSource resolves one dynamic client, refuses brokenID, and owns both; lookups counts its calls.
type fakeSource struct {
	client  *Client
	lookups atomic.Int64
	// disowned makes Owns answer false, as when the source is no longer configured.
	disowned atomic.Bool
}

func (s *fakeSource) LookupClient(_ context.Context, id string) (*Client, error) {
	s.lookups.Add(1)
	switch id {
	case dynamicID:
		return s.client, nil
	case brokenID:
		return nil, errors.New("the document's client_id is not its URL")
	case downID:
		return nil, fmt.Errorf("%w: the store does not answer", ErrSourceUnavailable)
	}
	return nil, ErrNotOwned
}

func (s *fakeSource) Owns(id string) bool {
	return !s.disowned.Load() && (id == dynamicID || id == brokenID)
}

// withSource gives the fixture a ClientSource resolving a public dynamic client.
func withSource(src *fakeSource) func(*fixture, *Config) {
	return func(_ *fixture, cfg *Config) {
		src.client = &Client{ID: dynamicID, Dynamic: true, Public: true, DisplayName: "MCP client",
			Grants: []string{"authorization_code", "refresh_token"}, Scopes: []string{"openid", "offline_access", "api.read"},
			RedirectURIs: []string{dynamicRedirect}}
		cfg.ClientSource = src
	}
}

func TestClientSourceResolvesAtEveryEndpoint(t *testing.T) {
	src := &fakeSource{}
	f := newFixture(t, withSource(src))
	code := f.code(func(g *CodeGrant) { g.ClientID, g.RedirectURI = dynamicID, dynamicRedirect })
	resp := f.do(request{body: vals("grant_type", "authorization_code", "client_id", dynamicID, "code", code,
		"redirect_uri", dynamicRedirect, "code_verifier", verifier).Encode()})
	f.expectOK("a dynamic client redeems its code", resp)
	claims, err := f.verifier.VerifyAccessToken(resp.str("access_token"))
	if err != nil || claims.ClientID != dynamicID {
		t.Fatalf("access token = %+v, %v; want client_id %q", claims, err, dynamicID)
	}
	// RFC 7662: a client that may introspect any token sees the dynamic client's as active.
	introspect := func(token string) *response {
		return f.do(request{target: "/connect/introspect", body: vals("token", token).Encode(), basic: [2]string{"auditor", "auditor-secret"}})
	}
	if got := introspect(resp.str("access_token")); got.json["active"] != true || got.json["client_id"] != dynamicID {
		t.Errorf("introspection of the dynamic client's access token = %s, want active", got.raw)
	}
	if got := introspect(resp.str("refresh_token")); got.json["active"] != true {
		t.Errorf("introspection of the dynamic client's refresh token = %s, want active", got.raw)
	}
	// A client the source no longer owns has no live tokens.
	src.disowned.Store(true)
	if got := introspect(resp.str("access_token")); got.json["active"] != false {
		t.Errorf("introspection once the source disowns the client = %s, want inactive", got.raw)
	}
	src.disowned.Store(false)
	// RFC 7009: the public dynamic client revokes its own refresh token with its client_id alone.
	revoked := f.do(request{target: "/connect/revocation", body: vals("token", resp.str("refresh_token"), "client_id", dynamicID).Encode()})
	if revoked.status != http.StatusOK {
		t.Fatalf("revocation = %d %s", revoked.status, revoked.raw)
	}
	f.expectError("the revoked refresh token",
		f.do(request{body: vals("grant_type", "refresh_token", "client_id", dynamicID, "refresh_token", resp.str("refresh_token")).Encode()}),
		400, CodeInvalidGrant)
}

func TestClientSourceRefusals(t *testing.T) {
	src := &fakeSource{}
	f := newFixture(t, withSource(src))
	for _, id := range []string{brokenID, "https://unknown.example/client.json"} {
		f.expectError("a client_id the source cannot resolve: "+id,
			f.do(request{body: vals("grant_type", "authorization_code", "client_id", id, "code", "x", "redirect_uri", dynamicRedirect).Encode()}),
			http.StatusUnauthorized, CodeInvalidClient)
	}
	// A source that cannot tell now is a fault: 503, never invalid_client.
	f.expectError("a client_id whose source is down",
		f.do(request{body: vals("grant_type", "authorization_code", "client_id", downID, "code", "x", "redirect_uri", dynamicRedirect).Encode()}),
		http.StatusServiceUnavailable, CodeTemporarilyUnavail)
	// A configured client never reaches the source: its map lookup answers first.
	before := src.lookups.Load()
	f.expectOK("a configured client", f.post(vals("grant_type", "client_credentials")))
	if n := src.lookups.Load() - before; n != 0 {
		t.Errorf("a configured client's request asked the source %d times, want 0", n)
	}
	// A dynamic client is public: a secret proves nothing and is refused.
	f.expectError("a dynamic client presenting a secret",
		f.do(request{body: vals("grant_type", "refresh_token", "refresh_token", "x").Encode(), basic: [2]string{dynamicID, "guess"}}),
		http.StatusUnauthorized, CodeInvalidClient)
}

// A dynamic client registered for refresh_token gets a refresh token without asking for
// offline_access, which MCP clients never do; one that did not register it gets none.
func TestClientSourceRefreshWithoutOfflineAccess(t *testing.T) {
	src := &fakeSource{}
	f := newFixture(t, withSource(src))
	redeem := func() *response {
		code := f.code(func(g *CodeGrant) {
			g.ClientID, g.RedirectURI, g.Scope = dynamicID, dynamicRedirect, []string{"api.read"}
		})
		return f.do(request{body: vals("grant_type", "authorization_code", "client_id", dynamicID, "code", code,
			"redirect_uri", dynamicRedirect, "code_verifier", verifier).Encode()})
	}
	resp := redeem()
	f.expectOK("a dynamic client redeems a code without offline_access", resp)
	if resp.str("refresh_token") == "" {
		t.Fatal("no refresh token for a dynamic client registered for refresh_token")
	}
	refreshed := f.do(request{body: vals("grant_type", "refresh_token", "client_id", dynamicID, "refresh_token", resp.str("refresh_token")).Encode()})
	f.expectOK("its refresh", refreshed)
	if refreshed.str("refresh_token") == "" || refreshed.str("refresh_token") == resp.str("refresh_token") {
		t.Error("the refresh token was not rotated")
	}
	src.client.Grants = []string{"authorization_code"}
	if resp := redeem(); resp.str("refresh_token") != "" {
		t.Error("a refresh token for a dynamic client not registered for refresh_token")
	}
	// PKCE is required of it (a public client), and plain is refused.
	for name, edit := range map[string]func(*CodeGrant){
		"without PKCE": func(g *CodeGrant) { g.CodeChallenge, g.ChallengeMethod = "", "" },
		"with plain":   func(g *CodeGrant) { g.CodeChallenge, g.ChallengeMethod = verifier, PKCEPlain },
	} {
		code := f.code(func(g *CodeGrant) { g.ClientID, g.RedirectURI = dynamicID, dynamicRedirect; edit(g) })
		f.expectError("a dynamic client's code "+name, f.do(request{body: vals("grant_type", "authorization_code", "client_id", dynamicID,
			"code", code, "redirect_uri", dynamicRedirect, "code_verifier", verifier).Encode()}), 400, CodeInvalidGrant)
	}
}

// ClientSources asks each source in turn; the first that owns an id answers, its failure included.
func TestClientSources(t *testing.T) {
	first, second := &fakeSource{}, &fakeSource{}
	withSource(first)(nil, &Config{})
	sources := ClientSources{first, staticSource{"dcr_1": {ID: "dcr_1", Dynamic: true}}, second}
	if c, err := sources.LookupClient(t.Context(), "dcr_1"); err != nil || c.ID != "dcr_1" {
		t.Errorf("LookupClient(dcr_1) = %+v, %v", c, err)
	}
	if c, err := sources.LookupClient(t.Context(), dynamicID); err != nil || c != first.client {
		t.Errorf("LookupClient(%q) = %+v, %v", dynamicID, c, err)
	}
	if _, err := sources.LookupClient(t.Context(), brokenID); err == nil || errors.Is(err, ErrNotOwned) || second.lookups.Load() != 0 {
		t.Errorf("LookupClient(%q) = %v, want the first source's failure, the last source unasked", brokenID, err)
	}
	if _, err := sources.LookupClient(t.Context(), "web"); !errors.Is(err, ErrNotOwned) {
		t.Errorf("LookupClient(web) = %v, want ErrNotOwned", err)
	}
	if !sources.Owns("dcr_1") || !sources.Owns(dynamicID) || sources.Owns("web") {
		t.Error("Owns does not ask every source")
	}
}

// staticSource owns the clients of its map.
type staticSource map[string]*Client

func (s staticSource) LookupClient(_ context.Context, id string) (*Client, error) {
	if c, ok := s[id]; ok {
		return c, nil
	}
	return nil, ErrNotOwned
}

func (s staticSource) Owns(id string) bool { _, ok := s[id]; return ok }
