package caddymodule

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/tokengate/tokengate/assertion"
	"github.com/tokengate/tokengate/endpoints"
	"github.com/tokengate/tokengate/gate"
	"github.com/tokengate/tokengate/grants"
	"github.com/tokengate/tokengate/identity"
	"github.com/tokengate/tokengate/internal/peeraddr"
	"github.com/tokengate/tokengate/keyrotation"
	"github.com/tokengate/tokengate/samlbearer"
	"github.com/tokengate/tokengate/store"
	"github.com/tokengate/tokengate/tokens"
)

func init() {
	caddy.RegisterModule(new(App))
}

// Defaults of the App's durations (SPEC "Global options").
const (
	defaultAccessTokenTTL  = time.Hour
	defaultRefreshTokenTTL = 720 * time.Hour
	defaultCodeTTL         = 60 * time.Second
	defaultDeviceCodeTTL   = 300 * time.Second
)

const (
	// denyListSyncEvery is how often the revocation list is read back from the store, so that a
	// revocation made by another instance is refused within about this long.
	denyListSyncEvery = time.Second
	// verifiedTokenCacheSize bounds the gate's cache of verified access tokens.
	verifiedTokenCacheSize = 10000
	// httpLoginTimeout bounds a call to a legacy login backend (http_login): past it the login
	// answers 503 instead of hanging.
	httpLoginTimeout = 10 * time.Second
	// storeTimeout bounds the store work Provision does (reading the revocation list, loading the
	// signing keys): a store that does not answer fails the configuration instead of hanging it.
	storeTimeout = 10 * time.Second
)

// App is the tokengate app: the issuer, its signing keys, its store, its clients and identity
// providers. The tokengate and bearer_auth handlers of the HTTP app use it.
//
// Provision does all the work (open the store, load or generate keys, build the clients), because
// the HTTP app may serve a request before this app's Start has run. Start only starts the rotation
// of the generated keys.
type App struct {
	// Issuer is the iss of every token and the base of every endpoint URL: an absolute http or
	// https URL without query or fragment, kept exactly as given. Required.
	Issuer string `json:"issuer"`

	// Store is where state lives. Default: bolt, in Caddy's data directory.
	Store *StoreConfig `json:"store,omitempty"`

	// SigningKey has keys generated, kept in the store and rotated every SigningKeyRotation.
	// Default, when SigningKeyFile is not set either: {"alg": "ES256"}.
	SigningKey *SigningKeyConfig `json:"signing_key,omitempty"`

	// SigningKeyFile signs with a key read from a PEM file instead; it is never stored or rotated.
	// Default: none.
	SigningKeyFile *SigningKeyFileConfig `json:"signing_key_file,omitempty"`

	// SigningKeyRotation is how long each generated key signs. A new key is published in the JWKS
	// at least half an interval before it starts signing, and a retired key stays published until
	// every token it signed has expired. Default: 720h. At least 1s. Not with SigningKeyFile.
	SigningKeyRotation caddy.Duration `json:"signing_key_rotation,omitempty"`

	// AccessTokenTTL is the lifetime of access tokens. Default: 1h. At least 1s.
	AccessTokenTTL caddy.Duration `json:"access_token_ttl,omitempty"`
	// RefreshTokenTTL is the lifetime of refresh tokens. Default: 720h. At least 1s.
	RefreshTokenTTL caddy.Duration `json:"refresh_token_ttl,omitempty"`
	// CodeTTL is the lifetime of authorization codes. Default: 60s. At least 1s.
	CodeTTL caddy.Duration `json:"code_ttl,omitempty"`
	// DeviceCodeTTL is the lifetime of device codes. Default: 300s. At least 1s.
	DeviceCodeTTL caddy.Duration `json:"device_code_ttl,omitempty"`

	// LoginTemplate is an html/template file that replaces the built-in pages: its main template
	// renders the sign-in pages (fed an endpoints.Page), and a template it defines as "device", if
	// any, the device pages (fed an endpoints.DeviceView). Default: the built-in pages.
	LoginTemplate string `json:"login_template,omitempty"`

	// Clients are the registered clients. Default: none.
	Clients []*ClientConfig `json:"clients,omitempty"`

	// IdentityProviders are the `users` blocks. The first is the default, and the only one a
	// client without identity_providers may use. Default: none.
	IdentityProviders []*IdentityProviderConfig `json:"identity_providers,omitempty"`

	// Trusts are the issuers of jwt-bearer assertions (RFC 7523), the `trust` blocks. Default: none.
	Trusts []*TrustConfig `json:"trusts,omitempty"`

	// SAMLTrusts are the issuers of SAML 2.0 bearer assertions (RFC 7522), the `saml_trust`
	// blocks. Default: none.
	SAMLTrusts []*SAMLTrustConfig `json:"saml_trusts,omitempty"`

	// ExtensionGrants are the extension grants (RFC 6749 §4.5), the `grant` lines, each a module
	// of namespace tokengate.grants. A client registers one by its grant type. Default: none.
	ExtensionGrants []*ExtensionGrantConfig `json:"extension_grants,omitempty"`

	now    func() time.Time
	logger *zap.Logger

	// shared is the state this config shares with the configs before and after it (see state.go);
	// poolKey names it in the pool, empty until it is acquired.
	shared  *sharedState
	poolKey string
	// storeName names the store in the log, without a password.
	storeName string

	// keySet is what the minter and verifier use; the rotation replaces it.
	keySet atomic.Pointer[tokens.KeySet]
	// rotation manages generated keys; nil for a key file. keyHealth reports its failures.
	rotation  *keyrotation.Manager
	keyHealth *outageLog
	// stopRotation ends the rotation that Start began; rotationDone closes when it has ended.
	stopRotation context.CancelFunc
	rotationDone chan struct{}

	verifier  *tokens.Verifier
	server    *grants.Server
	clientIDs map[string]bool
	// audiences is every aud this tokengate issues: the issuer and every client's audience.
	audiences map[string]bool
	// routes maps a request path to the endpoint that serves it.
	routes map[string]http.Handler
	// jwksKeys are the keys of the remote key sets this configuration holds in jwksPool.
	jwksKeys []string
}

