package grants

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/tokengate/tokengate/internal/jwtpart"
	"github.com/tokengate/tokengate/resource"
	"github.com/tokengate/tokengate/store"
)

const (
	mcpResource   = "https://mcp.example.com/mcp"
	filesResource = "https://files.example.com"
)

// withResources gives app and web the audiences api, mcpResource and filesResource.
func withResources(f *fixture, cfg *Config) {
	for _, id := range []string{"app", "web"} {
		cfg.client(id).Audience = []string{"api", mcpResource, filesResource}
	}
}

// audOf is the aud of the access token of resp, as its JSON says it: a string or an array.
func (f *fixture) audOf(resp *response) any {
	f.t.Helper()
	f.expectOK("token", resp)
	return jwtpart.Claims(f.t.(*testing.T), resp.str("access_token"))["aud"]
}

func sameAud(got any, want ...string) bool {
	if len(want) == 1 {
		return got == want[0]
	}
	list, ok := got.([]any)
	if !ok || len(list) != len(want) {
		return false
	}
	for i, w := range want {
		if list[i] != w {
			return false
		}
	}
	return true
}

// RFC 8707 §2: the token's aud is exactly the resources asked for, each one the client's; none
// means the client's audience, as before.
func TestResourceIndicatorsClientCredentials(t *testing.T) {
	f := newFixture(t, withResources)
	cc := func(kv ...string) *response {
		return f.post(vals(append([]string{"grant_type", "client_credentials", "scope", "api.read"}, kv...)...))
	}
	for _, tc := range []struct {
		name string
		kv   []string
		want []string
	}{
		{"one resource: aud is a string", []string{"resource", mcpResource}, []string{mcpResource}},
		{"two resources: aud is an array, in order", []string{"resource", filesResource, "resource", mcpResource}, []string{filesResource, mcpResource}},
		{"a resource twice counts once", []string{"resource", mcpResource, "resource", mcpResource}, []string{mcpResource}},
		{"an empty resource is omitted", []string{"resource", ""}, []string{"api", mcpResource, filesResource}},
		{"no resource: the client's audience", nil, []string{"api", mcpResource, filesResource}},
	} {
		if got := f.audOf(cc(tc.kv...)); !sameAud(got, tc.want...) {
			t.Errorf("%s: aud = %v, want %q", tc.name, got, tc.want)
		}
	}
	for _, tc := range []struct {
		name string
		kv   []string
	}{
		{"a resource not the client's", []string{"resource", "https://evil.example.com"}},
		{"one good, one foreign", []string{"resource", mcpResource, "resource", "https://evil.example.com"}},
		{"the resource with a slash added", []string{"resource", mcpResource + "/"}},
		{"a relative URI", []string{"resource", "/mcp"}},
		{"a fragment", []string{"resource", mcpResource + "#x"}},
		{"an empty fragment", []string{"resource", mcpResource + "#"}},
		{"not a URI", []string{"resource", "mcp"}},
		{"a space", []string{"resource", "https://mcp.example.com/a b"}},
	} {
		f.expectError(tc.name, cc(tc.kv...), 400, CodeInvalidTarget)
	}
	// Other parameters may still not be repeated.
	f.expectError("scope twice", cc("scope", "api.write"), 400, CodeInvalidRequest)
}

// A resource the client may not get is refused before the password is checked: such a request
// cannot succeed, and must not count as a guess.
func TestResourceIndicatorsPasswordBeforeThePassword(t *testing.T) {
	f := newFixture(t, withResources)
	resp := f.post(vals("grant_type", "password", "username", "alice", "password", "wrong", "resource", "https://evil.example.com"))
	f.expectError("a foreign resource and a wrong password", resp, 400, CodeInvalidTarget)
}

