package caddymodule

import (
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func init() {
	caddy.RegisterModule(new(Handler))
}

// Handler serves the tokengate endpoints (token, discovery, JWKS) at their paths under the issuer
// (RFC 8414's metadata at its own, before the issuer's path), and hands every other request to the
// next handler, so that one flat site block can hold the endpoints, bearer_auth and the upstream.
type Handler struct {
	// routes is the app's: path → endpoint.
	routes map[string]http.Handler
}

// CaddyModule returns the Caddy module information.
func (*Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.tokengate",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision takes the endpoints of the tokengate app.
func (h *Handler) Provision(ctx caddy.Context) error {
	app, err := tokengateApp(ctx)
	if err != nil {
		return err
	}
	h.routes = app.routes
	return nil
}

// ServeHTTP serves an endpoint path, whatever the method (each endpoint answers a wrong method
// itself), and passes on the rest. Paths match exactly: /connect/token/ is not the token endpoint.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if endpoint, ok := h.routes[r.URL.Path]; ok {
		endpoint.ServeHTTP(w, r)
		return nil
	}
	return next.ServeHTTP(w, r)
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
