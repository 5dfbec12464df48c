// Package endpoints serves tokengate's endpoints other than the token endpoint as plain net/http
// handlers: the OpenID Connect discovery document (OpenID Connect Discovery 1.0 §4, RFC 8414 §3),
// the JWKS that publishes the signing keys (RFC 7517 §5), the authorization endpoint with its
// sign-in page (RFC 6749 §4.1), userinfo (OIDC Core §5.3) and end session (OpenID Connect
// RP-Initiated Logout 1.0). It imports no Caddy package.
package endpoints

import (
	"encoding/json"
	"net/http"

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
	// IDTokenSigningAlgValuesSupported holds the algorithms of the published signing keys
	// (required by Discovery §3).
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