// TrustConfig is a `trust` block: an issuer of jwt-bearer assertions and its keys.
type TrustConfig struct {
	// Name names the block in errors. Required, unique.
	Name string `json:"name"`
	// Issuer is the iss of its assertions, compared byte for byte. Required, unique.
	Issuer string `json:"issuer"`
	// Exactly one of JWKSFile (a JWK Set), JWKSURI (fetched and cached; https, or http on a
	// loopback host) and KeyFile (PEM public keys or certificates) holds its keys.
	JWKSFile string `json:"jwks_file,omitempty"`
	JWKSURI  string `json:"jwks_uri,omitempty"`
	KeyFile  string `json:"key_file,omitempty"`
}

// extensionNamespace is the Caddy module namespace of extension grants.
const extensionNamespace = "tokengate.grants"

// ExtensionGrantConfig is a `grant <urn> <module> { ... }` line.
type ExtensionGrantConfig struct {
	// GrantType is the absolute URI that requests' grant_type carries; it must be the one the
	// module serves. Required, unique.
	GrantType string `json:"grant_type"`
	// GrantRaw is the module, of namespace tokengate.grants. Required.
	GrantRaw json.RawMessage `json:"grant" caddy:"namespace=tokengate.grants inline_key=module"`
}

// SAMLTrustConfig is a `saml_trust` block: an issuer of SAML 2.0 bearer assertions.
type SAMLTrustConfig struct {
	// Name names the block in errors. Required, unique.
	Name string `json:"name"`
	// EntityID is the Issuer of its assertions, compared exactly. Required, unique.
	EntityID string `json:"entity_id"`
	// CertificateFile is a PEM file of the certificates its signatures verify with. Required.
	CertificateFile string `json:"certificate_file"`
}

// StoreConfig chooses the store backend.
type StoreConfig struct {
	// Backend is "bolt" (durable, one process), "redis" (shared by every instance pointed at it)
	// or "memory" (nothing survives a restart). Default: bolt.
	Backend string `json:"backend,omitempty"`
	// Path is the bolt file. Default: tokengate/tokengate.db in Caddy's data directory.
	Path string `json:"path,omitempty"`
	// URL is the Redis server, required with the redis backend:
	// redis://[[user]:password@]host[:port][/db], rediss:// for TLS, or unix://. {env.X}
	// placeholders are replaced at provision time, so the password need not be in the config.
	URL string `json:"url,omitempty"`
}

