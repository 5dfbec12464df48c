package grants

import "context"

// clientCredentials runs RFC 6749 §4.4: the client acts on its own behalf; the token's subject is
// the client and there is no refresh token (§4.4.3). Only confidential clients have it: the
// configuration check refuses a public client that registers it.
func (s *Server) clientCredentials(ctx context.Context, req *tokenRequest) (*tokenResponse, *Error) {
	scope, err := GrantedScope(req.form["scope"], apiScopes(req.client.Scopes))
	if err != nil {
		return nil, err
	}
	resources, err := s.Resources(req.client, req.resources)
	if err != nil {
		return nil, err
	}
	return s.mint(req, &grant{Subject: req.client.ID, Scope: scope, audience: resources}, scope)
}
