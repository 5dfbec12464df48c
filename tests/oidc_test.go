package tests

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/tokengate/tokengate/internal/jwtpart"
)

func TestDiscoveryAndTokens(t *testing.T) {
	t.Parallel()
	c, _ := startTokengate(t, "1h")
	ctx := testContext(t)
	// OIDC Discovery §4.3: NewProvider checks that the document's issuer is the URL it was fetched for.
	provider, err := oidc.NewProvider(ctx, c.Base)
	if err != nil {
		t.Fatalf("oidc.NewProvider(%q) = %v", c.Base, err)
	}
	if got, want := provider.Endpoint().TokenURL, c.URL("/connect/token"); got != want {
		t.Errorf("token_endpoint = %q, want %q", got, want)
	}
	// RFC 8414 §3: an issuer without a path has its metadata at the bare well-known URL.
	if r := send(t, c, request{method: http.MethodGet, path: "/.well-known/oauth-authorization-server"}); r.status != http.StatusOK {
		t.Errorf("GET /.well-known/oauth-authorization-server = %d, want 200", r.status)
	}
	var meta struct {
		JWKSURI     string   `json:"jwks_uri"`
		Grants      []string `json:"grant_types_supported"`
		Scopes      []string `json:"scopes_supported"`
		AuthMethods []string `json:"token_endpoint_auth_methods_supported"`
	}
	if err := provider.Claims(&meta); err != nil {
		t.Fatal(err)
	}
	if want := c.URL("/.well-known/openid-configuration/jwks"); meta.JWKSURI != want {
		t.Errorf("jwks_uri = %q, want %q", meta.JWKSURI, want)
	}
	for _, list := range []struct {
		name      string
		got, want []string
	}{
		{"grant_types_supported", meta.Grants, []string{"client_credentials", "password", "refresh_token"}},
		{"scopes_supported", meta.Scopes, []string{"openid", "api.read", "api.write"}},
		{"token_endpoint_auth_methods_supported", meta.AuthMethods, []string{"client_secret_basic", "client_secret_post"}},
	} {
		for _, w := range list.want {
			if !slices.Contains(list.got, w) {
				t.Errorf("%s = %q, want it to hold %q", list.name, list.got, w)
			}
		}
	}

	tok := aliceToken(t, c, "openid", "offline_access", "api.read")
	t.Run("id_token", func(t *testing.T) {
		raw, _ := tok.Extra("id_token").(string)
		idToken, err := provider.Verifier(&oidc.Config{ClientID: "web"}).Verify(ctx, raw)
		if err != nil {
			t.Fatalf("verifying the id_token %q with the JWKS: %v", raw, err)
		}
		if idToken.Subject != "alice" {
			t.Errorf("id_token sub = %q, want alice", idToken.Subject)
		}
		var claims struct {
			Email string `json:"email"`
		}
		if err := idToken.Claims(&claims); err != nil {
			t.Fatal(err)
		}
		if claims.Email != "alice@example.com" {
			t.Errorf("id_token email = %q, want the user's claim alice@example.com", claims.Email)
		}
	})

	t.Run("access_token", func(t *testing.T) {
		// RFC 9068: a JWT of typ at+jwt, signed by a key of the JWKS, naming issuer, user, client and scope.
		if _, err := oidc.NewRemoteKeySet(ctx, meta.JWKSURI).VerifySignature(ctx, tok.AccessToken); err != nil {
			t.Fatalf("the access token's signature does not verify with the JWKS: %v", err)
		}
		var header struct {
			Typ string `json:"typ"`
			Kid string `json:"kid"`
			Alg string `json:"alg"`
		}
		jwtpart.Decode(t, tok.AccessToken, jwtpart.Header, &header)
		if header.Typ != "at+jwt" || header.Kid == "" || header.Alg != "ES256" {
			t.Errorf("access token header typ %q kid %q alg %q, want at+jwt, a kid and ES256 (the default)", header.Typ, header.Kid, header.Alg)
		}
		var claims struct {
			Iss, Sub, Scope, Jti string
			ClientID             string          `json:"client_id"`
			Aud                  json.RawMessage `json:"aud"`
			Exp, Iat             int64
		}
		jwtpart.Decode(t, tok.AccessToken, jwtpart.Payload, &claims)
		if claims.Iss != c.Base || claims.Sub != "alice" || claims.ClientID != "web" || claims.Jti == "" {
			t.Errorf("access token iss %q sub %q client_id %q jti %q, want %q alice web and a jti", claims.Iss, claims.Sub, claims.ClientID, claims.Jti, c.Base)
		}
		if got := strings.Fields(claims.Scope); !sameSet(got, []string{"openid", "offline_access", "api.read"}) {
			t.Errorf("access token scope = %q, want openid offline_access api.read", claims.Scope)
		}
		if aud := string(claims.Aud); aud != `"api"` && aud != `["api"]` {
			t.Errorf("access token aud = %s, want api", aud)
		}
		if ttl := claims.Exp - claims.Iat; ttl != 3600 {
			t.Errorf("access token exp - iat = %ds, want 3600 (access_token_ttl 1h)", ttl)
		}
	})
}

