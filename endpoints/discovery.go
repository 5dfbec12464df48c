// Package endpoints serves tokengate's metadata endpoints as plain net/http handlers: the OpenID
// Connect discovery document (OpenID Connect Discovery 1.0 §4, RFC 8414 §3) and the JWKS that
// publishes the signing keys (RFC 7517 §5). It imports no Caddy package.
package endpoints

import (
	"encoding/json"
	"net/http"
	"strings"
)

// The endpoint paths, relative to the issuer (IdentityServer's paths).
const (
	TokenPath         = "/connect/token"
	IntrospectionPath = "/connect/introspect"
	RevocationPath    = "/connect/revocation"
	DiscoveryPath     = "/.well-known/openid-configuration"
	JWKSPath          = "/.well-known/openid-configuration/jwks"
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
	// TokenEndpoint is the issuer followed by TokenPath.
	TokenEndpoint string `json:"token_endpoint"`
	// JWKSURI is the issuer followed by JWKSPath.
	JWKSURI string `json:"jwks_uri"`
	// IntrospectionEndpoint is the issuer followed by IntrospectionPath (RFC 8414 §2).
	IntrospectionEndpoint string `json:"introspection_endpoint"`
	// RevocationEndpoint is the issuer followed by RevocationPath (RFC 8414 §2).
	RevocationEndpoint string `json:"revocation_endpoint"`
	// GrantTypesSupported holds the wire grant_type of every grant some client may use; omitted
	// when empty.
	GrantTypesSupported []string `json:"grant_types_supported,omitempty"`
	// ScopesSupported holds openid and every scope some client may ask for; omitted when empty.
	ScopesSupported []string `json:"scopes_supported,omitempty"`
	// TokenEndpointAuthMethodsSupported holds the client authentication methods the clients are
	// registered with; omitted when empty.
	TokenEndpointAuthMethodsSupported []string `json:"token_endpoint_auth_methods_supported,omitempty"`
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

// URL is the address of the endpoint at path for issuer. The issuer keeps any path it has
// (https://host/tenant): OpenID Connect Discovery 1.0 §4.1 appends to it after removing a final "/".
func URL(issuer, path string) string {
	return strings.TrimSuffix(issuer, "/") + path
}

// Discovery serves meta, encoded once, to GET and HEAD.
func Discovery(meta Metadata) http.Handler {
	// Metadata holds only strings and string slices, which always encode.
	body, _ := json.Marshal(meta)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		serveJSON(w, r, body, discoveryMaxAge)
	})
}