// RFC 8707 §2.2: a refresh may narrow the aud to part of the grant's resources, never beyond them,
// and the rotated refresh token keeps them all.
func TestResourceIndicatorsNarrowOnRefresh(t *testing.T) {
	f := newFixture(t, withResources)
	login := f.post(vals("grant_type", "password", "username", "alice", "password", "alice-pw", "scope", "offline_access api.read",
		"resource", mcpResource, "resource", filesResource))
	if got := f.audOf(login); !sameAud(got, mcpResource, filesResource) {
		t.Fatalf("password grant aud = %v, want both resources", got)
	}
	narrowed := f.refresh(login.str("refresh_token"), "resource", filesResource)
	if got := f.audOf(narrowed); !sameAud(got, filesResource) {
		t.Errorf("refresh with one resource: aud = %v, want %q", got, filesResource)
	}
	whole := f.refresh(narrowed.str("refresh_token"))
	if got := f.audOf(whole); !sameAud(got, mcpResource, filesResource) {
		t.Errorf("the next refresh without resource: aud = %v, want both again", got)
	}
	// api is the client's but not the grant's: the refresh would widen it. The refused requests
	// use nothing up.
	f.expectError("a resource of the client outside the grant", f.refresh(whole.str("refresh_token"), "resource", "api"), 400, CodeInvalidTarget)
	f.expectError("a foreign resource", f.refresh(whole.str("refresh_token"), "resource", "https://evil.example.com"), 400, CodeInvalidTarget)
	f.expectOK("the token after refused refreshes", f.refresh(whole.str("refresh_token")))
}

// After a code, the token may be for part of what the authorization request named; the refresh
// family keeps the whole.
func TestResourceIndicatorsAfterACode(t *testing.T) {
	f := newFixture(t, withResources)
	withBoth := func(g *CodeGrant) { g.Resources = []string{mcpResource, filesResource} }
	redeem := func(kv ...string) *response {
		return f.redeem(web, append([]string{"code", f.code(withBoth), "redirect_uri", webRedirect, "code_verifier", verifier}, kv...)...)
	}
	first := redeem("resource", mcpResource)
	if got := f.audOf(first); !sameAud(got, mcpResource) {
		t.Errorf("code redeemed for one resource: aud = %v, want %q", got, mcpResource)
	}
	refresh := f.do(request{body: vals("grant_type", "refresh_token", "refresh_token", first.str("refresh_token")).Encode(), basic: web})
	if got := f.audOf(refresh); !sameAud(got, mcpResource, filesResource) {
		t.Errorf("its refresh without resource: aud = %v, want the code's two", got)
	}
	if got := f.audOf(redeem()); !sameAud(got, mcpResource, filesResource) {
		t.Errorf("code redeemed without resource: aud = %v, want the code's two", got)
	}
	f.expectError("a resource of the client the code was not for", redeem("resource", "api"), 400, CodeInvalidTarget)
	// A code the request named no resource for: the client's audience, or part of it.
	plain := func(kv ...string) *response {
		return f.redeem(web, append([]string{"code", f.code(nil), "redirect_uri", webRedirect, "code_verifier", verifier}, kv...)...)
	}
	if got := f.audOf(plain()); !sameAud(got, "api", mcpResource, filesResource) {
		t.Errorf("code without resources: aud = %v, want the client's audience", got)
	}
	if got := f.audOf(plain("resource", filesResource)); !sameAud(got, filesResource) {
		t.Errorf("code without resources, redeemed for one of the client's: aud = %v, want it", got)
	}
	f.expectError("code without resources, redeemed for a foreign one", plain("resource", "https://evil.example.com"), 400, CodeInvalidTarget)
}

