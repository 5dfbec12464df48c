// Package cimd resolves Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document):
// a client_id that is an https URL names a JSON document describing its client, which this package
// fetches, validates and caches, handing the client to grants as a grants.ClientSource.
//
// Whoever sends an authorization request chooses the URL, so the fetch is guarded against
// server-side request forgery: the host must be allowed before anything is sent; the address
// actually dialled must not be special-use (RFC 6890), which also catches a name that resolves to
// one; no redirect is followed, no proxy used, no cookie or credential sent; the certificate is
// checked against the system's trust store; and the fetch is bounded in time and size. It imports
// no Caddy package.
package cimd
