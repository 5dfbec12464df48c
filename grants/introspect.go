package grants

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/tokengate/tokengate/store"
	"github.com/tokengate/tokengate/tokens"
)

// introspection is RFC 7662 §2.2's answer for an active token. An inactive one is exactly
// {"active":false}: nothing about why.
type introspection struct {
	Active    bool     `json:"active"`
	Scope     string   `json:"scope,omitempty"`
	ClientID  string   `json:"client_id,omitempty"`
	Subject   string   `json:"sub,omitempty"`
	ExpiresAt int64    `json:"exp,omitempty"`
	IssuedAt  int64    `json:"iat,omitempty"`
	NotBefore int64    `json:"nbf,omitempty"`
	Issuer    string   `json:"iss,omitempty"`
	Audience  []string `json:"aud,omitempty"`
	TokenType string   `json:"token_type,omitempty"`
	JTI       string   `json:"jti,omitempty"`
}

// Introspect serves POST /connect/introspect (RFC 7662). The caller authenticates as at the token
// endpoint and learns only of tokens issued to it, unless it has introspect_any.
func (s *Server) Introspect(w http.ResponseWriter, r *http.Request) {
	serveJSON(s, w, r, s.introspect)
}

func (s *Server) introspect(w http.ResponseWriter, r *http.Request) (*introspection, *Error) {
	f, client, err := s.clientRequest(w, r)
	if err != nil {
		return nil, err
	}
	// RFC 7662 §2.1: the endpoint must be protected; a public client proves nothing.
	if client.Public {
		_, triedBasic := basicPayload(r)
		return nil, clientAuthFailed(triedBasic)
	}
	token, ok := f["token"]
	if !ok {
		return nil, errorf(CodeInvalidRequest, "token is missing")
	}
	visible := func(owner string) bool { return owner == client.ID || client.IntrospectAny }
	// §2.1: token_type_hint only orders the lookups; both kinds are always tried.
	lookups := []func(context.Context, string, func(string) bool) (*introspection, error){s.introspectAccess, s.introspectRefresh}
	if f["token_type_hint"] == "refresh_token" {
		lookups[0], lookups[1] = lookups[1], lookups[0]
	}
	for _, lookup := range lookups {
		answer, err := lookup(r.Context(), token, visible)
		if err != nil {
			return nil, unavailable(err)
		}
		if answer != nil {
			return answer, nil
		}
	}
	return &introspection{Active: false}, nil
}

// introspectAccess answers for an access token this tokengate signed, or nil when token is not one
// the caller may see alive.
func (s *Server) introspectAccess(_ context.Context, token string, visible func(string) bool) (*introspection, error) {
	c, ok := s.activeAccessToken(token)
	if !ok || !visible(c.ClientID) {
		return nil, nil
	}
	answer := &introspection{
		Active: true, Scope: c.Scope, ClientID: c.ClientID, Subject: c.Subject,
		ExpiresAt: c.ExpiresAt.Unix(), IssuedAt: c.IssuedAt.Unix(), Issuer: c.Issuer,
		Audience: c.Audience, TokenType: "Bearer", JTI: c.JTI,
	}
	if !c.NotBefore.IsZero() {
		answer.NotBefore = c.NotBefore.Unix()
	}
	return answer, nil
}

// activeAccessToken returns the claims of token when it is an access token this tokengate signed
// that is alive: unexpired, not revoked, and issued to a client still registered.
func (s *Server) activeAccessToken(token string) (*tokens.Claims, bool) {
	if !looksLikeJWT(token) {
		return nil, false
	}
	c, err := s.cfg.Verifier.VerifyAccessToken(token)
	if err != nil || s.revoked(c) || s.clientRevoked(c.ClientID, c.IssuedAt) ||
		s.cfg.DenyList != nil && s.cfg.DenyList.GrantlessRevoked(c.ClientID, c.GrantID, c.IssuedAt) {
		return nil, false
	}
	if !s.clientKnown(c.ClientID) {
		return nil, false
	}
	return c, true
}

// introspectRefresh answers for a live refresh token of the caller's.
func (s *Server) introspectRefresh(ctx context.Context, token string, visible func(string) bool) (*introspection, error) {
	key, tokenIssuedAt := parseRefreshToken(token)
	record, g, err := s.lookupRefresh(ctx, key)
	if err != nil || record == nil || !visible(record.ClientID) {
		return nil, err
	}
	issuedAt := g.issuedAt(tokenIssuedAt)
	if s.clientRevoked(record.ClientID, issuedAt) {
		return nil, nil
	}
	// A refresh token the token endpoint would refuse is inactive (RFC 7662 §2.2).
	client, err := s.resolveClient(ctx, record.ClientID)
	switch {
	case errors.Is(err, ErrSourceUnavailable):
		return nil, err
	case client == nil || s.personGone(client, g):
		return nil, nil
	}
	return &introspection{
		Active: true, Scope: strings.Join(g.Scope, " "), ClientID: record.ClientID, Subject: g.Subject,
		ExpiresAt: record.ExpiresAt.Unix(), IssuedAt: issuedAt.Unix(), Issuer: s.cfg.Issuer,
		Audience: s.audience(client), TokenType: "refresh_token",
	}, nil
}

// lookupRefresh returns the live refresh token stored under key and its grant, nil when there is
// none (unknown, expired, revoked, reused), or a store fault.
func (s *Server) lookupRefresh(ctx context.Context, key string) (*store.RefreshToken, *grant, error) {
	record, err := s.cfg.Store.RefreshToken(ctx, key)
	switch {
	case errors.Is(err, store.ErrReused):
		s.revokedNow(ctx)
		return nil, nil, nil
	case errors.Is(err, store.ErrNotFound):
		return nil, nil, nil
	case err != nil:
		return nil, nil, err
	}
	g, err := s.grants.decode(record.Grant)
	if err != nil {
		return nil, nil, err
	}
	return &record, &g, nil
}

// revoked asks the gate's deny-list, when there is one, whether the access token c is revoked.
func (s *Server) revoked(c *tokens.Claims) bool {
	return s.cfg.DenyList != nil && s.cfg.DenyList.Revoked(c.JTI, c.GrantID, c.DerivedFrom...)
}

// clientRevoked asks whether the token predates its client's removal from the configuration.
func (s *Server) clientRevoked(clientID string, issuedAt time.Time) bool {
	return s.cfg.DenyList != nil && s.cfg.DenyList.ClientRevoked(clientID, issuedAt)
}

// revokedNow reads the revocation the store just recorded into the gate's deny-list. A failed read
// is left to the deny-list's periodic sync, which retries it within a second or so.
func (s *Server) revokedNow(ctx context.Context) {
	if s.cfg.DenyList != nil {
		_ = s.cfg.DenyList.Sync(ctx)
	}
}

// looksLikeJWT tells a compact JWS from an opaque refresh token, which has no dots.
func looksLikeJWT(token string) bool { return strings.Count(token, ".") == 2 }
