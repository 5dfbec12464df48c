// Package apikeygrant is an example tokengate extension grant, built as a module of its own to show
// that a third party adds a grant type with `xcaddy build --with` and a Caddyfile line, no fork.
//
// A legacy integration holds a long-lived API key; it trades the key for a short-lived access token
// of the user the key belongs to:
//
//	{
//		tokengate {
//			grant urn:example:params:oauth:grant-type:api-key api_key {
//				key {env.ALICE_API_KEY} alice
//			}
//			client integration {
//				secret {env.INTEGRATION_SECRET}
//				grants urn:example:params:oauth:grant-type:api-key
//				scopes api
//			}
//		}
//	}
//
//	POST /connect/token
//	grant_type=urn:example:params:oauth:grant-type:api-key&api_key=<the key>
package apikeygrant

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/tokengate/tokengate/grants"
)

func init() {
	caddy.RegisterModule(new(Grant))
}

// GrantType is the grant_type this extension serves.
const GrantType = "urn:example:params:oauth:grant-type:api-key"

// Grant is the extension grant tokengate.grants.api_key.
type Grant struct {
	// Keys maps an API key to the subject of the tokens it buys. Placeholders such as {env.X} are
	// replaced at provision time. Required.
	Keys map[string]string `json:"keys,omitempty"`

	// digests holds the SHA-256 of each key, so that looking one up compares in constant time.
	digests []keyDigest
}

type keyDigest struct {
	sum     [sha256.Size]byte
	subject string
}

// CaddyModule returns the Caddy module information.
func (*Grant) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "tokengate.grants.api_key",
		New: func() caddy.Module { return new(Grant) },
	}
}

// Provision hashes the keys once.
func (g *Grant) Provision(caddy.Context) error {
	repl := caddy.NewReplacer()
	for key, subject := range g.Keys {
		key, err := repl.ReplaceOrErr(key, true, true)
		if err != nil {
			return err
		}
		g.digests = append(g.digests, keyDigest{sum: sha256.Sum256([]byte(key)), subject: subject})
	}
	return nil
}

// GrantType implements grants.ExtensionGrant.
func (*Grant) GrantType() string { return GrantType }

// Grant implements grants.ExtensionGrant: the key's subject gets a token for the requested scope,
// or all the client's.
func (g *Grant) Grant(_ context.Context, req grants.ExtensionRequest) (grants.ExtensionResult, *grants.Error) {
	presented, ok := req.Params["api_key"]
	if !ok {
		return grants.ExtensionResult{}, &grants.Error{Code: grants.CodeInvalidRequest, Description: "api_key is missing"}
	}
	sum := sha256.Sum256([]byte(presented))
	subject := ""
	for _, d := range g.digests {
		// Every key is compared, so the time taken says nothing of which one matched.
		if subtle.ConstantTimeCompare(sum[:], d.sum[:]) == 1 {
			subject = d.subject
		}
	}
	if subject == "" {
		return grants.ExtensionResult{}, &grants.Error{Code: grants.CodeInvalidGrant, Description: "the API key is not valid"}
	}
	scope := req.Scope
	if scope == nil {
		scope = req.ClientScopes
	}
	return grants.ExtensionResult{Subject: subject, Scope: scope}, nil
}

// UnmarshalCaddyfile reads the module's part of a grant line:
//
//	... api_key {
//		key <api_key> <subject>
//	}
func (g *Grant) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the module's name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		if d.Val() != "key" {
			return d.Errf("unrecognized subdirective %q", d.Val())
		}
		var key, subject string
		if !d.AllArgs(&key, &subject) {
			return d.ArgErr()
		}
		if g.Keys == nil {
			g.Keys = map[string]string{}
		}
		g.Keys[key] = subject
	}
	if len(g.Keys) == 0 {
		return d.Err("api_key: at least one key is required")
	}
	return nil
}

// Interface guards
var (
	_ grants.ExtensionGrant = (*Grant)(nil)
	_ caddy.Provisioner     = (*Grant)(nil)
	_ caddyfile.Unmarshaler = (*Grant)(nil)
)
