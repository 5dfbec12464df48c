package endpoints

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/tokengate/tokengate/tokens"
)

// ClientEndpoints are the endpoints a client authenticates to, as grants.Server serves them.
type ClientEndpoints interface {
	// ServeHTTP serves the token endpoint (RFC 6749 §3.2).
	http.Handler
	Introspect(w http.ResponseWriter, r *http.Request)
	Revoke(w http.ResponseWriter, r *http.Request)
	DeviceAuthorization(w http.ResponseWriter, r *http.Request)
}

// Site is every endpoint of one configuration.
type Site struct {
	// Issuer is the iss of every token; the endpoints live under its path, where the discovery
	// document says they are. Required.
	Issuer string
	// Clients serves token, introspection, revocation and device authorization; Pages the
	// authorization and end-session endpoints; Device the verification URI; Userinfo userinfo.
	// All required.
	Clients  ClientEndpoints
	Pages    *Pages
	Device   *DevicePage
	Userinfo http.Handler
	// Metadata is the discovery document.
	Metadata Metadata
	// Keys are the signing keys, published as the JWKS; required.
	Keys func() *tokens.KeySet
	// Registration is the client registration endpoint (RFC 7591); nil offers none.
	Registration http.Handler
}

// Routes maps the path of each endpoint of s to the endpoint. A path matches exactly:
// /connect/token/ is not the token endpoint. Every path is under the issuer's path but the
// authorization server metadata's, which RFC 8414 §3 puts before it.
func Routes(s Site) (map[string]http.Handler, error) {
	issuer, err := url.Parse(s.Issuer)
	switch {
	case s.Issuer == "" || err != nil:
		return nil, errors.New("endpoints: a valid issuer is required")
	case s.Clients == nil || s.Pages == nil || s.Device == nil || s.Userinfo == nil || s.Keys == nil:
		return nil, errors.New("endpoints: every endpoint and the signing keys are required")
	}
	prefix := strings.TrimSuffix(issuer.Path, "/")
	metadata := Discovery(s.Metadata)
	routes := map[string]http.Handler{
		prefix + TokenPath:               crossOrigin("POST", s.Clients),
		prefix + IntrospectionPath:       http.HandlerFunc(s.Clients.Introspect),
		prefix + RevocationPath:          crossOrigin("POST", http.HandlerFunc(s.Clients.Revoke)),
		prefix + DeviceAuthorizationPath: http.HandlerFunc(s.Clients.DeviceAuthorization),
		prefix + AuthorizePath:           http.HandlerFunc(s.Pages.Authorize),
		prefix + EndSessionPath:          http.HandlerFunc(s.Pages.EndSession),
		prefix + DevicePath:              s.Device,
		prefix + UserinfoPath:            s.Userinfo,
		prefix + DiscoveryPath:           metadata,
		prefix + JWKSPath:                JWKS(s.Keys),
		// RFC 8414 §3: the well-known segment goes between the host and the issuer's path, so for
		// https://host/tenant this path lies outside the issuer's. The members are the same as
		// discovery's (RFC 8414 §2 registers the OpenID ones too), and §3.3's issuer check holds.
		AuthorizationServerMetadataPath + prefix: metadata,
	}
	if s.Registration != nil {
		routes[prefix+RegistrationPath] = crossOrigin("POST", s.Registration)
	}
	for name, provider := range s.Pages.externals {
		routes[prefix+ExternalCallbackPath(name)] = s.Pages.ExternalCallback(provider)
	}
	return routes, nil
}
