package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"html/template"

	"net/http"

	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/tokengate/tokengate/audit"
	"github.com/tokengate/tokengate/endpoints"
	"github.com/tokengate/tokengate/federation"
	"github.com/tokengate/tokengate/gate"
	"github.com/tokengate/tokengate/grants"
	"github.com/tokengate/tokengate/internal/peeraddr"
	"github.com/tokengate/tokengate/keyrotation"
	"github.com/tokengate/tokengate/registration"
	"github.com/tokengate/tokengate/resource"
	"github.com/tokengate/tokengate/store"
	"github.com/tokengate/tokengate/tokens"
)

func init() {
	caddy.RegisterModule(new(App))
}

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
	// Default, when SigningKeyFiles is not set either: {"alg": "ES256"}.
	SigningKey *SigningKeyConfig `json:"signing_key,omitempty"`

	// SigningKeyFiles sign with keys read from PEM files instead, never stored or rotated: the
	// first signs, the others only verify. A key no longer listed is withdrawn at once, tokens
	// verified before included. Default: none.
	SigningKeyFiles SigningKeyFiles `json:"signing_key_file,omitempty"`

	// SigningKeyRotation is how long each generated key signs. A new key is published in the JWKS
	// at least half an interval before it starts signing, and a retired key stays published until
	// every token it signed has expired. Default: 720h. At least 1s. Not with SigningKeyFiles.
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

	// ExternalProviders are the `oidc`, `oauth2` and `github` blocks: identity providers that
	// sign people in on their own pages. Default: none.
	ExternalProviders []*ExternalProviderConfig `json:"external_providers,omitempty"`

	// Trusts are the issuers of jwt-bearer assertions (RFC 7523), the `trust` blocks. Default: none.
	Trusts []*TrustConfig `json:"trusts,omitempty"`

	// SAMLTrusts are the issuers of SAML 2.0 bearer assertions (RFC 7522), the `saml_trust`
	// blocks. Default: none.
	SAMLTrusts []*SAMLTrustConfig `json:"saml_trusts,omitempty"`

	// ExtensionGrants are the extension grants (RFC 6749 §4.5), the `grant` lines, each a module
	// of namespace tokengate.grants. A client registers one by its grant type. Default: none.
	ExtensionGrants []*ExtensionGrantConfig `json:"extension_grants,omitempty"`

	// ClientIDMetadataDocuments, when set, lets a client identify by an https URL naming its
	// metadata document (draft-ietf-oauth-client-id-metadata-document), as MCP clients do.
	// Default: off.
	ClientIDMetadataDocuments *ClientIDMetadataDocumentsConfig `json:"client_id_metadata_documents,omitempty"`

	// Registration, when set, lets clients register themselves (RFC 7591), the fallback of MCP
	// clients that have no metadata document. Default: off.
	Registration *RegistrationConfig `json:"registration,omitempty"`

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
	// rotation manages generated keys; nil for an RS256 key file alone. keyHealth reports its
	// failures.
	rotation  *keyrotation.Manager
	keyHealth *outageLog
	// stopRotation ends the rotation that Start began; rotationDone closes when it has ended.
	stopRotation context.CancelFunc
	rotationDone chan struct{}

	// observe hears of the grants' security events: it counts them and writes the audit trail.
	observe grants.Observer
	audit   *audit.Trail
	// signingKID is the kid of the key signing when the keys were last published; only Provision
	// and then the rotation touch it.
	signingKID string

	verifier  *tokens.Verifier
	server    *grants.Server
	clientIDs map[string]bool
	// clientSource resolves the clients the configuration does not declare; nil for none.
	clientSource grants.ClientSource
	// registry is the registration endpoint; nil without registration.
	registry *registration.Registry
	// audiences is every aud this tokengate issues: the issuer and every client's audience.
	audiences map[string]bool
	// resources are the known resources: every bearer_auth resource of this configuration, added
	// as those handlers are provisioned, after this app.
	resources resource.Known
	// routes maps a request path to the endpoint that serves it.
	routes map[string]http.Handler
	// jwksKeys are the keys of the remote key sets this configuration holds in jwksPool.
	jwksKeys []string
}

