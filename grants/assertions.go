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

// addTrusts builds a Verifier per trust block, and the SAML verifier.
func (s *Server) addTrusts() error {
	for _, t := range s.cfg.Trusts {
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

// assertionGrantRequest reads what an assertion grant's request holds before the assertion is
// verified: the assertion parameter, which RFC 7521 §4.1 requires (exactly one: parseForm refuses
// repeats), and the scope, which only the client's API scopes may fill, since nobody signed in
// here to consent to the others.
func assertionGrantRequest(req *tokenRequest) (raw string, scope []string, err *Error) {
	raw, ok := req.form["assertion"]
	if !ok {
		return "", nil, errorf(CodeInvalidRequest, "assertion is missing")
	}
	scope, err = GrantedScope(req.form["scope"], apiScopes(req.client.Scopes))
	return raw, scope, err
}
