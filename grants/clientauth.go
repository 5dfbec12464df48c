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
	"github.com/tokengate/tokengate/credential"
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
	// rawSecret is a Basic secret as sent, when form-decoding it changed it: many clients
	// (curl -u) send it unencoded, so it gets a second try (see decodeBasic).
	rawSecret string
	basic     bool
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
	if payload, ok := basicPayload(r); ok {
		c.basic = true
		id, secret, rawSecret, ok := decodeBasic(payload)
		if !ok {
			return c, clientAuthFailed(true)
		}
		c.clientID, c.secret, c.rawSecret = id, secret, rawSecret
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

// method names how creds try to authenticate client (nil when no such client is configured), for
// the audit trail: an assertion by the JWT method its client registered.
func (c presentedCredentials) method(client *Client) string {
	switch {
	case c.assertion != "" && client != nil && client.AuthMethod != "":
		return client.AuthMethod
	case c.assertion != "":
		return "client_assertion"
	case c.basic:
		return AuthSecretBasic
	case c.secret != "":
		return AuthSecretPost
	}
	return AuthNone
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
	if _, ok := basicPayload(r); ok {
		return true
	}
	for _, name := range []string{"client_secret", "client_assertion", "client_assertion_type"} {
		if _, ok := f[name]; ok {
			return true
		}
	}
	return false
}

// basicPayload returns what follows the Basic scheme in the Authorization header, and whether the
// header names that scheme at all. "Basic" alone counts: HTTP drops the trailing space of "Basic ",
// and a client that sent it still tried Basic, so it must get the Basic challenge (RFC 6749 §5.2).
func basicPayload(r *http.Request) (string, bool) {
	scheme, payload, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	return payload, strings.EqualFold(scheme, "Basic")
}

// decodeBasic reads RFC 6749 §2.3.1 Basic credentials: base64 of id ":" secret, each
// form-urlencoded first. Many clients (curl -u, Authlib) skip the form-encoding, so a secret
// holding "+" or "%" reaches us as it was written: rawSecret is the secret as sent when decoding
// changed it, and the secret itself when it does not decode.
func decodeBasic(payload string) (id, secret, rawSecret string, ok bool) {
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(payload))
	if err != nil {
		return "", "", "", false
	}
	encID, encSecret, found := strings.Cut(string(raw), ":")
	if !found {
		return "", "", "", false
	}
	id, err = url.QueryUnescape(encID)
	if err != nil || id == "" {
		return "", "", "", false
	}
	secret, err = url.QueryUnescape(encSecret)
	switch {
	case err != nil:
		return id, encSecret, "", true
	case secret != encSecret:
		return id, secret, encSecret, true
	}
	return id, secret, "", true
}

// presentedClient is the configured client a request names, whether or not it authenticates; nil
// when it names none, so that what is counted of a failed request is never a raw request value.
func (s *Server) presentedClient(r *http.Request, f form) *Client {
	creds, _ := readCredentials(r, f)
	return s.clients[creds.clientID]
}

// authenticateClient returns the client a token request comes from, or the error to answer; the
// observer hears of every failure.
func (s *Server) authenticateClient(ctx context.Context, r *http.Request, f form, now time.Time) (*Client, *Error) {
	address := s.cfg.ClientIP(r)
	creds, err := readCredentials(r, f)
	var client *Client
	if err == nil {
		client, err = s.checkCredentials(ctx, creds, address, now)
	}
	if err != nil && err.Code == CodeInvalidClient {
		named := s.clients[creds.clientID]
		s.cfg.Observe(Event{Kind: EventClientAuthFailed, Client: named, AuthMethod: creds.method(named), RemoteIP: address})
	}
	return client, err
}

// checkCredentials returns the client creds authenticate. Failures count per client and address:
// counted per client alone, wrong secrets sent under a client's id from anywhere would lock the
// client out everywhere.
func (s *Server) checkCredentials(ctx context.Context, creds presentedCredentials, address string, now time.Time) (*Client, *Error) {
	if creds.clientID == "" {
		return nil, clientAuthFailed(creds.basic)
	}
	failures := creds.clientID + "\x00" + address
	if wait, blocked := s.limits.clients.Blocked(failures, now); blocked {
		s.cfg.Observe(Event{Kind: EventThrottled, What: ThrottledClient, RemoteIP: address})
		return nil, tooManyAttempts(wait)
	}
	client, unknown := s.resolveClient(ctx, creds.clientID)
	if unknown != nil && errors.Is(unknown, ErrSourceUnavailable) {
		return nil, unavailable(unknown)
	}
	var ok bool
	var fault *Error
	if creds.assertion != "" {
		ok, fault = s.checkClientAssertion(ctx, creds)
	} else {
		ok, fault = s.checkClientSecret(ctx, client, creds, address)
	}
	if fault != nil {
		return nil, fault
	}
	if !ok {
		s.limits.clients.Fail(failures, now)
		return nil, clientAuthFailed(creds.basic)
	}
	return client, nil
}

