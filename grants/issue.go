package grants

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/tokengate/tokengate/store"
	"github.com/tokengate/tokengate/tokens"
)

// grant is what was granted: what a token response is made from, and what a refresh token
// remembers (JSON in store.RefreshToken.Grant).
type grant struct {
	Subject string   `json:"sub"`
	Scope   []string `json:"scope"`
	// Resources are the resources (RFC 8707) the grant was authorized for: its tokens' aud, or a
	// part of them a request narrows to. Nil means the client's audience; families from before
	// they were recorded have none, and keep the audience they had.
	Resources []string `json:"resource,omitempty"`
	// Claims are the user's (and their tenant); the client's static claims are added at minting,
	// so a reload that changes them applies to refreshed tokens too.
	Claims map[string]any `json:"claims,omitempty"`
	// User is set when a person authenticated, not only the client: only then is there an ID token.
	User bool `json:"user,omitempty"`
	// IdP names the identity provider that signed the person in (with User): every refresh asks
	// it whether the person still exists. Families from before it was recorded have none.
	IdP      string    `json:"idp,omitempty"`
	AuthTime time.Time `json:"auth_time,omitzero"`
	// IssuedAt is when the refresh token holding this record was issued, in records written
	// before a refresh token carried its issue time itself (see issuedAt). Nothing writes it now:
	// a family's tokens share their grant byte for byte, and a refresh stores it unchanged.
	IssuedAt time.Time `json:"iat,omitzero"`

	// familyID names the grant (its refresh family, when it has one): its access tokens carry it as
	// gid, so revoking the family revokes them. familyExpires is set with a refresh family, and its
	// access tokens never outlive it.
	familyID      string
	familyExpires time.Time
	// nonce goes into the ID token of the first response only (OIDC Core §3.1.3.6).
	nonce string
	// audience is the token's aud: the resources a request named, or an extension grant's
	// choice; nil means the client's.
	audience []string
	// derivedFrom are the jtis of the access tokens the token is made from (an extension grant's).
	derivedFrom []string
}

// tokenResponse is RFC 6749 §5.1's successful response.
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	Scope        string `json:"scope,omitempty"`
	RefreshToken string `json:"refresh_token,omitempty"`
	IDToken      string `json:"id_token,omitempty"`
	// IssuedTokenType is RFC 8693 §2.2.1's, for a token exchange.
	IssuedTokenType string `json:"issued_token_type,omitempty"`

	// issued names the access token for the audit trail; it is never sent.
	issued issuedToken
}

// issuedToken is who an access token is for, its jti and its grant id: what names it without
// being it.
type issuedToken struct {
	Subject, JTI, GrantID string
}

// respond issues the tokens for g: a new refresh family when the client may refresh and asked for
// offline_access (a dynamic client need not ask), an access token, and an ID token for a person
// who asked for openid. A person who has left their identity provider since signing in (a code or
// a device approval waited) gets nothing.
func (s *Server) respond(ctx context.Context, req *tokenRequest, g *grant) (*tokenResponse, *Error) {
	if s.personGone(req.client, g) {
		return nil, errorf(CodeInvalidGrant, "the user is no longer known")
	}
	var refresh string
	// MCP clients never ask for offline_access (an OpenID Connect scope) and expect a refresh
	// token all the same when they registered the refresh_token grant (RFC 7591 §2).
	if req.client.allows("refresh_token") && (slices.Contains(g.Scope, scopeOfflineAccess) || req.client.Dynamic) {
		var err *Error
		if refresh, err = s.startFamily(ctx, req, g); err != nil {
			return nil, err
		}
	}
	resp, err := s.mint(req, g, g.Scope)
	if err != nil {
		return nil, err
	}
	resp.RefreshToken = refresh
	return resp, nil
}

// startFamily stores the first refresh token of a new family.
func (s *Server) startFamily(ctx context.Context, req *tokenRequest, g *grant) (string, *Error) {
	if g.familyID == "" {
		g.familyID = randomToken()
	}
	g.familyExpires = req.now.Add(s.cfg.RefreshTokenTTL)
	payload, err := json.Marshal(g)
	if err != nil {
		return "", serverFault(err)
	}
	raw, record := newRefreshToken(req.client.ID, g, payload, req.now)
	if err := s.cfg.Store.CreateRefreshToken(ctx, refreshKey(raw), record); err != nil {
		return "", unavailable(err)
	}
	return raw, nil
}

