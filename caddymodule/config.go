package caddymodule

import (
	"bytes"
	"cmp"
	"encoding/json"
	"path/filepath"

	"github.com/caddyserver/caddy/v2"

	"github.com/tokengate/tokengate/grants"
	"github.com/tokengate/tokengate/keyrotation"
	"github.com/tokengate/tokengate/tokens"
)

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

// ClientIDMetadataDocumentsConfig is the client_id_metadata_documents block: a client_id that is
// an https URL names the client's metadata document, fetched when the client comes.
type ClientIDMetadataDocumentsConfig struct {
	// Allow are the hosts a client_id may name: a name, an IP literal, or "*.<domain>" for any
	// subdomain of domain. Default: every host.
	Allow []string `json:"allow,omitempty"`
	// Scopes are what such clients may ask for. Default: DefaultDynamicScopes.
	Scopes []string `json:"scopes,omitempty"`
	// AllowLoopback also accepts client_ids on loopback hosts (127.0.0.0/8, [::1], localhost),
	// over http as well as https. For tests and local development only: logged as a warning.
	// Default: off.
	AllowLoopback bool `json:"allow_loopback,omitempty"`
}

// RegistrationConfig is the registration block: clients may register themselves (RFC 7591) at
// <issuer>/connect/register.
type RegistrationConfig struct {
	// Scopes are what registered clients may ask for. Default: DefaultDynamicScopes.
	Scopes []string `json:"scopes,omitempty"`
	// MaxClients bounds the registered clients in the store. Default: 1000.
	MaxClients int `json:"max_clients,omitempty"`
	// Rate bounds the registrations per client address. Default: 20 in 1h.
	Rate *RegistrationRate `json:"rate,omitempty"`
	// UnusedTTL is how long a registered client lives without being used. Default: 720h.
	UnusedTTL caddy.Duration `json:"unused_ttl,omitempty"`
}

// RegistrationRate is the registration block's rate line.
type RegistrationRate struct {
	// Requests registrations within Window; both required.
	Requests int            `json:"requests"`
	Window   caddy.Duration `json:"window"`
}

// DefaultDynamicScopes are what a client the configuration does not declare may ask for when its
// block names no scopes.
var DefaultDynamicScopes = []string{"openid", "profile", "email", "offline_access"}

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

// storeBackends are the store backends a configuration may name.
var storeBackends = []string{"bolt", "pebble", "redis", "memory"}

