// Package endpoints is where tokengate's endpoints live: every path (paths.go) and the route table
// (Routes), as plain net/http handlers. It serves itself what a person's browser and a relying
// party visit: the OpenID Connect discovery document (OpenID Connect Discovery 1.0 §4, RFC 8414
// §3), the JWKS that publishes the signing keys (RFC 7517 §5), a protected resource's metadata
// (RFC 9728 §3), the authorization endpoint with its sign-in page (RFC 6749 §4.1), the consent
// page a client the configuration does not declare always gets, and the callbacks of external
// identity providers (whose relying
// party is package federation), the device verification page (RFC 8628 §3.3), userinfo (OIDC Core
// §5.3) and end session (OpenID Connect RP-Initiated Logout 1.0). The endpoints a client
// authenticates to it routes to grants, whose services the pages use through the small interfaces
// of services.go. It imports no Caddy package.
package endpoints
