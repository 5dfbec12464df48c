package grants

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"time"

	"github.com/tokengate/tokengate/store"
)

// PKCE code_challenge_method values (RFC 7636 §4.2).
const (
	PKCES256  = "S256"
	PKCEPlain = "plain"
)

// CodeGrant is what /connect/authorize approved: a signed-in user's consent, bound to the code that
// carries it to the token endpoint (RFC 6749 §4.1.2, RFC 7636 §4.4).
type CodeGrant struct {
	ClientID    string `json:"client_id"`
	RedirectURI string `json:"redirect_uri"`
	// Scope is what was granted; Nonce is echoed into the ID token (OIDC Core §3.1.2.1).
	Scope []string `json:"scope"`
	// Resources are the resources (RFC 8707) the request named, checked against the client;
	// nil for none, which means the client's audience.
	Resources []string `json:"resource,omitempty"`
	Nonce     string   `json:"nonce,omitempty"`
	// CodeChallenge and ChallengeMethod (S256 or plain) bind the code to the client's verifier; empty
	// when the request had no challenge, and then a verifier at redemption is refused.
	CodeChallenge   string `json:"code_challenge,omitempty"`
	ChallengeMethod string `json:"code_challenge_method,omitempty"`
	// Subject, Claims and AuthTime describe the user who signed in, IdP the identity provider
	// that checked their password.
	Subject  string         `json:"sub"`
	Claims   map[string]any `json:"claims,omitempty"`
	AuthTime time.Time      `json:"auth_time"`
	IdP      string         `json:"idp,omitempty"`
}

// codeUse is left behind by a redeemed code so that a replay can revoke what it issued
// (RFC 6749 §4.1.2: "SHOULD revoke (when possible) all tokens previously issued based on that code").
type codeUse struct {
	GrantID string    `json:"gid"`
	Until   time.Time `json:"until"`
}

// IssueCode stores g under a new authorization code: 256 random bits, usable once, for CodeTTL.
func (s *Server) IssueCode(ctx context.Context, g CodeGrant) (string, error) {
	payload, err := json.Marshal(g)
	if err != nil {
		return "", err
	}
	code := randomToken()
	stored, err := s.cfg.Store.PutOnce(ctx, codeKey(code), payload, s.cfg.Now().Add(s.cfg.CodeTTL))
	if err != nil {
		return "", err
	}
	if !stored {
		return "", errors.New("grants: a fresh authorization code collided")
	}
	return code, nil
}

// authorizationCode runs RFC 6749 §4.1.3 with PKCE (RFC 7636 §4.6). Any redemption attempt uses the
// code up, whatever its outcome, so a code cannot be guessed at or retried.
func (s *Server) authorizationCode(ctx context.Context, req *tokenRequest) (*tokenResponse, *Error) {
	code, ok := req.form["code"]
	if !ok {
		return nil, errorf(CodeInvalidRequest, "code is missing")
	}
	// The code is taken and the id of the grant it is to issue left in its place in one step,
	// before anything is minted, so that a replay, however close behind, finds what to revoke
	// (RFC 6749 §4.1.2). Every attempt leaves the mark, failed ones too: they use the code up.
	gid := randomToken()
	until := s.codeGrantEnd(req)
	use, _ := json.Marshal(codeUse{GrantID: gid, Until: until})
	payload, err := s.cfg.Store.Redeem(ctx, codeKey(code), codeUseKey(code), use, until)
	if errors.Is(err, store.ErrNotFound) {
		return nil, s.codeReplayed(ctx, req.client, code)
	}
	if err != nil {
		return nil, unavailable(err)
	}
	var g CodeGrant
	if err := json.Unmarshal(payload, &g); err != nil {
		return nil, serverFault(err)
	}
	if g.ClientID != req.client.ID {
		return nil, errorf(CodeInvalidGrant, "the code was issued to another client")
	}
	// RFC 9700 §2.1 / RFC 6749 §4.1.3: the redirect_uri must be the one the code was sent to, byte
	// for byte (fosite CVE-2020-15234 compared it case-insensitively).
	if req.form["redirect_uri"] != g.RedirectURI {
		return nil, errorf(CodeInvalidGrant, "redirect_uri does not match the authorization request")
	}
	// dex CVE-2022-39222: a public client's code without PKCE is anyone's who intercepts it; and plain
	// is only for clients that opted in (RFC 9700 §2.1.1). /connect/authorize refuses both already.
	if (req.client.RequiresPKCE() && g.CodeChallenge == "") || (g.ChallengeMethod == PKCEPlain && !req.client.PKCEPlain) {
		return nil, errorf(CodeInvalidGrant, "the code was issued without the PKCE this client needs")
	}
	if err := checkPKCE(g, req.form["code_verifier"]); err != nil {
		return nil, err
	}
	// RFC 8707 §2.2: the token may be for part of what the code was authorized for.
	audience, targetErr := s.targetResources(req.client, req.resources, g.Resources)
	if targetErr != nil {
		return nil, targetErr
	}
	// Every code grant gets an id, refresh token or not, so that a replay can revoke its access tokens.
	return s.respond(ctx, req, &grant{Subject: g.Subject, Scope: g.Scope, Resources: g.Resources, Claims: g.Claims,
		User: true, IdP: g.IdP, AuthTime: g.AuthTime, nonce: g.Nonce, familyID: gid, audience: audience})
}

