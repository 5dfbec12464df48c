package caddymodule

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/tokengate/tokengate/credential"
	"github.com/tokengate/tokengate/grants"
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

// checkGrant accepts the Caddyfile names of the grants this release implements.
func checkGrant(name string) error {
	if !grants.KnownGrant(name) {
		return fmt.Errorf("unknown grant %q", name)
	}
	return nil
}

// checkAuthMethod accepts the methods a confidential client may be registered with.
func checkAuthMethod(m string) error {
	switch m {
	case grants.AuthSecretBasic, grants.AuthSecretPost:
		return nil
	case grants.AuthSecretJWT, grants.AuthPrivateKey:
		return fmt.Errorf("auth_method %s is not supported by this release (use %s or %s)", m, grants.AuthSecretBasic, grants.AuthSecretPost)
	}
	return fmt.Errorf("unknown auth_method %q (want %s or %s)", m, grants.AuthSecretBasic, grants.AuthSecretPost)
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

// checkHTTPLogin accepts an absolute http or https URL.
func checkHTTPLogin(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("http_login: %w", err)
	}
	if u.Scheme != "https" && u.Scheme != "http" || u.Host == "" {
		return fmt.Errorf("http_login %q: want an absolute http or https URL", raw)
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

// checkSecrets enforces that a confidential client has a secret and a public one has none
// (RFC 6749 §2.1).
func (c *ClientConfig) checkSecrets() error {
	switch {
	case c.Public && len(c.Secrets) > 0:
		return errors.New("a public client has no secret")
	case c.Public && c.AuthMethod != "":
		return errors.New("a public client has no auth_method")
	case !c.Public && len(c.Secrets) == 0:
		return errors.New("a confidential client needs a secret (or mark it public)")
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
	for _, aud := range c.Audience {
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
	case p.HTTPLogin != "":
		if err := checkHTTPLogin(p.HTTPLogin); err != nil {
			return fmt.Errorf("users %q: %w", p.Name, err)
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
