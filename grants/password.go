package grants

import (
	"context"
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
	scope, err := GrantedScope(req.form["scope"], req.client.Scopes)
	if err != nil {
		return nil, err
	}
	// Checked before the password, which a request that cannot succeed must not get to try.
	resources, err := s.Resources(req.client, req.resources)
	if err != nil {
		return nil, err
	}
	user, err := s.SignIn(ctx, s.cfg.ClientIP(req.http), req.client, username, password, req.form["acr_values"])
	if err != nil {
		return nil, err
	}
	return s.respond(ctx, req, &grant{Subject: user.Subject, Scope: scope, Resources: resources, Claims: user.Claims,
		User: true, IdP: user.IdP, AuthTime: user.AuthTime, audience: resources})
}

// SignedIn is a person whose password was checked.
type SignedIn struct {
	Subject string
	// Claims are the user's, with tenant when one was chosen and the identity provider vouched for it.
	Claims   map[string]any
	AuthTime time.Time
	// IdP names the identity provider that checked the password.
	IdP string
}

// SignIn checks a person's password for client, as the password grant and the login page both
// must: the identity provider and tenant named by acr_values (idp:, tenant:), and guessing
// throttled per username and, far later, per address: the address the person's request comes
// from. A wrong password is invalid_grant, a throttled attempt 429 (never invalid_grant, even for
// the right password), a provider that cannot answer 503. The observer hears of every check.
func (s *Server) SignIn(ctx context.Context, address string, client *Client, username, password, acrValues string) (SignedIn, *Error) {
	acr, err := s.ACRValues(client, acrValues)
	if err != nil {
		return SignedIn{}, err
	}
	idp, ok := s.passwordProvider(acr)
	if !ok {
		return SignedIn{}, errorf(CodeInvalidRequest, "the identity provider does not take passwords here")
	}
	user, result, err := s.checkPassword(ctx, address, idp, username, password, acr.Tenant)
	s.cfg.Observe(Event{Kind: EventSignIn, Client: client, Subject: user.Subject, Username: username, IdP: idp,
		Result: result, RemoteIP: address})
	return user, err
}

// checkPassword is SignIn's check with idp, and its result for the observer.
func (s *Server) checkPassword(ctx context.Context, address, idp, username, password, tenant string) (SignedIn, string, *Error) {
	now := s.cfg.Now()
	// Each check holds a failure of its username and address until its outcome is known, so that
	// guesses sent at once are throttled as if sent one after another.
	userSlot, wait, ok := s.limits.usernames.Reserve(idp+"\x00"+username, now)
	if !ok {
		s.cfg.Observe(Event{Kind: EventThrottled, What: ThrottledPassword, RemoteIP: address})
		return SignedIn{}, SignInThrottled, tooManyAttempts(wait)
	}
	defer userSlot.Release()
	addressSlot, wait, ok := s.limits.addresses.Reserve(address, now)
	if !ok {
		s.cfg.Observe(Event{Kind: EventThrottled, What: ThrottledAddress, RemoteIP: address})
		return SignedIn{}, SignInThrottled, tooManyAttempts(wait)
	}
	defer addressSlot.Release()
	// A tenant the identity provider does not vouch for is as wrong as a wrong password.
	user, ok, fault := s.idps[idp].Authenticate(ctx, username, password, tenant)
	if fault != nil {
		return SignedIn{}, SignInError, unavailable(fault)
	}
	if !ok {
		userSlot.Fail(now)
		addressSlot.Fail(now)
		return SignedIn{}, SignInWrongPassword, errorf(CodeInvalidGrant, "the username or password is wrong")
	}
	// The address keeps its failures: one right password among many guesses clears nothing.
	userSlot.Succeed()
	return SignedIn{Subject: user.Subject, Claims: user.Claims, AuthTime: now, IdP: idp}, SignInOK, nil
}

// UserKnown reports whether the identity provider idp still has the user subject: false once a
// reload removed the user from its `users` block, or the block itself. A provider that cannot list
// its users (http_login, no identity.Directory, an external provider) cannot tell, and the answer
// is true: such a user's refresh tokens and sessions last their lifetimes, or until they are
// revoked.
func (s *Server) UserKnown(idp, subject string) bool {
	p, ok := s.idps[idp]
	if !ok {
		return false
	}
	if s.external[idp] {
		return true
	}
	d, ok := p.(identity.Directory)
	return !ok || d.Has(subject)
}

// personGone reports whether g is a person's grant whose person has left their identity provider
// since signing in: nothing more is issued on it (a code, a device approval, a refresh token).
func (s *Server) personGone(c *Client, g *grant) bool {
	if !g.User {
		return false
	}
	idp := g.IdP
	if idp == "" {
		// A grant from before its provider was recorded came from a password sign-in: the provider
		// that checks a password through the client when acr_values names none stands in. (An
		// external provider listed first would answer for anyone, removed or not.)
		acr, err := s.ACRValues(c, "")
		if err != nil {
			return true
		}
		var ok bool
		if idp, ok = s.passwordProvider(acr); !ok {
			return true
		}
	}
	return !s.UserKnown(idp, g.Subject)
}

// passwordProvider is the identity provider that checks a password for acr: the first it names
// that is not external, since an external provider signs its people in on its own pages. ok is
// false when all are external.
func (s *Server) passwordProvider(acr ACRValues) (idp string, ok bool) {
	i := slices.IndexFunc(acr.IdPs, func(name string) bool { return !s.external[name] })
	if i < 0 {
		return "", false
	}
	return acr.IdPs[i], true
}

// ACRValues is what tokengate reads from acr_values (OIDC Core §3.1.2.1), as IdentityServer does:
// `idp:<name>` and `tenant:<name>`; other values are ignored.
type ACRValues struct {
	// IdPs are the identity providers whose sign-in answers the request: the one idp: names, or
	// every one the client may use. Never empty; a password is checked by the first that is not
	// external (passwordProvider).
	IdPs []string
	// Tenant is the tenant: value, or "".
	Tenant string
}

// ACRValues reads the space-separated acr_values param for client. An identity provider it names
// must be one the client may use: its identity_providers, or the first configured provider when it
// lists none. The password grant and the authorization endpoint both read acr_values here, so a
// session answers exactly the requests a password check would. Errors are invalid_request.
func (s *Server) ACRValues(c *Client, param string) (ACRValues, *Error) {
	var acr ACRValues
	var named string
	for _, v := range strings.Fields(param) {
		if name, ok := strings.CutPrefix(v, "idp:"); ok {
			named = name
		} else if name, ok := strings.CutPrefix(v, "tenant:"); ok {
			acr.Tenant = name
		}
	}
	allowed := c.IdentityProviders
	if len(allowed) == 0 {
		// External providers are opt-in: a client that names none keeps the first `users` block.
		if i := slices.IndexFunc(s.cfg.IdentityProviders, func(p IdentityProvider) bool { return !p.External }); i >= 0 {
			allowed = []string{s.cfg.IdentityProviders[i].Name}
		}
	}
	switch {
	case named != "" && !slices.Contains(allowed, named):
		return acr, errorf(CodeInvalidRequest, "the identity provider is not available to this client")
	case named != "":
		acr.IdPs = []string{named}
	case len(allowed) == 0:
		return acr, errorf(CodeInvalidRequest, "no identity provider is available to this client")
	default:
		acr.IdPs = allowed
	}
	return acr, nil
}
