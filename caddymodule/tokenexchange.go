package caddymodule

import (
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/tokengate/tokengate/grants"
)

func init() {
	caddy.RegisterModule(new(TokenExchange))
}

// TokenExchange is the extension grant tokengate.grants.token_exchange: OAuth 2.0 Token Exchange
// (RFC 8693) of access tokens this tokengate issued (see grants.TokenExchange). Declare it with
//
//	grant urn:ietf:params:oauth:grant-type:token-exchange token_exchange
//
// and give the grant's URI to the clients that may exchange tokens. It has no options.
type TokenExchange struct {
	grants.TokenExchange
}

// CaddyModule returns the Caddy module information.
func (*TokenExchange) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  extensionNamespace + ".token_exchange",
		New: func() caddy.Module { return new(TokenExchange) },
	}
}

// UnmarshalCaddyfile reads the module's part of a grant line: no argument, and an empty block
// if any.
func (*TokenExchange) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the module's name
	if d.NextArg() {
		return d.ArgErr()
	}
	if d.NextBlock(0) {
		return unrecognized(d)
	}
	return nil
}

// Interface guards
var (
	_ grants.ExtensionGrant = (*TokenExchange)(nil)
	_ caddyfile.Unmarshaler = (*TokenExchange)(nil)
)
