package grants

import "testing"

// A grant recorded without its identity provider came from a password sign-in, so it is checked
// against the provider that checks the client's passwords, even when the client lists an external
// provider first: that one cannot tell whether a person was removed, and would keep the grant
// alive after its person left.
func TestGrantWithoutIdPBehindAnExternalProvider(t *testing.T) {
	f := newFixture(t, func(_ *fixture, cfg *Config) {
		cfg.IdentityProviders = append([]IdentityProvider{{Name: "upstream", External: true}}, cfg.IdentityProviders...)
		cfg.client("web").IdentityProviders = []string{"upstream", "main"}
	})
	code := f.code(func(g *CodeGrant) { g.IdP = "" })
	first := f.redeem(web, "code", code, "redirect_uri", webRedirect, "code_verifier", verifier)
	f.expectOK("a code recorded without its provider, alice is still there", first)
	f.reload(withoutUser(t, "main", "alice"))
	f.expectError("its refresh token once alice is removed from main",
		f.do(request{body: vals("grant_type", "refresh_token", "refresh_token", first.str("refresh_token")).Encode(), basic: web}),
		400, CodeInvalidGrant)
}
