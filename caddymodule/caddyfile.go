package caddymodule

import (
	"fmt"
	"slices"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"golang.org/x/net/http/httpguts"

	"github.com/tokengate/tokengate/grants"
)

func init() {
	httpcaddyfile.RegisterGlobalOption("tokengate", parseGlobalOption)
	httpcaddyfile.RegisterHandlerDirective("tokengate", parseHandler)
	httpcaddyfile.RegisterHandlerDirective("bearer_auth", parseBearerAuth)
	// Both run before basic_auth and the other authenticators, so that no other check stands in front
	// of the token endpoint, and bearer_auth, registered second, lands between tokengate and them
	// (a plugin may only be ordered against a standard directive). Everything that answers requests,
	// reverse_proxy among them, comes after.
	httpcaddyfile.RegisterDirectiveOrder("tokengate", httpcaddyfile.Before, "basic_auth")
	httpcaddyfile.RegisterDirectiveOrder("bearer_auth", httpcaddyfile.Before, "basic_auth")
}

// parseGlobalOption parses the tokengate global option into the tokengate app. Syntax:
//
//	tokengate {
//	    issuer <url>
//	    store bolt [<file>] | redis <url> | memory
//	    signing_key <alg>
//	    signing_key_file <alg> <pem_file> [<kid>]
//	    signing_key_rotation <duration>
//	    access_token_ttl | refresh_token_ttl | code_ttl | device_code_ttl <duration>
//	    client <client_id> { ... }
//	    users <name> { ... }
//	    trust <name> { ... }
//	    saml_trust <name> { ... }
//	    grant <urn> <module> { ... }
//	    login_template <file>
//	}
//
// Mistakes are reported with the line they are on.
func parseGlobalOption(d *caddyfile.Dispenser, existing any) (any, error) {
	d.Next() // the option's name
	if existing != nil {
		return nil, d.Err("the tokengate option is declared twice")
	}
	if d.NextArg() {
		return nil, d.ArgErr()
	}
	app := new(App)
	// refs are the identity_providers and extension grants a client named, each with the error
	// naming its line: a users block or grant line may come after the client. rotateKeyFile
	// likewise names the line of signing_key_rotation, refused if a signing_key_file comes before
	// or after it.
	var refs []laterRef
	var rotateKeyFile error
	for d.NextBlock(0) {
		var err error
		switch opt := d.Val(); opt {
		case "issuer":
			err = parseIssuerLine(d, app)
		case "store":
			err = parseStore(d, app)
		case "signing_key", "signing_key_file":
			err = parseSigningKey(d, app)
		case "access_token_ttl", "refresh_token_ttl", "code_ttl", "device_code_ttl":
			err = parseDuration(d, app.ttlField(opt))
		case "signing_key_rotation":
			rotateKeyFile = d.Err(errRotateKeyFile)
			err = parseDuration(d, &app.SigningKeyRotation)
		case "client":
			var clientRefs []laterRef
			clientRefs, err = parseClient(d.NewFromNextSegment(), app)
			refs = append(refs, clientRefs...)
		case "users":
			err = parseUsers(d.NewFromNextSegment(), app)
		case "trust":
			err = parseTrust(d.NewFromNextSegment(), app)
		case "saml_trust":
			err = parseSAMLTrust(d.NewFromNextSegment(), app)
		case "grant":
			err = parseExtensionGrant(d.NewFromNextSegment(), app)
		case "login_template":
			app.LoginTemplate, err = singleArg(d)
		default:
			err = unrecognized(d)
		}
		if err != nil {
			return nil, err
		}
	}
	if app.Issuer == "" {
		return nil, d.Err("tokengate: issuer is required")
	}
	if app.SigningKeyFile != nil && rotateKeyFile != nil {
		return nil, rotateKeyFile
	}
	for _, ref := range refs {
		declared := slices.ContainsFunc(app.IdentityProviders, func(p *IdentityProviderConfig) bool { return p.Name == ref.name })
		if ref.grant {
			declared = slices.ContainsFunc(app.ExtensionGrants, func(g *ExtensionGrantConfig) bool { return g.GrantType == ref.name })
		}
		if !declared {
			return nil, ref.err
		}
	}
	return httpcaddyfile.App{Name: "tokengate", Value: caddyconfig.JSON(app, nil)}, nil
}

// laterRef is a client's use of an identity provider or (grant) an extension grant, checked once
// every users block and grant line is known.
type laterRef struct {
	name  string
	grant bool
	err   error
}

