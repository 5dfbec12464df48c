package grants

import (
	"context"
	"net/http"

	"github.com/tokengate/tokengate/internal/nostore"
	"github.com/tokengate/tokengate/store"
)

// Revoke serves POST /connect/revocation (RFC 7009). A client revokes its own tokens: an access
// token by its jti until it would expire (or, once it has revoked many, with its grant or with all
// its tokens without one: the deny-list stays bounded), a refresh token with its whole family. An unknown,
// expired or foreign token gets the same 200 (§2.2), so the endpoint tells nothing about tokens.
func (s *Server) Revoke(w http.ResponseWriter, r *http.Request) {
	if err := s.revoke(w, r); err != nil {
		s.fail(w, err)
		return
	}
	nostore.Set(w.Header())
	w.WriteHeader(http.StatusOK)
}

func (s *Server) revoke(w http.ResponseWriter, r *http.Request) *Error {
	f, client, err := s.clientRequest(w, r)
	if err != nil {
		return err
	}
	token, ok := f["token"]
	if !ok {
		return errorf(CodeInvalidRequest, "token is missing")
	}
	revocation, fault := s.revocationFor(r.Context(), token, client)
	if fault != nil {
		return unavailable(fault)
	}
	if revocation == nil {
		return nil
	}
	if err := s.cfg.Store.Revoke(r.Context(), *revocation); err != nil {
		// fosite CVE-2020-15223: a revocation that was not recorded must not answer 200.
		return unavailable(err)
	}
	s.revokedNow(r.Context())
	s.cfg.Observe(revokedEvent(*revocation, client))
	return nil
}

// revokedEvent tells the observer of revocation, made by client.
func revokedEvent(revocation store.Revocation, client *Client) Event {
	ev := Event{Kind: EventRevoked, Client: client, What: RevokedRefreshFamily, GrantID: revocation.ID}
	if revocation.Kind == store.RevokedToken {
		ev.What, ev.GrantID, ev.JTI = RevokedAccessToken, "", revocation.ID
	}
	return ev
}

// revocationFor names what revoking token means, or nil when it is nothing of client's that lives.
// token_type_hint is not needed: an access token is a JWT, a refresh token is not.
func (s *Server) revocationFor(ctx context.Context, token string, client *Client) (*store.Revocation, error) {
	if looksLikeJWT(token) {
		c, err := s.cfg.Verifier.VerifyAccessToken(token)
		if err != nil || c.ClientID != client.ID {
			return nil, nil
		}
		if s.cfg.DenyList != nil {
			return s.cfg.DenyList.RevocationFor(c, s.accessTTL(client)), nil
		}
		return &store.Revocation{Kind: store.RevokedToken, ID: c.JTI, Until: c.ExpiresAt}, nil
	}
	record, _, err := s.lookupRefresh(ctx, refreshKey(token))
	if err != nil || record == nil || record.ClientID != client.ID {
		return nil, err
	}
	return &store.Revocation{Kind: store.RevokedFamily, ID: record.FamilyID, Until: record.ExpiresAt}, nil
}
