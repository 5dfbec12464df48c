package grants

import (
	"context"

	"github.com/tokengate/tokengate/samlbearer"
)

// GrantTypeSAML2Bearer is the grant_type of the SAML 2.0 bearer grant (RFC 7522 §2.1).
const GrantTypeSAML2Bearer = "urn:ietf:params:oauth:grant-type:saml2-bearer"

// saml2Bearer runs RFC 7522 §2.1: the client, authenticated as usual, exchanges a SAML assertion a
// `saml_trust` issuer signed for an access token whose sub is the assertion's NameID, verbatim.
// As with jwt-bearer, the scope is checked first and only API scopes are granted, with no
// refresh token.
func (s *Server) saml2Bearer(ctx context.Context, req *tokenRequest) (*tokenResponse, *Error) {
	raw, scope, err := assertionGrantRequest(req)
	if err != nil {
		return nil, err
	}
	claims, fault := s.saml.Verify(ctx, raw)
	if fault != nil {
		return nil, assertionRefused(fault, samlbearer.ErrInvalid)
	}
	return s.mint(req, &grant{Subject: claims.Subject, Scope: scope}, scope)
}
