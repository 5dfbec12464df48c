package registration

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/tokengate/tokengate/grants"
)

// subset reports whether every one of values is in allowed.
func subset(values, allowed []string) bool {
	return !slices.ContainsFunc(values, func(v string) bool { return !slices.Contains(allowed, v) })
}

// FuzzRegistrationRequest feeds the check of a registration request (RFC 7591 §2) whatever a
// client may POST: it never panics, and what it accepts registers acceptable redirect URIs, known
// grants, response types and methods, and no scope beyond those allowed.
func FuzzRegistrationRequest(f *testing.F) {
	f.Add([]byte(`{"redirect_uris":["http://127.0.0.1/cb"],"token_endpoint_auth_method":"none","scope":"openid"}`))
	f.Add([]byte(`{"redirect_uris":["https://a.example/cb#x"]}`))
	f.Add([]byte(`{"redirect_uris":["https://a.example/cb"],"grant_types":["client_credentials"],"client_name":7}`))
	f.Add([]byte(`{"redirect_uris":"https://a.example/cb","scope":"admin"}`))
	allowed := []string{"openid", "mcp.tools"}
	g := New(Config{Scopes: func() []string { return allowed }})
	f.Fuzz(func(t *testing.T, data []byte) {
		var body map[string]json.RawMessage
		if json.Unmarshal(data, &body) != nil {
			return
		}
		m, code, err := g.parse(body)
		if err != nil {
			if code != codeInvalidRedirectURI && code != codeInvalidMetadata {
				t.Fatalf("refused %q with the code %q", data, code)
			}
			return
		}
		for _, uri := range m.RedirectURIs {
			if grants.CheckDynamicRedirectURI(uri) != nil {
				t.Fatalf("accepted the redirect URI %q", uri)
			}
		}
		switch {
		case len(m.RedirectURIs) == 0:
			t.Fatalf("accepted %q without redirect URIs", data)
		case !subset(m.GrantTypes, []string{"authorization_code", "refresh_token"}) || !subset(m.ResponseTypes, []string{"code"}):
			t.Fatalf("accepted the grants %q and response types %q", m.GrantTypes, m.ResponseTypes)
		case !slices.Contains(registeredAuthMethods, m.AuthMethod):
			t.Fatalf("accepted the auth method %q", m.AuthMethod)
		case !subset(strings.Fields(m.Scope), allowed):
			t.Fatalf("accepted the scope %q", m.Scope)
		}
	})
}
