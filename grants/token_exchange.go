package grants

import (
	"context"
	"slices"
	"strings"

	"github.com/tokengate/tokengate/tokens"
)

// RFC 8693 identifiers.
const (
	GrantTypeTokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange"
	// TokenTypeAccessToken is the only token type TokenExchange takes and issues (§3).
	TokenTypeAccessToken = "urn:ietf:params:oauth:token-type:access_token"
	// CodeInvalidTarget is §2.2.2's answer for an audience or resource the server will not issue
	// a token for.
	CodeInvalidTarget = "invalid_target"
)

// TokenExchange is OAuth 2.0 Token Exchange (RFC 8693), the first extension grant: a client
// trades an access token this tokengate issued (subject_token) for one of its own, for the same
// subject, never wider than the subject token's scope and only for the client's audiences. The
// subject token must be addressed to the client: its aud holds the client's ID (the client is the
// resource server that received it) or one of the client's exchange audiences. With an
// actor_token the new token records delegation in act (§4.1): the actor's sub and client_id,
// the subject token's own act nested inside. The new token lives no longer than the subject
// token: it expires no later, belongs to the subject token's grant, and is derived from the
// subject token, so revoking the grant or the subject token (or what that was derived from)
// revokes it.
type TokenExchange struct{}

// GrantType implements ExtensionGrant.
func (*TokenExchange) GrantType() string { return GrantTypeTokenExchange }

// Grant implements ExtensionGrant.
func (*TokenExchange) Grant(_ context.Context, req ExtensionRequest) (ExtensionResult, *Error) {
	p := req.Params
	// §2.2.2: a request that is not valid, or a subject or actor token that is not, is
	// invalid_request.
	subject, err := exchangedToken(req, p["subject_token"], p["subject_token_type"], "subject_token")
	if err != nil {
		return ExtensionResult{}, err
	}
	// §2.2.2: a subject token that is not for this client is invalid_request. Without this, any
	// client with the grant would turn any live token of another's into one of its own (Keycloak
	// CVE-2022-1245).
	if !addressedTo(subject.Audience, req) {
		return ExtensionResult{}, errorf(CodeInvalidRequest, "the subject_token is not addressed to this client")
	}
	if t, ok := p["requested_token_type"]; ok && t != TokenTypeAccessToken {
		return ExtensionResult{}, errorf(CodeInvalidRequest, "requested_token_type must be "+TokenTypeAccessToken)
	}
	res := ExtensionResult{
		Subject:         subject.Subject,
		GrantID:         subject.GrantID,
		ExpiresBy:       subject.ExpiresAt,
		DerivedFrom:     append([]string{subject.JTI}, subject.DerivedFrom...),
		IssuedTokenType: TokenTypeAccessToken,
	}
	if res.Scope, err = exchangedScope(req, strings.Fields(subject.Scope)); err != nil {
		return ExtensionResult{}, err
	}
	for _, target := range append([]string{p["audience"]}, req.Resources...) {
		if target == "" {
			continue
		}
		if !slices.Contains(req.ClientAudience, target) {
			return ExtensionResult{}, errorf(CodeInvalidTarget, "the client gets no tokens for this audience")
		}
		res.Audience = append(res.Audience, target)
	}
	if _, ok := p["actor_token"]; ok || p["actor_token_type"] != "" {
		actor, err := exchangedToken(req, p["actor_token"], p["actor_token_type"], "actor_token")
		if err != nil {
			return ExtensionResult{}, err
		}
		act := map[string]any{"sub": actor.Subject, "client_id": actor.ClientID}
		if prior, ok := subject.All["act"]; ok {
			act["act"] = prior
		}
		res.Claims = map[string]any{"act": act}
	}
	return res, nil
}

// exchangedToken verifies a subject or actor token: of the one type supported, issued here, alive.
func exchangedToken(req ExtensionRequest, token, tokenType, name string) (*tokens.Claims, *Error) {
	switch {
	case token == "" || tokenType == "":
		return nil, errorf(CodeInvalidRequest, name+" and "+name+"_type are required")
	case tokenType != TokenTypeAccessToken:
		return nil, errorf(CodeInvalidRequest, name+"_type must be "+TokenTypeAccessToken)
	}
	c, ok := req.AccessToken(token)
	if !ok {
		return nil, errorf(CodeInvalidRequest, name+" is not an active access token of this server")
	}
	return c, nil
}

// addressedTo reports whether a token of audience aud was sent to the requesting client: aud
// holds its ID or one of its exchange audiences.
func addressedTo(aud []string, req ExtensionRequest) bool {
	return slices.Contains(aud, req.ClientID) ||
		slices.ContainsFunc(req.ExchangeAudiences, func(a string) bool { return slices.Contains(aud, a) })
}

// exchangedScope is the requested scope when the subject token holds all of it (§2.1: the new
// token is never wider), else the subject token's scope that the client may have.
func exchangedScope(req ExtensionRequest, subjectScope []string) ([]string, *Error) {
	if req.Scope != nil {
		for _, s := range req.Scope {
			if !slices.Contains(subjectScope, s) {
				return nil, errorf(CodeInvalidScope, "the scope "+s+" is not the subject token's")
			}
		}
		return req.Scope, nil
	}
	scope := slices.DeleteFunc(slices.Clone(subjectScope), func(s string) bool { return !slices.Contains(req.ClientScopes, s) })
	if len(scope) == 0 {
		return nil, errorf(CodeInvalidScope, "the subject token holds no scope the client may have")
	}
	return scope, nil
}

// Interface guards
var _ ExtensionGrant = (*TokenExchange)(nil)