// SigningKeyConfig asks for a generated signing key.
type SigningKeyConfig struct {
	// Alg is ES256, RS256, PS256 or EdDSA. Default: ES256.
	Alg string `json:"alg,omitempty"`
}

// SigningKeyFileConfig names a PEM private key to sign with.
type SigningKeyFileConfig struct {
	// Alg is ES256, RS256, PS256 or EdDSA, and must suit the key. Required.
	Alg string `json:"alg"`
	// File is the PEM file: PKCS#8, PKCS#1 (RSA) or SEC 1 (EC). Required.
	File string `json:"file"`
	// KID is the key's kid. Default: its RFC 7638 thumbprint.
	KID string `json:"kid,omitempty"`
}

// ClientConfig registers one client.
type ClientConfig struct {
	// ID is the client_id. Required, unique.
	ID string `json:"id"`
	// Secrets are the accepted secrets: bcrypt hashes as `caddy hash-password` prints them, or
	// plaintext; {env.X} placeholders are replaced at provision time. A confidential client needs
	// at least one; a public client has none.
	Secrets []string `json:"secrets,omitempty"`
	// Public marks a client that cannot keep a secret (native and browser apps). Default: false.
	Public bool `json:"public,omitempty"`
	// AuthMethod is how a confidential client authenticates at the token endpoint:
	// client_secret_basic or client_secret_post (interchangeable), client_secret_jwt (HS256 with a
	// plaintext secret of at least 32 bytes) or private_key_jwt (a key of JWKSFile or JWKSURI).
	// Default: client_secret_basic.
	AuthMethod string `json:"auth_method,omitempty"`
	// JWKSFile (a JWK Set file) or JWKSURI (fetched and cached) holds the client's public keys:
	// for private_key_jwt, and for the jwt-bearer assertions it signs itself. Default: none.
	JWKSFile string `json:"jwks_file,omitempty"`
	JWKSURI  string `json:"jwks_uri,omitempty"`
	// Grants are the grants it may use, by their Caddyfile names. Required.
	Grants []string `json:"grants,omitempty"`
	// Scopes are the scopes it may ask for; also its scope when a request names none. Default:
	// none.
	Scopes []string `json:"scopes,omitempty"`
	// Audience is the aud of its access tokens. Default: the issuer.
	Audience []string `json:"audience,omitempty"`
	// ExchangeAudiences are, besides its client_id, the aud of the subject tokens it may trade in
	// by token exchange (RFC 8693). Default: none, only tokens whose aud holds its client_id.
	ExchangeAudiences []string `json:"exchange_audiences,omitempty"`
	// RedirectURIs are its redirect URIs, matched exactly. Default: none.
	RedirectURIs []string `json:"redirect_uris,omitempty"`
	// PostLogoutRedirectURIs are where logout may send the user back to. Default: none.
	PostLogoutRedirectURIs []string `json:"post_logout_redirect_uris,omitempty"`
	// AccessTokenTTL overrides the app's access token lifetime for this client. Default: the
	// app's. At least 1s.
	AccessTokenTTL caddy.Duration `json:"access_token_ttl,omitempty"`
	// Claims are static claims in the tokens issued to it. Default: none.
	Claims map[string]string `json:"claims,omitempty"`
	// IdentityProviders are the names of the identity providers it may use. Default: the first one.
	IdentityProviders []string `json:"identity_providers,omitempty"`
	// PKCEPlain allows code_challenge_method plain. Default: false (S256 only).
	PKCEPlain bool `json:"pkce_plain,omitempty"`
	// IntrospectAny lets it introspect every token, not only its own. Default: false.
	IntrospectAny bool `json:"introspect_any,omitempty"`
}

// IdentityProviderConfig is one `users` block: static users, or a legacy login to delegate to.
type IdentityProviderConfig struct {
	// Name is what clients name it by. Required, unique.
	Name string `json:"name"`
	// Users are the static users. Exactly one of Users and HTTPLogin is set.
	Users []*UserConfig `json:"users,omitempty"`
	// HTTPLogin is the URL tokengate POSTs username and password to.
	HTTPLogin string `json:"http_login,omitempty"`
	// HTTPLoginSuccessLocation is where the legacy login redirects after a valid login: a redirect
	// there (scheme, host and path; the query ignored) is a valid login. Default: none, every
	// redirect is a wrong password. Only with HTTPLogin.
	HTTPLoginSuccessLocation string `json:"http_login_success_location,omitempty"`
}