// unrecognized is the error for an unknown subdirective.
func unrecognized(d *caddyfile.Dispenser) error {
	return d.Errf("unrecognized subdirective %q", d.Val())
}

// singleArg reads the one argument of the current line.
func singleArg(d *caddyfile.Dispenser) (string, error) {
	var v string
	if !d.AllArgs(&v) {
		return "", d.ArgErr()
	}
	return v, nil
}

func parseIssuerLine(d *caddyfile.Dispenser, app *App) error {
	if app.Issuer != "" {
		return d.Err("issuer is declared twice")
	}
	v, err := singleArg(d)
	if err != nil {
		return err
	}
	if _, err := parseIssuer(v); err != nil {
		return d.WrapErr(err)
	}
	app.Issuer = v
	return nil
}

// parseStore parses `store bolt [<file>]`, `store redis <url>` and `store memory`. A Redis URL
// that is a placeholder ({env.X}) is checked once it is replaced, at provision time.
func parseStore(d *caddyfile.Dispenser, app *App) error {
	if app.Store != nil {
		return d.Err("store is declared twice")
	}
	args := d.RemainingArgs()
	if len(args) == 0 {
		return d.ArgErr()
	}
	switch {
	case args[0] == "bolt" && len(args) <= 2:
		app.Store = &StoreConfig{Backend: "bolt"}
		if len(args) == 2 {
			app.Store.Path = args[1]
		}
	case args[0] == "memory" && len(args) == 1:
		app.Store = &StoreConfig{Backend: "memory"}
	case args[0] == "redis" && len(args) == 2:
		if !strings.HasPrefix(args[1], "{") {
			if err := checkRedisURL(args[1]); err != nil {
				return d.WrapErr(err)
			}
		}
		app.Store = &StoreConfig{Backend: "redis", URL: args[1]}
	case args[0] == "bolt" || args[0] == "memory" || args[0] == "redis":
		return d.ArgErr()
	default:
		return d.Errf("unknown store %q (want bolt, redis or memory)", args[0])
	}
	return nil
}

// parseSigningKey parses `signing_key <alg>` and `signing_key_file <alg> <pem_file> [<kid>]`.
func parseSigningKey(d *caddyfile.Dispenser, app *App) error {
	if app.SigningKey != nil || app.SigningKeyFile != nil {
		return d.Err("only one signing_key or signing_key_file is allowed")
	}
	opt := d.Val()
	args := d.RemainingArgs()
	if opt == "signing_key" && len(args) != 1 || opt == "signing_key_file" && (len(args) < 2 || len(args) > 3) {
		return d.ArgErr()
	}
	alg, err := signingAlg(args[0])
	if err != nil {
		return d.WrapErr(err)
	}
	if opt == "signing_key" {
		app.SigningKey = &SigningKeyConfig{Alg: alg}
		return nil
	}
	app.SigningKeyFile = &SigningKeyFileConfig{Alg: alg, File: args[1]}
	if len(args) == 3 {
		app.SigningKeyFile.KID = args[2]
	}
	return nil
}

// parseDuration parses `<option> <duration>` into dst, which must not be set yet.
func parseDuration(d *caddyfile.Dispenser, dst *caddy.Duration) error {
	opt := d.Val()
	if *dst != 0 {
		return d.Errf("%s is declared twice", opt)
	}
	v, err := singleArg(d)
	if err != nil {
		return err
	}
	dur, err := caddy.ParseDuration(v)
	if err != nil {
		return d.Errf("%s: %v", opt, err)
	}
	if err := checkDuration(dur); err != nil {
		return d.Errf("%s: %v", opt, err)
	}
	*dst = caddy.Duration(dur)
	return nil
}

