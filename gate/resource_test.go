package gate

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/tokengate/tokengate/tokens"
)

const mcp = "https://mcp.example.com/mcp"

// A protected resource (RFC 9728) lets on only tokens whose aud names it, checks that before the
// scopes, and says in every challenge where its metadata is and which scopes it needs.
func TestResourceRoute(t *testing.T) {
	f := newFixture(t)
	f.gate.Req = Requirements{Resource: mcp, ScopeSets: [][]string{{"mcp.tools", "mcp.read"}, {"admin"}}}
	forMCP := func(scope string) string {
		return f.mint(t, func(a *tokens.AccessToken) { a.Audience = []string{"api", mcp}; a.Scope = scope })
	}
	const (
		meta  = `resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp"`
		scope = `scope="mcp.tools mcp.read"`
	)
	withHost := func(r *http.Request) *http.Request {
		r.Host = "evil.example"
		return r
	}
	for _, c := range []struct {
		name      string
		r         *http.Request
		status    int
		challenge string
	}{
		{"the resource's token with the scopes", bearer(forMCP("mcp.tools mcp.read")), http.StatusOK, ""},
		{"the second scope set", bearer(forMCP("admin")), http.StatusOK, ""},
		{"no token: the metadata and the whole first scope set", httptest.NewRequest("GET", "/mcp", nil),
			http.StatusUnauthorized, `Bearer realm="api", ` + scope + `, ` + meta},
		{"the metadata URL never comes from Host", withHost(httptest.NewRequest("GET", "/mcp", nil)),
			http.StatusUnauthorized, `Bearer realm="api", ` + scope + `, ` + meta},
		// A token for another resource is foreign, whatever its scopes: never insufficient_scope,
		// which would send a client into a useless step-up.
		{"a token of another audience with every scope", bearer(f.mint(t, func(a *tokens.AccessToken) { a.Scope = "mcp.tools mcp.read admin" })),
			http.StatusUnauthorized, `Bearer realm="api", error="invalid_token", ` + meta},
		{"a token of another audience without the scopes", bearer(f.mint(t, nil)),
			http.StatusUnauthorized, `Bearer realm="api", error="invalid_token", ` + meta},
		{"the resource with a trailing slash is another resource", bearer(f.mint(t, func(a *tokens.AccessToken) { a.Audience = []string{mcp + "/"}; a.Scope = "admin" })),
			http.StatusUnauthorized, `Bearer realm="api", error="invalid_token", ` + meta},
		{"the resource's token lacking a scope", bearer(forMCP("mcp.tools")),
			http.StatusForbidden, `Bearer realm="api", error="insufficient_scope", ` + scope + `, ` + meta},
		{"a malformed token", bearer("abc.def"), http.StatusUnauthorized, `Bearer realm="api", error="invalid_token", ` + meta},
	} {
		fail := f.check(c.r)
		if statusOf(fail) != c.status || fail != nil && fail.Challenge != c.challenge {
			t.Errorf("Check(%s) = %v, want %d %q", c.name, fail, c.status, c.challenge)
		}
	}
}

// Without a scope line a protected resource's challenge names no scope; a resource without a path
// publishes its metadata at the bare well-known URI.
func TestResourceChallengeWithoutScope(t *testing.T) {
	f := newFixture(t)
	f.gate.Req = Requirements{Resource: "http://127.0.0.1:9000"}
	fail := f.check(httptest.NewRequest("GET", "/", nil))
	want := `Bearer realm="api", resource_metadata="http://127.0.0.1:9000/.well-known/oauth-protected-resource"`
	if fail == nil || fail.Challenge != want {
		t.Errorf("Check(no token) = %v, want %q", fail, want)
	}
}
