package caddymodule

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"

	"github.com/tokengate/tokengate/assertion"
	"github.com/tokengate/tokengate/credential"
	"github.com/tokengate/tokengate/federation"
	"github.com/tokengate/tokengate/grants"
	"github.com/tokengate/tokengate/identity"
	"github.com/tokengate/tokengate/tokens"
)

// Validate reports what is wrong with the client on its own, naming it; App.Validate adds what
// spans clients.
func (c *ClientConfig) Validate() error {
	if err := checkClientID(c.ID); err != nil {
		return at(err, "client", c.ID)
	}
	if err := c.validateCredentials(); err != nil {
		return inItem("client", c.ID, err)
	}
	return inItem("client", c.ID, c.validateOptions())
}

// checkClientID accepts what RFC 6749 Appendix A.1 allows a client_id to be: *VSCHAR, here at
// least one.
func checkClientID(id string) error {
	if id == "" {
		return errors.New("empty client_id")
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x20 || id[i] > 0x7e {
			return fmt.Errorf("client_id %q: only printable ASCII is allowed (RFC 6749 Appendix A.1)", id)
		}
	}
	return nil
}

// validateCredentials enforces what each kind of client proves itself with (RFC 6749 §2.1, OIDC
// Core §9): a public client nothing, a private_key_jwt client its keys, any other a secret,
// plaintext for client_secret_jwt, whose HMAC a bcrypt hash cannot key.
func (c *ClientConfig) validateCredentials() error {
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
			// A placeholder is checked once replaced, at provision time, by assertion.NewHMACSecrets.
			if !strings.HasPrefix(secret, "{") && len(secret) < assertion.MinHMACSecret {
				return fmt.Errorf("client_secret_jwt: a secret of %d bytes; HS256 needs at least %d (RFC 7518 §3.2)", len(secret), assertion.MinHMACSecret)
			}
		}
	}
	if c.JWKSURI != "" {
		return at(checkKeySetURI(c.JWKSURI), "jwks_uri")
	}
	return nil
}

// checkKeySetURI accepts a jwks_uri that assertion.NewRemoteJWKS will take: https, or http on a
// loopback host.
func checkKeySetURI(uri string) error {
	_, err := assertion.NewRemoteJWKS(uri, nil, nil)
	return err
}