// resolveClient returns the client with the id, or nil and why not: there is none, its source's
// client is not usable now (either way an unknown client's invalid_client, RFC 6749 §5.2), or the
// source cannot tell now (ErrSourceUnavailable, a 503). The reason goes to the debug log only,
// since anyone can make a source fail.
func (s *Server) resolveClient(ctx context.Context, id string) (*Client, error) {
	client, err := s.LookupClient(ctx, id)
	if err != nil && !errors.Is(err, ErrNotOwned) {
		s.cfg.Logger.Debug("client not resolved", zap.String("client_id", id), zap.Error(err))
	}
	return client, err
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

// checkClientSecret checks the secret a request presents for client (nil when no client has the
// id). What passes cheaply passes at once: a public client presenting none, a plaintext secret, a
// bcrypt secret verified before. Anything else is an attempt from address that costs: a bcrypt
// compare per hash and, when none matched, a wait until the attempt has lasted a compare at the
// dearest configured cost. So an unknown client, a wrong plaintext secret and a wrong bcrypt secret
// take the same time, and an unknown client takes no CPU. One address may have only a few attempts
// under way; past that it gets 429, as a throttled client does, whether or not the client exists.
// A raw Basic secret beside the decoded one is a second attempt, costing what the first did.
func (s *Server) checkClientSecret(ctx context.Context, client *Client, creds presentedCredentials, address string) (bool, *Error) {
	presented := []string{creds.secret}
	if creds.rawSecret != "" {
		presented = append(presented, creds.rawSecret)
	}
	for _, p := range presented {
		if passesCheaply(client, secretsFor(client, p), p, s.limits.secrets) {
			return true, nil
		}
	}
	if !s.limits.secretChecks.Enter(address) {
		s.cfg.Observe(Event{Kind: EventThrottled, What: ThrottledAddress, RemoteIP: address})
		return false, tooManyAttempts(time.Second)
	}
	defer s.limits.secretChecks.Leave(address)
	for _, p := range presented {
		if ok, fault := s.compareSecret(ctx, client, p); ok || fault != nil {
			return ok, fault
		}
	}
	return false, nil
}

// compareSecret compares presented with each bcrypt secret of client; a failure lasts at least a
// compare at the dearest configured cost.
func (s *Server) compareSecret(ctx context.Context, client *Client, presented string) (bool, *Error) {
	attempt := s.limits.secrets.Begin(s.secretCost)
	for _, secret := range secretsFor(client, presented) {
		if secret.hash == nil {
			continue
		}
		ok, err := s.limits.secrets.Check(ctx, secret.hash, client.ID, presented)
		if err != nil {
			return false, unavailable(err)
		}
		if ok {
			return true, nil
		}
	}
	attempt.Failed(ctx)
	return false, nil
}

// secretsFor returns the secrets presented may match: none for an unknown or public client, for
// one registered for a JWT method (it must use it), or for an empty secret.
func secretsFor(client *Client, presented string) []*Secret {
	if client == nil || presented == "" {
		return nil
	}
	switch client.AuthMethod {
	case "", AuthSecretBasic, AuthSecretPost:
		return client.Secrets
	}
	return nil
}

// passesCheaply reports whether presented authenticates client with no bcrypt compare. A public
// client proves nothing (Basic with an empty secret is how some libraries send its id); one that
// sends a secret is confused or an impostor.
func passesCheaply(client *Client, candidates []*Secret, presented string, checker *credential.Checker) bool {
	if client != nil && client.Public {
		return presented == ""
	}
	for _, secret := range candidates {
		if secret.plainMatches(presented) || secret.hash != nil && checker.Verified(secret.hash, client.ID, presented) {
			return true
		}
	}
	return false
}

func tooManyAttempts(wait time.Duration) *Error {
	return tooMany(wait, "too many failed attempts; retry later")
}
