package caddymodule

import (
	"cmp"
	"fmt"
	"net/http"
	"os"
	"slices"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/tokengate/tokengate/assertion"
	"github.com/tokengate/tokengate/cimd"
	"github.com/tokengate/tokengate/endpoints"
	"github.com/tokengate/tokengate/federation"
	"github.com/tokengate/tokengate/grants"
	"github.com/tokengate/tokengate/identity"
	"github.com/tokengate/tokengate/registration"
	"github.com/tokengate/tokengate/samlbearer"
)

// buildClients turns the configuration into grants.Clients, replacing {env.X} placeholders in the
// secrets.
func (a *App) buildClients() ([]*grants.Client, error) {
	repl := caddy.NewReplacer()
	clients := make([]*grants.Client, 0, len(a.Clients))
	a.clientIDs = make(map[string]bool, len(a.Clients))
	a.audiences = map[string]bool{a.Issuer: true}
	for _, c := range a.Clients {
		gc, err := c.build(repl)
		if err == nil && (c.JWKSFile != "" || c.JWKSURI != "") {
			gc.Keys, err = a.keySource(c.JWKSFile, c.JWKSURI, "")
		}
		if err != nil {
			return nil, fmt.Errorf("client %q: %w", c.ID, err)
		}
		clients = append(clients, gc)
		a.clientIDs[c.ID] = true
		for _, aud := range slices.Concat(c.Audience, c.ExchangeAudiences) {
			a.audiences[aud] = true
		}
	}
	return clients, nil
}

func (c *ClientConfig) build(repl *caddy.Replacer) (*grants.Client, error) {
	secrets := make([]*grants.Secret, 0, len(c.Secrets))
	for i, s := range c.Secrets {
		// An unset variable must not leave an empty secret that anyone could present.
		v, err := repl.ReplaceOrErr(s, true, true)
		if err != nil {
			return nil, fmt.Errorf("secret %d: %w", i, err)
		}
		if v == "" {
			return nil, fmt.Errorf("secret %d: empty", i)
		}
		secret, err := grants.NewSecret(v)
		if err != nil {
			return nil, fmt.Errorf("secret %d: %w", i, err)
		}
		secrets = append(secrets, secret)
	}
	// Validate admitted only the primary's algorithm and RS256, in any case.
	idTokenAlg, _ := signingAlg(c.IDTokenSigningAlg)
	return &grants.Client{
		ID:                     c.ID,
		DisplayName:            c.DisplayName,
		Secrets:                secrets,
		Public:                 c.Public,
		AuthMethod:             c.AuthMethod,
		Grants:                 c.Grants,
		Scopes:                 c.Scopes,
		Audience:               c.Audience,
		RedirectURIs:           c.RedirectURIs,
		PostLogoutRedirectURIs: c.PostLogoutRedirectURIs,
		ExchangeAudiences:      c.ExchangeAudiences,
		IdentityProviders:      c.IdentityProviders,
		AccessTokenTTL:         time.Duration(c.AccessTokenTTL),
		Claims:                 c.Claims,
		PKCEPlain:              c.PKCEPlain,
		IntrospectAny:          c.IntrospectAny,
		IDTokenAlg:             idTokenAlg,
	}, nil
}

// buildTrusts reads the keys of the trust and saml_trust blocks.
func (a *App) buildTrusts() ([]grants.Trust, []samlbearer.Trust, error) {
	trusts := make([]grants.Trust, 0, len(a.Trusts))
	for _, t := range a.Trusts {
		keys, err := a.keySource(t.JWKSFile, t.JWKSURI, t.KeyFile)
		if err != nil {
			return nil, nil, fmt.Errorf("trust %q: %w", t.Name, err)
		}
		trusts = append(trusts, grants.Trust{Name: t.Name, Issuer: t.Issuer, Keys: keys})
	}
	samlTrusts := make([]samlbearer.Trust, 0, len(a.SAMLTrusts))
	for _, t := range a.SAMLTrusts {
		certs, err := samlbearer.LoadCertificates(t.CertificateFile)
		if err != nil {
			return nil, nil, fmt.Errorf("saml_trust %q: %w", t.Name, err)
		}
		samlTrusts = append(samlTrusts, samlbearer.Trust{EntityID: t.EntityID, Certificates: certs})
	}
	return trusts, samlTrusts, nil
}

