package caddymodule

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/tokengate/tokengate/grants"
	"github.com/tokengate/tokengate/tokens"
)

// This file is the one place the configuration is checked. A JSON configuration meets it in
// Validate (and in Provision, which must refuse a bad configuration before it opens a store or reads
// a file); the Caddyfile parser runs the same Validate of each block as it finishes it, and reports
// the error at the line its where names (see lines.go).

// configError is a configuration mistake together with where it is: the options and values that
// lead to it, outermost first ("client", "web", "grants", "implicit"). Its message names each item
// once; where only serves to find the Caddyfile line.
type configError struct {
	where []string
	err   error
}

func (e *configError) Error() string { return e.err.Error() }
func (e *configError) Unwrap() error { return e.err }

// at says err is about the option (and values) in where, inside whatever its caller adds.
func at(err error, where ...string) error {
	if err == nil {
		return nil
	}
	var inner *configError
	if errors.As(err, &inner) {
		where = append(slices.Clip(where), inner.where...)
	}
	return &configError{where: where, err: err}
}

// inItem names the item (`client "web"`) in err's message, and in where.
func inItem(kind, name string, err error) error {
	if err == nil {
		return nil
	}
	return at(fmt.Errorf("%s %q: %w", kind, name, err), kind, name)
}

// Validate reports the first mistake in the configuration, or nil. A zero option stands for its
// default, so Validate accepts the configuration before and after Provision fills the defaults in.
func (a *App) Validate() error {
	if err := validateIssuer(a.Issuer); err != nil {
		return err
	}
	if err := a.validateOptions(); err != nil {
		return err
	}
	// Each block alone; the order fixes which mistake a configuration with several reports first.
	for _, items := range []struct {
		count    int
		validate func(i int) error
	}{
		{len(a.IdentityProviders), a.validateIdentityProvider},
		{len(a.ExternalProviders), a.validateExternalProvider},
		{len(a.Trusts), a.validateTrust},
		{len(a.SAMLTrusts), a.validateSAMLTrust},
		{len(a.ExtensionGrants), a.validateExtensionGrant},
		{len(a.Clients), a.validateClient},
	} {
		for i := range items.count {
			if err := items.validate(i); err != nil {
				return err
			}
		}
	}
	if err := a.ClientIDMetadataDocuments.Validate(); err != nil {
		return err
	}
	if err := a.Registration.Validate(); err != nil {
		return err
	}
	return a.validateReferences()
}

// validateIssuer enforces OpenID Connect Discovery 1.0 §3 (the issuer is a URL with a scheme and a
// host and no query or fragment), allowing http for local set-ups.
func validateIssuer(issuer string) error {
	_, err := parseIssuer(issuer)
	return at(err, "issuer")
}

// parseIssuer is the issuer's URL, if it is one validateIssuer accepts.
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

// validateOptions checks the app's own options: the store, the signing key and the durations.
func (a *App) validateOptions() error {
	if a.Store != nil {
		if err := a.Store.Validate(); err != nil {
			return err
		}
	}
	if a.SigningKey != nil && len(a.SigningKeyFiles) > 0 {
		return errors.New("signing_key and signing_key_file are exclusive")
	}
	if a.SigningKey != nil {
		if err := a.SigningKey.Validate(); err != nil {
			return err
		}
	}
	for _, f := range a.SigningKeyFiles {
		if err := f.Validate(); err != nil {
			return err
		}
	}
	if len(a.SigningKeyFiles) > 0 {
		if a.SigningKeyRotation != 0 {
			// The operator replaces the key of a file; tokengate never rotates it.
			return at(errors.New("signing_key_rotation: a signing_key_file key is never rotated"), "signing_key_rotation")
		}
	}
	for _, opt := range durationOptions {
		if d := *a.durationField(opt); d != 0 {
			if err := validateDuration(opt, time.Duration(d)); err != nil {
				return err
			}
		}
	}
	return nil
}

// durationOptions are the app's options that are durations.
var durationOptions = []string{"signing_key_rotation", "access_token_ttl", "refresh_token_ttl", "code_ttl", "device_code_ttl"}

