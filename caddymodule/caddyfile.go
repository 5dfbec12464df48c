package caddymodule

import (
	"slices"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
)

func init() {
	httpcaddyfile.RegisterGlobalOption("tokengate", parseGlobalOption)
	httpcaddyfile.RegisterHandlerDirective("tokengate", parseHandler)
	httpcaddyfile.RegisterDirective("bearer_auth", parseBearerAuth)
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
//	    signing_key_file <alg> <pem_file> [<kid>]   (repeatable: the first signs, the others verify)
//	    signing_key_rotation <duration>
//	    access_token_ttl | refresh_token_ttl | code_ttl | device_code_ttl <duration>
//	    client <client_id> { ... }
//	    users <name> { ... }
//	    trust <name> { ... }
//	    saml_trust <name> { ... }
//	    grant <urn> <module> { ... }
//	    login_template <file>
//	    client_id_metadata_documents [{ ... }]
//	    registration [{ ... }]
//	}
//
// The parser reads the syntax only; what the values mean is checked by App.Validate, the one check
// a JSON configuration meets too. Each line or block is validated as soon as it is read, so that
// the first mistake in the file is the one reported, and then the whole app, for what spans blocks
// (a client may name a users block or a grant line declared after it). Mistakes are reported with
// the line they are on.
func parseGlobalOption(d *caddyfile.Dispenser, existing any) (any, error) {
	d.Next() // the option's name
	if existing != nil {
		return nil, d.Err("the tokengate option is declared twice")
	}
	if d.NextArg() {
		return nil, d.ArgErr()
	}
	app := new(App)
	l := lines{}
	for d.NextBlock(0) {
		l.record(d)
		validate, err := parseGlobalLine(d, app, l)
		if err == nil {
			err = l.wrap(d, validate())
		}
		if err != nil {
			return nil, err
		}
	}
	if err := app.Validate(); err != nil {
		return nil, l.wrap(d, err)
	}
	return httpcaddyfile.App{Name: "tokengate", Value: caddyconfig.JSON(app, nil)}, nil
}

// parseGlobalLine parses one line (or block) of the global option into app, and returns the part
// of App.Validate that checks it.
func parseGlobalLine(d *caddyfile.Dispenser, app *App, l lines) (validate func() error, err error) {
	switch opt := d.Val(); opt {
	case "issuer":
		return func() error { return validateIssuer(app.Issuer) }, parseOnce(d, &app.Issuer)
	case "store":
		return func() error { return app.Store.Validate() }, parseStore(d, app)
	case "signing_key":
		return func() error { return app.SigningKey.Validate() }, parseSigningKey(d, app)
	case "signing_key_file":
		return func() error { return app.SigningKeyFiles[len(app.SigningKeyFiles)-1].Validate() }, parseSigningKey(d, app)
	case "signing_key_rotation", "access_token_ttl", "refresh_token_ttl", "code_ttl", "device_code_ttl":
		field := app.durationField(opt)
		return func() error { return validateDuration(opt, time.Duration(*field)) }, parseDuration(d, field)
	case "client":
		return func() error { return app.validateClient(len(app.Clients) - 1) }, parseClient(d.NewFromNextSegment(), app, l)
	case "users":
		return func() error { return app.validateIdentityProvider(len(app.IdentityProviders) - 1) }, parseUsers(d.NewFromNextSegment(), app, l)
	case "oidc", "oauth2", "github":
		return func() error { return app.validateExternalProvider(len(app.ExternalProviders) - 1) }, parseExternal(d.NewFromNextSegment(), opt, app, l)
	case "trust":
		return func() error { return app.validateTrust(len(app.Trusts) - 1) }, parseTrust(d.NewFromNextSegment(), app, l)
	case "saml_trust":
		return func() error { return app.validateSAMLTrust(len(app.SAMLTrusts) - 1) }, parseSAMLTrust(d.NewFromNextSegment(), app, l)
	case "grant":
		return func() error { return app.validateExtensionGrant(len(app.ExtensionGrants) - 1) }, parseExtensionGrant(d.NewFromNextSegment(), app)
	case "login_template":
		return func() error { return nil }, parseOnce(d, &app.LoginTemplate)
	case "client_id_metadata_documents":
		return func() error { return app.ClientIDMetadataDocuments.Validate() }, parseClientIDMetadataDocuments(d.NewFromNextSegment(), app, l)
	case "registration":
		return func() error { return app.Registration.Validate() }, parseRegistration(d.NewFromNextSegment(), app, l)
	}
	return nil, unrecognized(d)
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

// parseOnce parses an option with one argument, declared at most once.
func parseOnce(d *caddyfile.Dispenser, dst *string) error {
	opt := d.Val()
	if *dst != "" {
		return d.Errf("%s is declared twice", opt)
	}
	v, err := singleArg(d)
	if err != nil {
		return err
	}
	*dst = v
	return nil
}

// parseStore parses `store bolt [<file>]`, `store pebble [<dir>]`, `store redis <url>` and
// `store memory`.
func parseStore(d *caddyfile.Dispenser, app *App) error {
	if app.Store != nil {
		return d.Err("store is declared twice")
	}
	args := d.RemainingArgs()
	if len(args) == 0 {
		return d.ArgErr()
	}
	switch {
	case (args[0] == "bolt" || args[0] == "pebble") && len(args) <= 2:
		app.Store = &StoreConfig{Backend: args[0]}
		if len(args) == 2 {
			app.Store.Path = args[1]
		}
	case args[0] == "memory" && len(args) == 1:
		app.Store = &StoreConfig{Backend: "memory"}
	case args[0] == "redis" && len(args) == 2:
		app.Store = &StoreConfig{Backend: "redis", URL: args[1]}
	case slices.Contains(storeBackends, args[0]):
		return d.ArgErr()
	default:
		return d.Errf("unknown store %q (want %s)", args[0], strings.Join(storeBackends, ", "))
	}
	return nil
}

// parseSigningKey parses `signing_key <alg>` and `signing_key_file <alg> <pem_file> [<kid>]`; the
// latter may be repeated (the first signs, the others only verify).
func parseSigningKey(d *caddyfile.Dispenser, app *App) error {
	opt := d.Val()
	if app.SigningKey != nil || opt == "signing_key" && len(app.SigningKeyFiles) > 0 {
		return d.Err("signing_key is given once, and not with signing_key_file")
	}
	args := d.RemainingArgs()
	if opt == "signing_key" && len(args) != 1 || opt == "signing_key_file" && (len(args) < 2 || len(args) > 3) {
		return d.ArgErr()
	}
	// The JSON config spells a known algorithm as JWS does (es256 → ES256); Validate refuses
	// another.
	alg := args[0]
	if jws, err := signingAlg(alg); err == nil {
		alg = jws
	}
	if opt == "signing_key" {
		app.SigningKey = &SigningKeyConfig{Alg: alg}
		return nil
	}
	f := &SigningKeyFileConfig{Alg: alg, File: args[1]}
	if len(args) == 3 {
		f.KID = args[2]
	}
	app.SigningKeyFiles = append(app.SigningKeyFiles, f)
	return nil
}

// parseDuration parses `<option> <duration>` into dst, which must not be set yet. A zero duration
// is refused here: in the JSON config zero is the default, so Validate cannot see it.
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
	if dur == 0 {
		return d.WrapErr(validateDuration(opt, dur))
	}
	*dst = caddy.Duration(dur)
	return nil
}

// parseFlag parses an option without arguments.
func parseFlag(d *caddyfile.Dispenser, dst *bool) error {
	if d.NextArg() {
		return d.ArgErr()
	}
	*dst = true
	return nil
}

// parseList appends the line's arguments, at least one, to dst.
func parseList(d *caddyfile.Dispenser, dst *[]string) error {
	args := d.RemainingArgs()
	if len(args) == 0 {
		return d.ArgErr()
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
	if _, dup := (*dst)[name]; dup {
		return d.Errf("claim %q is declared twice", name)
	}
	if *dst == nil {
		*dst = make(map[string]string)
	}
	(*dst)[name] = value
	return nil
}
