package endpoints

import (
	"encoding/json"
	"net/http"
	"slices"

	"github.com/tokengate/tokengate/grants"
)

// discoveryMaxAge is how long a client may cache the discovery document, in seconds. It changes only
// when the configuration does (a new client, grant or scope), so a few minutes is harmless.
const discoveryMaxAge = 300

// Metadata is the discovery document. It lists only what this tokengate implements, because a
// client that trusts it will try every endpoint and grant it names.
type Metadata struct {
	// Issuer is the iss of every token, exactly as configured (OpenID Connect Discovery 1.0 §4.3:
	// it must equal the URL the client discovered from).
	Issuer string `json:"issuer"`
	// AuthorizationEndpoint is the issuer followed by AuthorizePath; omitted until AddAuthorization.
	AuthorizationEndpoint string `json:"authorization_endpoint,omitempty"`
	// TokenEndpoint is the issuer followed by TokenPath.
	TokenEndpoint string `json:"token_endpoint"`
	// UserinfoEndpoint (OIDC Core §5.3) and EndSessionEndpoint (RP-Initiated Logout §2.1) are the
	// issuer followed by UserinfoPath and EndSessionPath; omitted until AddAuthorization.
	UserinfoEndpoint   string `json:"userinfo_endpoint,omitempty"`
	EndSessionEndpoint string `json:"end_session_endpoint,omitempty"`
	// JWKSURI is the issuer followed by JWKSPath.
	JWKSURI string `json:"jwks_uri"`
	// IntrospectionEndpoint is the issuer followed by IntrospectionPath (RFC 8414 §2).
	IntrospectionEndpoint string `json:"introspection_endpoint"`
	// RevocationEndpoint is the issuer followed by RevocationPath (RFC 8414 §2).
	RevocationEndpoint string `json:"revocation_endpoint"`
	// RegistrationEndpoint is the issuer followed by RegistrationPath (RFC 8414 §2), set when
	// clients may register themselves (RFC 7591).
	RegistrationEndpoint string `json:"registration_endpoint,omitempty"`
	// ClientIDMetadataDocumentSupported says a client may identify by the https URL of its
	// metadata document (draft-ietf-oauth-client-id-metadata-document §5); omitted otherwise.
	ClientIDMetadataDocumentSupported bool `json:"client_id_metadata_document_supported,omitempty"`
	// DeviceAuthorizationEndpoint is the issuer followed by DeviceAuthorizationPath (RFC 8628 §4),
	// set when some client has the device_code grant.
	DeviceAuthorizationEndpoint string `json:"device_authorization_endpoint,omitempty"`
	// ResponseTypesSupported is ["code"] once AddAuthorization ran; Discovery §3 requires it of an
	// OpenID provider, RFC 8414 §2 of a server with an authorization endpoint.
	ResponseTypesSupported []string `json:"response_types_supported,omitempty"`
	// CodeChallengeMethodsSupported holds the PKCE methods /connect/authorize accepts (RFC 8414 §2):
	// S256, and plain when some client may use it.
	CodeChallengeMethodsSupported []string `json:"code_challenge_methods_supported,omitempty"`
	// AuthorizationResponseIssParameterSupported says every authorization response carries iss
	// (RFC 9207 §3).
	AuthorizationResponseIssParameterSupported bool `json:"authorization_response_iss_parameter_supported,omitempty"`
	// GrantTypesSupported holds the wire grant_type of every grant some client may use; omitted
	// when empty.
	GrantTypesSupported []string `json:"grant_types_supported,omitempty"`
	// ScopesSupported holds openid and every scope some client may ask for; omitted when empty.
	ScopesSupported []string `json:"scopes_supported,omitempty"`
	// TokenEndpointAuthMethodsSupported holds the client authentication methods the clients are
	// registered with; omitted when empty.
	TokenEndpointAuthMethodsSupported []string `json:"token_endpoint_auth_methods_supported,omitempty"`
	// TokenEndpointAuthSigningAlgValuesSupported holds the algorithms client assertions may be
	// signed with (RFC 8414 §2): HS256 for client_secret_jwt, the public-key ones for
	// private_key_jwt; omitted when no client uses either.
	TokenEndpointAuthSigningAlgValuesSupported []string `json:"token_endpoint_auth_signing_alg_values_supported,omitempty"`
	// IntrospectionEndpointAuthMethodsSupported and RevocationEndpointAuthMethodsSupported hold the
	// methods callers of those endpoints authenticate with; omitted when empty.
	IntrospectionEndpointAuthMethodsSupported []string `json:"introspection_endpoint_auth_methods_supported,omitempty"`
	RevocationEndpointAuthMethodsSupported    []string `json:"revocation_endpoint_auth_methods_supported,omitempty"`
	// SubjectTypesSupported is always ["public"]: sub is the same for every client (OpenID Connect
	// Core §8), and Discovery §3 requires the field.
	SubjectTypesSupported []string `json:"subject_types_supported"`
	// IDTokenSigningAlgValuesSupported holds the algorithms ID tokens may be signed with
	// (required by Discovery §3, and to hold RS256).
	IDTokenSigningAlgValuesSupported []string `json:"id_token_signing_alg_values_supported"`
	// ClaimsSupported holds the claims tokens may carry; omitted when empty.
	ClaimsSupported []string `json:"claims_supported,omitempty"`
}