// newRefreshToken makes a refresh token for g's family (see refresh_key.go), which stores g as
// payload, its JSON. The whole family expires together, so a family revocation that lasts until
// the family's end covers every token of it.
func newRefreshToken(clientID string, g *grant, payload []byte, now time.Time) (string, store.RefreshToken) {
	return newRefreshTokenValue(g.familyID, now), store.RefreshToken{
		FamilyID:  g.familyID,
		ClientID:  clientID,
		ExpiresAt: g.familyExpires,
		Grant:     payload,
	}
}

// issuedAt is when a refresh token whose grant g is was issued: tokenIssuedAt, what the token
// says (parseRefreshToken), or else what g recorded.
func (g *grant) issuedAt(tokenIssuedAt time.Time) time.Time {
	if !tokenIssuedAt.IsZero() {
		return tokenIssuedAt
	}
	return g.IssuedAt
}

// mint signs the access token (and ID token) for g, narrowed to scope.
func (s *Server) mint(req *tokenRequest, g *grant, scope []string) (*tokenResponse, *Error) {
	c := req.client
	ttl := s.accessTTL(c)
	if !g.familyExpires.IsZero() {
		ttl = min(ttl, g.familyExpires.Sub(req.now))
	}
	claims := make(map[string]any, len(c.Claims)+len(g.Claims))
	for k, v := range c.Claims {
		claims[k] = v
	}
	for k, v := range g.Claims {
		claims[k] = v
	}
	if g.User && g.IdP != "" {
		// Every person's token names the identity provider that signed them in (IdentityServer's
		// idp claim).
		claims["idp"] = g.IdP
	}
	scopeParam := strings.Join(scope, " ")
	audience := g.audience
	if audience == nil {
		audience = s.audience(c)
	}
	access, jti, exp, err := s.cfg.Minter.AccessToken(tokens.AccessToken{
		Subject:     g.Subject,
		ClientID:    c.ID,
		Scope:       scopeParam,
		GrantID:     g.familyID,
		DerivedFrom: g.derivedFrom,
		Audience:    audience,
		Claims:      claims,
		TTL:         ttl,
	})
	if err != nil {
		return nil, serverFault(err)
	}
	resp := &tokenResponse{
		AccessToken: access,
		TokenType:   "Bearer",
		ExpiresIn:   expiresIn(exp, req.now),
		Scope:       scopeParam,
		issued:      issuedToken{Subject: g.Subject, JTI: jti, GrantID: g.familyID},
	}
	if g.User && slices.Contains(scope, scopeOpenID) {
		idClaims := maps.Clone(g.Claims)
		if idClaims == nil {
			idClaims = map[string]any{}
		}
		// OIDC Core §2 amr (RFC 8176 §2) and acr: a person tokengate signs in itself gave a
		// password, ISO/IEC 29115 level 1, which OIDC Core §2 writes as acr "1"; one an external
		// provider signed in says so (IdentityServer's amr "external"), how is the provider's.
		idClaims["amr"] = []string{"pwd"}
		if s.external[g.IdP] {
			idClaims["amr"] = []string{"external"}
		}
		idClaims["acr"] = "1"
		if g.IdP != "" {
			idClaims["idp"] = g.IdP
		}
		resp.IDToken, err = s.cfg.Minter.IDToken(tokens.IDToken{
			Subject:     g.Subject,
			ClientID:    c.ID,
			Nonce:       g.nonce,
			AccessToken: access,
			AuthTime:    g.AuthTime,
			Claims:      idClaims,
			TTL:         ttl,
			Alg:         c.IDTokenAlg,
		})
		if err != nil {
			return nil, serverFault(err)
		}
	}
	return resp, nil
}

// accessTTL is the lifetime of the client's access tokens.
func (s *Server) accessTTL(c *Client) time.Duration {
	if c.AccessTokenTTL != 0 {
		return c.AccessTokenTTL
	}
	return s.cfg.AccessTokenTTL
}

// audience is the aud of the client's tokens: its own audience, or the issuer.
func (s *Server) audience(c *Client) []string {
	if len(c.Audience) == 0 {
		return []string{s.cfg.Issuer}
	}
	return c.Audience
}

// expiresIn is RFC 6749 §5.1's expires_in: whole seconds, rounded up, so a short-lived token never
// reads as 0, which clients such as x/oauth2 take for "never expires".
func expiresIn(exp, now time.Time) int64 {
	return max(1, int64(math.Ceil(exp.Sub(now).Seconds())))
}

func randomToken() string {
	var b [32]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// hashToken is what a secret is stored under (a code, a device code, a refresh token's key): the
// store never sees the secret itself.
func hashToken(raw string) string {
	sum := sha256.Sum256([]byte(raw))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}
