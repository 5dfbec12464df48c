package grants

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"go.uber.org/zap"
	"golang.org/x/crypto/bcrypt"

	"github.com/tokengate/tokengate/assertion"
	"github.com/tokengate/tokengate/identity"
	"github.com/tokengate/tokengate/internal/peeraddr"
	"github.com/tokengate/tokengate/resource"
	"github.com/tokengate/tokengate/samlbearer"
	"github.com/tokengate/tokengate/store"
	"github.com/tokengate/tokengate/tokens"
)

// IdentityProvider is a named `users` block (or http_login).
type IdentityProvider struct {
	Name string
	// Provider checks passwords; nil for an External one.
	Provider identity.Provider
	// External marks a provider that signs people in on its own pages (upstream federation): no
	// password is checked here, and it cannot tell whether a person still exists, so their
	// grants last their lifetimes.
	External bool
}

// Config is what a Server is built from: what the configuration says, and what the Server works
// with.
type Config struct {
	Settings
	Dependencies
}

// Settings are what the configuration says: the issuer, the clients and whom they trust, and the
// lifetimes.
type Settings struct {
	// Issuer is the iss of every token; required.
	Issuer string
	// TokenEndpoint is the token endpoint's URL: an audience assertions may name (RFC 7523 §3),
	// and the Recipient of SAML assertions (RFC 7522 §3); required.
	TokenEndpoint string
	// VerificationURI is the URL of the page where a person types a user code (RFC 8628 §3.2
	// verification_uri); required.
	VerificationURI string
	// Trusts are the issuers of jwt-bearer assertions (`trust` blocks); issuers must be unique.
	Trusts []Trust
	// SAMLTrusts are the issuers of SAML 2.0 bearer assertions (`saml_trust` blocks).
	SAMLTrusts []samlbearer.Trust
	// Extensions are the extension grants; a client registers one by its URI.
	Extensions []ExtensionGrant
	// Clients are the registered clients; ids must be unique.
	Clients []*Client
	// Resources are the known resources (RFC 8707): every protected resource of the
	// configuration, those a Dynamic client may get tokens for. Nil means none.
	Resources *resource.Known
	// IdentityProviders check users' passwords; the first is the default, the only one a client
	// without IdentityProviders may use.
	IdentityProviders []IdentityProvider
	// AccessTokenTTL is the lifetime of access tokens, RefreshTokenTTL a refresh family's whole
	// life; zero means DefaultAccessTokenTTL, DefaultRefreshTokenTTL.
	AccessTokenTTL  time.Duration
	RefreshTokenTTL time.Duration
	// CodeTTL is how long an authorization code may wait for redemption; zero means
	// DefaultCodeTTL.
	CodeTTL time.Duration
	// DeviceCodeTTL is how long a device code may wait for the person's decision and the client's
	// poll (RFC 8628 §3.2 expires_in); zero means DefaultDeviceCodeTTL.
	DeviceCodeTTL time.Duration
}

// The lifetimes a zero Settings field stands for.
const (
	DefaultAccessTokenTTL  = time.Hour
	DefaultRefreshTokenTTL = 720 * time.Hour
	DefaultCodeTTL         = 60 * time.Second
	DefaultDeviceCodeTTL   = 300 * time.Second
)