// validateDuration refuses lifetimes and intervals under a second: a token must outlive the
// request that mints it, and a key the tokens it signs.
func validateDuration(opt string, d time.Duration) error {
	if d < time.Second {
		return at(fmt.Errorf("%s: %v is under the minimum of 1s", opt, d), opt)
	}
	return nil
}

// Validate checks the backend and, with redis, the URL. A URL that is a placeholder ({env.X}) is
// checked once Provision replaces it.
func (s *StoreConfig) Validate() error {
	switch s.Backend {
	case "", "bolt", "pebble", "memory":
		return nil
	case "redis":
		if s.URL == "" {
			return at(errors.New("store redis: no URL"), "store")
		}
		if !strings.HasPrefix(s.URL, "{") {
			return at(checkRedisURL(s.URL), "store")
		}
		return nil
	}
	return at(fmt.Errorf("store: unknown backend %q (want %s)", s.Backend, strings.Join(storeBackends, ", ")), "store")
}

// checkRedisURL accepts the URLs the Redis store opens: redis://, rediss:// (TLS) and unix://.
// Its errors never quote the URL, which may hold a password.
func checkRedisURL(raw string) error {
	scheme, _, ok := strings.Cut(raw, "://")
	if !ok || !slices.Contains([]string{"redis", "rediss", "unix"}, strings.ToLower(scheme)) {
		return errors.New("store redis: the URL must start with redis://, rediss:// (TLS) or unix://")
	}
	return nil
}

// Validate checks the algorithm; empty is the default.
func (k *SigningKeyConfig) Validate() error {
	if k.Alg == "" {
		return nil
	}
	if _, err := signingAlg(k.Alg); err != nil {
		return at(fmt.Errorf("signing_key: %w", err), "signing_key")
	}
	return nil
}

