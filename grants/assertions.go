package grants

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/tokengate/tokengate/assertion"
	"github.com/tokengate/tokengate/samlbearer"
)

// maxReason bounds an assertion's refusal reason passed on as error_description.
const maxReason = 200

// checkCredentials enforces what a client proves itself with (RFC 6749 §2.1, OIDC Core §9): a
// public client nothing, a private_key_jwt client its keys, every other client a secret.
func checkCredentials(c *Client) error {
	switch c.AuthMethod {
	case "", AuthSecretBasic, AuthSecretPost, AuthSecretJWT, AuthPrivateKey:
	default:
		return fmt.Errorf("unknown auth method %q", c.AuthMethod)
	}
	switch {
	case c.Public && (len(c.Secrets) > 0 || c.Keys != nil || c.AuthMethod != ""):
		return errors.New("a public client has no secret, no keys and no auth method")
	case c.Public:
		return nil
	case c.AuthMethod == AuthPrivateKey && c.Keys == nil:
		return errors.New("private_key_jwt needs the client's keys (jwks_file or jwks_uri)")
	case c.AuthMethod == AuthPrivateKey && len(c.Secrets) > 0:
		return errors.New("a private_key_jwt client has no secret")
	case c.AuthMethod != AuthPrivateKey && len(c.Secrets) == 0:
		return errors.New("a confidential client needs a secret")
	}
	return nil
}

// addTrusts builds a Verifier per trust block, and the SAML verifier.
func (s *Server) addTrusts() error {
	for _, t := range s.cfg.Trusts {
		if t.Keys == nil {
			return fmt.Errorf("grants: trust %q: no keys", t.Name)
		}
		if _, dup := s.trusts[t.Issuer]; dup {
			return fmt.Errorf("grants: trust %q: issuer %q is another trust's", t.Name, t.Issuer)
		}
		v, err := s.newAssertionVerifier(assertion.Config{Issuer: t.Issuer, Keys: t.Keys})
		if err != nil {
			return fmt.Errorf("grants: trust %q: %w", t.Name, err)
		}
		s.trusts[t.Issuer] = v
	}
	if len(s.cfg.SAMLTrusts) == 0 {
		return nil
	}
	// RFC 7522 §3: the Audience names this server (its issuer), the Recipient its token endpoint.
	v, err := samlbearer.New(samlbearer.Config{
		Trusts:    s.cfg.SAMLTrusts,
		Audience:  s.cfg.Issuer,
		Recipient: s.cfg.TokenEndpoint,
		Replay:    s.cfg.Store,
		Now:       s.cfg.Now,
	})
	if err != nil {
		return fmt.Errorf("grants: %w", err)
	}
	s.saml = v
	return nil
}

// addAssertionVerifiers builds the Verifiers of c's client assertions and of the jwt-bearer
// assertions it signs itself, and checks that its assertion grants have someone to trust.
func (s *Server) addAssertionVerifiers(c *Client) error {
	switch c.AuthMethod {
	case AuthSecretJWT:
		keys, err := hmacKeys(c.Secrets)
		if err != nil {
			return fmt.Errorf("client_secret_jwt: %w", err)
		}
		if s.clientAuth[c.ID], err = s.newAssertionVerifier(assertion.Config{Issuer: c.ID, ClientAuth: true, Keys: keys}); err != nil {
			return err
		}
	case AuthPrivateKey:
		v, err := s.newAssertionVerifier(assertion.Config{Issuer: c.ID, ClientAuth: true, Keys: c.Keys})
		if err != nil {
			return err
		}
		s.clientAuth[c.ID] = v
	}
	if c.allows("jwt_bearer") && c.Keys != nil {
		if _, clash := s.trusts[c.ID]; clash {
			return errors.New("the client_id is a trust block's issuer: whose keys verify its assertions would be unclear")
		}
		// The assertion is the client's authentication too; without a jti it is still single use,
		// by its SHA-256 (assertion.Verifier).
		v, err := s.newAssertionVerifier(assertion.Config{Issuer: c.ID, Keys: c.Keys})
		if err != nil {
			return err
		}
		s.selfGrant[c.ID] = v
	}
	switch {
	case c.allows("jwt_bearer") && len(s.trusts) == 0 && c.Keys == nil:
		return errors.New("the jwt_bearer grant needs a trust block or the client's own keys")
	case c.allows("saml2_bearer") && s.saml == nil:
		return errors.New("the saml2_bearer grant needs a saml_trust block")
	}
	return nil
}

// hmacKeys are the HS256 keys of client_secret_jwt: the client's secrets, which must be plaintext,
// since a bcrypt hash cannot key an HMAC.
func hmacKeys(secrets []*Secret) (*assertion.HMACSecrets, error) {
	keys := make([][]byte, 0, len(secrets))
	for i, secret := range secrets {
		if secret.plainText == nil {
			return nil, fmt.Errorf("secret %d is a bcrypt hash; client_secret_jwt signs with the plaintext secret", i)
		}
		keys = append(keys, secret.plainText)
	}
	return assertion.NewHMACSecrets(keys...)
}

// newAssertionVerifier completes cfg with what every assertion verifier here shares: this
// server's identifiers as audiences (OIDC Core §9 allows both), the store against replays, the
// clock.
func (s *Server) newAssertionVerifier(cfg assertion.Config) (*assertion.Verifier, error) {
	cfg.Audiences = []string{s.cfg.Issuer, s.cfg.TokenEndpoint}
	cfg.Replay = s.cfg.Store
	cfg.Now = s.cfg.Now
	return assertion.NewVerifier(cfg)
}

// selfAsserting returns the client that signed the jwt-bearer assertion of a request carrying no
// client credential, when that client has keys and the grant; nil otherwise, and the request
// authenticates its client as usual. Nothing is verified here: the grant verifies the assertion
// with the client's keys before anything is issued.
func (s *Server) selfAsserting(grantName string, r *http.Request, f form) *Client {
	if grantName != "jwt_bearer" || presentsCredentials(r, f) {
		return nil
	}
	raw, ok := f["assertion"]
	if !ok {
		return nil
	}
	iss, err := assertion.UnverifiedIssuer(raw)
	if err != nil || s.selfGrant[iss] == nil {
		return nil
	}
	// RFC 7521 §4.2: a client_id beside the assertion must name the client the assertion does.
	if id, ok := f["client_id"]; ok && id != iss {
		return nil
	}
	return s.clients[iss]
}

// assertionRefused answers a verifier's error: invalid_grant for an assertion that is at fault
// (its reason passed on, bounded; the verifiers word them for that), 503 when it could not be
// checked (a key set or the store unreachable).
func assertionRefused(err, invalid error) *Error {
	if !errors.Is(err, invalid) {
		return unavailable(err)
	}
	reason := err.Error()
	if len(reason) > maxReason {
		reason = reason[:maxReason]
	}
	return errorf(CodeInvalidGrant, reason)
}

// requireAssertion returns the assertion parameter, which RFC 7521 §4.1 requires (exactly one:
// parseForm refuses repeats).
func requireAssertion(f form) (string, *Error) {
	raw, ok := f["assertion"]
	if !ok {
		return "", errorf(CodeInvalidRequest, "assertion is missing")
	}
	return raw, nil
}
