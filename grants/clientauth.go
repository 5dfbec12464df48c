package grants

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/tokengate/tokengate/assertion"
	"go.uber.org/zap"
)

// Client authentication methods (RFC 6749 §2.3, OIDC Core §9).
const (
	AuthSecretBasic = "client_secret_basic"
	AuthSecretPost  = "client_secret_post"
	AuthSecretJWT   = "client_secret_jwt"
	AuthPrivateKey  = "private_key_jwt"
	AuthNone        = "none"
)

// ClientAssertionType is the one client_assertion_type tokengate knows (RFC 7523 §2.2).
const ClientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// presentedCredentials is what a request offers to prove which client sent it.
type presentedCredentials struct {
	clientID string
	secret   string
	basic    bool
	// assertion is a client assertion (RFC 7523 §2.2); clientID is then its unverified iss.
	assertion string
}

// clientAuthFailed is the one answer for an unknown client, a wrong secret and a missing one, so
// none of them tells an attacker more than the others.
func clientAuthFailed(basic bool) *Error {
	return &Error{Code: CodeInvalidClient, Description: "client authentication failed", triedBasic: basic}
}

// readCredentials collects the client's credentials from the Authorization header and the body,
// refusing requests that mix methods.
func readCredentials(r *http.Request, f form) (presentedCredentials, *Error) {
	var c presentedCredentials
	if scheme, payload, ok := strings.Cut(r.Header.Get("Authorization"), " "); ok && strings.EqualFold(scheme, "Basic") {
		c.basic = true
		id, secret, ok := decodeBasic(payload)
		if !ok {
			return c, clientAuthFailed(true)
		}
		c.clientID, c.secret = id, secret
	}
	clientAssertion, hasAssertion := f["client_assertion"]
	assertionType, hasType := f["client_assertion_type"]
	bodySecret, hasBodySecret := f["client_secret"]
	// RFC 6749 §2.3: a client must not use more than one authentication method in a request.
	if (c.basic && (hasBodySecret || hasAssertion)) || (hasBodySecret && hasAssertion) {
		return c, errorf(CodeInvalidRequest, "more than one client authentication method was used")
	}
	if hasAssertion || hasType {
		return readClientAssertion(f, clientAssertion, assertionType)
	}
	if bodyID, ok := f["client_id"]; ok {
		// RFC 7521 §4.2: a client_id that contradicts the authenticated one is an error.
		if c.basic && bodyID != c.clientID {
			return c, errorf(CodeInvalidRequest, "client_id does not match the authenticated client")
		}
		c.clientID = bodyID
	}
	if hasBodySecret {
		c.secret = bodySecret
	}
	return c, nil
}

// readClientAssertion reads RFC 7523 §2.2 client authentication: the assertion names its client
// in iss, which the client's own Verifier then checks along with everything else.
func readClientAssertion(f form, raw, assertionType string) (presentedCredentials, *Error) {
	var c presentedCredentials
	switch {
	case raw == "":
		return c, errorf(CodeInvalidRequest, "client_assertion_type without client_assertion")
	case assertionType != ClientAssertionType:
		// RFC 7521 §4.2: client_assertion_type is required, and names a format we must understand.
		return c, errorf(CodeInvalidRequest, "client_assertion_type must be "+ClientAssertionType)
	}
	iss, err := assertion.UnverifiedIssuer(raw)
	if err != nil {
		return c, clientAuthFailed(false)
	}
	// RFC 7521 §4.2: a client_id beside the assertion must name the client the assertion does.
	if bodyID, ok := f["client_id"]; ok && bodyID != iss {
		return c, clientAuthFailed(false)
	}
	c.clientID, c.assertion = iss, raw
	return c, nil
}