// Dependencies are what a Server works with: where state lives, the keys, the state that outlives a
// reload, and the clock.
type Dependencies struct {
	// Store keeps refresh tokens and records revocations; required.
	Store Store
	// Minter signs tokens and Verifier reads them back (introspection, revocation); required.
	Minter   *tokens.Minter
	Verifier *tokens.Verifier
	// Limits outlive config reloads; nil means fresh ones.
	Limits *Limits
	// DenyList is the bearer gate's list of revoked tokens; nil means none.
	DenyList DenyList
	// ClientIP names the address a request comes from, for throttling; nil means the TCP peer.
	ClientIP func(*http.Request) string
	// Logger gets server faults (never secrets or whole tokens); nil means none.
	Logger *zap.Logger
	// Observe hears of every security event (metrics, the audit trail); nil means none.
	Observe Observer
	// ClientSource resolves the client ids the configuration does not declare; nil means none:
	// only Settings.Clients exist.
	ClientSource ClientSource
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// DenyList is the bearer gate's list of revoked tokens (gate.DenyList). Introspection asks it, so
// a token the gate refuses is inactive (RFC 7662 §2.2); and a revocation the store just recorded (a
// client revoked a token, a reused refresh token killed its family) is read into it at once, so the
// gate refuses the token from the next request on.
type DenyList interface {
	// Revoked reports an access token revoked by its jti, its refresh family's id, or the jti of
	// a token it was derived from (tokens.Claims.DerivedFrom).
	Revoked(jti, gid string, derivedFrom ...string) bool
	// ClientRevoked reports a token issued to a client before the client was removed from the
	// configuration; such tokens stay dead when the client returns.
	ClientRevoked(clientID string, issuedAt time.Time) bool
	// GrantlessRevoked reports an access token without a grant (gid "") issued before its client's
	// tokens without a grant were cut off.
	GrantlessRevoked(clientID, gid string, issuedAt time.Time) bool
	// RevocationFor is what revoking the access token c records (nil: it is refused already),
	// bounded however many tokens one grant or client revokes; ttl is how long the client's
	// access tokens issued now live.
	RevocationFor(c *tokens.Claims, ttl time.Duration) *store.Revocation
	// Sync reads the revocations the store holds.
	Sync(ctx context.Context) error
}

// Trust is an issuer of jwt-bearer assertions (RFC 7523 §2.1), a `trust` block: whose keys
// verify assertions whose iss is Issuer.
type Trust struct {
	// Name names the block in errors.
	Name string
	// Issuer is the iss its assertions carry, compared byte for byte.
	Issuer string
	// Keys verify its assertions.
	Keys assertion.KeySource
}

// Store is what the endpoints keep: refresh tokens, authorization codes, device codes, and the
// revocations the gate follows.
type Store interface {
	store.RefreshTokens
	store.Revocations
	store.OneTime
	store.Redemptions
	store.DeviceCodes
}

// Server serves the endpoints a client authenticates to: token, introspection, revocation.
type Server struct {
	cfg Config
	// grants decodes the grants of refresh tokens.
	grants  grantMemo
	clients map[string]*Client
	idps    map[string]identity.Provider
	// external names the External identity providers.
	external map[string]bool
	limits   *Limits
	// secretCost is the bcrypt cost an unknown client is charged: the dearest configured secret's.
	secretCost int
	// grantNames maps a wire grant_type to the grant name clients register.
	grantNames map[string]string
	// clientAuth verifies the client assertions of each client registered for client_secret_jwt
	// or private_key_jwt; selfGrant the jwt-bearer assertions of each client with keys and the
	// jwt_bearer grant; trusts those of each trust block, by issuer.
	clientAuth map[string]*assertion.Verifier
	selfGrant  map[string]*assertion.Verifier
	trusts     map[string]*assertion.Verifier
	// saml verifies saml2-bearer assertions; nil without saml_trust blocks.
	saml *samlbearer.Verifier
	// extensions are the extension grants by URI.
	extensions map[string]ExtensionGrant
}

// grantFunc runs one grant for an authenticated client allowed to use it.
type grantFunc func(s *Server, ctx context.Context, req *tokenRequest) (*tokenResponse, *Error)

var grantFuncs = map[string]grantFunc{
	"authorization_code": (*Server).authorizationCode,
	"client_credentials": (*Server).clientCredentials,
	"device_code":        (*Server).deviceCode,
	"password":           (*Server).password,
	"refresh_token":      (*Server).refreshToken,
	"jwt_bearer":         (*Server).jwtBearer,
	"saml2_bearer":       (*Server).saml2Bearer,
}

// tokenRequest is a parsed request from an authenticated client.
type tokenRequest struct {
	http *http.Request
	form form
	// resources are its resource indicators (RFC 8707 §2), unchecked, in order; nil for none.
	resources []string
	client    *Client
	now       time.Time
}

// New builds the lookup structures once. It trusts the configuration to have been checked (in
// Caddy, by the tokengate app's Validate) and refuses only what it cannot build.
func New(cfg Config) (*Server, error) {
	switch {
	case cfg.Issuer == "":
		return nil, errors.New("grants: an issuer is required")
	case cfg.TokenEndpoint == "" || cfg.VerificationURI == "":
		return nil, errors.New("grants: the token endpoint's URL and the verification URI are required")
	case cfg.Store == nil || cfg.Minter == nil || cfg.Verifier == nil:
		return nil, errors.New("grants: a store, a minter and a verifier are required")
	}
	cfg.AccessTokenTTL = cmp.Or(cfg.AccessTokenTTL, DefaultAccessTokenTTL)
	cfg.RefreshTokenTTL = cmp.Or(cfg.RefreshTokenTTL, DefaultRefreshTokenTTL)
	cfg.CodeTTL = cmp.Or(cfg.CodeTTL, DefaultCodeTTL)
	cfg.DeviceCodeTTL = cmp.Or(cfg.DeviceCodeTTL, DefaultDeviceCodeTTL)
	cfg.Logger = cmp.Or(cfg.Logger, zap.NewNop())
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.ClientIP == nil {
		cfg.ClientIP = peeraddr.Of
	}
	if cfg.Observe == nil {
		cfg.Observe = ignore
	}
	s := &Server{
		cfg:        cfg,
		clients:    make(map[string]*Client, len(cfg.Clients)),
		idps:       make(map[string]identity.Provider, len(cfg.IdentityProviders)),
		external:   make(map[string]bool),
		limits:     cfg.Limits,
		secretCost: bcrypt.MinCost,
		grantNames: make(map[string]string, len(wireGrantTypes)),
		clientAuth: make(map[string]*assertion.Verifier),
		selfGrant:  make(map[string]*assertion.Verifier),
		trusts:     make(map[string]*assertion.Verifier, len(cfg.Trusts)),
		extensions: make(map[string]ExtensionGrant, len(cfg.Extensions)),
	}
	if s.limits == nil {
		s.limits = NewLimits()
	}
	for name, wire := range wireGrantTypes {
		s.grantNames[wire] = name
	}
	for _, idp := range cfg.IdentityProviders {
		if (idp.Provider == nil) != idp.External {
			return nil, fmt.Errorf("grants: identity provider %q: an external provider has no password check, any other one has", idp.Name)
		}
		s.idps[idp.Name] = idp.Provider
		s.external[idp.Name] = idp.External
	}
	if err := s.addTrusts(); err != nil {
		return nil, err
	}
	s.addExtensions()
	for _, c := range cfg.Clients {
		if err := s.addClient(c); err != nil {
			return nil, fmt.Errorf("grants: client %q: %w", c.ID, err)
		}
	}
	// Measure what a failed client authentication lasts now, on a machine not yet serving.
	s.limits.secrets.FailureTime(s.secretCost)
	return s, nil
}

func (s *Server) addClient(c *Client) error {
	if err := s.addAssertionVerifiers(c); err != nil {
		return err
	}
	for _, secret := range c.Secrets {
		s.secretCost = max(s.secretCost, secret.cost())
	}
	s.clients[c.ID] = c
	return nil
}

// Client returns the registered client with the id.
func (s *Server) Client(id string) (*Client, bool) {
	c, ok := s.clients[id]
	return c, ok
}

// secretWait bounds how long a request may queue for a bcrypt compare before it is told to retry.
const secretWait = 10 * time.Second

// ServeHTTP answers a token request, and tells the observer what it answered.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// How long the answer took is wall time, whatever the injected clock says.
	start := time.Now()
	ev := Event{GrantType: GrantUnsupported}
	serveJSON(s, w, r, func(w http.ResponseWriter, r *http.Request) (*tokenResponse, *Error) {
		resp, err := s.token(w, r, &ev)
		ev.Duration = time.Since(start)
		if err != nil {
			ev.Kind, ev.Result = EventTokenRefused, err.Code
		} else {
			ev.Kind, ev.Result = EventTokenIssued, ResultOK
			ev.Subject, ev.Scope, ev.JTI, ev.GrantID = resp.issued.Subject, resp.Scope, resp.issued.JTI, resp.issued.GrantID
		}
		s.cfg.Observe(ev)
		return resp, err
	})
}

