package caddymodule

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/tokengate/tokengate/audit"
	"github.com/tokengate/tokengate/gate"
	"github.com/tokengate/tokengate/metrics"
	"github.com/tokengate/tokengate/tokens"
)

func init() {
	caddy.RegisterModule(new(BearerAuth))
}

// BearerAuth lets a request on only with a valid access token of this tokengate (RFC 6750), and
// tells the next handlers who is calling: {http.auth.user.id} is the token's sub,
// {http.auth.user.client_id} and {http.auth.user.scope} its client and scope, and
// {http.auth.user.<claim>} each other claim (arrays space-separated).
type BearerAuth struct {
	// Scopes are the acceptable scope sets: a token passes when it holds every scope of at least
	// one set. Default: no scope required.
	Scopes [][]string `json:"scopes,omitempty"`
	// Audience is the aud the token must carry. Default: any audience this tokengate issues.
	Audience string `json:"audience,omitempty"`
	// Resource makes the route an OAuth protected resource (RFC 9728), such as an MCP server: its
	// canonical URI, an absolute https URL (http on a loopback host) without query or fragment,
	// kept verbatim. Only tokens whose aud holds it pass; challenges name its metadata, which the
	// protected_resource_metadata handler serves; it becomes a known resource of the tokengate app
	// (RFC 8707). Not with Audience. Default: none.
	Resource string `json:"resource,omitempty"`
	// Claims are claim values the token must carry. Default: none.
	Claims map[string]string `json:"claims,omitempty"`
	// Headers copy claims into request headers for the next handlers; an incoming header of each
	// name is always removed first, so a client cannot forge one. Default: none.
	Headers []HeaderCopy `json:"headers,omitempty"`
	// ForwardToken passes the validated Authorization header on to the next handlers. Default:
	// false, the header is removed, so reverse_proxy never forwards the token to where it would be
	// logged and could be replayed at the audience's other routes.
	ForwardToken bool `json:"forward_token,omitempty"`

	gate  *gate.Gate
	audit *audit.Trail
	// answers is set when no error route could take a refusal (see errorRoutesAround): bearer_auth
	// then writes it itself, as Caddy would, without the cost of a Caddy error.
	answers bool
}

// HeaderCopy copies one claim into one request header. It is gate.HeaderCopy with the JSON names
// of the config, so one conversion turns it into that.
type HeaderCopy struct {
	// Claim is the claim's name. Required.
	Claim string `json:"claim"`
	// Header is the header's name. Required.
	Header string `json:"header"`
}

// CaddyModule returns the Caddy module information.
func (*BearerAuth) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.bearer_auth",
		New: func() caddy.Module { return new(BearerAuth) },
	}
}

// Provision builds the gate from the tokengate app's keys, deny-list and clients, and makes the
// app know its resource and the scopes it names.
func (b *BearerAuth) Provision(ctx caddy.Context) error {
	app, err := tokengateApp(ctx)
	if err != nil {
		return err
	}
	if b.Resource != "" {
		app.resources.Add(b.Resource, slices.Concat(b.Scopes...)...)
	}
	req := gate.Requirements{ScopeSets: b.Scopes, Audience: b.Audience, Resource: b.Resource, Claims: b.Claims,
		ForwardToken: b.ForwardToken}
	for _, h := range b.Headers {
		req.Headers = append(req.Headers, gate.HeaderCopy(h))
	}
	b.audit = app.audit
	b.answers = !errorRoutesAround(ctx)
	b.gate, err = app.Gate(req)
	return err
}

// errorRoutesAround reports whether an error the handler being provisioned in ctx returns may reach
// error routes: the server's (a site's handle_errors) or those of a subroute it sits in. When
// nothing says, it answers yes, so that such routes are never skipped. (A handler of a JSON named
// route cannot tell which subroute will invoke it: it sees the server's error routes only.)
func errorRoutesAround(ctx caddy.Context) bool {
	srv, ok := ctx.Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server)
	if !ok || srv.Errors != nil && len(srv.Errors.Routes) > 0 {
		return true
	}
	return slices.ContainsFunc(ctx.Modules(), func(m caddy.Module) bool {
		sub, ok := m.(*caddyhttp.Subroute)
		return ok && sub.Errors != nil && len(sub.Errors.Routes) > 0
	})
}

// ServeHTTP passes an authenticated request on with the {http.auth.user.*} placeholders set. Any
// other request gets its RFC 6750 §3 challenge in WWW-Authenticate and the refusal's status (400,
// 401 or 403) with an empty body, as caddyauth refuses for basic_auth. Where error routes may take
// it (a site's handle_errors), the refusal is a Caddy HTTP error, so that they write the body; the
// challenge is set first, so it stays. Elsewhere bearer_auth writes the status itself: the same
// response, without the error's stack trace, id and error log line at debug level.
// Every decision is counted; a refused token is audited, the first of its kind from an address
// each interval (a request without one is not: that is how every first request of a browser or a
// client looks).
func (b *BearerAuth) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	claims, refusal := b.gate.Check(r)
	if refusal != nil {
		metrics.GateRefused(refusal.Code)
		if refusal.Code != "" {
			b.audit.GateRefused(audit.GateRefusal{Code: refusal.Code, Method: r.Method, Path: r.URL.Path,
				RemoteIP: clientIP(r), Subject: refusal.Subject})
		}
		w.Header().Set("WWW-Authenticate", refusal.Challenge)
		if b.answers {
			w.WriteHeader(refusal.Status)
			return nil
		}
		return caddyhttp.Error(refusal.Status, refusal.Err)
	}
	metrics.GateAllowed()
	setUserPlaceholders(r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer), claims)
	return next.ServeHTTP(w, r)
}

// setUserPlaceholders sets {http.auth.user.*} as caddyauth does for basic_auth. The named ones are
// set last, so that a claim called "id" cannot stand in for the subject.
func setUserPlaceholders(repl *caddy.Replacer, c *tokens.Claims) {
	// One lazy provider instead of a Set per claim: a request pays for the placeholders its
	// configuration reads, not for every claim of the token: this runs on every gated request.
	repl.Map(func(key string) (any, bool) {
		name, ok := strings.CutPrefix(key, userPlaceholderPrefix)
		if !ok {
			return nil, false
		}
		// The named placeholders win over claims of the same name: a claim called id cannot pose
		// as the subject.
		switch name {
		case "id":
			return c.Subject, true
		case "client_id":
			return c.ClientID, true
		case "scope":
			return c.Scope, true
		case "sub":
			return nil, false
		}
		v, ok := c.All[name]
		if !ok {
			return nil, false
		}
		return claimText(v), true
	})
}

// userPlaceholderPrefix starts every placeholder bearer_auth provides.
const userPlaceholderPrefix = "http.auth.user."

// claimText writes a claim value as text: strings as they are, numbers in plain decimal (an exp
// of 1700000000 stays that, not 1.7e+09), arrays space-separated, objects as JSON.
func claimText(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case json.Number:
		return v.String()
	case bool:
		return strconv.FormatBool(v)
	case []string:
		return strings.Join(v, " ")
	case []any:
		parts := make([]string, len(v))
		for i, e := range v {
			parts[i] = claimText(e)
		}
		return strings.Join(parts, " ")
	}
	b, _ := json.Marshal(v) // a value decoded from JSON encodes again
	return string(b)
}

// Interface guards
var (
	_ caddy.Provisioner           = (*BearerAuth)(nil)
	_ caddy.Validator             = (*BearerAuth)(nil)
	_ caddyhttp.MiddlewareHandler = (*BearerAuth)(nil)
)
