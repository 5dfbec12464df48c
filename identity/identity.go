// Package identity checks a person's username and password against an identity provider: a
// `users` block of the Caddyfile (bcrypt hashes) or a legacy application's own login (http_login),
// and decides which tenant, if any, the sign-in is for. A provider that can list its users (a
// `users` block) also tells whether a user still exists.
package identity

import (
	"context"
	"errors"
	"maps"
)

// User is an authenticated person.
type User struct {
	// Subject is the sub of their tokens: the username.
	Subject string
	// Claims go into their access and ID tokens and userinfo. Its `tenant` is the tenant the
	// identity provider vouched for, when there is one.
	Claims map[string]any
}

// Provider checks credentials. tenant is the tenant the person asks to sign in to (acr_values
// tenant:), or "" for none: a sign-in to a tenant the provider does not vouch for is refused like a
// wrong password, and then the user's `tenant` claim is that tenant. Wrong credentials are
// (User{}, false, nil); the error is only for technical failures (a login backend that is
// unreachable or answers 5xx), which callers report as 503 and never as a wrong password.
type Provider interface {
	Authenticate(ctx context.Context, username, password, tenant string) (User, bool, error)
}

// Directory is a Provider that can say whether a user still exists without their password: a
// `users` block can, a legacy login (http_login) cannot, since it answers only a password check. A
// refresh token and a sign-in session end when their user leaves the directory; with a provider
// that is no Directory they last their own lifetimes.
type Directory interface {
	Provider
	// Has reports whether username is one of the provider's users: a map lookup, no password
	// check.
	Has(username string) bool
}

// ErrUnavailable wraps the failures of a login backend.
var ErrUnavailable = errors.New("identity: login backend unavailable")

// tenantClaim is the claim that names the tenant a user signed in to.
const tenantClaim = "tenant"

// signedInTo is u signing in to tenant ("" for none), which u's provider vouched for or not. A
// tenant comes only from the provider: one it did not vouch for refuses the sign-in, and one already
// in u's claims (a login backend's answer) is never replaced by what the request asked for.
func (u User) signedInTo(tenant string, vouched bool) (User, bool) {
	if tenant == "" {
		return u, true
	}
	if !vouched {
		return User{}, false
	}
	if t, ok := u.Claims[tenantClaim]; ok && t != tenant {
		return User{}, false
	}
	claims := make(map[string]any, len(u.Claims)+1)
	maps.Copy(claims, u.Claims)
	claims[tenantClaim] = tenant
	return User{Subject: u.Subject, Claims: claims}, true
}