// Validate checks the algorithm and that there is a file.
func (f *SigningKeyFileConfig) Validate() error {
	if f == nil {
		return at(errors.New("signing_key_file: empty"), "signing_key_file")
	}
	if _, err := signingAlg(f.Alg); err != nil {
		return at(fmt.Errorf("signing_key_file: %w", err), "signing_key_file")
	}
	if f.File == "" {
		return at(errors.New("signing_key_file: no file"), "signing_key_file")
	}
	return nil
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

// validateNth validates the i-th of items on its own, then against each earlier one: no two items
// of a kind share a name, nor the value of an option in unique.
func validateNth[T interface{ Validate() error }](items []T, i int, kind string, name func(T) string, unique ...uniqueOption[T]) error {
	t := items[i]
	if err := t.Validate(); err != nil {
		return err
	}
	for _, earlier := range items[:i] {
		if name(earlier) == name(t) {
			return declaredTwice(kind, name(t))
		}
		for _, u := range unique {
			if v := u.value(t); u.value(earlier) == v {
				return inItem(kind, name(t), fmt.Errorf("%s %q is another %s's", u.option, v, kind))
			}
		}
	}
	return nil
}

// uniqueOption is an option whose value no two items of a kind may share.
type uniqueOption[T any] struct {
	option string
	value  func(T) string
}

// declaredTwice is the error for a second item of the same kind and name.
func declaredTwice(kind, name string) error {
	return at(fmt.Errorf("%s %q is declared twice", kind, name), kind, name)
}

// validateIdentityProvider checks the i-th users block: names are unique.
func (a *App) validateIdentityProvider(i int) error {
	return validateNth(a.IdentityProviders, i, "users", func(p *IdentityProviderConfig) string { return p.Name })
}

// validateExternalProvider checks the i-th external provider: names are unique.
func (a *App) validateExternalProvider(i int) error {
	return validateNth(a.ExternalProviders, i, a.ExternalProviders[i].Kind, func(p *ExternalProviderConfig) string { return p.Name })
}

// validateTrust checks the i-th trust block: names and issuers are unique, so an assertion's iss
// picks one trust.
func (a *App) validateTrust(i int) error {
	return validateNth(a.Trusts, i, "trust", func(t *TrustConfig) string { return t.Name },
		uniqueOption[*TrustConfig]{"issuer", func(t *TrustConfig) string { return t.Issuer }})
}

// validateSAMLTrust checks the i-th saml_trust block: names and entity_ids are unique, so an
// assertion's Issuer picks one trust.
func (a *App) validateSAMLTrust(i int) error {
	return validateNth(a.SAMLTrusts, i, "saml_trust", func(t *SAMLTrustConfig) string { return t.Name },
		uniqueOption[*SAMLTrustConfig]{"entity_id", func(t *SAMLTrustConfig) string { return t.EntityID }})
}

// validateExtensionGrant checks the i-th grant line: grant types are unique.
func (a *App) validateExtensionGrant(i int) error {
	return validateNth(a.ExtensionGrants, i, "grant", func(g *ExtensionGrantConfig) string { return g.GrantType })
}

// validateClient checks the i-th client: client_ids are unique.
func (a *App) validateClient(i int) error {
	return validateNth(a.Clients, i, "client", func(c *ClientConfig) string { return c.ID })
}

// validateReferences checks what clients name, which may be declared after them: their identity
// providers, their extension grants and the signing key their ID tokens use.
func (a *App) validateReferences() error {
	// users blocks and external providers share one namespace of names.
	for _, p := range a.ExternalProviders {
		if a.usersBlock(p.Name) {
			return declaredTwice(p.Kind, p.Name)
		}
	}
	for _, c := range a.Clients {
		if err := a.checkIDTokenAlg(c.IDTokenSigningAlg); err != nil {
			return inItem("client", c.ID, at(err, "id_token_signing_alg"))
		}
		for _, name := range c.IdentityProviders {
			if !a.usersBlock(name) && !slices.ContainsFunc(a.ExternalProviders, func(p *ExternalProviderConfig) bool { return p.Name == name }) {
				return inItem("client", c.ID, at(fmt.Errorf("no identity provider is named %q", name), "identity_providers", name))
			}
		}
		for _, g := range c.Grants {
			if !grants.KnownGrant(g) && !slices.ContainsFunc(a.ExtensionGrants, func(e *ExtensionGrantConfig) bool { return e.GrantType == g }) {
				return inItem("client", c.ID, at(fmt.Errorf("no grant line declares %q", g), "grants", g))
			}
		}
	}
	return nil
}

// checkIDTokenAlg accepts, in any case, the algorithms tokengate keeps keys of: the signing key's
// and RS256; empty is the default, the signing key's.
func (a *App) checkIDTokenAlg(name string) error {
	if name == "" {
		return nil
	}
	algs := a.idTokenAlgs()
	if !slices.ContainsFunc(algs, func(alg string) bool { return strings.EqualFold(alg, name) }) {
		return fmt.Errorf("id_token_signing_alg %q: ID tokens are signed with %s", name, strings.Join(algs, " or "))
	}
	return nil
}

// usersBlock reports whether a users block is named name.
func (a *App) usersBlock(name string) bool {
	return slices.ContainsFunc(a.IdentityProviders, func(p *IdentityProviderConfig) bool { return p.Name == name })
}

// Validate checks the grant type: an absolute URI (RFC 6749 §4.5), so never a built-in grant's
// name, and not a built-in grant's URI either.
func (g *ExtensionGrantConfig) Validate() error {
	err := checkExtensionGrantType(g.GrantType)
	if err == nil && grants.BuiltInGrantType(g.GrantType) {
		err = fmt.Errorf("grant %q: the grant type is a built-in grant's", g.GrantType)
	}
	return at(err, "grant", g.GrantType)
}

func checkExtensionGrantType(uri string) error {
	scheme, rest, ok := strings.Cut(uri, ":")
	if !ok || scheme == "" || rest == "" || strings.ContainsAny(uri, " \t\r\n") {
		return fmt.Errorf("grant %q: an extension grant type is an absolute URI (RFC 6749 §4.5)", uri)
	}
	return nil
}