// StoreConfig chooses the store backend.
type StoreConfig struct {
	// Backend is "pebble" or "bolt" (durable, one process), "redis" (shared by every instance
	// pointed at it) or "memory" (nothing survives a restart). Default: pebble, into which the bolt
	// file of the default location, if there is one, is migrated on start-up; with a Path, bolt
	// (what a path without a backend named before pebble was the default).
	Backend string `json:"backend,omitempty"`
	// Path is the bolt file, or the pebble directory. Default: tokengate/tokengate.db, or
	// tokengate/pebble, in Caddy's data directory.
	Path string `json:"path,omitempty"`
	// migrateFrom is the bolt file the default store takes its state from, once.
	migrateFrom string
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

// SigningKeyFiles are the `signing_key_file` lines: the first signs, the others are published in
// the JWKS and verify only, so that a key being replaced keeps its tokens valid until they run out
// (or, left out, is withdrawn at once). JSON takes a list, or a single object as a list of one.
type SigningKeyFiles []*SigningKeyFileConfig

// UnmarshalJSON reads a list, or a single object as configurations before the list wrote it.
func (f *SigningKeyFiles) UnmarshalJSON(b []byte) error {
	if b = bytes.TrimSpace(b); len(b) > 0 && b[0] == '{' {
		one := new(SigningKeyFileConfig)
		if err := json.Unmarshal(b, one); err != nil {
			return err
		}
		*f = SigningKeyFiles{one}
		return nil
	}
	return json.Unmarshal(b, (*[]*SigningKeyFileConfig)(f))
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
	// DisplayName is what the sign-in and device pages call the application ("to continue to
	// ..."). Default: the client_id.
	DisplayName string `json:"display_name,omitempty"`
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
	// IDTokenSigningAlg is the algorithm its ID tokens are signed with, in any case: the signing
	// key's or RS256 (OIDC Registration §2 id_token_signed_response_alg). Default: the signing
	// key's.
	IDTokenSigningAlg string `json:"id_token_signing_alg,omitempty"`
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

// setDefaults fills in what the configuration left out.
func (a *App) setDefaults() {
	a.AccessTokenTTL = cmp.Or(a.AccessTokenTTL, caddy.Duration(grants.DefaultAccessTokenTTL))
	a.RefreshTokenTTL = cmp.Or(a.RefreshTokenTTL, caddy.Duration(grants.DefaultRefreshTokenTTL))
	a.CodeTTL = cmp.Or(a.CodeTTL, caddy.Duration(grants.DefaultCodeTTL))
	a.DeviceCodeTTL = cmp.Or(a.DeviceCodeTTL, caddy.Duration(grants.DefaultDeviceCodeTTL))
	if a.Store == nil {
		a.Store = new(StoreConfig)
	}
	defaultBolt := filepath.Join(caddy.AppDataDir(), "tokengate", "tokengate.db")
	switch {
	case a.Store.Backend == "" && a.Store.Path == "":
		a.Store.Backend, a.Store.migrateFrom = "pebble", defaultBolt
	case a.Store.Backend == "":
		a.Store.Backend = "bolt"
	}
	if a.Store.Backend == "bolt" && a.Store.Path == "" {
		a.Store.Path = defaultBolt
	}
	if a.Store.Backend == "pebble" && a.Store.Path == "" {
		a.Store.Path = filepath.Join(caddy.AppDataDir(), "tokengate", "pebble")
	}
	if a.SigningKey == nil && len(a.SigningKeyFiles) == 0 {
		a.SigningKey = new(SigningKeyConfig)
	}
	if a.SigningKey != nil && a.SigningKey.Alg == "" {
		a.SigningKey.Alg = tokens.ES256
	}
	if a.SigningKey != nil && a.SigningKeyRotation == 0 {
		a.SigningKeyRotation = caddy.Duration(keyrotation.DefaultInterval)
	}
}

// durationField returns the app's duration field named by the option.
func (a *App) durationField(opt string) *caddy.Duration {
	return map[string]*caddy.Duration{
		"signing_key_rotation": &a.SigningKeyRotation,
		"access_token_ttl":     &a.AccessTokenTTL,
		"refresh_token_ttl":    &a.RefreshTokenTTL,
		"code_ttl":             &a.CodeTTL,
		"device_code_ttl":      &a.DeviceCodeTTL,
	}[opt]
}

// The kinds of external identity provider block.
const (
	kindOIDC   = "oidc"
	kindOAuth2 = "oauth2"
	kindGitHub = "github"
)

// ExternalProviderConfig is an `oidc`, `oauth2` or `github` block: an identity provider that signs
// people in on its own pages, tokengate being its relying party. Clients name it in
// identity_providers like a `users` block; only those that do may use it.
type ExternalProviderConfig struct {
	// Name is what clients and acr_values idp: name it by, and the first part of its people's
	// sub (`<name>|<upstream subject>`): 1 to 64 of A-Z a-z 0-9 . _ -. Required, unique among
	// the users blocks and external providers.
	Name string `json:"name"`
	// Kind is oidc, oauth2 or github. Required.
	Kind string `json:"kind"`
	// Issuer is an oidc provider's issuer, whose discovery document must name it exactly.
	// Required with oidc only.
	Issuer string `json:"issuer,omitempty"`
	// AuthorizeURL, TokenURL and UserinfoURL are an oauth2 provider's endpoints (the userinfo
	// answering a JSON object about the person). Required with oauth2 only.
	AuthorizeURL string `json:"authorize_url,omitempty"`
	TokenURL     string `json:"token_url,omitempty"`
	UserinfoURL  string `json:"userinfo_url,omitempty"`
	// BaseURL is a GitHub Enterprise Server, with github only. Default: https://github.com
	// (API https://api.github.com).
	BaseURL string `json:"base_url,omitempty"`
	// ClientID is tokengate's client_id at the provider. Required.
	ClientID string `json:"client_id"`
	// ClientSecret is its secret there; {env.X} placeholders are replaced at provision time.
	// Default: none, a public client relying on PKCE alone.
	ClientSecret string `json:"client_secret,omitempty"`
	// AuthMethod is client_secret_basic or client_secret_post. Default: client_secret_basic.
	AuthMethod string `json:"auth_method,omitempty"`
	// Scopes are asked of the provider. Default: openid email profile for oidc (openid is
	// always sent), read:user user:email for github, none for oauth2.
	Scopes []string `json:"scopes,omitempty"`
	// Claims map a token claim to the provider's top-level member that fills it. Default: none;
	// the standard claims pass through under their own names.
	Claims map[string]string `json:"claims,omitempty"`
	// DisplayName labels it on the sign-in page. Default: its name (GitHub for github).
	DisplayName string `json:"display_name,omitempty"`
	// UserinfoOff leaves an oidc provider's userinfo endpoint unread. Default: false, read when
	// discovery lists one.
	UserinfoOff bool `json:"userinfo_off,omitempty"`
	// SubjectClaim is the oidc ID token claim that identifies the person (oid for Entra).
	// Default: sub.
	SubjectClaim string `json:"subject_claim,omitempty"`
	// SubjectField is the oauth2 userinfo member that identifies the person. Default: id.
	SubjectField string `json:"subject_field,omitempty"`
	// AllowedDomains admit only people whose (verified) email is in one of these domains.
	// Default: anyone.
	AllowedDomains []string `json:"allowed_domains,omitempty"`
	// HostedDomain is Google Workspace's hd, with oidc: sent, and the ID token's hd must equal
	// it. Default: none.
	HostedDomain string `json:"hosted_domain,omitempty"`
	// Tenants are the tenants its people may name with acr_values tenant:. Default: none.
	Tenants []string `json:"tenants,omitempty"`
}
