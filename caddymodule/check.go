package caddymodule

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/tokengate/tokengate/assertion"
	"github.com/tokengate/tokengate/credential"
	"github.com/tokengate/tokengate/grants"
	"github.com/tokengate/tokengate/identity"
	"github.com/tokengate/tokengate/tokens"
)

// The checks below are shared by the Caddyfile parser, which runs each where it can name the line,
// and App.check, which runs them all on JSON configurations.

// parseIssuer enforces OpenID Connect Discovery 1.0 §3 (the issuer is a URL with a scheme and a
// host and no query or fragment), allowing http for local set-ups.
func parseIssuer(issuer string) (*url.URL, error) {
	if issuer == "" {
		return nil, errors.New("issuer is required")
	}
	u, err := url.Parse(issuer)
	if err != nil {
		return nil, fmt.Errorf("issuer: %w", err)
	}
	if u.Scheme != "https" && u.Scheme != "http" || u.Host == "" {
		return nil, fmt.Errorf("issuer %q: want an absolute http or https URL", issuer)
	}
	if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(issuer, "#") {
		return nil, fmt.Errorf("issuer %q: must have no query or fragment", issuer)
	}
	if u.User != nil {
		return nil, fmt.Errorf("issuer %q: must have no user information", issuer)
	}
	return u, nil
}

// signingAlg returns the JWS name of a signing algorithm, as the Caddyfile writes it in any case.
func signingAlg(name string) (string, error) {
	for _, alg := range []string{tokens.ES256, tokens.RS256, tokens.PS256, tokens.EdDSA} {
		if strings.EqualFold(name, alg) {
			return alg, nil
		}
	}
	return "", fmt.Errorf("unknown algorithm %q (want es256, rs256, ps256 or eddsa)", name)
}

// checkDuration refuses lifetimes and intervals under a second: a token must outlive the request
// that mints it, and a key the tokens it signs.
func checkDuration(d time.Duration) error {
	if d < time.Second {
		return fmt.Errorf("%v is under the minimum of 1s", d)
	}
	return nil
}

// errRotateKeyFile refuses signing_key_rotation beside signing_key_file, whose key is the
// operator's to replace.
const errRotateKeyFile = "signing_key_rotation: a signing_key_file key is never rotated"

// checkRedisURL accepts the URLs the Redis store opens: redis://, rediss:// (TLS) and unix://.
// Its errors never quote the URL, which may hold a password.
func checkRedisURL(raw string) error {
	scheme, _, ok := strings.Cut(raw, "://")
	if !ok || !slices.Contains([]string{"redis", "rediss", "unix"}, strings.ToLower(scheme)) {
		return errors.New("store redis: the URL must start with redis://, rediss:// (TLS) or unix://")
	}
	return nil
}

// checkClientID accepts what RFC 6749 Appendix A.1 allows a client_id to be: *VSCHAR, here at
// least one.
func checkClientID(id string) error {
	if id == "" {
		return errors.New("empty client_id")
	}
	if !vschars(id) {
		return fmt.Errorf("client_id %q: only printable ASCII is allowed (RFC 6749 Appendix A.1)", id)
	}
	return nil
}