// UserConfig is one static user.
type UserConfig struct {
	// Username is the user's name and the sub of their tokens. Required, unique in its block.
	Username string `json:"username"`
	// Hash is a bcrypt hash of the password. Required.
	Hash string `json:"hash"`
	// Claims go into the user's tokens and userinfo. Default: none.
	Claims map[string]string `json:"claims,omitempty"`
	// Tenants are the tenants the user belongs to, the only ones they may sign in to. Default: none.
	Tenants []string `json:"tenants,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (*App) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "tokengate",
		New: func() caddy.Module { return new(App) },
	}
}

// Provision checks the configuration and builds everything requests need.
func (a *App) Provision(ctx caddy.Context) error {
	if a.logger == nil {
		a.logger = ctx.Logger()
	}
	if a.now == nil {
		a.now = time.Now
	}
	a.setDefaults()
	_, err := parseIssuer(a.Issuer)
	if err != nil {
		return err
	}
	if err := a.check(); err != nil {
		return err
	}
	if err := a.acquireShared(); err != nil {
		return err
	}
	if err := a.loadKeys(ctx); err != nil {
		return err
	}
	keysNow := a.keySet.Load
	a.verifier = tokens.NewVerifier(a.Issuer, keysNow, a.now)

	clients, err := a.buildClients()
	if err != nil {
		return err
	}
	trusts, samlTrusts, err := a.buildTrusts()
	if err != nil {
		return err
	}
	extensions, err := a.loadExtensionGrants(ctx)
	if err != nil {
		return err
	}
	idps, err := a.buildIdentityProviders()
	if err != nil {
		return err
	}
	a.server, err = grants.New(grants.Config{Settings: grants.Settings{
		Issuer:            a.Issuer,
		TokenEndpoint:     endpoints.URL(a.Issuer, endpoints.TokenPath),
		VerificationURI:   endpoints.URL(a.Issuer, endpoints.DevicePath),
		Trusts:            trusts,
		SAMLTrusts:        samlTrusts,
		Extensions:        extensions,
		Clients:           clients,
		IdentityProviders: idps,
		AccessTokenTTL:    time.Duration(a.AccessTokenTTL),
		RefreshTokenTTL:   time.Duration(a.RefreshTokenTTL),
		CodeTTL:           time.Duration(a.CodeTTL),
		DeviceCodeTTL:     time.Duration(a.DeviceCodeTTL),
	}, Dependencies: grants.Dependencies{
		Store:    a.shared.store,
		Minter:   tokens.NewMinter(a.Issuer, keysNow, a.now),
		Verifier: a.verifier,
		Limits:   a.shared.limits,
		DenyList: a.shared.deny,
		ClientIP: clientIP,
		Logger:   a.logger,
		Now:      a.now,
	}})
	if err != nil {
		return err
	}

	if err := a.revokeRemovedClients(ctx); err != nil {
		return err
	}
	var tmpl *template.Template
	if a.LoginTemplate != "" {
		if tmpl, err = template.ParseFiles(a.LoginTemplate); err != nil {
			return fmt.Errorf("login_template: %w", err)
		}
	}
	pages, err := a.buildPages(ctx, keysNow, tmpl)
	if err != nil {
		return err
	}
	devicePage, err := endpoints.NewDevicePage(endpoints.DeviceConfig{
		Issuer:   a.Issuer,
		Server:   a.server,
		ClientIP: clientIP,
		SignIns:  a.shared.store,
		Guesses:  a.shared.deviceGuesses,
		Template: deviceTemplate(tmpl),
		Logger:   a.logger,
		Now:      a.now,
	})
	if err != nil {
		return err
	}
	// userinfo refuses exactly what bearer_auth refuses, and then needs openid.
	userinfoGate, err := a.Gate(gate.Requirements{})
	if err != nil {
		return err
	}

	a.routes, err = endpoints.Routes(endpoints.Site{
		Issuer:   a.Issuer,
		Clients:  a.server,
		Pages:    pages,
		Device:   devicePage,
		Userinfo: endpoints.Userinfo(userinfoGate, a.server.Client),
		Metadata: endpoints.MetadataOf(a.Issuer, endpoints.Offered{
			Clients:     clients,
			UserClaims:  a.userClaims(),
			SigningAlgs: a.keySet.Load().Algs(),
		}),
		Keys: keysNow,
	})
	if err != nil {
		return err
	}
	signing := a.keySet.Load().Signing(a.now())
	a.logger.Info("tokengate ready",
		zap.String("issuer", a.Issuer),
		zap.String("store", a.storeName),
		zap.String("kid", signing.ID),
		zap.String("alg", signing.Alg),
		zap.Int("clients", len(clients)))
	return nil
}

// revokeRemovedClients revokes the tokens of every client the previous configuration on this store
// had and this one has not (SPEC "When things go wrong"): refused from the next request on, and
// still refused if the client is declared again. The entry lasts as long as anything issued before
// it could: a refresh family's whole life, then its last access token's.
func (a *App) revokeRemovedClients(ctx context.Context) error {
	removed := a.shared.replaceClients(a.clientIDs)
	if len(removed) == 0 {
		return nil
	}
	now := a.now()
	until := now.Add(time.Duration(a.RefreshTokenTTL) + a.maxTokenTTL())
	for _, id := range removed {
		r := store.Revocation{Kind: store.RevokedClient, ID: id, At: now, Until: until}
		if err := a.shared.store.Revoke(ctx, r); err != nil {
			return fmt.Errorf("revoking the tokens of removed client %q: %w", id, err)
		}
		a.shared.deny.Add(r)
		a.logger.Info("client removed: its tokens are revoked", zap.String("client_id", id))
	}
	return nil
}

// buildPages builds the sign-in, authorize and end-session pages.
func (a *App) buildPages(ctx context.Context, keysNow func() *tokens.KeySet, tmpl *template.Template) (*endpoints.Pages, error) {
	sessionKey, err := a.sessionKey(ctx)
	if err != nil {
		return nil, err
	}
	return endpoints.NewPages(endpoints.PagesConfig{
		Issuer:     a.Issuer,
		Server:     a.server,
		ClientIP:   clientIP,
		SessionKey: sessionKey,
		Keys:       keysNow,
		Template:   tmpl,
		Logger:     a.logger,
		Now:        a.now,
	})
}

// deviceTemplate is the part of a login_template file that renders the device pages: the template
// it defines as "device" (fed an endpoints.DeviceView), or nil for the built-in device page. One
// file replaces the sign-in and the device pages, as SPEC's single login_template asks.
func deviceTemplate(tmpl *template.Template) *template.Template {
	if tmpl == nil {
		return nil
	}
	return tmpl.Lookup("device")
}

// sessionKeySlot holds the key that signs session cookies and CSRF tokens. It lives beside the
// signing keys (create-if-absent, then read back) so every instance and every restart agree, and a
// restart does not sign everybody out.
const sessionKeySlot = "session/hmac"

// sessionKeyPEMType marks the raw key bytes in the slot's PEM field.
const sessionKeyPEMType = "TOKENGATE SESSION KEY"

func (a *App) sessionKey(ctx context.Context) ([]byte, error) {
	fresh := make([]byte, endpoints.MinSessionKeyLen)
	if _, err := rand.Read(fresh); err != nil {
		return nil, err
	}
	stored, err := a.shared.store.AddSigningKey(ctx, sessionKeySlot, store.SigningKey{
		ID:  "session",
		Alg: "HS256",
		PEM: pem.EncodeToMemory(&pem.Block{Type: sessionKeyPEMType, Bytes: fresh}),
	})
	if err != nil {
		return nil, fmt.Errorf("session key: %w", err)
	}
	block, _ := pem.Decode(stored.PEM)
	if block == nil || block.Type != sessionKeyPEMType || len(block.Bytes) < endpoints.MinSessionKeyLen {
		return nil, errors.New("session key: the store holds something else in " + sessionKeySlot)
	}
	return block.Bytes, nil
}

// setDefaults fills in what the configuration left out.
func (a *App) setDefaults() {
	for _, d := range []struct {
		field *caddy.Duration
		def   time.Duration
	}{
		{&a.AccessTokenTTL, defaultAccessTokenTTL},
		{&a.RefreshTokenTTL, defaultRefreshTokenTTL},
		{&a.CodeTTL, defaultCodeTTL},
		{&a.DeviceCodeTTL, defaultDeviceCodeTTL},
	} {
		if *d.field == 0 {
			*d.field = caddy.Duration(d.def)
		}
	}
	if a.Store == nil {
		a.Store = new(StoreConfig)
	}
	if a.Store.Backend == "" {
		a.Store.Backend = "bolt"
	}
	if a.Store.Backend == "bolt" && a.Store.Path == "" {
		a.Store.Path = filepath.Join(caddy.AppDataDir(), "tokengate", "tokengate.db")
	}
	if a.SigningKey == nil && a.SigningKeyFile == nil {
		a.SigningKey = new(SigningKeyConfig)
	}
	if a.SigningKey != nil && a.SigningKey.Alg == "" {
		a.SigningKey.Alg = tokens.ES256
	}
	if a.SigningKey != nil && a.SigningKeyRotation == 0 {
		a.SigningKeyRotation = caddy.Duration(keyrotation.DefaultInterval)
	}
}

// ttlField returns the app's duration field named by the option.
func (a *App) ttlField(opt string) *caddy.Duration {
	return map[string]*caddy.Duration{
		"access_token_ttl":  &a.AccessTokenTTL,
		"refresh_token_ttl": &a.RefreshTokenTTL,
		"code_ttl":          &a.CodeTTL,
		"device_code_ttl":   &a.DeviceCodeTTL,
	}[opt]
}

// check reports the first mistake in the configuration. The Caddyfile parser runs the same checks
// where it can name the line; this catches JSON configurations and what spans several blocks.
func (a *App) check() error {
	switch a.Store.Backend {
	case "bolt", "memory":
	case "redis":
		if a.Store.URL == "" {
			return errors.New("store redis: no URL")
		}
	default:
		return fmt.Errorf("store: unknown backend %q (want bolt, redis or memory)", a.Store.Backend)
	}
	if a.SigningKey != nil && a.SigningKeyFile != nil {
		return errors.New("signing_key and signing_key_file are exclusive")
	}
	if a.SigningKeyFile != nil && a.SigningKeyRotation != 0 {
		return errors.New(errRotateKeyFile)
	}
	if a.SigningKey != nil {
		if err := checkDuration(time.Duration(a.SigningKeyRotation)); err != nil {
			return fmt.Errorf("signing_key_rotation: %w", err)
		}
	}
	if a.SigningKey != nil {
		if _, err := signingAlg(a.SigningKey.Alg); err != nil {
			return fmt.Errorf("signing_key: %w", err)
		}
	}
	if f := a.SigningKeyFile; f != nil {
		if _, err := signingAlg(f.Alg); err != nil {
			return fmt.Errorf("signing_key_file: %w", err)
		}
		if f.File == "" {
			return errors.New("signing_key_file: no file")
		}
	}
	for _, name := range []string{"access_token_ttl", "refresh_token_ttl", "code_ttl", "device_code_ttl"} {
		if err := checkDuration(time.Duration(*a.ttlField(name))); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}

	idps := make(map[string]bool, len(a.IdentityProviders))
	for i, p := range a.IdentityProviders {
		if err := p.check(); err != nil {
			return fmt.Errorf("identity provider %d: %w", i, err)
		}
		if idps[p.Name] {
			return fmt.Errorf("users %q: declared twice", p.Name)
		}
		idps[p.Name] = true
	}
	if err := a.checkTrusts(); err != nil {
		return err
	}
	extensions := make(map[string]bool, len(a.ExtensionGrants))
	for _, g := range a.ExtensionGrants {
		if err := checkExtensionGrantType(g.GrantType); err != nil {
			return err
		}
		if extensions[g.GrantType] {
			return fmt.Errorf("grant %q: declared twice", g.GrantType)
		}
		extensions[g.GrantType] = true
	}
	ids := make(map[string]bool, len(a.Clients))
	for i, c := range a.Clients {
		if err := c.check(); err != nil {
			return fmt.Errorf("client %d: %w", i, err)
		}
		if ids[c.ID] {
			return fmt.Errorf("client %q: declared twice", c.ID)
		}
		ids[c.ID] = true
		for _, name := range c.IdentityProviders {
			if !idps[name] {
				return fmt.Errorf("client %q: identity_providers: no users block is named %q", c.ID, name)
			}
		}
		for _, g := range c.Grants {
			if !grants.KnownGrant(g) && !extensions[g] {
				return fmt.Errorf("client %q: no grant line declares %q", c.ID, g)
			}
		}
	}
	return nil
}

// checkTrusts reports the first mistake in the trust and saml_trust blocks: each on its own, and
// names and issuers unique.
func (a *App) checkTrusts() error {
	names, issuers := map[string]bool{}, map[string]bool{}
	for i, t := range a.Trusts {
		if err := t.check(); err != nil {
			return fmt.Errorf("trust %d: %w", i, err)
		}
		if names[t.Name] || issuers[t.Issuer] {
			return fmt.Errorf("trust %q: its name or issuer is another trust's", t.Name)
		}
		names[t.Name], issuers[t.Issuer] = true, true
	}
	names, issuers = map[string]bool{}, map[string]bool{}
	for i, t := range a.SAMLTrusts {
		if err := t.check(); err != nil {
			return fmt.Errorf("saml_trust %d: %w", i, err)
		}
		if names[t.Name] || issuers[t.EntityID] {
			return fmt.Errorf("saml_trust %q: its name or entity_id is another saml_trust's", t.Name)
		}
		names[t.Name], issuers[t.EntityID] = true, true
	}
	return nil
}

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
		for _, aud := range c.Audience {
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
	return &grants.Client{
		ID:                     c.ID,
		Secrets:                secrets,
		Public:                 c.Public,
		AuthMethod:             c.AuthMethod,
		Grants:                 c.Grants,
		Scopes:                 c.Scopes,
		Audience:               c.Audience,
		ExchangeAudiences:      c.ExchangeAudiences,
		RedirectURIs:           c.RedirectURIs,
		PostLogoutRedirectURIs: c.PostLogoutRedirectURIs,
		IdentityProviders:      c.IdentityProviders,
		AccessTokenTTL:         time.Duration(c.AccessTokenTTL),
		Claims:                 c.Claims,
		PKCEPlain:              c.PKCEPlain,
		IntrospectAny:          c.IntrospectAny,
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
		data, err := os.ReadFile(jwksFile)
		if err != nil {
			return nil, fmt.Errorf("jwks_file: %w", err)
		}
		keys, err := assertion.ParseJWKS(data)
		if err != nil {
			return nil, fmt.Errorf("jwks_file %s: %w", jwksFile, err)
		}
		return keys, nil
	}
	data, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("key_file: %w", err)
	}
	keys, err := assertion.ParsePEM(data)
	if err != nil {
		return nil, fmt.Errorf("key_file %s: %w", keyFile, err)
	}
	return keys, nil
}

// clientIP is the address Caddy attributes the request to: the peer, or the client a trusted proxy
// names (the server's trusted_proxies), so throttling counts the right address.
func clientIP(r *http.Request) string {
	if ip, ok := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string); ok && ip != "" {
		return ip
	}
	return peeraddr.Of(r)
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
	return idps, nil
}

// loadKeys sets the key set to sign with: the key of signing_key_file, never rotated, or the
// generated keys that the store keeps for the configured algorithm, generated now if it has none.
func (a *App) loadKeys(ctx context.Context) error {
	if f := a.SigningKeyFile; f != nil {
		key, err := keyFromFile(f)
		if err != nil {
			return fmt.Errorf("signing_key_file %s: %w", f.File, err)
		}
		ks, err := tokens.NewKeySet(key)
		if err != nil {
			return fmt.Errorf("signing_key_file %s: %w", f.File, err)
		}
		a.keySet.Store(ks)
		return nil
	}
	alg, _ := signingAlg(a.SigningKey.Alg)
	m, err := keyrotation.NewManager(keyrotation.Config{
		Store:       a.shared.store,
		Alg:         alg,
		Interval:    time.Duration(a.SigningKeyRotation),
		MaxTokenTTL: a.maxTokenTTL(),
		Now:         a.now,
	})
	if err != nil {
		return fmt.Errorf("signing_key %s: %w", alg, err)
	}
	loadCtx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	ks, err := m.Load(loadCtx)
	if err != nil {
		return fmt.Errorf("signing_key %s: %w", alg, err)
	}
	a.keySet.Store(ks)
	a.rotation = m
	a.keyHealth = &outageLog{
		logger:    a.logger,
		now:       a.now,
		failing:   "signing keys may be stale; signing with the ones loaded before",
		recovered: "signing keys are read from the store again",
	}
	return nil
}

// maxTokenTTL is the longest lifetime of a token the keys sign: access and ID tokens share the
// app's or their client's access_token_ttl (refresh tokens are opaque, not signed).
func (a *App) maxTokenTTL() time.Duration {
	ttl := time.Duration(a.AccessTokenTTL)
	for _, c := range a.Clients {
		ttl = max(ttl, time.Duration(c.AccessTokenTTL))
	}
	return ttl
}

func keyFromFile(f *SigningKeyFileConfig) (tokens.Key, error) {
	data, err := os.ReadFile(f.File)
	if err != nil {
		return tokens.Key{}, err
	}
	signer, err := tokens.ParsePrivateKeyPEM(data)
	if err != nil {
		return tokens.Key{}, err
	}
	alg, _ := signingAlg(f.Alg)
	// It signs from the start: there is no earlier key for clients to move away from.
	key, err := tokens.NewKey(alg, signer, time.Time{})
	if err != nil {
		return tokens.Key{}, err
	}
	if f.KID != "" {
		key.ID = f.KID
	}
	return key, nil
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

// Gate returns a bearer gate with this configuration's keys, deny-list, cache and clients that
// enforces req. An audience it requires must be one this tokengate issues, or no token could pass.
func (a *App) Gate(req gate.Requirements) (*gate.Gate, error) {
	if req.Audience != "" && !a.audiences[req.Audience] {
		return nil, fmt.Errorf("audience %q: no client of this tokengate gets tokens for it", req.Audience)
	}
	return &gate.Gate{
		Verifier:    a.verifier,
		Deny:        a.shared.deny,
		Cache:       a.shared.cache,
		Realm:       a.Issuer,
		Audiences:   a.audiences,
		ClientKnown: func(id string) bool { return a.clientIDs[id] },
		Req:         req,
	}, nil
}

// Start starts the rotation of generated keys: it reads the store every keyrotation.Manager.RefreshEvery,
// so that keys fall due, retire, and come in from other instances. A failed read keeps the keys
// loaded before. Everything else was done by Provision.
func (a *App) Start() error {
	if a.rotation == nil {
		return nil
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	a.stopRotation, a.rotationDone = stop, done
	go func() {
		defer close(done)
		a.rotation.Run(ctx, a.keySet.Store, a.keyHealth.report)
	}()
	return nil
}

// Stop ends the rotation. The shared state is released by Cleanup, once the next configuration
// holds it.
func (a *App) Stop() error {
	if a.stopRotation != nil {
		a.stopRotation()
		<-a.rotationDone
		a.stopRotation = nil
	}
	return nil
}

// Cleanup releases this configuration's hold on the shared state.
func (a *App) Cleanup() error {
	var errs []error
	for _, key := range a.jwksKeys {
		if _, err := jwksPool.Delete(key); err != nil {
			errs = append(errs, err)
		}
	}
	a.jwksKeys = nil
	if a.poolKey != "" {
		if _, err := pool.Delete(a.poolKey); err != nil {
			errs = append(errs, err)
		}
		a.poolKey = ""
	}
	return errors.Join(errs...)
}

// tokengateApp returns the configured tokengate app, for the handlers to provision from.
func tokengateApp(ctx caddy.Context) (*App, error) {
	v, err := ctx.AppIfConfigured("tokengate")
	if err != nil {
		return nil, fmt.Errorf("the tokengate global option is required: %w", err)
	}
	return v.(*App), nil
}

// Interface guards
var (
	_ caddy.App          = (*App)(nil)
	_ caddy.Provisioner  = (*App)(nil)
	_ caddy.CleanerUpper = (*App)(nil)
)
