// Package grants serves, in plain Go, the endpoints a client authenticates to: token (RFC 6749
// §3.2), introspection (RFC 7662), revocation (RFC 7009) and device authorization (RFC 8628 §3.1).
// It parses each request, authenticates the client, and runs the grant the request names, one file
// per grant. The pages a person sees use its services: the throttled password check (SignIn), the
// issuing of authorization codes (IssueCode), the check of resource indicators (Resources, RFC
// 8707), and the device requests waiting for a person's decision. Every security event (a token issued or refused, a failed client authentication, a
// sign-in, a reused refresh token, a revocation, a throttled attempt) is told to an Observer, for
// metrics and an audit trail.
//
// It knows nothing of Caddy or of where the endpoints live: caddymodule builds a Server from a
// configuration it has checked (New does not check it again), and endpoints routes requests to it.
package grants
