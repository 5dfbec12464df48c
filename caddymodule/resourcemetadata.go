package caddymodule

import (
	"net/http"
	"net/url"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/tokengate/tokengate/endpoints"
	"github.com/tokengate/tokengate/resource"
)

func init() {
	caddy.RegisterModule(new(ResourceMetadata))
}

// ResourceMetadata serves a protected resource's metadata (RFC 9728) at its well-known path, the
// resource's path inserted after /.well-known/oauth-protected-resource (RFC 9728 §3.1), and hands
// every other request to the next handler. The Caddyfile's bearer_auth puts one before its own
// route, in a route matched on that path alone, so the site serves the document whatever
// bearer_auth's matcher; a JSON configuration places it so itself.
type ResourceMetadata struct {
	// Resource is the protected resource's URI, as its bearer_auth names it. Required.
	Resource string `json:"resource"`

	path    string
	handler http.Handler
}

// CaddyModule returns the Caddy module information.
func (*ResourceMetadata) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.protected_resource_metadata",
		New: func() caddy.Module { return new(ResourceMetadata) },
	}
}

// Provision builds the document's handler from the tokengate app's issuer and known resources.
func (m *ResourceMetadata) Provision(ctx caddy.Context) error {
	if err := m.Validate(); err != nil {
		return err
	}
	app, err := tokengateApp(ctx)
	if err != nil {
		return err
	}
	u, _ := url.Parse(m.Resource) // Validate parsed it
	m.path = resource.MetadataPath(u)
	m.handler = endpoints.ResourceMetadata(app.Issuer, m.Resource, &app.resources)
	return nil
}

// Validate checks the resource as bearer_auth does.
func (m *ResourceMetadata) Validate() error {
	return at(checkResourceURL(m.Resource), "resource")
}

// ServeHTTP serves the document at its path, exactly, and passes on the rest.
func (m *ResourceMetadata) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if r.URL.EscapedPath() != m.path {
		return next.ServeHTTP(w, r)
	}
	m.handler.ServeHTTP(w, r)
	return nil
}

// Interface guards
var (
	_ caddy.Provisioner           = (*ResourceMetadata)(nil)
	_ caddy.Validator             = (*ResourceMetadata)(nil)
	_ caddyhttp.MiddlewareHandler = (*ResourceMetadata)(nil)
)