// loadExtensionGrants provisions the modules of the grant lines.
func (a *App) loadExtensionGrants(ctx caddy.Context) ([]grants.ExtensionGrant, error) {
	out := make([]grants.ExtensionGrant, 0, len(a.ExtensionGrants))
	for _, g := range a.ExtensionGrants {
		v, err := ctx.LoadModule(g, "GrantRaw")
		if err != nil {
			return nil, fmt.Errorf("grant %s: %w", g.GrantType, err)
		}
		ext, ok := v.(grants.ExtensionGrant)
		if !ok {
			return nil, fmt.Errorf("grant %s: module %T is not an extension grant", g.GrantType, v)
		}
		if ext.GrantType() != g.GrantType {
			return nil, fmt.Errorf("grant %s: the module serves %s", g.GrantType, ext.GrantType())
		}
		out = append(out, ext)
	}
	return out, nil
}

// keySource returns the keys of a jwks_file, a key_file (PEM), or a jwks_uri, whichever is set.
// A remote key set is shared through jwksPool, so a reload keeps its cache.
func (a *App) keySource(jwksFile, jwksURI, keyFile string) (assertion.KeySource, error) {
	switch {
	case jwksURI != "":
		return a.remoteKeys(jwksURI)
	case jwksFile != "":
		return readKeyFile("jwks_file", jwksFile, assertion.ParseJWKS)
	}
	return readKeyFile("key_file", keyFile, assertion.ParsePEM)
}

// readKeyFile reads the file of the option opt and parses its keys.
func readKeyFile(opt, path string, parse func([]byte) (*assertion.StaticKeys, error)) (assertion.KeySource, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", opt, err)
	}
	keys, err := parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", opt, path, err)
	}
	return keys, nil
}

func (a *App) buildIdentityProviders() ([]grants.IdentityProvider, error) {
	idps := make([]grants.IdentityProvider, 0, len(a.IdentityProviders))
	for _, p := range a.IdentityProviders {
		var provider identity.Provider
		if p.HTTPLogin != "" {
			login, err := identity.NewHTTPLogin(identity.HTTPLoginConfig{URL: p.HTTPLogin,
				SuccessLocation: p.HTTPLoginSuccessLocation, Client: &http.Client{Timeout: httpLoginTimeout}})
			if err != nil {
				return nil, fmt.Errorf("users %q: %w", p.Name, err)
			}
			provider = login
		} else {
			users := make([]identity.StaticUser, 0, len(p.Users))
			for _, u := range p.Users {
				users = append(users, identity.StaticUser{Username: u.Username, Hash: u.Hash, Claims: u.Claims, Tenants: u.Tenants})
			}
			static, err := identity.NewStatic(users)
			if err != nil {
				return nil, fmt.Errorf("users %q: %w", p.Name, err)
			}
			provider = static
		}
		idps = append(idps, grants.IdentityProvider{Name: p.Name, Provider: provider})
	}
	for _, p := range a.ExternalProviders {
		idps = append(idps, grants.IdentityProvider{Name: p.Name, External: true})
	}
	return idps, nil
}

// userClaims are the names of the claims the static users' tokens may carry: their claims, and
// tenant when some user is limited to tenants.
func (a *App) userClaims() []string {
	var names []string
	for _, p := range a.IdentityProviders {
		for _, u := range p.Users {
			for name := range u.Claims {
				names = append(names, name)
			}
			if len(u.Tenants) > 0 {
				names = append(names, "tenant")
			}
		}
	}
	return names
}

