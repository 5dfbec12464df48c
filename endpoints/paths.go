package endpoints

import "strings"

// The endpoint paths, relative to the issuer (IdentityServer's paths).
const (
	TokenPath         = "/connect/token"
	AuthorizePath     = "/connect/authorize"
	IntrospectionPath = "/connect/introspect"
	RevocationPath    = "/connect/revocation"
	UserinfoPath      = "/connect/userinfo"
	EndSessionPath    = "/connect/endsession"
	DiscoveryPath     = "/.well-known/openid-configuration"
	JWKSPath          = "/.well-known/openid-configuration/jwks"
	// DeviceAuthorizationPath is where a client asks for a device code (RFC 8628 §3.1).
	DeviceAuthorizationPath = "/connect/deviceauthorization"
	// DevicePath is the verification_uri, where a person types the user code (RFC 8628 §3.3).
	DevicePath = "/connect/device"
	// RegistrationPath is where a client registers itself (RFC 7591 §3).
	RegistrationPath = "/connect/register"
	// AuthorizationServerMetadataPath is where an OAuth-only client looks for the metadata
	// (RFC 8414 §3); unlike the others it goes before the issuer's path, not after it.
	AuthorizationServerMetadataPath = "/.well-known/oauth-authorization-server"
)

// ExternalCallbackPath is where the external identity provider name sends people back
// (its redirect_uri): one path per provider (RFC 9700 §4.4.2).
func ExternalCallbackPath(name string) string {
	return "/connect/external/" + name + "/callback"
}

// URL is the address of the endpoint at path for issuer. The issuer keeps any path it has
// (https://host/tenant): OpenID Connect Discovery 1.0 §4.1 appends to it after removing a final "/".
func URL(issuer, path string) string {
	return strings.TrimSuffix(issuer, "/") + path
}
