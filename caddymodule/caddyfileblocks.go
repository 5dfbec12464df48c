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
	c := new(ClientConfig)
	return parseNamedBlock(d, l, &app.Clients, c, &c.ID, func(opt string) error {
		switch opt {
		case "secret":
			s, err := singleArg(d)
			if err == nil {
				c.Secrets = append(c.Secrets, s)
			}
			return err
		case "public":
			return parseFlag(d, &c.Public)
		case "pkce_plain":
			return parseFlag(d, &c.PKCEPlain)
		case "introspect_any":
			return parseFlag(d, &c.IntrospectAny)
		case "display_name":
			return parseOnce(d, &c.DisplayName)
		case "auth_method":
			return parseOnce(d, &c.AuthMethod)
		case "id_token_signing_alg":
			return parseOnce(d, &c.IDTokenSigningAlg)
		case "jwks_file":
			return parseOnce(d, &c.JWKSFile)
		case "jwks_uri":
			return parseOnce(d, &c.JWKSURI)
		case "grants":
			return parseList(d, &c.Grants)
		case "scopes":
			return parseList(d, &c.Scopes)
		case "audience":
			return parseList(d, &c.Audience)
		case "exchange_audiences":
			return parseList(d, &c.ExchangeAudiences)
		case "redirect_uris":
			return parseList(d, &c.RedirectURIs)
		case "post_logout_redirect_uris":
			return parseList(d, &c.PostLogoutRedirectURIs)
		case "access_token_ttl":
			return parseDuration(d, &c.AccessTokenTTL)
		case "claim":
			return parseClaim(d, &c.Claims)
		case "identity_providers":
			return parseList(d, &c.IdentityProviders)
		}
		return unrecognized(d)
	})
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
	p := new(IdentityProviderConfig)
	return parseNamedBlock(d, l, &app.IdentityProviders, p, &p.Name, func(opt string) error {
		switch opt {
		case "user":
			return parseUser(d, p, l)
		case "http_login":
			return parseHTTPLogin(d, p, l)
		}
		return unrecognized(d)
	})
}

// parseHTTPLogin parses `http_login <url> [{ success_location <url> }]`.
func parseHTTPLogin(d *caddyfile.Dispenser, p *IdentityProviderConfig, l lines) error {
	if err := parseOnce(d, &p.HTTPLogin); err != nil {
		return err
	}
	fields := map[string]*string{"success_location": &p.HTTPLoginSuccessLocation}
	return parseOptions(d, l, stringOption(d, fields), "users", p.Name, "http_login")
}

// parseUser parses `user <username> <bcrypt_hash> [{ claim ...; tenant ... }]`.
func parseUser(d *caddyfile.Dispenser, p *IdentityProviderConfig, l lines) error {
	u := new(UserConfig)
	if !d.AllArgs(&u.Username, &u.Hash) {
		return d.ArgErr()
	}
	err := parseOptions(d, l, func(opt string) error {
		switch opt {
		case "claim":
			return parseClaim(d, &u.Claims)
		case "tenant":
			return parseList(d, &u.Tenants)
		}
		return unrecognized(d)
	}, "users", p.Name, "user", u.Username)
	if err != nil {
		return err
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
	t := new(TrustConfig)
	fields := map[string]*string{"issuer": &t.Issuer, "jwks_file": &t.JWKSFile, "jwks_uri": &t.JWKSURI, "key_file": &t.KeyFile}
	return parseNamedBlock(d, l, &app.Trusts, t, &t.Name, stringOption(d, fields))
}

// parseSAMLTrust parses one `saml_trust` block from its own dispenser. Syntax:
//
//	saml_trust <name> {
//	    entity_id <id>
//	    certificate_file <pem>
//	}
func parseSAMLTrust(d *caddyfile.Dispenser, app *App, l lines) error {
	t := new(SAMLTrustConfig)
	fields := map[string]*string{"entity_id": &t.EntityID, "certificate_file": &t.CertificateFile}
	return parseNamedBlock(d, l, &app.SAMLTrusts, t, &t.Name, stringOption(d, fields))
}

// parseNamedBlock parses a block `<keyword> <name> { ... }` from its own dispenser into item: it
// stores the name in name, hands each option of the block to option, its line recorded under the
// keyword and the name, and appends item to items once the whole block parsed.
func parseNamedBlock[T any](d *caddyfile.Dispenser, l lines, items *[]*T, item *T, name *string, option func(opt string) error) error {
	d.Next()
	keyword := d.Val()
	var err error
	if *name, err = singleArg(d); err != nil {
		return err
	}
	if err := parseOptions(d, l, option, keyword, *name); err != nil {
		return err
	}
	*items = append(*items, item)
	return nil
}

// parseOptions hands each option of the block that opens on the current line to option, its line
// recorded under where, the block's path.
func parseOptions(d *caddyfile.Dispenser, l lines, option func(opt string) error, where ...string) error {
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		l.record(d, where...)
		if err := option(d.Val()); err != nil {
			return err
		}
	}
	return nil
}

// stringOption parses the options of a block whose options each set one string, at most once:
// fields maps each option to its field.
func stringOption(d *caddyfile.Dispenser, fields map[string]*string) func(opt string) error {
	return func(opt string) error {
		field, ok := fields[opt]
		if !ok {
			return unrecognized(d)
		}
		return parseOnce(d, field)
	}
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
func parseExternal(d *caddyfile.Dispenser, kind string, app *App, l lines) error {
	p := &ExternalProviderConfig{Kind: kind}
	texts := map[string]*string{"client_id": &p.ClientID, "client_secret": &p.ClientSecret, "auth_method": &p.AuthMethod,
		"display_name": &p.DisplayName, "issuer": &p.Issuer, "subject_claim": &p.SubjectClaim, "hosted_domain": &p.HostedDomain,
		"authorize_url": &p.AuthorizeURL, "token_url": &p.TokenURL, "userinfo_url": &p.UserinfoURL,
		"subject_field": &p.SubjectField, "base_url": &p.BaseURL}
	lists := map[string]*[]string{"scopes": &p.Scopes, "allowed_domains": &p.AllowedDomains, "tenant": &p.Tenants}
	return parseNamedBlock(d, l, &app.ExternalProviders, p, &p.Name, func(opt string) error {
		common := !slices.Contains(externalOptions[kindOIDC], opt) && !slices.Contains(externalOptions[kindOAuth2], opt) &&
			!slices.Contains(externalOptions[kindGitHub], opt)
		if !common && !slices.Contains(externalOptions[kind], opt) {
			return unrecognized(d)
		}
		switch field, list := texts[opt], lists[opt]; {
		case field != nil:
			return parseOnce(d, field)
		case list != nil:
			return parseList(d, list)
		case opt == "claim":
			return parseClaim(d, &p.Claims)
		case opt == "userinfo":
			return parseUserinfo(d, &p.UserinfoOff)
		}
		return unrecognized(d)
	})
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