// buildExternalProviders turns the oidc, oauth2 and github blocks into relying parties, replacing
// {env.X} placeholders in the client secrets. Nothing is asked of the upstreams yet.
func (a *App) buildExternalProviders() ([]*federation.Provider, error) {
	repl := caddy.NewReplacer()
	providers := make([]*federation.Provider, 0, len(a.ExternalProviders))
	for _, p := range a.ExternalProviders {
		secret, err := repl.ReplaceOrErr(p.ClientSecret, true, true)
		if err != nil {
			return nil, fmt.Errorf("%s %q: client_secret: %w", p.Kind, p.Name, err)
		}
		cfg := federation.Config{
			Name:           p.Name,
			DisplayName:    p.DisplayName,
			Kind:           p.Kind,
			Issuer:         p.Issuer,
			AuthorizeURL:   p.AuthorizeURL,
			TokenURL:       p.TokenURL,
			UserinfoURL:    p.UserinfoURL,
			RedirectURI:    endpoints.URL(a.Issuer, endpoints.ExternalCallbackPath(p.Name)),
			ClientID:       p.ClientID,
			ClientSecret:   secret,
			AuthMethod:     p.AuthMethod,
			Scopes:         p.Scopes,
			Claims:         p.Claims,
			Userinfo:       !p.UserinfoOff,
			SubjectField:   cmp.Or(p.SubjectClaim, p.SubjectField),
			AllowedDomains: p.AllowedDomains,
			HostedDomain:   p.HostedDomain,
			Tenants:        p.Tenants,
			Now:            a.now,
		}
		switch p.Kind {
		case kindOIDC:
			if len(cfg.Scopes) == 0 {
				cfg.Scopes = []string{"openid", "email", "profile"}
			}
		case kindGitHub:
			cfg = federation.GitHub(cfg, p.BaseURL)
		}
		provider, err := federation.New(cfg)
		if err != nil {
			return nil, fmt.Errorf("%s %q: %w", p.Kind, p.Name, err)
		}
		providers = append(providers, provider)
	}
	return providers, nil
}

// buildClientSource builds what resolves the clients the configuration does not declare, or nil
// when it allows none: metadata documents, registered clients, or both.
func (a *App) buildClientSource() grants.ClientSource {
	var sources grants.ClientSources
	if c := a.ClientIDMetadataDocuments; c != nil {
		if c.AllowLoopback {
			a.logger.Warn("client_id_metadata_documents: allow_loopback accepts client_ids on this machine; for tests and local development only")
		}
		sources = append(sources, cimd.New(cimd.Config{
			Allow:         c.Allow,
			Scopes:        a.dynamicScopesOf(c.Scopes),
			AllowLoopback: c.AllowLoopback,
			Logger:        a.logger,
			Now:           a.now,
		}))
	}
	if c := a.Registration; c != nil {
		rate := registrationRate{registration.DefaultRate, registration.DefaultRateWindow}
		if c.Rate != nil {
			rate = registrationRate{c.Rate.Requests, time.Duration(c.Rate.Window)}
		}
		a.registry = registration.New(registration.Config{
			Store:      a.shared.store,
			Scopes:     a.dynamicScopesOf(c.Scopes),
			MaxClients: c.MaxClients,
			Rate:       a.shared.registrationLimiter(rate),
			UnusedTTL:  time.Duration(c.UnusedTTL),
			ClientIP:   clientIP,
			Logger:     a.logger,
			Now:        a.now,
		})
		sources = append(sources, a.registry)
	}
	if len(sources) == 0 {
		return nil
	}
	return sources
}

// dynamicScopesOf are what clients the configuration does not declare may ask for: the configured
// scopes, or else DefaultDynamicScopes and every scope of every known resource, which the
// bearer_auth routes add as they are provisioned, after this app.
func (a *App) dynamicScopesOf(configured []string) func() []string {
	if len(configured) > 0 {
		return func() []string { return configured }
	}
	return func() []string { return slices.Concat(DefaultDynamicScopes, a.resources.AllScopes()) }
}

// dynamicScopes are the scopes discovery lists for clients the configuration does not declare.
// Discovery is built at provision, before the bearer_auth routes add their resources, so the
// default lists DefaultDynamicScopes only; each resource's metadata lists its own scopes.
func (a *App) dynamicScopes() []string {
	var all []string
	if c := a.ClientIDMetadataDocuments; c != nil {
		all = append(all, a.dynamicScopesOf(c.Scopes)()...)
	}
	if c := a.Registration; c != nil {
		all = append(all, a.dynamicScopesOf(c.Scopes)()...)
	}
	return all
}

// registrationEndpoint is the registration endpoint, or nil (no route) without registration.
func (a *App) registrationEndpoint() http.Handler {
	if a.registry == nil {
		return nil
	}
	return a.registry
}
