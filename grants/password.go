package grants

import (
	"context"
	"slices"
	"strings"

	"github.com/tokengate/tokengate/identity"
)

// password runs RFC 6749 §4.3: the client passes on a person's username and password. RFC 9700
// §2.4 says it must not be used, so a client has it only when its block says so, and guessing is
// throttled per username and, far later, per address.
func (s *Server) password(ctx context.Context, req *tokenRequest) (*tokenResponse, *Error) {
	username, password := req.form["username"], req.form["password"]
	if username == "" || password == "" {
		return nil, errorf(CodeInvalidRequest, "username and password are required")
	}
	scope, err := grantedScope(req.form, req.client.Scopes)
	if err != nil {
		return nil, err
	}
	acr, err := s.parseACRValues(req.client, req.form["acr_values"])
	if err != nil {
		return nil, err
	}
	userKey := acr.idp + "\x00" + username
	address := s.cfg.ClientIP(req.http)
	if wait, blocked := s.limits.usernames.Blocked(userKey, req.now); blocked {
		return nil, tooManyAttempts(wait)
	}
	if wait, blocked := s.limits.addresses.Blocked(address, req.now); blocked {
		return nil, tooManyAttempts(wait)
	}
	user, ok, fault := s.idps[acr.idp].Authenticate(ctx, username, password)
	if fault != nil {
		return nil, unavailable(fault)
	}
	// A tenant the user does not belong to is as wrong as a wrong password.
	if ok && acr.tenant != "" && len(user.Tenants) > 0 && !slices.Contains(user.Tenants, acr.tenant) {
		ok = false
	}
	if !ok {
		s.limits.usernames.Fail(userKey, req.now)
		s.limits.addresses.Fail(address, req.now)
		return nil, errorf(CodeInvalidGrant, "the username or password is wrong")
	}
	s.limits.usernames.Forget(userKey)
	return s.respond(ctx, req, &grant{
		Subject:  user.Subject,
		Scope:    scope,
		Claims:   withTenant(user, acr.tenant),
		User:     true,
		AuthTime: req.now,
	})
}

// acrValues is what tokengate reads from acr_values: which identity provider, which tenant.
type acrValues struct {
	idp    string
	tenant string
}

// parseACRValues reads `idp:<name>` (which must be allowed for the client) and `tenant:<name>`
// from the space-separated acr_values, as IdentityServer does; other values are ignored.
func (s *Server) parseACRValues(c *Client, param string) (acrValues, *Error) {
	var acr acrValues
	for _, v := range strings.Fields(param) {
		if name, ok := strings.CutPrefix(v, "idp:"); ok {
			acr.idp = name
		} else if name, ok := strings.CutPrefix(v, "tenant:"); ok {
			acr.tenant = name
		}
	}
	allowed := c.IdentityProviders
	if len(allowed) == 0 && len(s.cfg.IdentityProviders) > 0 {
		allowed = []string{s.cfg.IdentityProviders[0].Name}
	}
	if acr.idp == "" && len(allowed) > 0 {
		acr.idp = allowed[0]
	}
	if !slices.Contains(allowed, acr.idp) {
		return acr, errorf(CodeInvalidRequest, "the identity provider is not available to this client")
	}
	return acr, nil
}

func withTenant(u identity.User, tenant string) map[string]any {
	if tenant == "" {
		return u.Claims
	}
	claims := make(map[string]any, len(u.Claims)+1)
	for k, v := range u.Claims {
		claims[k] = v
	}
	claims["tenant"] = tenant
	return claims
}