// sameSet reports whether a and b hold the same strings, in any order.
func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// TestAuthorizationServerMetadata fetches the metadata where an OAuth-only client looks for it
// (RFC 8414 §3): for an issuer with a path, the well-known segment goes before that path. The
// document names the issuer it was discovered for (§3.3) and the same endpoints as OpenID discovery.
func TestAuthorizationServerMetadata(t *testing.T) {
	t.Parallel()
	c := startCaddy(t, `{
	tokengate {
		issuer {{BASE}}/tenant
		store memory
		client svc {
			secret svc-secret
			grants client_credentials
			scopes api.read
		}
	}
}

{{BASE}} {
	tokengate
}
`)
	issuer := c.URL("/tenant")
	var meta struct {
		Issuer        string `json:"issuer"`
		TokenEndpoint string `json:"token_endpoint"`
		JWKSURI       string `json:"jwks_uri"`
	}
	r := send(t, c, request{method: http.MethodGet, path: "/.well-known/oauth-authorization-server/tenant"})
	if r.status != http.StatusOK {
		t.Fatalf("GET /.well-known/oauth-authorization-server/tenant = %d %s, want 200", r.status, r.body)
	}
	if err := json.Unmarshal(r.body, &meta); err != nil {
		t.Fatalf("metadata %s: %v", r.body, err)
	}
	if meta.Issuer != issuer || meta.TokenEndpoint != issuer+"/connect/token" || meta.JWKSURI != issuer+"/.well-known/openid-configuration/jwks" {
		t.Errorf("metadata issuer %q token_endpoint %q jwks_uri %q, want %q and its endpoints", meta.Issuer, meta.TokenEndpoint, meta.JWKSURI, issuer)
	}
	discovery := send(t, c, request{method: http.MethodGet, path: "/tenant/.well-known/openid-configuration"})
	if string(discovery.body) != string(r.body) {
		t.Errorf("OpenID discovery %s differs from the RFC 8414 metadata %s", discovery.body, r.body)
	}
	// The bare well-known URL is an issuer without a path's, which this one is not: the request
	// goes on to the rest of the site (Caddy's empty answer here).
	if bare := send(t, c, request{method: http.MethodGet, path: "/.well-known/oauth-authorization-server"}); len(bare.body) != 0 {
		t.Errorf("GET /.well-known/oauth-authorization-server for issuer %s = %s, want no metadata there", issuer, bare.body)
	}
}

// TestRS256IDTokens: discovery offers RS256 beside the ES256 signing key (OIDC Discovery §3), a
// client with id_token_signing_alg RS256 gets ID tokens that go-oidc verifies as a relying party
// accepting RS256 alone (its default without discovery), and its access tokens still use ES256.
func TestRS256IDTokens(t *testing.T) {
	t.Parallel()
	c := startCaddy(t, strings.NewReplacer("{{ALICE_HASH}}", aliceHash()).Replace(`{
	tokengate {
		issuer {{BASE}}
		store memory
		client rp {
			secret rp-secret
			grants password
			scopes openid
			id_token_signing_alg rs256
		}
		client web {
			secret web-secret
			grants password
			scopes openid
		}
		users local {
			user alice {{ALICE_HASH}}
		}
	}
}

{{BASE}} {
	tokengate
}
`))
	ctx := testContext(t)
	provider, err := oidc.NewProvider(ctx, c.Base)
	if err != nil {
		t.Fatal(err)
	}
	var meta struct {
		Algs []string `json:"id_token_signing_alg_values_supported"`
	}
	if err := provider.Claims(&meta); err != nil || !sameSet(meta.Algs, []string{"ES256", "RS256"}) {
		t.Errorf("id_token_signing_alg_values_supported = %q (%v), want ES256 and RS256", meta.Algs, err)
	}
	keys := oidc.NewRemoteKeySet(ctx, c.URL("/.well-known/openid-configuration/jwks"))
	for _, tc := range []struct{ client, idAlg string }{{"rp", "RS256"}, {"web", "ES256"}} {
		cfg := &oauth2.Config{ClientID: tc.client, ClientSecret: tc.client + "-secret", Scopes: []string{"openid"},
			Endpoint: oauth2.Endpoint{TokenURL: c.URL("/connect/token"), AuthStyle: oauth2.AuthStyleInHeader}}
		tok, err := cfg.PasswordCredentialsToken(ctx, "alice", alicePassword)
		if err != nil {
			t.Fatalf("%s: password grant: %v", tc.client, err)
		}
		raw, _ := tok.Extra("id_token").(string)
		verifier := oidc.NewVerifier(c.Base, keys, &oidc.Config{ClientID: tc.client, SupportedSigningAlgs: []string{tc.idAlg}})
		if idToken, err := verifier.Verify(ctx, raw); err != nil || idToken.Subject != "alice" {
			t.Errorf("%s: verifying its ID token as %s: %v", tc.client, tc.idAlg, err)
		}
		var header struct{ Alg string }
		jwtpart.Decode(t, tok.AccessToken, jwtpart.Header, &header)
		if header.Alg != "ES256" {
			t.Errorf("%s: access token alg %s, want the signing key's ES256", tc.client, header.Alg)
		}
	}
}
