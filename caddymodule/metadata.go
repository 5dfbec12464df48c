package caddymodule

import (
	"slices"

	"github.com/tokengate/tokengate/endpoints"
	"github.com/tokengate/tokengate/grants"
)

// metadata is the discovery document of this configuration.
func (a *App) metadata() endpoints.Metadata {
	meta := endpoints.NewMetadata(a.Issuer)
	grantTypes, scopes, methods := set{}, set{"openid": true}, set{}
	claims := set{}
	for _, c := range []string{"iss", "sub", "aud", "exp", "iat", "nbf", "jti", "client_id", "scope"} {
		claims[c] = true
	}
	for _, c := range a.Clients {
		for _, g := range c.Grants {
			grantTypes[grants.WireGrantType(g)] = true
		}
		scopes.add(c.Scopes...)
		methods.add(c.authMethods()...)
		for name := range c.Claims {
			claims[name] = true
		}
	}
	for _, p := range a.IdentityProviders {
		for _, u := range p.Users {
			for name := range u.Claims {
				claims[name] = true
			}
			if len(u.Tenants) > 0 {
				claims["tenant"] = true
			}
		}
	}
	meta.AddAuthorization(slices.ContainsFunc(a.Clients, func(c *ClientConfig) bool { return c.PKCEPlain }))
	if grantTypes[grants.GrantTypeDeviceCode] {
		meta.DeviceAuthorizationEndpoint = endpoints.URL(a.Issuer, endpoints.DeviceAuthorizationPath)
	}
	meta.GrantTypesSupported = grantTypes.sorted()
	meta.ScopesSupported = scopes.sorted()
	meta.TokenEndpointAuthMethodsSupported = methods.sorted()
	meta.TokenEndpointAuthSigningAlgValuesSupported = assertionAlgs(methods)
	// Introspection and revocation authenticate the caller as the token endpoint does; a public
	// client may revoke its own tokens (RFC 7009 §2.1) but not introspect (RFC 7662 §2.1).
	meta.RevocationEndpointAuthMethodsSupported = meta.TokenEndpointAuthMethodsSupported
	delete(methods, grants.AuthNone)
	meta.IntrospectionEndpointAuthMethodsSupported = methods.sorted()
	meta.IDTokenSigningAlgValuesSupported = a.keySet.Load().Algs()
	meta.ClaimsSupported = claims.sorted()
	return meta
}

// authMethods are the methods the client may authenticate with, as discovery names them: "none"
// for a public client (RFC 7591 §2); client_secret_basic and client_secret_post are
// interchangeable (RFC 6749 §2.3.1 allows either for a secret), so a client registered for either
// may use both.
func (c *ClientConfig) authMethods() []string {
	switch {
	case c.Public:
		return []string{grants.AuthNone}
	case c.AuthMethod == "", c.AuthMethod == grants.AuthSecretBasic, c.AuthMethod == grants.AuthSecretPost:
		return []string{grants.AuthSecretBasic, grants.AuthSecretPost}
	}
	return []string{c.AuthMethod}
}

// publicKeyAlgs are the algorithms private_key_jwt assertions may use: those assertion.NewPublicKey
// admits for RSA, EC and Ed25519 keys.
var publicKeyAlgs = []string{"EdDSA", "ES256", "ES384", "ES512", "PS256", "PS384", "PS512", "RS256", "RS384", "RS512"}

// assertionAlgs are the algorithms client assertions may be signed with, given the client
// authentication methods in use.
func assertionAlgs(methods set) []string {
	algs := set{}
	if methods[grants.AuthSecretJWT] {
		algs.add("HS256")
	}
	if methods[grants.AuthPrivateKey] {
		algs.add(publicKeyAlgs...)
	}
	if len(algs) == 0 {
		return nil
	}
	return algs.sorted()
}

// set is a set of strings that lists itself in order, so the discovery document is stable.
type set map[string]bool

func (s set) add(vs ...string) {
	for _, v := range vs {
		s[v] = true
	}
}

func (s set) sorted() []string {
	out := make([]string, 0, len(s))
	for v := range s {
		out = append(out, v)
	}
	slices.Sort(out)
	return out
}
