package grants

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/tokengate/tokengate/store"
)

// refreshToken runs RFC 6749 §6 with rotation (RFC 9700 §4.14.2): every use returns a new refresh
// token; presenting a rotated one kills the whole family, and the gate refuses its access tokens.
func (s *Server) refreshToken(ctx context.Context, req *tokenRequest) (*tokenResponse, *Error) {
	presented, ok := req.form["refresh_token"]
	if !ok {
		return nil, errorf(CodeInvalidRequest, "refresh_token is missing")
	}
	oldHash, issuedAt := parseRefreshToken(presented)
	record, err := s.cfg.Store.RefreshToken(ctx, oldHash)
	if err != nil {
		return nil, s.refreshLookupFailed(ctx, req.client, record.FamilyID, err)
	}
	// §6: the token must have been issued to this client. Another client's attempt uses nothing up.
	if record.ClientID != req.client.ID {
		return nil, invalidRefreshToken()
	}
	g, err := s.grants.decode(record.Grant)
	if err != nil {
		return nil, serverFault(err)
	}
	// Removing a client revokes its tokens, and declaring it again does not revive them; removing
	// the person from their identity provider ends their grants.
	if s.clientRevoked(record.ClientID, g.issuedAt(issuedAt)) || s.personGone(req.client, &g) {
		return nil, invalidRefreshToken()
	}
	g.familyID, g.familyExpires = record.FamilyID, record.ExpiresAt
	scope, scopeErr := refreshedScope(req.form["scope"], g.Scope, req.client)
	if scopeErr != nil {
		return nil, scopeErr
	}
	var targetErr *Error
	if g.audience, targetErr = s.refreshedResources(req, g.Resources); targetErr != nil {
		return nil, targetErr
	}
	// The grant goes on unchanged: the new token stores the very bytes the old one did.
	raw, next := newRefreshToken(req.client.ID, &g, record.Grant, req.now)
	if err := s.rotate(ctx, oldHash, refreshKey(raw), next); err != nil {
		return nil, s.refreshLookupFailed(ctx, req.client, record.FamilyID, err)
	}
	resp, mintErr := s.mint(req, &g, scope)
	if mintErr != nil {
		return nil, mintErr
	}
	resp.RefreshToken = raw
	return resp, nil
}

// refreshedScope is the scope of a refreshed access token: what param asks for, which may narrow
// the grant's scope but never widen it (RFC 6749 §6), or all of it when param asks for nothing;
// the refresh token keeps the grant's scope, so a later refresh without scope gets it all back.
// Only what the client's scopes still allow is issued: a scope a reload removed from the client
// never comes back on refresh, and asking for it is invalid_scope, as asking for any scope beyond
// the grant is. A grant left without offline_access is invalid_grant instead: the refresh token
// itself no longer holds (§5.2), however the request is put, which is what IdentityServer answers
// a client that lost offline_access. A dynamic client's grant never needed offline_access.
func refreshedScope(param string, granted []string, client *Client) ([]string, *Error) {
	current := slices.DeleteFunc(slices.Clone(granted), func(s string) bool { return !slices.Contains(client.Scopes, s) })
	if !client.Dynamic && !slices.Contains(current, scopeOfflineAccess) {
		return nil, invalidRefreshToken()
	}
	return GrantedScope(param, current)
}

// refreshedResources is the aud of a refreshed access token (RFC 8707 §2.2): the request's
// resources, each among those the grant was authorized for, or all of them; the refresh token
// keeps them all. As with scopes, only what the client may still get is issued: a resource a
// reload took from the client never comes back, and a grant left with none of its resources no
// longer holds.
func (s *Server) refreshedResources(req *tokenRequest, granted []string) ([]string, *Error) {
	current := slices.DeleteFunc(slices.Clone(granted), func(r string) bool { return !s.mayGet(req.client, r) })
	if len(granted) > 0 && len(current) == 0 {
		return nil, invalidRefreshToken()
	}
	return s.targetResources(req.client, req.resources, current)
}

// rotationRetryFor bounds how long a rotation with an unknown outcome is retried before the client
// is told to retry itself: when the store is away, the answer is a 503 within a few seconds.
const rotationRetryFor = 4 * time.Second

// rotate rotates oldHash to newHash. A store fault leaves the outcome unknown: the rotation may
// have committed with its reply lost (Redis killed mid-answer). Repeating it with the same newHash
// succeeds in either case, so it is repeated while the store recovers, and the client's token is
// not used up by an answer it never got.
func (s *Server) rotate(ctx context.Context, oldHash, newHash string, next store.RefreshToken) error {
	giveUp := time.Now().Add(rotationRetryFor)
	// The first attempt runs under the request's context, bounded by the store's own timeouts: a
	// context with a deadline of its own would cost every refresh a timer.
	err := s.cfg.Store.RotateRefreshToken(ctx, oldHash, newHash, next)
	if rotationSettled(err) {
		return err
	}
	ctx, cancel := context.WithDeadline(ctx, giveUp)
	defer cancel()
	wait := 50 * time.Millisecond
	for {
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		wait = min(2*wait, time.Second)
		if err = s.cfg.Store.RotateRefreshToken(ctx, oldHash, newHash, next); rotationSettled(err) {
			return err
		}
	}
}

// rotationSettled reports whether a rotation's outcome, err, is known: done, refused, or not
// written at all by a store that will not write for now (ErrWriteRefused), which a retry within
// rotationRetryFor would only wait out.
func rotationSettled(err error) bool {
	return err == nil || errors.Is(err, store.ErrReused) || errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrWriteRefused)
}

// refreshLookupFailed answers a refresh token of client's family gid the store would not hand over.
func (s *Server) refreshLookupFailed(ctx context.Context, client *Client, gid string, err error) *Error {
	switch {
	case errors.Is(err, store.ErrReused):
		// The store killed the family; the gate must hear of it before the next request.
		s.revokedNow(ctx)
		s.cfg.Observe(Event{Kind: EventRefreshReused, Client: client, GrantID: gid})
		return invalidRefreshToken()
	case errors.Is(err, store.ErrNotFound):
		return invalidRefreshToken()
	}
	return unavailable(err)
}

func invalidRefreshToken() *Error {
	return errorf(CodeInvalidGrant, "the refresh token is invalid, expired or revoked")
}