// parseClient parses one client block from its own dispenser. Syntax:
//
//	client <client_id> {
//	    secret <secret>
//	    public
//	    auth_method client_secret_basic | client_secret_post | client_secret_jwt | private_key_jwt
//	    jwks_file <path> | jwks_uri <url>
//	    grants <grant>...
//	    scopes <scope>...
//	    audience <aud>...
//	    exchange_audiences <aud>...
//	    redirect_uris <uri>...
//	    post_logout_redirect_uris <uri>...
//	    access_token_ttl <duration>
//	    claim <name> <value>
//	    identity_providers <name>...
//	    pkce_plain
//	    introspect_any
//	}
//
// It returns the identity_providers names for the caller to check once all users blocks are read.
func parseClient(d *caddyfile.Dispenser, app *App) ([]laterRef, error) {
	d.Next() // "client"
	id, err := singleArg(d)
	if err != nil {
		return nil, err
	}
	if err := checkClientID(id); err != nil {
		return nil, d.WrapErr(err)
	}
	if slices.ContainsFunc(app.Clients, func(c *ClientConfig) bool { return c.ID == id }) {
		return nil, d.Errf("client %q is declared twice", id)
	}
	c := &ClientConfig{ID: id}
	var refs []laterRef
	for d.NextBlock(0) {
		var err error
		switch opt := d.Val(); opt {
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
		case "auth_method":
			err = parseAuthMethod(d, c)
		case "jwks_file":
			err = parseOnce(d, &c.JWKSFile, nil)
		case "jwks_uri":
			err = parseOnce(d, &c.JWKSURI, checkKeySetURI)
		case "grants":
			err = parseList(d, &c.Grants, checkGrant)
			for _, g := range c.Grants {
				if !grants.KnownGrant(g) {
					refs = append(refs, laterRef{name: g, grant: true, err: d.Errf("client %q: no grant line declares %q", id, g)})
				}
			}
		case "scopes":
			err = parseList(d, &c.Scopes, checkScope)
		case "audience":
			err = parseList(d, &c.Audience, nil)
		case "exchange_audiences":
			err = parseList(d, &c.ExchangeAudiences, nil)
		case "redirect_uris":
			err = parseList(d, &c.RedirectURIs, checkRedirectURI)
		case "post_logout_redirect_uris":
			err = parseList(d, &c.PostLogoutRedirectURIs, checkRedirectURI)
		case "access_token_ttl":
			err = parseDuration(d, &c.AccessTokenTTL)
		case "claim":
			err = parseClaim(d, &c.Claims)
		case "identity_providers":
			for _, name := range d.RemainingArgs() {
				c.IdentityProviders = append(c.IdentityProviders, name)
				refs = append(refs, laterRef{name: name, err: d.Errf("client %q: no users block is named %q", id, name)})
			}
			if len(c.IdentityProviders) == 0 {
				err = d.ArgErr()
			}
		default:
			err = unrecognized(d)
		}
		if err != nil {
			return nil, err
		}
	}
	// What spans lines is reported at the client's own line.
	if err := c.check(); err != nil {
		d.Reset()
		d.Next()
		return nil, d.WrapErr(err)
	}
	app.Clients = append(app.Clients, c)
	return refs, nil
}

// parseFlag parses an option without arguments.
func parseFlag(d *caddyfile.Dispenser, dst *bool) error {
	if d.NextArg() {
		return d.ArgErr()
	}
	*dst = true
	return nil
}

func parseAuthMethod(d *caddyfile.Dispenser, c *ClientConfig) error {
	if c.AuthMethod != "" {
		return d.Err("auth_method is declared twice")
	}
	m, err := singleArg(d)
	if err != nil {
		return err
	}
	if err := checkAuthMethod(m); err != nil {
		return d.WrapErr(err)
	}
	c.AuthMethod = m
	return nil
}