// NewMetadata returns the metadata of the issuer with its endpoint URLs filled in; the caller adds
// the lists that depend on the configuration.
func NewMetadata(issuer string) Metadata {
	return Metadata{
		Issuer:                issuer,
		TokenEndpoint:         URL(issuer, TokenPath),
		JWKSURI:               URL(issuer, JWKSPath),
		IntrospectionEndpoint: URL(issuer, IntrospectionPath),
		RevocationEndpoint:    URL(issuer, RevocationPath),
		SubjectTypesSupported: []string{"public"},
	}
}

// AddAuthorization lists the endpoints a person's browser and a relying party use (authorize,
// userinfo, end session) and what the authorization endpoint accepts. pkcePlain adds plain to the
// PKCE methods, for a configuration where some client has pkce_plain.
func (m *Metadata) AddAuthorization(pkcePlain bool) {
	m.AuthorizationEndpoint = URL(m.Issuer, AuthorizePath)
	m.UserinfoEndpoint = URL(m.Issuer, UserinfoPath)
	m.EndSessionEndpoint = URL(m.Issuer, EndSessionPath)
	m.ResponseTypesSupported = []string{"code"}
	m.CodeChallengeMethodsSupported = []string{grants.PKCES256}
	if pkcePlain {
		m.CodeChallengeMethodsSupported = append(m.CodeChallengeMethodsSupported, grants.PKCEPlain)
	}
	m.AuthorizationResponseIssParameterSupported = true
}

// Discovery serves meta, encoded once, to GET and HEAD.
func Discovery(meta Metadata) http.Handler {
	// Metadata holds only strings and string slices, which always encode.
	body, _ := json.Marshal(meta)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		serveJSON(w, r, body, discoveryMaxAge)
	})
}

// Offered is what a configuration offers, as plain values; the discovery document is built from it.
type Offered struct {
	// Clients are the registered clients: their grants, scopes, authentication methods, static
	// claims and PKCE methods are listed.
	Clients []*grants.Client
	// UserClaims are the names of the claims users' tokens may carry: each static user's claims,
	// and tenant when some user is limited to tenants.
	UserClaims []string
	// SigningAlgs are the algorithms ID tokens may be signed with.
	SigningAlgs []string
	// MetadataDocuments says clients may identify by a Client ID Metadata Document, and
	// Registration that they may register (RFC 7591); such clients use the authorization code
	// grant and refresh tokens, as public clients or, registered, with a secret.
	MetadataDocuments, Registration bool
	// DynamicScopes are what such clients may ask for.
	DynamicScopes []string
}

// standardClaims are the claims every access token carries, or may: RFC 9068 §2.2, scope, and idp,
// the identity provider that signed a person in.
var standardClaims = []string{"iss", "sub", "aud", "exp", "iat", "nbf", "jti", "client_id", "scope", "idp"}

// publicKeyAlgs are the algorithms private_key_jwt assertions may use: those assertion.NewPublicKey
// admits for RSA, EC and Ed25519 keys.
var publicKeyAlgs = []string{"EdDSA", "ES256", "ES384", "ES512", "PS256", "PS384", "PS512", "RS256", "RS384", "RS512"}

// MetadataOf is the discovery document of the issuer offering o.
func MetadataOf(issuer string, o Offered) Metadata {
	meta := NewMetadata(issuer)
	grantTypes, scopes, methods, claims := set{}, set{"openid": true}, set{}, set{}
	claims.add(standardClaims...)
	claims.add(o.UserClaims...)
	pkcePlain := false
	for _, c := range o.Clients {
		for _, g := range c.Grants {
			grantTypes.add(grants.WireGrantType(g))
		}
		scopes.add(c.Scopes...)
		methods.add(authMethods(c)...)
		for name := range c.Claims {
			claims.add(name)
		}
		pkcePlain = pkcePlain || c.PKCEPlain
	}
	if o.MetadataDocuments || o.Registration {
		grantTypes.add(grants.WireGrantType("authorization_code"), grants.WireGrantType("refresh_token"))
		methods.add(grants.AuthNone)
		scopes.add(o.DynamicScopes...)
	}
	if o.Registration {
		methods.add(grants.AuthSecretBasic, grants.AuthSecretPost)
		meta.RegistrationEndpoint = URL(issuer, RegistrationPath)
	}
	meta.ClientIDMetadataDocumentSupported = o.MetadataDocuments
	meta.AddAuthorization(pkcePlain)
	if grantTypes[grants.GrantTypeDeviceCode] {
		meta.DeviceAuthorizationEndpoint = URL(issuer, DeviceAuthorizationPath)
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
	meta.IDTokenSigningAlgValuesSupported = o.SigningAlgs
	meta.ClaimsSupported = claims.sorted()
	return meta
}

// authMethods are the methods c may authenticate with, as discovery names them: "none" for a
// public client (RFC 7591 §2). client_secret_basic and client_secret_post are two ways of sending
// the same secret (RFC 6749 §2.3.1) and the token endpoint takes either, so a client registered for
// one may use both.
func authMethods(c *grants.Client) []string {
	switch {
	case c.Public:
		return []string{grants.AuthNone}
	case c.AuthMethod == "", c.AuthMethod == grants.AuthSecretBasic, c.AuthMethod == grants.AuthSecretPost:
		return []string{grants.AuthSecretBasic, grants.AuthSecretPost}
	}
	return []string{c.AuthMethod}
}

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