func vschars(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// checkGrant accepts the Caddyfile names of the built-in grants, and the URIs of extension grants
// (App.check makes sure a grant line declares each).
func checkGrant(name string) error {
	if !grants.KnownGrant(name) && checkExtensionGrantType(name) != nil {
		return fmt.Errorf("unknown grant %q", name)
	}
	return nil
}

// checkExtensionGrantType accepts what may name an extension grant: an absolute URI (RFC 6749
// §4.5), so never a built-in grant's name.
func checkExtensionGrantType(uri string) error {
	scheme, rest, ok := strings.Cut(uri, ":")
	if !ok || scheme == "" || rest == "" || strings.ContainsAny(uri, " \t\r\n") {
		return fmt.Errorf("grant %q: an extension grant type is an absolute URI (RFC 6749 §4.5)", uri)
	}
	return nil
}

// checkAuthMethod accepts the methods a confidential client may be registered with.
func checkAuthMethod(m string) error {
	switch m {
	case grants.AuthSecretBasic, grants.AuthSecretPost, grants.AuthSecretJWT, grants.AuthPrivateKey:
		return nil
	}
	return fmt.Errorf("unknown auth_method %q (want %s, %s, %s or %s)", m,
		grants.AuthSecretBasic, grants.AuthSecretPost, grants.AuthSecretJWT, grants.AuthPrivateKey)
}

// checkKeySetURI accepts a jwks_uri that assertion.NewRemoteJWKS will take: https, or http on a
// loopback host.
func checkKeySetURI(uri string) error {
	_, err := assertion.NewRemoteJWKS(uri, nil, nil)
	return err
}

// checkScope accepts a scope-token (RFC 6749 §3.3: %x21 / %x23-5B / %x5D-7E).
func checkScope(s string) error {
	if s == "" {
		return errors.New("empty scope")
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= 0x20 || c == '"' || c == '\\' || c > 0x7e {
			return fmt.Errorf("scope %q: only printable ASCII without space, '\"' and '\\' is allowed (RFC 6749 §3.3)", s)
		}
	}
	return nil
}

// checkRedirectURI accepts an absolute URI without a fragment (RFC 6749 §3.1.2).
func checkRedirectURI(uri string) error {
	u, err := url.Parse(uri)
	if err != nil {
		return fmt.Errorf("redirect URI %q: %w", uri, err)
	}
	if !u.IsAbs() || strings.Contains(uri, "#") {
		return fmt.Errorf("redirect URI %q: must be absolute and have no fragment (RFC 6749 §3.1.2)", uri)
	}
	return nil
}

// checkClaim refuses a static claim that would stand in for one tokengate sets itself (a `sub` or
// `aud` chosen by configuration would impersonate), or an empty name.
func checkClaim(name string) error {
	if name == "" {
		return errors.New("empty claim name")
	}
	if tokens.RegisteredClaim(name) {
		return fmt.Errorf("claim %q is set by tokengate itself", name)
	}
	return nil
}

// checkHTTPLogin accepts an absolute http or https URL for option (http_login, success_location).
func checkHTTPLogin(option, raw string) error {
	if _, err := identity.ParseHTTPLoginURL(raw); err != nil {
		return fmt.Errorf("%s: %w", option, err)
	}
	return nil
}

// check reports what is wrong with the client on its own; App.check adds what spans clients.
func (c *ClientConfig) check() error {
	if err := checkClientID(c.ID); err != nil {
		return err
	}
	if err := c.checkSecrets(); err != nil {
		return fmt.Errorf("client %q: %w", c.ID, err)
	}
	if err := c.checkOptions(); err != nil {
		return fmt.Errorf("client %q: %w", c.ID, err)
	}
	return nil
}

// checkSecrets enforces what each kind of client proves itself with (RFC 6749 §2.1, OIDC Core
// §9): a public client nothing, a private_key_jwt client its keys, any other a secret, plaintext
// for client_secret_jwt, whose HMAC a bcrypt hash cannot key.
func (c *ClientConfig) checkSecrets() error {
	hasKeys := c.JWKSFile != "" || c.JWKSURI != ""
	switch {
	case c.JWKSFile != "" && c.JWKSURI != "":
		return errors.New("jwks_file and jwks_uri are exclusive")
	case c.Public && len(c.Secrets) > 0:
		return errors.New("a public client has no secret")
	case c.Public && c.AuthMethod != "":
		return errors.New("a public client has no auth_method")
	case c.Public && hasKeys:
		return errors.New("a public client has no keys")
	case c.AuthMethod == grants.AuthPrivateKey && !hasKeys:
		return errors.New("auth_method private_key_jwt needs jwks_file or jwks_uri")
	case c.AuthMethod == grants.AuthPrivateKey && len(c.Secrets) > 0:
		return errors.New("a private_key_jwt client has no secret")
	case !c.Public && c.AuthMethod != grants.AuthPrivateKey && len(c.Secrets) == 0:
		return errors.New("a confidential client needs a secret (or mark it public)")
	case c.AuthMethod == grants.AuthSecretJWT && slices.ContainsFunc(c.Secrets, credential.IsBcryptHash):
		return errors.New("client_secret_jwt signs with the plaintext secret: a bcrypt hash cannot be used ({env.X} keeps it out of the file)")
	}
	if c.AuthMethod == grants.AuthSecretJWT {
		for _, secret := range c.Secrets {
			// A placeholder is checked once replaced, at provision time.
			if !strings.HasPrefix(secret, "{") && len(secret) < minHMACSecret {
				return fmt.Errorf("client_secret_jwt: a secret of %d bytes; HS256 needs at least %d (RFC 7518 §3.2)", len(secret), minHMACSecret)
			}
		}
	}
	if c.JWKSURI != "" {
		return checkKeySetURI(c.JWKSURI)
	}
	return nil
}

// minHMACSecret is RFC 7518 §3.2's least HS256 key, as assertion.NewHMACSecrets enforces it.
const minHMACSecret = 32

// check reports what is wrong with a `trust` block.
func (t *TrustConfig) check() error {
	sources := 0
	for _, s := range []string{t.JWKSFile, t.JWKSURI, t.KeyFile} {
		if s != "" {
			sources++
		}
	}
	switch {
	case t.Name == "":
		return errors.New("trust: empty name")
	case t.Issuer == "":
		return fmt.Errorf("trust %q: no issuer", t.Name)
	case sources != 1:
		return fmt.Errorf("trust %q: want exactly one of jwks_file, jwks_uri and key_file", t.Name)
	case t.JWKSURI != "":
		if err := checkKeySetURI(t.JWKSURI); err != nil {
			return fmt.Errorf("trust %q: %w", t.Name, err)
		}
	}
	return nil
}

// check reports what is wrong with a `saml_trust` block.
func (t *SAMLTrustConfig) check() error {
	switch {
	case t.Name == "":
		return errors.New("saml_trust: empty name")
	case t.EntityID == "":
		return fmt.Errorf("saml_trust %q: no entity_id", t.Name)
	case t.CertificateFile == "":
		return fmt.Errorf("saml_trust %q: no certificate_file", t.Name)
	}
	return nil
}

func (c *ClientConfig) checkOptions() error {
	if c.AuthMethod != "" {
		if err := checkAuthMethod(c.AuthMethod); err != nil {
			return err
		}
	}
	if len(c.Grants) == 0 {
		return errors.New("no grants")
	}
	for _, g := range c.Grants {
		if err := checkGrant(g); err != nil {
			return err
		}
	}
	if err := c.checkPublicGrants(); err != nil {
		return err
	}
	for _, s := range c.Scopes {
		if err := checkScope(s); err != nil {
			return err
		}
	}
	for _, aud := range slices.Concat(c.Audience, c.ExchangeAudiences) {
		if aud == "" {
			return errors.New("empty audience")
		}
	}
	for _, uri := range slices.Concat(c.RedirectURIs, c.PostLogoutRedirectURIs) {
		if err := checkRedirectURI(uri); err != nil {
			return err
		}
	}
	if c.AccessTokenTTL != 0 {
		if err := checkDuration(time.Duration(c.AccessTokenTTL)); err != nil {
			return fmt.Errorf("access_token_ttl: %w", err)
		}
	}
	for name := range c.Claims {
		if err := checkClaim(name); err != nil {
			return err
		}
	}
	return nil
}

// checkPublicGrants refuses client_credentials to a public client: RFC 6749 §4.4 reserves it for
// confidential clients, since anyone could otherwise act as the client.
func (c *ClientConfig) checkPublicGrants() error {
	if c.Public {
		for _, g := range c.Grants {
			if g == "client_credentials" {
				return errors.New("a public client cannot use client_credentials (RFC 6749 §4.4)")
			}
		}
	}
	return nil
}

// check reports what is wrong with a `users` block.
func (p *IdentityProviderConfig) check() error {
	if p.Name == "" {
		return errors.New("users: empty name")
	}
	switch {
	case p.HTTPLogin != "" && len(p.Users) > 0:
		return fmt.Errorf("users %q: has both users and http_login", p.Name)
	case p.HTTPLoginSuccessLocation != "" && p.HTTPLogin == "":
		return fmt.Errorf("users %q: success_location without http_login", p.Name)
	case p.HTTPLogin != "":
		if err := checkHTTPLogin("http_login", p.HTTPLogin); err != nil {
			return fmt.Errorf("users %q: %w", p.Name, err)
		}
		if p.HTTPLoginSuccessLocation != "" {
			if err := checkHTTPLogin("success_location", p.HTTPLoginSuccessLocation); err != nil {
				return fmt.Errorf("users %q: %w", p.Name, err)
			}
		}
	case len(p.Users) == 0:
		return fmt.Errorf("users %q: no user and no http_login", p.Name)
	}
	seen := make(map[string]bool, len(p.Users))
	for _, u := range p.Users {
		if err := u.check(); err != nil {
			return fmt.Errorf("users %q: %w", p.Name, err)
		}
		if seen[u.Username] {
			return fmt.Errorf("users %q: user %q declared twice", p.Name, u.Username)
		}
		seen[u.Username] = true
	}
	return nil
}

// check reports what is wrong with one static user.
func (u *UserConfig) check() error {
	if u.Username == "" {
		return errors.New("empty username")
	}
	if !credential.IsBcryptHash(u.Hash) {
		return fmt.Errorf("user %q: the password must be a bcrypt hash (caddy hash-password)", u.Username)
	}
	for name := range u.Claims {
		if err := checkClaim(name); err != nil {
			return fmt.Errorf("user %q: %w", u.Username, err)
		}
	}
	return nil
}
