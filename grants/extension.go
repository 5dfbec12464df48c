package grants

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/tokengate/tokengate/tokens"
)

// ExtensionGrant is a grant type of its own absolute URI (RFC 6749 §4.5), plugged in by
// configuration: in Caddy, `grant <urn> <module>`, a module of namespace tokengate.grants. The
// Server authenticates the client, checks that it registered the grant (by its URI), runs Grant,
// checks what it returns, and issues an access token: never a refresh or ID token.
type ExtensionGrant interface {
	// GrantType is the absolute URI that the grant_type of its requests carries.
	GrantType() string
	// Grant decides one request. A non-nil *Error is answered as it is (RFC 6749 §5.2, or the
	// extension's own codes); a server fault is wrapped with ServerFault, never shown.
	Grant(ctx context.Context, req ExtensionRequest) (ExtensionResult, *Error)
}

// ExtensionRequest is what an ExtensionGrant decides on.
type ExtensionRequest struct {
	// ClientID is the authenticated client, registered for the grant.
	ClientID string
	// Params are the request's parameters, without the client's credentials and the resource
	// indicators.
	Params map[string]string
	// Resources are the request's resource indicators (RFC 8707 §2, RFC 8693 §2.1), which may be
	// repeated, in order; nil for none. They are the extension's to check.
	Resources []string
	// Scope is the requested scope, each value among ClientScopes; nil when none was requested.
	Scope []string
	// ClientScopes are the scopes the client may be granted (its API scopes: there is no user
	// here to consent to the others).
	ClientScopes []string
	// ClientAudience is the aud the client's tokens carry by default; a result may narrow it.
	ClientAudience []string
	// ExchangeAudiences are the client's exchange_audiences: besides its ClientID, the aud of
	// the tokens it may trade in (RFC 8693 subject tokens).
	ExchangeAudiences []string
	// AccessToken returns the claims of an access token this tokengate issued that is alive
	// (unexpired, not revoked, its client registered), or false.
	AccessToken func(token string) (*tokens.Claims, bool)
	// Now is the request's time.
	Now time.Time
}

// ExtensionResult is what an ExtensionGrant grants.
type ExtensionResult struct {
	// Subject is the sub of the token. Required.
	Subject string
	// Scope is its scope, each value among the request's ClientScopes.
	Scope []string
	// Audience is its aud, each among the request's ClientAudience; nil means all of them.
	Audience []string
	// Claims are added to the token; a claim tokengate sets itself is refused.
	Claims map[string]any
	// GrantID, when set, is the grant the token belongs to (gid): revoking that grant revokes
	// the token too. ExpiresBy, when set, is the latest the token may expire.
	GrantID   string
	ExpiresBy time.Time
	// DerivedFrom are the jtis of the access tokens the token is made from (see
	// tokens.AccessToken): revoking any of them revokes the token too.
	DerivedFrom []string
	// IssuedTokenType is the response's issued_token_type (RFC 8693 §2.2.1); empty omits it.
	IssuedTokenType string
}

// ServerFault is the *Error for an extension's internal fault: a 500 with no detail, its cause
// logged. (A refusal is an &Error{Code: ..., Description: ...} of its own.)
func ServerFault(cause error) *Error { return serverFault(cause) }

// addExtensions registers the extension grants under their URIs, which are their grant_type
// (RFC 6749 §4.5).
func (s *Server) addExtensions() {
	for _, ext := range s.cfg.Extensions {
		uri := ext.GrantType()
		s.grantNames[uri] = uri
		s.extensions[uri] = ext
	}
}

// extensionGrant runs an extension grant for an authenticated client registered for it.
func (s *Server) extensionGrant(ctx context.Context, ext ExtensionGrant, req *tokenRequest) (*tokenResponse, *Error) {
	c := req.client
	allowed := apiScopes(c.Scopes)
	var requested []string
	if _, ok := req.form["scope"]; ok {
		var err *Error
		if requested, err = GrantedScope(req.form["scope"], allowed); err != nil {
			return nil, err
		}
	}
	params := make(map[string]string, len(req.form))
	for k, v := range req.form {
		if k != "client_secret" && k != "client_assertion" {
			params[k] = v
		}
	}
	audience := s.audience(c)
	res, err := ext.Grant(ctx, ExtensionRequest{
		ClientID:          c.ID,
		Params:            params,
		Resources:         req.resources,
		Scope:             requested,
		ClientScopes:      allowed,
		ClientAudience:    audience,
		ExchangeAudiences: c.ExchangeAudiences,
		AccessToken:       s.activeAccessToken,
		Now:               req.now,
	})
	if err != nil {
		return nil, err
	}
	if fault := checkExtensionResult(&res, allowed, audience); fault != nil {
		return nil, serverFault(fmt.Errorf("extension grant %s: %w", ext.GrantType(), fault))
	}
	if !res.ExpiresBy.IsZero() && !res.ExpiresBy.After(req.now) {
		return nil, errorf(CodeInvalidGrant, "the grant has expired")
	}
	g := &grant{Subject: res.Subject, Scope: res.Scope, Claims: res.Claims, audience: res.Audience,
		familyID: res.GrantID, familyExpires: res.ExpiresBy, derivedFrom: res.DerivedFrom}
	resp, err := s.mint(req, g, g.Scope)
	if err != nil {
		return nil, err
	}
	resp.IssuedTokenType = res.IssuedTokenType
	return resp, nil
}

// checkExtensionResult holds an extension to what the client may be granted: a grant must not
// widen what configuration allows, whatever the extension's code does.
func checkExtensionResult(res *ExtensionResult, scopes, audience []string) error {
	switch {
	case res.Subject == "":
		return fmt.Errorf("no subject")
	case len(res.Scope) == 0:
		return fmt.Errorf("no scope")
	}
	for _, s := range res.Scope {
		if !slices.Contains(scopes, s) {
			return fmt.Errorf("scope %q is not the client's", s)
		}
	}
	for _, a := range res.Audience {
		if !slices.Contains(audience, a) {
			return fmt.Errorf("audience %q is not the client's", a)
		}
	}
	for name := range res.Claims {
		if tokens.RegisteredClaim(name) {
			return fmt.Errorf("claim %q is set by tokengate itself", name)
		}
	}
	return nil
}
