package cimd

import (
	"net/url"
	"slices"
	"testing"

	"github.com/tokengate/tokengate/grants"
)

// FuzzClientDocument feeds the document check whatever a hostile document server may answer: it
// never panics, and a document it accepts yields a public dynamic client of exactly the URL it was
// fetched from, with acceptable redirect URIs and no grant beyond the code flow and refresh.
func FuzzClientDocument(f *testing.F) {
	const id = "https://app.example/client.json"
	f.Add([]byte(`{"client_id":"` + id + `","redirect_uris":["http://127.0.0.1/cb"],"grant_types":["authorization_code","refresh_token"]}`))
	f.Add([]byte(`{"client_id":"` + id + `","redirect_uris":["javascript:alert(1)"]}`))
	f.Add([]byte(`{"client_id":"` + id + `","redirect_uris":["https://app.example/cb"],"token_endpoint_auth_method":"client_secret_basic"}`))
	f.Add([]byte(`{"client_id":"https://evil.example/c","redirect_uris":["https://evil.example/cb"]}`))
	f.Add([]byte(`[1,2]`))
	u, _ := url.Parse(id)
	r := New(Config{Scopes: func() []string { return []string{"openid"} }})
	f.Fuzz(func(t *testing.T, body []byte) {
		c, err := r.client(u, id, body)
		if err != nil {
			return
		}
		if c.ID != id || !c.Public || !c.Dynamic || len(c.Secrets) != 0 || len(c.RedirectURIs) == 0 {
			t.Fatalf("accepted %q as %+v", body, c)
		}
		for _, uri := range c.RedirectURIs {
			if grants.CheckDynamicRedirectURI(uri) != nil {
				t.Fatalf("accepted the redirect URI %q", uri)
			}
		}
		for _, g := range c.Grants {
			if !slices.Contains([]string{"authorization_code", "refresh_token"}, g) {
				t.Fatalf("accepted the grant %q", g)
			}
		}
	})
}