// A refresh family stored before resources were recorded has none, reads as before and keeps the
// client's audience.
func TestResourceIndicatorsFamilyFromBefore(t *testing.T) {
	f := newFixture(t, withResources)
	old, _ := json.Marshal(map[string]any{"sub": "alice", "scope": []string{"offline_access", "api.read"}, "user": true,
		"idp": "main", "iat": f.Now().Add(-time.Hour)})
	const raw = "a-refresh-token-from-before-resources-were-recorded"
	if err := f.store.CreateRefreshToken(t.Context(), hashToken(raw), store.RefreshToken{FamilyID: "old-family", ClientID: "app",
		ExpiresAt: f.Now().Add(time.Hour), Grant: old}); err != nil {
		t.Fatal(err)
	}
	resp := f.refresh(raw)
	if got := f.audOf(resp); !sameAud(got, "api", mcpResource, filesResource) {
		t.Errorf("refresh of a family from before: aud = %v, want the client's audience", got)
	}
	if got := f.audOf(f.refresh(resp.str("refresh_token"), "resource", mcpResource)); !sameAud(got, mcpResource) {
		t.Errorf("its next refresh narrowed to one of the client's: aud = %v, want %q", got, mcpResource)
	}
}

// A resource a reload takes from the client is not issued on refresh again; a grant left with
// none of its resources no longer holds.
func TestResourceIndicatorsAfterAReload(t *testing.T) {
	f := newFixture(t, withResources)
	both := f.post(vals("grant_type", "password", "username", "alice", "password", "alice-pw", "scope", "offline_access api.read",
		"resource", mcpResource, "resource", filesResource))
	one := f.post(vals("grant_type", "password", "username", "alice", "password", "alice-pw", "scope", "offline_access api.read",
		"resource", mcpResource))
	f.reload(func(cfg *Config) { cfg.client("app").Audience = []string{"api", filesResource} })
	if got := f.audOf(f.refresh(both.str("refresh_token"))); !sameAud(got, filesResource) {
		t.Errorf("refresh after mcp left the client: aud = %v, want %q", got, filesResource)
	}
	f.expectError("a refresh whose only resource left the client", f.refresh(one.str("refresh_token")), 400, CodeInvalidGrant)
}

// A dynamic client (a metadata document's, a registered one) may get any known resource, and only
// those; a configured client only its audience.
func TestResourcesOfADynamicClient(t *testing.T) {
	known := new(resource.Known)
	known.Add(mcpResource, "mcp.tools")
	f := newFixture(t, func(f *fixture, cfg *Config) { cfg.Resources = known })
	dynamic := &Client{ID: "https://client.example.com/meta", Public: true, Dynamic: true}
	if got, err := f.srv.Resources(dynamic, []string{mcpResource}); err != nil || !slices.Equal(got, []string{mcpResource}) {
		t.Errorf("Resources(dynamic, known) = %q, %v; want it", got, err)
	}
	for _, c := range []*Client{dynamic, {ID: "configured", Audience: []string{filesResource}}} {
		if _, err := f.srv.Resources(c, []string{"https://unknown.example.com"}); err == nil || err.Code != CodeInvalidTarget {
			t.Errorf("Resources(%s, unknown) = %v, want invalid_target", c.ID, err)
		}
	}
	if _, err := f.srv.Resources(&Client{ID: "configured", Audience: []string{filesResource}}, []string{mcpResource}); err == nil {
		t.Error("a configured client got a known resource outside its audience")
	}
}

// RFC 8693 §2.1: a token exchange may name several resources.
func TestTokenExchangeResources(t *testing.T) {
	f := newFixture(t, withTokenExchange)
	user := f.post(vals("grant_type", "password", "username", "alice", "password", "alice-pw", "scope", "api.read"))
	resp := f.exchange(append(subjectOf(user.str("access_token")), "resource", "api", "resource", "downstream")...)
	if got := f.audOf(resp); !sameAud(got, "api", "downstream") {
		t.Errorf("exchange for two resources: aud = %v, want api and downstream", got)
	}
	f.expectError("a foreign resource among them", f.exchange(append(subjectOf(user.str("access_token")),
		"resource", "api", "resource", "https://evil.example.com")...), 400, CodeInvalidTarget)
}
