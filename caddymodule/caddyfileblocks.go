package caddymodule

import (
	"slices"
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// parseClient parses one client block from its own dispenser into app. Syntax:
//
//	client <client_id> {
//	    display_name <text>
//	    secret <secret>
//	    public
//	    auth_method client_secret_basic | client_secret_post | client_secret_jwt | private_key_jwt
//	    jwks_file <path> | jwks_uri <url>
//	    grants <grant>...
//	    scopes <scope>...
//	    audience <aud>...
//	    redirect_uris <uri>...
//	    post_logout_redirect_uris <uri>...
//	    access_token_ttl <duration>
//	    claim <name> <value>
//	    identity_providers <name>...
//	    exchange_audiences <aud>...
//	    pkce_plain
//	    introspect_any
//	    id_token_signing_alg <alg>
//	}
func parseClient(d *caddyfile.Dispenser, app *App, l lines) error {
	d.Next() // "client"
	id, err := singleArg(d)
	if err != nil {
		return err
	}
	c := &ClientConfig{ID: id}
	for d.NextBlock(0) {
		l.record(d, "client", id)
		var err error
		switch d.Val() {
		case "secret":
			var s string
			if s, err = singleArg(d); err == nil {
				c.Secrets = append(c.Secrets, s)
			}
		case "public":
			err = parseFlag(d, &c.Public)
		case "pkce_plain":
			err = parseFlag(d, &c.PKCEPlain)
		case "introspect_any":
			err = parseFlag(d, &c.IntrospectAny)
		case "display_name":
			err = parseOnce(d, &c.DisplayName)
		case "auth_method":
			err = parseOnce(d, &c.AuthMethod)
		case "id_token_signing_alg":
			err = parseOnce(d, &c.IDTokenSigningAlg)
		case "jwks_file":
			err = parseOnce(d, &c.JWKSFile)
		case "jwks_uri":
			err = parseOnce(d, &c.JWKSURI)
		case "grants":
			err = parseList(d, &c.Grants)
		case "scopes":
			err = parseList(d, &c.Scopes)
		case "audience":
			err = parseList(d, &c.Audience)
		case "exchange_audiences":
			err = parseList(d, &c.ExchangeAudiences)
		case "redirect_uris":
			err = parseList(d, &c.RedirectURIs)
		case "post_logout_redirect_uris":
			err = parseList(d, &c.PostLogoutRedirectURIs)
		case "access_token_ttl":
			err = parseDuration(d, &c.AccessTokenTTL)
		case "claim":
			err = parseClaim(d, &c.Claims)
		case "identity_providers":
			err = parseList(d, &c.IdentityProviders)
		default:
			err = unrecognized(d)
		}
		if err != nil {
			return err
		}
	}
	app.Clients = append(app.Clients, c)
	return nil
}

// parseUsers parses one identity provider from its own dispenser. Syntax:
//
//	users <name> {
//	    user <username> <bcrypt_hash> {
//	        claim <name> <value>
//	        tenant <name>...
//	    }
//	    http_login <url> {
//	        success_location <url>
//	    }
//	}
func parseUsers(d *caddyfile.Dispenser, app *App, l lines) error {
	d.Next() // "users"
	name, err := singleArg(d)
	if err != nil {
		return err
	}
	p := &IdentityProviderConfig{Name: name}
	for d.NextBlock(0) {
		l.record(d, "users", name)
		var err error
		switch d.Val() {
		case "user":
			err = parseUser(d, p, l)
		case "http_login":
			err = parseHTTPLogin(d, p, l)
		default:
			err = unrecognized(d)
		}
		if err != nil {
			return err
		}
	}
	app.IdentityProviders = append(app.IdentityProviders, p)
	return nil
}

// parseHTTPLogin parses `http_login <url> [{ success_location <url> }]`.
func parseHTTPLogin(d *caddyfile.Dispenser, p *IdentityProviderConfig, l lines) error {
	if err := parseOnce(d, &p.HTTPLogin); err != nil {
		return err
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		l.record(d, "users", p.Name, "http_login")
		if d.Val() != "success_location" {
			return unrecognized(d)
		}
		if err := parseOnce(d, &p.HTTPLoginSuccessLocation); err != nil {
			return err
		}
	}
	return nil
}

// parseUser parses `user <username> <bcrypt_hash> [{ claim ...; tenant ... }]`.
func parseUser(d *caddyfile.Dispenser, p *IdentityProviderConfig, l lines) error {
	u := new(UserConfig)
	if !d.AllArgs(&u.Username, &u.Hash) {
		return d.ArgErr()
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		l.record(d, "users", p.Name, "user", u.Username)
		var err error
		switch d.Val() {
		case "claim":
			err = parseClaim(d, &u.Claims)
		case "tenant":
			err = parseList(d, &u.Tenants)
		default:
			err = unrecognized(d)
		}
		if err != nil {
			return err
		}
	}
	p.Users = append(p.Users, u)
	return nil
}

// parseTrust parses one `trust` block from its own dispenser. Syntax:
//
//	trust <name> {
//	    issuer <iss>
//	    jwks_file <path> | jwks_uri <url> | key_file <pem>
//	}
func parseTrust(d *caddyfile.Dispenser, app *App, l lines) error {
	d.Next() // "trust"
	name, err := singleArg(d)
	if err != nil {
		return err
	}
	t := &TrustConfig{Name: name}
	fields := map[string]*string{"issuer": &t.Issuer, "jwks_file": &t.JWKSFile, "jwks_uri": &t.JWKSURI, "key_file": &t.KeyFile}
	if err := parseStringBlock(d, l, fields, "trust", name); err != nil {
		return err
	}
	app.Trusts = append(app.Trusts, t)
	return nil
}

// parseSAMLTrust parses one `saml_trust` block from its own dispenser. Syntax:
//
//	saml_trust <name> {
//	    entity_id <id>
//	    certificate_file <pem>
//	}
func parseSAMLTrust(d *caddyfile.Dispenser, app *App, l lines) error {
	d.Next() // "saml_trust"
	name, err := singleArg(d)
	if err != nil {
		return err
	}
	t := &SAMLTrustConfig{Name: name}
	fields := map[string]*string{"entity_id": &t.EntityID, "certificate_file": &t.CertificateFile}
	if err := parseStringBlock(d, l, fields, "saml_trust", name); err != nil {
		return err
	}
	app.SAMLTrusts = append(app.SAMLTrusts, t)
	return nil
}

// parseStringBlock parses a block whose options each set one string, at most once: fields maps
// each option to its field. where is the block's path, for lines.
func parseStringBlock(d *caddyfile.Dispenser, l lines, fields map[string]*string, where ...string) error {
	for d.NextBlock(0) {
		l.record(d, where...)
		field, ok := fields[d.Val()]
		if !ok {
			return unrecognized(d)
		}
		if err := parseOnce(d, field); err != nil {
			return err
		}
	}
	return nil
}

// parseExtensionGrant parses `grant <urn> <module> [{ ... }]`: the block is the module's own.
func parseExtensionGrant(d *caddyfile.Dispenser, app *App) error {
	d.Next() // "grant"
	var urn, name string
	if !d.NextArg() {
		return d.ArgErr()
	}
	urn = d.Val()
	if !d.NextArg() {
		return d.ArgErr()
	}
	name = d.Val()
	mod, err := caddyfile.UnmarshalModule(d, extensionNamespace+"."+name)
	if err != nil {
		return err
	}
	app.ExtensionGrants = append(app.ExtensionGrants, &ExtensionGrantConfig{
		GrantType: urn,
		GrantRaw:  caddyconfig.JSONModuleObject(mod, "module", name, nil),
	})
	return nil
}

// parseExternal parses one `oidc`, `oauth2` or `github` block from its own dispenser. Syntax:
//
//	oidc <name> {
//	    issuer <url>
//	    client_id <id>
//	    client_secret <secret>
//	    auth_method client_secret_basic | client_secret_post
//	    scopes <scope>...
//	    claim <token-claim> <upstream-claim>
//	    display_name <text>
//	    userinfo on | off
//	    subject_claim <claim>
//	    allowed_domains <domain>...
//	    hosted_domain <domain>
//	    tenant <name>...
//	}
//
// oauth2 takes authorize_url, token_url, userinfo_url and subject_field instead of issuer,
// userinfo, subject_claim and hosted_domain; github takes base_url instead.
func parseExternal(d *caddyfile.Dispenser, app *App, l lines) error {
	d.Next()
	kind := d.Val()
	name, err := singleArg(d)
	if err != nil {
		return err
	}
	p := &ExternalProviderConfig{Name: name, Kind: kind}
	texts := map[string]*string{"client_id": &p.ClientID, "client_secret": &p.ClientSecret, "auth_method": &p.AuthMethod,
		"display_name": &p.DisplayName, "issuer": &p.Issuer, "subject_claim": &p.SubjectClaim, "hosted_domain": &p.HostedDomain,
		"authorize_url": &p.AuthorizeURL, "token_url": &p.TokenURL, "userinfo_url": &p.UserinfoURL,
		"subject_field": &p.SubjectField, "base_url": &p.BaseURL}
	lists := map[string]*[]string{"scopes": &p.Scopes, "allowed_domains": &p.AllowedDomains, "tenant": &p.Tenants}
	for d.NextBlock(0) {
		l.record(d, kind, name)
		opt := d.Val()
		common := !slices.Contains(externalOptions[kindOIDC], opt) && !slices.Contains(externalOptions[kindOAuth2], opt) &&
			!slices.Contains(externalOptions[kindGitHub], opt)
		if !common && !slices.Contains(externalOptions[kind], opt) {
			return unrecognized(d)
		}
		var err error
		switch field, list := texts[opt], lists[opt]; {
		case field != nil:
			err = parseOnce(d, field)
		case list != nil:
			err = parseList(d, list)
		case opt == "claim":
			err = parseClaim(d, &p.Claims)
		case opt == "userinfo":
			err = parseUserinfo(d, &p.UserinfoOff)
		default:
			err = unrecognized(d)
		}
		if err != nil {
			return err
		}
	}
	app.ExternalProviders = append(app.ExternalProviders, p)
	return nil
}

// parseUserinfo parses `userinfo on|off`.
func parseUserinfo(d *caddyfile.Dispenser, off *bool) error {
	v, err := singleArg(d)
	if err != nil {
		return err
	}
	switch v {
	case "on":
		*off = false
	case "off":
		*off = true
	default:
		return d.Errf("userinfo takes on or off, not %q", v)
	}
	return nil
}

// parseClientIDMetadataDocuments parses the client_id_metadata_documents line, alone (the
// defaults) or with its block, from its own dispenser. Syntax:
//
//	client_id_metadata_documents [{
//	    allow <host>...
//	    scopes <scope>...
//	    allow_loopback
//	}]
func parseClientIDMetadataDocuments(d *caddyfile.Dispenser, app *App, l lines) error {
	c := new(ClientIDMetadataDocumentsConfig)
	lists := map[string]*[]string{"allow": &c.Allow, "scopes": &c.Scopes}
	err := parseOptionBlock(d, l, app.ClientIDMetadataDocuments != nil, func(opt string) error {
		if list, ok := lists[opt]; ok {
			return parseList(d, list)
		}
		if opt == "allow_loopback" {
			return parseFlag(d, &c.AllowLoopback)
		}
		return unrecognized(d)
	})
	if err == nil {
		app.ClientIDMetadataDocuments = c
	}
	return err
}

// parseOptionBlock parses, from its own dispenser, an option that stands alone (for its defaults)
// or opens a block, each line of which line parses; declared says the option was read before.
func parseOptionBlock(d *caddyfile.Dispenser, l lines, declared bool, line func(opt string) error) error {
	d.Next()
	name := d.Val()
	if declared {
		return d.Errf("%s is declared twice", name)
	}
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		l.record(d, name)
		if err := line(d.Val()); err != nil {
			return err
		}
	}
	return nil
}