// parseOnce parses an option with one argument, declared at most once, checked with check.
func parseOnce(d *caddyfile.Dispenser, dst *string, check func(string) error) error {
	opt := d.Val()
	if *dst != "" {
		return d.Errf("%s is declared twice", opt)
	}
	v, err := singleArg(d)
	if err != nil {
		return err
	}
	if check != nil {
		if err := check(v); err != nil {
			return d.WrapErr(err)
		}
	}
	*dst = v
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
	if err := checkExtensionGrantType(urn); err != nil {
		return d.WrapErr(err)
	}
	if slices.ContainsFunc(app.ExtensionGrants, func(g *ExtensionGrantConfig) bool { return g.GrantType == urn }) {
		return d.Errf("grant %q is declared twice", urn)
	}
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

// parseTrust parses one `trust` block from its own dispenser. Syntax:
//
//	trust <name> {
//	    issuer <iss>
//	    jwks_file <path> | jwks_uri <url> | key_file <pem>
//	}
func parseTrust(d *caddyfile.Dispenser, app *App) error {
	d.Next() // "trust"
	name, err := singleArg(d)
	if err != nil {
		return err
	}
	if slices.ContainsFunc(app.Trusts, func(t *TrustConfig) bool { return t.Name == name }) {
		return d.Errf("trust %q is declared twice", name)
	}
	t := &TrustConfig{Name: name}
	for d.NextBlock(0) {
		var err error
		switch d.Val() {
		case "issuer":
			err = parseOnce(d, &t.Issuer, nil)
		case "jwks_file":
			err = parseOnce(d, &t.JWKSFile, nil)
		case "jwks_uri":
			err = parseOnce(d, &t.JWKSURI, checkKeySetURI)
		case "key_file":
			err = parseOnce(d, &t.KeyFile, nil)
		default:
			err = unrecognized(d)
		}
		if err != nil {
			return err
		}
	}
	err = t.check()
	if err == nil && slices.ContainsFunc(app.Trusts, func(o *TrustConfig) bool { return o.Issuer == t.Issuer }) {
		err = fmt.Errorf("trust %q: issuer %q is another trust's", name, t.Issuer)
	}
	// What spans lines is reported at the block's own line.
	if err != nil {
		d.Reset()
		d.Next()
		return d.WrapErr(err)
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
func parseSAMLTrust(d *caddyfile.Dispenser, app *App) error {
	d.Next() // "saml_trust"
	name, err := singleArg(d)
	if err != nil {
		return err
	}
	if slices.ContainsFunc(app.SAMLTrusts, func(t *SAMLTrustConfig) bool { return t.Name == name }) {
		return d.Errf("saml_trust %q is declared twice", name)
	}
	t := &SAMLTrustConfig{Name: name}
	for d.NextBlock(0) {
		var err error
		switch d.Val() {
		case "entity_id":
			err = parseOnce(d, &t.EntityID, nil)
		case "certificate_file":
			err = parseOnce(d, &t.CertificateFile, nil)
		default:
			err = unrecognized(d)
		}
		if err != nil {
			return err
		}
	}
	err = t.check()
	if err == nil && slices.ContainsFunc(app.SAMLTrusts, func(o *SAMLTrustConfig) bool { return o.EntityID == t.EntityID }) {
		err = fmt.Errorf("saml_trust %q: entity_id %q is another saml_trust's", name, t.EntityID)
	}
	if err != nil {
		d.Reset()
		d.Next()
		return d.WrapErr(err)
	}
	app.SAMLTrusts = append(app.SAMLTrusts, t)
	return nil
}

// parseList appends the line's arguments, at least one, to dst, checking each with check.
func parseList(d *caddyfile.Dispenser, dst *[]string, check func(string) error) error {
	args := d.RemainingArgs()
	if len(args) == 0 {
		return d.ArgErr()
	}
	for _, a := range args {
		if a == "" {
			return d.Errf("%s: empty value", d.Val())
		}
		if check != nil {
			if err := check(a); err != nil {
				return d.WrapErr(err)
			}
		}
	}
	*dst = append(*dst, args...)
	return nil
}

// parseClaim parses `claim <name> <value>` into dst.
func parseClaim(d *caddyfile.Dispenser, dst *map[string]string) error {
	var name, value string
	if !d.AllArgs(&name, &value) {
		return d.ArgErr()
	}
	if err := checkClaim(name); err != nil {
		return d.WrapErr(err)
	}
	if _, dup := (*dst)[name]; dup {
		return d.Errf("claim %q is declared twice", name)
	}
	if *dst == nil {
		*dst = make(map[string]string)
	}
	(*dst)[name] = value
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
func parseUsers(d *caddyfile.Dispenser, app *App) error {
	d.Next() // "users"
	name, err := singleArg(d)
	if err != nil {
		return err
	}
	if slices.ContainsFunc(app.IdentityProviders, func(p *IdentityProviderConfig) bool { return p.Name == name }) {
		return d.Errf("users %q is declared twice", name)
	}
	p := &IdentityProviderConfig{Name: name}
	for d.NextBlock(0) {
		var err error
		switch d.Val() {
		case "user":
			err = parseUser(d, p)
		case "http_login":
			err = parseHTTPLogin(d, p)
		default:
			err = unrecognized(d)
		}
		if err != nil {
			return err
		}
	}
	if err := p.check(); err != nil {
		d.Reset()
		d.Next()
		return d.WrapErr(err)
	}
	app.IdentityProviders = append(app.IdentityProviders, p)
	return nil
}

// parseHTTPLogin parses `http_login <url> [{ success_location <url> }]`.
func parseHTTPLogin(d *caddyfile.Dispenser, p *IdentityProviderConfig) error {
	if p.HTTPLogin != "" {
		return d.Err("http_login is declared twice")
	}
	v, err := singleArg(d)
	if err != nil {
		return err
	}
	if err := checkHTTPLogin("http_login", v); err != nil {
		return d.WrapErr(err)
	}
	p.HTTPLogin = v
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		if d.Val() != "success_location" {
			return unrecognized(d)
		}
		if p.HTTPLoginSuccessLocation != "" {
			return d.Err("success_location is declared twice")
		}
		if p.HTTPLoginSuccessLocation, err = singleArg(d); err != nil {
			return err
		}
		if err := checkHTTPLogin("success_location", p.HTTPLoginSuccessLocation); err != nil {
			return d.WrapErr(err)
		}
	}
	return nil
}

// parseUser parses `user <username> <bcrypt_hash> [{ claim ...; tenant ... }]`.
func parseUser(d *caddyfile.Dispenser, p *IdentityProviderConfig) error {
	u := new(UserConfig)
	if !d.AllArgs(&u.Username, &u.Hash) {
		return d.ArgErr()
	}
	if slices.ContainsFunc(p.Users, func(o *UserConfig) bool { return o.Username == u.Username }) {
		return d.Errf("user %q is declared twice", u.Username)
	}
	if err := u.check(); err != nil {
		return d.WrapErr(err)
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		var err error
		switch d.Val() {
		case "claim":
			err = parseClaim(d, &u.Claims)
		case "tenant":
			err = parseList(d, &u.Tenants, nil)
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

// parseHandler sets up the tokengate handler. Syntax:
//
//	tokengate [<matcher>]
func parseHandler(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	handler := new(Handler)
	return handler, handler.UnmarshalCaddyfile(h.Dispenser)
}

// UnmarshalCaddyfile reads the directive, which takes no argument and no block.
func (*Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // "tokengate"
	if d.NextArg() {
		return d.ArgErr()
	}
	if d.NextBlock(0) {
		return d.Err("tokengate takes no block: configure it in the tokengate global option")
	}
	return nil
}

// parseBearerAuth sets up bearer_auth. Syntax:
//
//	bearer_auth [<matcher>] {
//	    scope <scope>...
//	    audience <aud>
//	    claim <name> <value>
//	    header <claim> <Header-Name>
//	}
func parseBearerAuth(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	b := new(BearerAuth)
	return b, b.UnmarshalCaddyfile(h.Dispenser)
}

// UnmarshalCaddyfile reads bearer_auth's block. Each scope line is one acceptable set of scopes.
func (b *BearerAuth) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // "bearer_auth"
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		var err error
		switch d.Val() {
		case "scope":
			var set []string
			if err = parseList(d, &set, checkScope); err == nil {
				b.Scopes = append(b.Scopes, set)
			}
		case "audience":
			if b.Audience != "" {
				return d.Err("audience is declared twice")
			}
			b.Audience, err = singleArg(d)
		case "claim":
			err = parseClaimRequirement(d, b)
		case "header":
			err = parseHeaderCopy(d, b)
		default:
			err = d.Errf("unrecognized subdirective %q", d.Val())
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// parseClaimRequirement parses `claim <name> <value>`; unlike a client's static claim, any claim
// may be required.
func parseClaimRequirement(d *caddyfile.Dispenser, b *BearerAuth) error {
	var name, value string
	if !d.AllArgs(&name, &value) {
		return d.ArgErr()
	}
	if _, dup := b.Claims[name]; dup {
		return d.Errf("claim %q is declared twice", name)
	}
	if b.Claims == nil {
		b.Claims = make(map[string]string)
	}
	b.Claims[name] = value
	return nil
}

// parseHeaderCopy parses `header <claim> <Header-Name>`.
func parseHeaderCopy(d *caddyfile.Dispenser, b *BearerAuth) error {
	var hc HeaderCopy
	if !d.AllArgs(&hc.Claim, &hc.Header) {
		return d.ArgErr()
	}
	if err := checkHeaderCopy(hc); err != nil {
		return d.WrapErr(err)
	}
	if slices.ContainsFunc(b.Headers, func(o HeaderCopy) bool { return strings.EqualFold(o.Header, hc.Header) }) {
		return d.Errf("header %q is declared twice", hc.Header)
	}
	b.Headers = append(b.Headers, hc)
	return nil
}

// checkHeaderCopy refuses what would not make a valid request header.
func checkHeaderCopy(hc HeaderCopy) error {
	if hc.Claim == "" {
		return fmt.Errorf("header %q: empty claim name", hc.Header)
	}
	if !httpguts.ValidHeaderFieldName(hc.Header) {
		return fmt.Errorf("header %q: not a valid header name", hc.Header)
	}
	return nil
}

// Interface guards
var (
	_ caddyfile.Unmarshaler = (*Handler)(nil)
	_ caddyfile.Unmarshaler = (*BearerAuth)(nil)
)