// CaddyModule returns the Caddy module information.
func (*App) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "tokengate",
		New: func() caddy.Module { return new(App) },
	}
}

// Provision checks the configuration and builds everything requests need.
//
// Caddy calls Validate only after Provision, but Provision opens the store and reads key files, so
// it runs Validate first: a configuration Caddy would refuse must not touch them. Validate takes
// zero options for their defaults, so it holds before and after setDefaults.
func (a *App) Provision(ctx caddy.Context) error {
	if a.logger == nil {
		a.logger = ctx.Logger()
	}
	if a.now == nil {
		a.now = time.Now
	}
	if err := a.Validate(); err != nil {
		return err
	}
	a.setDefaults()
	if err := a.setUpObservers(ctx); err != nil {
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
	a.observe = a.observer(clients)
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
	a.clientSource = a.buildClientSource()
	a.server, err = grants.New(grants.Config{Settings: grants.Settings{
		Issuer:            a.Issuer,
		TokenEndpoint:     endpoints.URL(a.Issuer, endpoints.TokenPath),
		VerificationURI:   endpoints.URL(a.Issuer, endpoints.DevicePath),
		Trusts:            trusts,
		SAMLTrusts:        samlTrusts,
		Extensions:        extensions,
		Clients:           clients,
		Resources:         &a.resources,
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
		Observe:  a.observe,
		Now:      a.now,

		ClientSource: a.clientSource,
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
	external, err := a.buildExternalProviders()
	if err != nil {
		return err
	}
	pages, err := a.buildPages(ctx, keysNow, tmpl, external)
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
		Observe:  a.observe,
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
			SigningAlgs: a.idTokenAlgs(),

			MetadataDocuments: a.ClientIDMetadataDocuments != nil,
			Registration:      a.Registration != nil,
			DynamicScopes:     a.dynamicScopes(),
		}),
		Keys:         keysNow,
		Registration: a.registrationEndpoint(),
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
// had and this one has not: a client removed from the configuration must lose its access at once,
// not when its tokens expire. They are refused from the next request on, and
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
		a.observe(grants.Event{Kind: grants.EventRevoked, What: grants.RevokedClientRemoved, Client: &grants.Client{ID: id}})
	}
	return nil
}

// buildPages builds the sign-in, authorize and end-session pages.
func (a *App) buildPages(ctx context.Context, keysNow func() *tokens.KeySet, tmpl *template.Template, external []*federation.Provider) (*endpoints.Pages, error) {
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
		External:   external,
		Used:       a.shared.store,
		Logger:     a.logger,
		Now:        a.now,
	})
}

// deviceTemplate is the part of a login_template file that renders the device pages: the template
// it defines as "device" (fed an endpoints.DeviceView), or nil for the built-in device page. One
// file replaces the sign-in and the device pages, so one login_template option themes them all.
func deviceTemplate(tmpl *template.Template) *template.Template {
	if tmpl == nil {
		return nil
	}
	return tmpl.Lookup("device")
}

// clientIP is the address Caddy attributes the request to: the peer, or the client a trusted proxy
// names (the server's trusted_proxies), so throttling counts the right address.
func clientIP(r *http.Request) string {
	if ip, ok := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string); ok && ip != "" {
		return ip
	}
	return peeraddr.Of(r)
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
		ClientKnown: a.clientKnown,
		Req:         req,
	}, nil
}

// clientKnown reports whether a token's client is one this configuration serves: declared, or
// one its client source resolves.
func (a *App) clientKnown(id string) bool {
	return a.clientIDs[id] || a.clientSource != nil && a.clientSource.Owns(id)
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
		a.rotation.Run(ctx, a.publishKeys, a.keyHealth.report)
	}()
	return nil
}

// Stop ends the rotation and writes the audit trail's pending count of gate refusals, while its
// log is still open. The shared state is released by Cleanup, once the next configuration holds it.
func (a *App) Stop() error {
	if a.stopRotation != nil {
		a.stopRotation()
		<-a.rotationDone
		a.stopRotation = nil
	}
	a.audit.FlushRefusals()
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
	_ caddy.Validator    = (*App)(nil)
	_ caddy.CleanerUpper = (*App)(nil)
)