// serveJSON answers a request to one of the endpoints a client authenticates to: what decide
// returns, as JSON, or its error (RFC 6749 §5.1, §5.2).
func serveJSON[T any](s *Server, w http.ResponseWriter, r *http.Request, decide func(http.ResponseWriter, *http.Request) (T, *Error)) {
	answer, err := decide(w, r)
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, answer)
}

// fail answers err, logging server faults (never the request's secrets or tokens).
func (s *Server) fail(w http.ResponseWriter, err *Error) {
	if err.cause != nil {
		s.cfg.Logger.Error("request failed", zap.String("error_code", err.Code), zap.Error(err.cause))
	}
	err.write(w)
}

// clientRequest parses a request to an endpoint other than the token endpoint and authenticates
// its client the same way.
func (s *Server) clientRequest(w http.ResponseWriter, r *http.Request) (form, *Client, *Error) {
	f, _, err := parseForm(w, r)
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithTimeout(r.Context(), secretWait)
	defer cancel()
	client, err := s.authenticateClient(ctx, r, f, s.cfg.Now())
	return f, client, err
}

// token runs a token request, noting in ev the grant and the client as soon as they are known.
func (s *Server) token(w http.ResponseWriter, r *http.Request, ev *Event) (*tokenResponse, *Error) {
	f, resources, err := parseForm(w, r)
	if err != nil {
		return nil, err
	}
	grantType, ok := f["grant_type"]
	if !ok {
		ev.Client = s.presentedClient(r, f)
		return nil, errorf(CodeInvalidRequest, "grant_type is missing")
	}
	name, ok := s.grantNames[grantType]
	if !ok {
		ev.Client = s.presentedClient(r, f)
		return nil, errorf(CodeUnsupportedGrantType, "the grant type is not supported")
	}
	ev.GrantType = name
	ctx, cancel := context.WithTimeout(r.Context(), secretWait)
	defer cancel()
	now := s.cfg.Now()
	// A client with keys may present a jwt-bearer assertion it signed itself (its iss the client)
	// as its only credential, since client authentication is optional with an assertion grant
	// (RFC 7521 §4.1); the grant then verifies it with the client's keys before anything is issued.
	client := s.selfAsserting(name, r, f)
	if client == nil {
		if client, err = s.authenticateClient(ctx, r, f, now); err != nil {
			ev.Client = s.presentedClient(r, f)
			return nil, err
		}
	}
	ev.Client = client
	// A grant the client is not registered for is refused before anything is looked up (RFC 6749
	// §5.2 unauthorized_client), so an unauthorized client learns nothing of codes or tokens.
	if !client.allows(name) {
		return nil, errorf(CodeUnauthorizedClient, "the client may not use this grant type")
	}
	req := &tokenRequest{http: r, form: f, resources: resources, client: client, now: now}
	if run, ok := grantFuncs[name]; ok {
		return run(s, ctx, req)
	}
	return s.extensionGrant(ctx, s.extensions[name], req)
}
