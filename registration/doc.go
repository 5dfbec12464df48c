// Package registration serves OAuth 2.0 Dynamic Client Registration (RFC 7591): the open
// registration endpoint, which validates a client's metadata and keeps it in the store, bounded per
// address and in number; and the registered clients, handed to grants as a grants.ClientSource. The
// client configuration endpoint (RFC 7592) is not offered. It imports no Caddy package.
package registration
