package grants

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/tokengate/tokengate/identity"
)

// password runs RFC 6749 §4.3: the client passes on a person's username and password. RFC 9700
// §2.4 says it must not be used, so a client has it only when its block says so.
func (s *Server) password(ctx context.Context, req *tokenRequest) (*tokenResponse, *Error) {
	username, password := req.form["username"], req.form["password"]
	if username == "" || password == "" {
		return nil, errorf(CodeInvalidRequest, "username and password are required")
	}
	scope, err := grantedScope(req.form, req.client.Scopes)
	if err != nil {
		return nil, err
	}
	user, err := s.SignIn(ctx, req.http, req.client, username, password, req.form["acr_values"])
	if err != nil {
		return nil, err
	}
	return s.respond(ctx, req, &grant{Subject: user.Subject, Scope: scope, Claims: user.Claims, User: true, AuthTime: user.AuthTime})
}

// SignedIn is a person whose password was checked.
type SignedIn struct {
	Subject string
	// Claims are the user's, with tenant when one was chosen.
	Claims   map[string]any
	AuthTime time.Time
}

// SignIn checks a person's password for client, as the password grant and the login page both
// must: the identity provider and tenant named by acr_values (idp:, tenant:), and guessing
// throttled per username and, far later, per address. A wrong password is invalid_grant, a
// throttled attempt 429 (never invalid_grant, even for the right password), a provider that cannot
// answer 503.
func (s *Server) SignIn(ctx context.Context, r *http.Request, client *Client, username, password, acrValues string) (SignedIn, *Error) {
	acr, err := s.parseACRValues(client, acrValues)
	if err != nil {
		return SignedIn{}, err
	}
	now := s.cfg.Now()
	userKey := acr.idp + "\x00" + username
	address := s.cfg.ClientIP(r)
	if wait, blocked := s.limits.usernames.Blocked(userKey, now); blocked {
		return SignedIn{}, tooManyAttempts(wait)
	}
	if wait, blocked := s.limits.addresses.Blocked(address, now); blocked {
		return SignedIn{}, tooManyAttempts(wait)
	}
	user, ok, fault := s.idps[acr.idp].Authenticate(ctx, username, password)
	if fault != nil {
		return SignedIn{}, unavailable(fault)
	}
	// A tenant the user does not belong to is as wrong as a wrong password.
	if ok && acr.tenant != "" && len(user.Tenants) > 0 && !slices.Contains(user.Tenants, acr.tenant) {
		ok = false
	}
	if !ok {
		s.limits.usernames.Fail(userKey, now)
		s.limits.addresses.Fail(address, now)
		return SignedIn{}, errorf(CodeInvalidGrant, "the username or password is wrong")
	}
	s.limits.usernames.Forget(userKey)
	return SignedIn{Subject: user.Subject, Claims: withTenant(user, acr.tenant), AuthTime: now}, nil
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