// validateOptions checks the client's options other than its credentials.
func (c *ClientConfig) validateOptions() error {
	if c.AuthMethod != "" {
		if err := checkAuthMethod(c.AuthMethod); err != nil {
			return at(err, "auth_method")
		}
	}
	if len(c.Grants) == 0 {
		return errors.New("no grants")
	}
	for _, g := range c.Grants {
		// An extension grant's URI must be declared by a grant line: App.Validate checks that.
		if !grants.KnownGrant(g) && checkExtensionGrantType(g) != nil {
			return at(fmt.Errorf("unknown grant %q", g), "grants", g)
		}
	}
	// RFC 6749 §4.4 reserves client_credentials for confidential clients: anyone could otherwise
	// act as the client.
	if c.Public && slices.Contains(c.Grants, "client_credentials") {
		return errors.New("a public client cannot use client_credentials (RFC 6749 §4.4)")
	}
	for _, s := range c.Scopes {
		if err := checkScope(s); err != nil {
			return at(err, "scopes", s)
		}
	}
	if slices.Contains(c.Audience, "") {
		return at(errors.New("empty audience"), "audience")
	}
	if slices.Contains(c.ExchangeAudiences, "") {
		return at(errors.New("empty audience"), "exchange_audiences")
	}
	for _, uri := range c.RedirectURIs {
		if err := checkRedirectURI(uri); err != nil {
			return at(err, "redirect_uris", uri)
		}
	}
	for _, uri := range c.PostLogoutRedirectURIs {
		if err := checkRedirectURI(uri); err != nil {
			return at(err, "post_logout_redirect_uris", uri)
		}
	}
	if c.AccessTokenTTL != 0 {
		if err := validateDuration("access_token_ttl", time.Duration(c.AccessTokenTTL)); err != nil {
			return err
		}
	}
	return validateClaims(c.Claims)
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

// checkScope accepts a scope-token (RFC 6749 §3.3).
func checkScope(s string) error {
	switch {
	case s == "":
		return errors.New("empty scope")
	case !grants.IsScopeToken(s):
		return fmt.Errorf("scope %q: only printable ASCII without space, '\"' and '\\' is allowed (RFC 6749 §3.3)", s)
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

// validateClaims refuses a static claim that would stand in for one tokengate sets itself (a `sub`
// or `aud` chosen by configuration would impersonate), or an empty name. Names are checked in
// order, so the first mistake reported is always the same.
func validateClaims(claims map[string]string) error {
	names := make([]string, 0, len(claims))
	for name := range claims {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if name == "" {
			return at(errors.New("empty claim name"), "claim", name)
		}
		if tokens.RegisteredClaim(name) {
			return at(fmt.Errorf("claim %q is set by tokengate itself", name), "claim", name)
		}
	}
	return nil
}

// Validate reports what is wrong with a `trust` block, naming it.
func (t *TrustConfig) Validate() error {
	if t.Name == "" {
		return errors.New("trust: empty name")
	}
	sources := 0
	for _, s := range []string{t.JWKSFile, t.JWKSURI, t.KeyFile} {
		if s != "" {
			sources++
		}
	}
	switch {
	case t.Issuer == "":
		return inItem("trust", t.Name, errors.New("no issuer"))
	case sources != 1:
		return inItem("trust", t.Name, errors.New("want exactly one of jwks_file, jwks_uri and key_file"))
	case t.JWKSURI != "":
		return inItem("trust", t.Name, at(checkKeySetURI(t.JWKSURI), "jwks_uri"))
	}
	return nil
}

// Validate reports what is wrong with a `saml_trust` block, naming it.
func (t *SAMLTrustConfig) Validate() error {
	switch {
	case t.Name == "":
		return errors.New("saml_trust: empty name")
	case t.EntityID == "":
		return inItem("saml_trust", t.Name, errors.New("no entity_id"))
	case t.CertificateFile == "":
		return inItem("saml_trust", t.Name, errors.New("no certificate_file"))
	}
	return nil
}

// Validate reports what is wrong with a `users` block, naming it.
func (p *IdentityProviderConfig) Validate() error {
	if p.Name == "" {
		return errors.New("users: empty name")
	}
	return inItem("users", p.Name, p.validate())
}

func (p *IdentityProviderConfig) validate() error {
	switch {
	case p.HTTPLogin != "" && len(p.Users) > 0:
		return errors.New("has both users and http_login")
	case p.HTTPLoginSuccessLocation != "" && p.HTTPLogin == "":
		return at(errors.New("success_location without http_login"), "http_login")
	case p.HTTPLogin != "":
		if err := at(checkHTTPLogin("http_login", p.HTTPLogin), "http_login"); err != nil || p.HTTPLoginSuccessLocation == "" {
			return err
		}
		return at(checkHTTPLogin("success_location", p.HTTPLoginSuccessLocation), "http_login", "success_location")
	case len(p.Users) == 0:
		return errors.New("no user and no http_login")
	}
	for i := range p.Users {
		if err := validateNth(p.Users, i, "user", func(u *UserConfig) string { return u.Username }); err != nil {
			return err
		}
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

// Validate reports what is wrong with one static user, naming them.
func (u *UserConfig) Validate() error {
	if u.Username == "" {
		return at(errors.New("empty username"), "user", u.Username)
	}
	if strings.Contains(u.Username, "|") {
		// `|` separates an external provider's name from its person's subject.
		return at(fmt.Errorf("user %q: a username may not hold |", u.Username), "user", u.Username)
	}
	if !credential.IsBcryptHash(u.Hash) {
		return inItem("user", u.Username, errors.New("the password must be a bcrypt hash (caddy hash-password)"))
	}
	if slices.Contains(u.Tenants, "") {
		return inItem("user", u.Username, at(errors.New("empty tenant"), "tenant"))
	}
	return inItem("user", u.Username, validateClaims(u.Claims))
}

// Validate checks the scopes, the claim names and the headers. Caddy calls it after Provision,
// which only builds the gate in memory, so nothing acts on a bad value before it is refused.
func (b *BearerAuth) Validate() error {
	if b.Resource != "" {
		if b.Audience != "" {
			return at(errors.New("resource and audience are exclusive: a resource is the audience its tokens carry"), "audience")
		}
		if err := checkResourceURL(b.Resource); err != nil {
			return at(fmt.Errorf("resource %q: %w", b.Resource, err), "resource")
		}
	}
	for _, set := range b.Scopes {
		for _, s := range set {
			if err := checkScope(s); err != nil {
				return at(err, "scope", s)
			}
		}
	}
	if _, empty := b.Claims[""]; empty {
		return at(errors.New("claim: empty name"), "claim", "")
	}
	for i, h := range b.Headers {
		if err := h.Validate(); err != nil {
			return err
		}
		if slices.ContainsFunc(b.Headers[:i], func(o HeaderCopy) bool { return strings.EqualFold(o.Header, h.Header) }) {
			return at(fmt.Errorf("header %q is declared twice", h.Header), "header", h.Header)
		}
	}
	return nil
}

// Validate refuses what would not make a valid request header.
func (h HeaderCopy) Validate() error {
	if h.Claim == "" {
		return at(fmt.Errorf("header %q: empty claim name", h.Header), "header", h.Header)
	}
	if !httpguts.ValidHeaderFieldName(h.Header) {
		return at(fmt.Errorf("header %q: not a valid header name", h.Header), "header", h.Header)
	}
	return nil
}

// externalReservedClaims are the token claims an external provider's claim line may not fill:
// tokengate sets them itself, or they would let the upstream speak for tokengate.
var externalReservedClaims = []string{"sub", "iss", "aud", "exp", "nbf", "iat", "jti", "client_id", "scope", "idp",
	"gid", "tenant", "nonce", "auth_time", "acr", "amr", "azp", "at_hash", "c_hash", "cnf", "act"}

// Validate reports what is wrong with an `oidc`, `oauth2` or `github` block, naming it.
func (p *ExternalProviderConfig) Validate() error {
	if !externalName(p.Name) {
		return at(fmt.Errorf("%s %q: a name is 1 to 64 of A-Z a-z 0-9 . _ -", p.Kind, p.Name), p.Kind, p.Name)
	}
	return inItem(p.Kind, p.Name, p.validate())
}

func (p *ExternalProviderConfig) validate() error {
	// The options of one kind only: the Caddyfile parser refuses the others as unrecognized.
	var misplaced []string
	for option, set := range map[string]bool{
		"issuer": p.Issuer != "", "hosted_domain": p.HostedDomain != "", "subject_claim": p.SubjectClaim != "",
		"userinfo": p.UserinfoOff, "authorize_url": p.AuthorizeURL != "", "token_url": p.TokenURL != "",
		"userinfo_url": p.UserinfoURL != "", "subject_field": p.SubjectField != "", "base_url": p.BaseURL != "",
	} {
		if set && !slices.Contains(externalOptions[p.Kind], option) {
			misplaced = append(misplaced, option)
		}
	}
	slices.Sort(misplaced)
	switch {
	case externalOptions[p.Kind] == nil:
		return fmt.Errorf("unknown kind %q (want oidc, oauth2 or github)", p.Kind)
	case len(misplaced) > 0:
		return at(fmt.Errorf("%s is not an option of %s", misplaced[0], p.Kind), misplaced[0])
	case p.ClientID == "":
		return errors.New("no client_id")
	case p.AuthMethod != "" && p.AuthMethod != federation.AuthBasic && p.AuthMethod != federation.AuthPost:
		return at(fmt.Errorf("unknown auth_method %q (want %s or %s)", p.AuthMethod, federation.AuthBasic, federation.AuthPost), "auth_method")
	case p.Kind == kindOIDC && p.Issuer == "":
		return errors.New("no issuer")
	case p.Kind == kindOAuth2 && (p.AuthorizeURL == "" || p.TokenURL == "" || p.UserinfoURL == ""):
		return errors.New("authorize_url, token_url and userinfo_url are required")
	case slices.Contains(p.Tenants, ""):
		return at(errors.New("empty tenant"), "tenant")
	}
	for option, raw := range map[string]string{"issuer": p.Issuer, "authorize_url": p.AuthorizeURL,
		"token_url": p.TokenURL, "userinfo_url": p.UserinfoURL, "base_url": p.BaseURL} {
		if err := checkUpstreamURL(raw); raw != "" && err != nil {
			return at(fmt.Errorf("%s: %w", option, err), option)
		}
	}
	for _, s := range p.Scopes {
		if err := checkScope(s); err != nil {
			return at(err, "scopes", s)
		}
	}
	for _, d := range p.AllowedDomains {
		if d == "" || strings.ContainsAny(d, "@ /") {
			return at(fmt.Errorf("allowed_domains: %q is not a domain", d), "allowed_domains", d)
		}
	}
	return validateExternalClaims(p.Claims)
}

// externalOptions are the options of each kind besides the common ones.
var externalOptions = map[string][]string{
	kindOIDC:   {"issuer", "hosted_domain", "subject_claim", "userinfo"},
	kindOAuth2: {"authorize_url", "token_url", "userinfo_url", "subject_field"},
	kindGitHub: {"base_url"},
}

// externalName: 1 to 64 of A-Z a-z 0-9 . _ -, so it fits a URL path and holds no `|`.
func externalName(name string) bool {
	return len(name) >= 1 && len(name) <= 64 &&
		strings.Trim(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") == ""
}

// checkUpstreamURL accepts an upstream endpoint: https, or http on a loopback host (development),
// since its answers decide who signs in.
func checkUpstreamURL(raw string) error {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return err
	case u.Host == "" || u.Fragment != "" || u.User != nil:
		return errors.New("an absolute URL without user or fragment is required")
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http" && isLoopback(u.Hostname()):
		return nil
	}
	return errors.New("https is required (http only on a loopback host)")
}

// checkResourceURL accepts a protected resource's canonical URI (RFC 8707 §2, RFC 9728 §1.2):
// what checkUpstreamURL accepts, without a query or fragment, which a resource indicator may not
// carry and a metadata URL could not hold.
func checkResourceURL(raw string) error {
	if err := checkUpstreamURL(raw); err != nil {
		return err
	}
	if strings.ContainsAny(raw, "?#") {
		return errors.New("a resource has no query or fragment")
	}
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// validateExternalClaims refuses a claim line that would fill a claim tokengate sets itself.
func validateExternalClaims(claims map[string]string) error {
	names := slices.Sorted(maps.Keys(claims))
	for _, name := range names {
		switch {
		case name == "" || claims[name] == "":
			return at(errors.New("empty claim name"), "claim", name)
		case slices.Contains(externalReservedClaims, name) || tokens.RegisteredClaim(name):
			return at(fmt.Errorf("claim %q is set by tokengate itself", name), "claim", name)
		}
	}
	return nil
}

// Validate reports what is wrong with the client_id_metadata_documents block; nil without one.
func (c *ClientIDMetadataDocumentsConfig) Validate() error {
	const opt = "client_id_metadata_documents"
	if c == nil {
		return nil
	}
	for _, host := range c.Allow {
		if err := checkAllowedHost(host); err != nil {
			return at(fmt.Errorf("%s: allow %q: %w", opt, host, err), opt, "allow", host)
		}
	}
	for _, scope := range c.Scopes {
		if err := checkScope(scope); err != nil {
			return at(fmt.Errorf("%s: %w", opt, err), opt, "scopes", scope)
		}
	}
	return nil
}

// checkAllowedHost accepts what an allow list of client_id hosts holds: a host name, an IP literal,
// or *.<domain> for every subdomain of domain.
func checkAllowedHost(host string) error {
	name, wildcard := strings.CutPrefix(host, "*.")
	if !wildcard {
		if _, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
			return nil
		}
	}
	labels := strings.Split(name, ".")
	for _, label := range labels {
		if label == "" || strings.Trim(strings.ToLower(label), "abcdefghijklmnopqrstuvwxyz0123456789-") != "" {
			return errors.New("want a host name, an IP literal, or *.<domain> for every subdomain of domain")
		}
	}
	return nil
}

// Validate reports what is wrong with the registration block; nil without one.
func (c *RegistrationConfig) Validate() error {
	const opt = "registration"
	switch {
	case c == nil:
		return nil
	case c.MaxClients < 0:
		return at(fmt.Errorf("%s: max_clients: %d is negative", opt, c.MaxClients), opt, "max_clients")
	case c.Rate != nil && c.Rate.Requests < 1:
		return at(fmt.Errorf("%s: rate: want at least 1 registration per window", opt), opt, "rate")
	case c.Rate != nil && time.Duration(c.Rate.Window) < time.Second:
		return at(fmt.Errorf("%s: rate: the window %v is under the minimum of 1s", opt, time.Duration(c.Rate.Window)), opt, "rate")
	case c.UnusedTTL != 0 && time.Duration(c.UnusedTTL) < time.Second:
		return at(fmt.Errorf("%s: unused_ttl: %v is under the minimum of 1s", opt, time.Duration(c.UnusedTTL)), opt, "unused_ttl")
	}
	for _, scope := range c.Scopes {
		if err := checkScope(scope); err != nil {
			return at(fmt.Errorf("%s: %w", opt, err), opt, "scopes", scope)
		}
	}
	return nil
}
