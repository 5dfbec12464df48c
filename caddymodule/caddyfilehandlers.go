package caddymodule

import (
	"net/url"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/tokengate/tokengate/resource"
)

// parseHandler sets up the tokengate handler. Syntax:
//
//	tokengate [<matcher>]
func parseHandler(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	handler := new(Handler)
	return handler, handler.UnmarshalCaddyfile(h.Dispenser)
}

// UnmarshalCaddyfile reads the directive, which takes no argument and no block.
func (*Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // "tokengate"
	if d.NextArg() {
		return d.ArgErr()
	}
	if d.NextBlock(0) {
		return d.Err("tokengate takes no block: configure it in the tokengate global option")
	}
	return nil
}

// parseBearerAuth sets up bearer_auth. Syntax:
//
//	bearer_auth [<matcher>] {
//	    resource <url>
//	    scope <scope>...
//	    audience <aud>
//	    claim <name> <value>
//	    header <claim> <Header-Name>
//	    forward_token
//	}
//
// It is bearer_auth's route under its matcher, as a handler directive's. With a resource, a
// second route comes first: the resource's metadata (RFC 9728 §3.1) at its well-known path, which
// the matcher would usually not let through (bearer_auth /mcp* never sees
// /.well-known/oauth-protected-resource/mcp), so that the site serves it whatever the matcher. Its
// path matcher sorts it before bearer_auth's own route (Caddy sorts a directive's routes by path
// length, a route without a matcher last), as php_fastcgi's expansion into several routes is
// sorted.
func parseBearerAuth(h httpcaddyfile.Helper) ([]httpcaddyfile.ConfigValue, error) {
	if !h.Next() {
		return nil, h.ArgErr()
	}
	matcherSet, err := h.ExtractMatcherSet()
	if err != nil {
		return nil, err
	}
	b := new(BearerAuth)
	if err := b.UnmarshalCaddyfile(h.Dispenser); err != nil {
		return nil, err
	}
	gated := h.NewRoute(matcherSet, b)
	if b.Resource == "" {
		return gated, nil
	}
	u, _ := url.Parse(b.Resource) // Validate parsed it
	onPath := caddy.ModuleMap{"path": caddyconfig.JSON(caddyhttp.MatchPath{resource.MetadataPath(u)}, nil)}
	return append(h.NewRoute(onPath, &ResourceMetadata{Resource: b.Resource}), gated...), nil
}

// UnmarshalCaddyfile reads bearer_auth's block. Each scope line is one acceptable set of scopes.
// What the values mean is checked by Validate, as for a JSON configuration, and reported at their
// line.
func (b *BearerAuth) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // "bearer_auth"
	if d.NextArg() {
		return d.ArgErr()
	}
	l := lines{}
	for d.NextBlock(0) {
		l.record(d)
		var err error
		switch d.Val() {
		case "scope":
			var set []string
			if err = parseList(d, &set); err == nil {
				b.Scopes = append(b.Scopes, set)
			}
		case "audience":
			err = parseOnce(d, &b.Audience)
		case "resource":
			err = parseOnce(d, &b.Resource)
		case "claim":
			err = parseClaim(d, &b.Claims)
		case "header":
			var hc HeaderCopy
			if !d.AllArgs(&hc.Claim, &hc.Header) {
				return d.ArgErr()
			}
			b.Headers = append(b.Headers, hc)
		case "forward_token":
			if d.NextArg() {
				return d.ArgErr()
			}
			b.ForwardToken = true
		default:
			err = unrecognized(d)
		}
		if err != nil {
			return err
		}
	}
	return l.wrap(d, b.Validate())
}

// Interface guards
var (
	_ caddyfile.Unmarshaler = (*Handler)(nil)
	_ caddyfile.Unmarshaler = (*BearerAuth)(nil)
)