// codeReplayed answers a code that is unknown, expired or used. A used one revokes everything it
// issued: its refresh family and, through gid, its access tokens at the gate.
func (s *Server) codeReplayed(ctx context.Context, client *Client, code string) *Error {
	if payload, err := s.cfg.Store.Take(ctx, codeUseKey(code)); err == nil {
		var use codeUse
		if json.Unmarshal(payload, &use) == nil {
			revocation := store.Revocation{Kind: store.RevokedFamily, ID: use.GrantID, Until: use.Until}
			if err := s.cfg.Store.Revoke(ctx, revocation); err != nil {
				return unavailable(err)
			}
			s.revokedNow(ctx)
			s.cfg.Observe(Event{Kind: EventRevoked, Client: client, What: RevokedCodeReplay, GrantID: use.GrantID})
		}
	} else if !errors.Is(err, store.ErrNotFound) {
		return unavailable(err)
	}
	return errorf(CodeInvalidGrant, "the code is invalid, expired or used")
}

// checkPKCE enforces RFC 7636 §4.6 and RFC 9700 §2.1.1: a code with a challenge needs the matching
// verifier; a code without one takes none (a verifier then means a downgrade attempt).
func checkPKCE(g CodeGrant, verifier string) *Error {
	if g.CodeChallenge == "" {
		if verifier != "" {
			return errorf(CodeInvalidGrant, "code_verifier sent for a code issued without a challenge")
		}
		return nil
	}
	if !validVerifier(verifier) {
		return errorf(CodeInvalidGrant, "code_verifier is missing or malformed")
	}
	derived := verifier
	if g.ChallengeMethod != PKCEPlain {
		sum := sha256.Sum256([]byte(verifier))
		derived = base64.RawURLEncoding.EncodeToString(sum[:])
	}
	if subtle.ConstantTimeCompare([]byte(derived), []byte(g.CodeChallenge)) != 1 {
		return errorf(CodeInvalidGrant, "code_verifier does not match the challenge")
	}
	return nil
}

// validVerifier: RFC 7636 §4.1, 43 to 128 characters of [A-Za-z0-9-._~].
func validVerifier(v string) bool {
	if len(v) < 43 || len(v) > 128 {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~') {
			return false
		}
	}
	return true
}

// codeGrantEnd bounds the life of every token a code can issue, before the code is read: the end
// of a refresh family, when the client may refresh, or of an access token.
func (s *Server) codeGrantEnd(req *tokenRequest) time.Time {
	end := req.now.Add(s.accessTTL(req.client))
	if family := req.now.Add(s.cfg.RefreshTokenTTL); req.client.allows("refresh_token") && family.After(end) {
		end = family
	}
	return end
}

func codeKey(code string) string    { return "code:" + hashToken(code) }
func codeUseKey(code string) string { return "code-used:" + hashToken(code) }
