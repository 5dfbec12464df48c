package grants

import (
	"context"

	"github.com/tokengate/tokengate/assertion"
)

// GrantTypeJWTBearer is the grant_type of the JWT bearer grant (RFC 7523 §2.1).
const GrantTypeJWTBearer = "urn:ietf:params:oauth:grant-type:jwt-bearer"

// jwtBearer runs RFC 7523 §2.1: the client exchanges a JWT a trusted issuer signed (a `trust`
// block's, the client authenticated as usual), or one it signed itself with its own keys (then
// the assertion is its authentication), for an access token whose sub is the assertion's.
//
// The scope is checked against the client before the assertion, so a refused scope does not use
// the assertion's jti up. Only API scopes are granted: nobody signed in here, so there is no ID
// token, and no refresh token either (as IdentityServer does): the assertion's issuer decides
// how long the subject keeps access, by signing new assertions, which a refresh token would
// outlive.
func (s *Server) jwtBearer(ctx context.Context, req *tokenRequest) (*tokenResponse, *Error) {
	raw, scope, err := assertionGrantRequest(req)
	if err != nil {
		return nil, err
	}
	iss, fault := assertion.UnverifiedIssuer(raw)
	if fault != nil {
		return nil, assertionRefused(fault, assertion.ErrInvalid)
	}
	v := s.trusts[iss]
	if v == nil && iss == req.client.ID {
		v = s.selfGrant[iss]
	}
	// RFC 7523 §3 item 1: an issuer nobody configured is refused; a client's own key never
	// vouches for another client's assertions.
	if v == nil {
		return nil, errorf(CodeInvalidGrant, "the assertion's issuer is not trusted")
	}
	claims, fault := v.Verify(ctx, raw)
	if fault != nil {
		return nil, assertionRefused(fault, assertion.ErrInvalid)
	}
	return s.mint(req, &grant{Subject: claims.Subject, Scope: scope}, scope)
}