// parseRegistration parses the registration line, alone (the defaults) or with its block, from its
// own dispenser. Syntax:
//
//	registration [{
//	    scopes <scope>...
//	    max_clients <n>
//	    rate <n> <window>
//	    unused_ttl <duration>
//	}]
func parseRegistration(d *caddyfile.Dispenser, app *App, l lines) error {
	c := new(RegistrationConfig)
	err := parseOptionBlock(d, l, app.Registration != nil, func(opt string) error {
		switch opt {
		case "scopes":
			return parseList(d, &c.Scopes)
		case "max_clients":
			var n string
			if !d.AllArgs(&n) {
				return d.ArgErr()
			}
			var err error
			c.MaxClients, err = wholeNumber(d, n)
			return err
		case "rate":
			return parseRate(d, c)
		case "unused_ttl":
			return parseDuration(d, &c.UnusedTTL)
		}
		return unrecognized(d)
	})
	if err == nil {
		app.Registration = c
	}
	return err
}

// parseRate parses `rate <n> <window>`.
func parseRate(d *caddyfile.Dispenser, c *RegistrationConfig) error {
	var n, window string
	if !d.AllArgs(&n, &window) {
		return d.ArgErr()
	}
	requests, err := wholeNumber(d, n)
	if err != nil {
		return err
	}
	dur, err := caddy.ParseDuration(window)
	if err != nil {
		return d.Errf("rate: %v", err)
	}
	c.Rate = &RegistrationRate{Requests: requests, Window: caddy.Duration(dur)}
	return nil
}

// wholeNumber reads v, an argument of d's line, as a whole number.
func wholeNumber(d *caddyfile.Dispenser, v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, d.Errf("%q is not a whole number", v)
	}
	return n, nil
}