// presentsCredentials reports whether a request carries any client credential: Basic, a body
// secret or a client assertion. A client_id alone is none (a public client's identification).
func presentsCredentials(r *http.Request, f form) bool {
	if scheme, _, ok := strings.Cut(r.Header.Get("Authorization"), " "); ok && strings.EqualFold(scheme, "Basic") {
		return true
	}
	for _, name := range []string{"client_secret", "client_assertion", "client_assertion_type"} {
		if _, ok := f[name]; ok {
			return true
		}
	}
	return false
}

// decodeBasic reads RFC 6749 §2.3.1 Basic credentials: base64 of id ":" secret, each
// form-urlencoded first.
func decodeBasic(payload string) (id, secret string, ok bool) {
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(payload))
	if err != nil {
		return "", "", false
	}
	encID, encSecret, found := strings.Cut(string(raw), ":")
	if !found {
		return "", "", false
	}
	id, err1 := url.QueryUnescape(encID)
	secret, err2 := url.QueryUnescape(encSecret)
	if err1 != nil || err2 != nil || id == "" {
		return "", "", false
	}
	return id, secret, true
}

// authenticateClient returns the client a token request comes from, or the error to answer.
func (s *Server) authenticateClient(ctx context.Context, r *http.Request, f form, now time.Time) (*Client, *Error) {
	creds, err := readCredentials(r, f)
	if err != nil {
		return nil, err
	}
	if creds.clientID == "" {
		return nil, clientAuthFailed(creds.basic)
	}
	if wait, blocked := s.limits.clients.Blocked(creds.clientID, now); blocked {
		return nil, tooManyAttempts(wait)
	}
	client, known := s.clients[creds.clientID]
	var ok bool
	var fault *Error
	if creds.assertion != "" {
		ok, fault = s.checkClientAssertion(ctx, creds)
	} else {
		ok, fault = s.checkClientSecret(ctx, client, known, creds)
	}
	if fault != nil {
		return nil, fault
	}
	if !ok {
		s.limits.clients.Fail(creds.clientID, now)
		return nil, clientAuthFailed(creds.basic)
	}
	return client, nil
}

// checkClientAssertion verifies a client assertion with its client's Verifier (OIDC Core §9). A
// client registered for a secret method has none, so it cannot use assertions, nor an unknown one.
// The answer never says which check failed: that would help whoever forges assertions.
func (s *Server) checkClientAssertion(ctx context.Context, creds presentedCredentials) (bool, *Error) {
	v := s.clientAuth[creds.clientID]
	if v == nil {
		return false, nil
	}
	_, err := v.Verify(ctx, creds.assertion)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, assertion.ErrInvalid):
		// The operator of a client whose assertions fail needs the reason; the client's mistake
		// is not a server error.
		s.cfg.Logger.Debug("client assertion refused", zap.String("client_id", creds.clientID), zap.Error(err))
		return false, nil
	}
	return false, unavailable(err)
}

func (s *Server) checkClientSecret(ctx context.Context, client *Client, known bool, creds presentedCredentials) (bool, *Error) {
	if !known {
		// Cost what a wrong secret costs, so timing does not tell which clients exist.
		if err := s.limits.secrets.CheckMissing(ctx, s.secretCost, creds.secret); err != nil {
			return false, unavailable(err)
		}
		return false, nil
	}
	if client.Public {
		// A public client proves nothing (Basic with an empty secret is how some libraries send its id);
		// one that sends a secret is confused or an impostor.
		return creds.secret == "", nil
	}
	switch client.AuthMethod {
	case "", AuthSecretBasic, AuthSecretPost:
	default:
		// A client registered for a JWT method must use it: its secret alone does not authenticate
		// it (RFC 7591 §2 token_endpoint_auth_method).
		return false, nil
	}
	if creds.secret == "" {
		return false, nil
	}
	for _, secret := range client.Secrets {
		ok, err := secret.matches(ctx, s.limits.secrets, client.ID, creds.secret)
		if err != nil {
			return false, unavailable(err)
		}
		if ok {
			return true, nil
		}
	}
	return false, nil
}

func tooManyAttempts(wait time.Duration) *Error {
	return tooMany(wait, "too many failed attempts; retry later")
}
