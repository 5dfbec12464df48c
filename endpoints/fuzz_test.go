package endpoints

import (
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/tokengate/tokengate/grants"
)

// FuzzAuthorizeRequest feeds arbitrary query strings to the authorization request parser. Whatever
// it is given, it must not panic, must never name a redirect URI the client did not register, and
// must accept only requests that satisfy every rule: code, PKCE for public clients, plain only with
// pkce_plain, a scope within the client's.
func FuzzAuthorizeRequest(f *testing.F) {
	for _, seed := range []string{
		webRequest().Encode(),
		webRequest("redirect_uri", "https://web.example.com/cb2?x=1", "prompt", "none", "max_age", "0").Encode(),
		"client_id=spa&response_type=code&code_challenge=" + s256(verifier) + "&code_challenge_method=S256",
		"client_id=native&redirect_uri=com.example.app%3A%2Fcb&response_type=code&code_challenge=" + verifier + "&code_challenge_method=plain",
		"client_id=web&redirect_uri=https%3A%2F%2Fevil.example%2Fcb&response_type=token",
		"client_id=web&client_id=spa&redirect_uri=%2F%2Fevil.example",
		"client_id=pwonly&response_type=code&state=x",
		"client_id=web&redirect_uri=https%3A%2F%2Fweb.example.com%2Fcb&response_type=code&scope=openid+%22x&acr_values=idp%3Apartners+tenant%3Aacme",
	} {
		f.Add(seed)
	}
	fx := newFixture(f)
	f.Fuzz(func(t *testing.T, query string) {
		params, _ := url.ParseQuery(query)
		req, aerr := fx.pages.parseAuthorize(t.Context(), params)
		if aerr != nil {
			if aerr.redirectURI == "" {
				return
			}
			client, ok := fx.grants.Client(params.Get("client_id"))
			if !ok || !slices.Contains(client.RedirectURIs, aerr.redirectURI) {
				t.Fatalf("parseAuthorize(%q) redirects an error to %q, which the client did not register", query, aerr.redirectURI)
			}
			return
		}
		c := req.client
		switch {
		case !slices.Contains(c.RedirectURIs, req.redirectURI):
			t.Fatalf("parseAuthorize(%q) accepted redirect_uri %q, not registered", query, req.redirectURI)
		case params.Get("response_type") != "code":
			t.Fatalf("parseAuthorize(%q) accepted response_type %q", query, params.Get("response_type"))
		case c.Public && req.challenge == "":
			t.Fatalf("parseAuthorize(%q) accepted a public client without PKCE", query)
		case req.method == grants.PKCEPlain && !c.PKCEPlain:
			t.Fatalf("parseAuthorize(%q) accepted plain for a client without pkce_plain", query)
		case req.challenge != "" && (len(req.challenge) < 43 || len(req.challenge) > 128 || !unreservedChars(req.challenge)):
			t.Fatalf("parseAuthorize(%q) accepted code_challenge %q", query, req.challenge)
		case len(req.scope) == 0 || slices.ContainsFunc(req.scope, func(s string) bool { return !slices.Contains(c.Scopes, s) }):
			t.Fatalf("parseAuthorize(%q) granted scope %q, the client may have %q", query, req.scope, c.Scopes)
		case len(req.idps) == 0:
			t.Fatalf("parseAuthorize(%q) accepted a request no identity provider can answer", query)
		case len(req.state) > maxParamLen || len(req.nonce) > maxParamLen || strings.ContainsRune(req.carried.Encode(), 0) && !strings.Contains(query, "%00"):
			t.Fatalf("parseAuthorize(%q) kept an unbounded or invented value", query)
		}
	})
}
