package endpoints

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/tokengate/tokengate/internal/jwtpart"
)

const (
	mcpResource   = "https://mcp.example.com/mcp"
	filesResource = "https://files.example.com"
)

// withResources adds a resource parameter to v for each of resources.
func withResources(v url.Values, resources ...string) url.Values {
	for _, r := range resources {
		v.Add("resource", r)
	}
	return v
}

// RFC 8707 at the authorization endpoint: resource may be repeated; each must be one the client
// may get, or the client hears invalid_target with its state and iss; the code carries them into
// the token's aud.
func TestAuthorizeResources(t *testing.T) {
	f := newFixture(t)
	with := func(resources ...string) url.Values {
		return withResources(webRequest("scope", "openid offline_access api.read"), resources...)
	}
	for _, tc := range []struct {
		name      string
		resources []string
	}{
		{"a resource not the client's", []string{"https://evil.example/api"}},
		{"one of two not the client's", []string{mcpResource, "https://evil.example/api"}},
		{"the resource with a slash added", []string{mcpResource + "/"}},
		{"a relative URI", []string{"/mcp"}},
		{"a fragment", []string{mcpResource + "#top"}},
		{"an audience that is no URI", []string{"api"}},
	} {
		loc := f.browser().authorize(with(tc.resources...)).location(t)
		q := loc.Query()
		if base(loc) != "https://web.example.com/cb" || q.Get("error") != "invalid_target" || q.Get("state") != "st-123" ||
			q.Get("iss") != f.issuer || q.Has("code") {
			t.Errorf("%s: authorize redirects to %q, want the client's URI with error=invalid_target, state and iss", tc.name, loc)
		}
	}
	// The error page still comes first: no redirect to a URI the client did not register.
	got := f.browser().authorize(func() url.Values {
		v := with("https://evil.example/api")
		v.Set("redirect_uri", "https://evil.example/cb")
		return v
	}())
	if got.status != http.StatusBadRequest || got.header.Get("Location") != "" {
		t.Errorf("a foreign resource and an unregistered redirect URI: %d Location %q, want the 400 page", got.status, got.header.Get("Location"))
	}

	// Both resources ride the sign-in form and the code, into the token.
	b := f.browser()
	form := b.authorize(with(mcpResource, filesResource))
	if n := strings.Count(form.body, `name="resource"`); n != 2 {
		t.Fatalf("the sign-in form carries %d resource fields, want 2", n)
	}
	loc := b.signIn(form, "alice", "alice-pw").location(t)
	status, body := f.redeem(loc.Query().Get("code"), "https://web.example.com/cb", verifier)
	if status != http.StatusOK {
		t.Fatalf("redeem = %d %v", status, body)
	}
	aud, _ := jwtpart.Claims(t, body["access_token"].(string))["aud"].([]any)
	if len(aud) != 2 || aud[0] != mcpResource || aud[1] != filesResource {
		t.Errorf("access token aud = %v, want [%s %s]", aud, mcpResource, filesResource)
	}
	// A session answers the next request, whose resource goes into its code.
	loc = b.authorize(with(filesResource)).location(t)
	if _, body = f.redeem(loc.Query().Get("code"), "https://web.example.com/cb", verifier); jwtpart.Claims(t, body["access_token"].(string))["aud"] != filesResource {
		t.Errorf("code of a signed-in person for one resource: %v, want aud %s", body, filesResource)
	}
}

// A client that identified itself at run time has no audience: it must name a resource, a known
// one (RFC 8707 §2 counts a missing one as invalid_target).
func TestAuthorizeResourcesOfADynamicClient(t *testing.T) {
	f := newFixture(t)
	request := func(resources ...string) url.Values {
		return withResources(webRequest("client_id", "https://dyn.example.com/client", "redirect_uri", "https://dyn.example.com/cb",
			"scope", "openid"), resources...)
	}
	for _, tc := range []struct {
		name      string
		resources []string
		want      string
	}{
		{"no resource", nil, "invalid_target"},
		{"an unknown resource", []string{filesResource}, "invalid_target"},
		{"a known resource", []string{mcpResource}, ""},
	} {
		got := f.browser().authorize(request(tc.resources...))
		if tc.want == "" {
			if !got.isForm() {
				t.Errorf("%s: authorize = %d, want the sign-in form", tc.name, got.status)
			}
			continue
		}
		if q := got.location(t).Query(); q.Get("error") != tc.want || q.Get("state") != "st-123" {
			t.Errorf("%s: authorize redirects with %v, want error=%s and the state", tc.name, q, tc.want)
		}
	}
}
