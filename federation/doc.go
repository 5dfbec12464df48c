// Package federation signs people in through external identity providers: tokengate is a
// confidential relying party of each upstream (RFC 6749 §4.1 code flow, PKCE S256 per RFC 9700
// §2.1.1), an OpenID Connect provider (ID token verified per OIDC Core §3.1.3.7) or a plain
// OAuth 2.0 provider whose userinfo object describes the person. It builds the upstream
// authorization request and turns the upstream's answer into a Person; binding the pending
// sign-in to the browser is the caller's.
package federation
