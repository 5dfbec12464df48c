package federation

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"net/http"
	"slices"
	"time"

	"golang.org/x/oauth2"
)

// The kinds of upstream.
const (
	// KindOIDC is an OpenID Connect provider: discovery, an ID token, userinfo when offered.
	KindOIDC = "oidc"
	// KindOAuth2 is a plain OAuth 2.0 provider: the person is its userinfo object.
	KindOAuth2 = "oauth2"
)

// The client authentication methods at an upstream's token endpoint (RFC 6749 §2.3.1).
const (
	AuthBasic = "client_secret_basic"
	AuthPost  = "client_secret_post"
)

// Config describes one upstream and tokengate's registration there.
type Config struct {
	// Name names the provider: the first part of its people's sub, and their idp claim. Required.
	Name string
	// DisplayName labels it on the sign-in page; empty means Name.
	DisplayName string
	// Kind is KindOIDC or KindOAuth2. Required.
	Kind string
	// Issuer is an OIDC provider's issuer: its discovery document is fetched from it, and must
	// name it exactly (OIDC Discovery §4.3). Required with KindOIDC.
	Issuer string
	// AuthorizeURL, TokenURL and UserinfoURL are a plain OAuth 2.0 provider's endpoints. Required
	// with KindOAuth2.
	AuthorizeURL, TokenURL, UserinfoURL string
	// RedirectURI is tokengate's callback for this provider, registered at the upstream. Required.
	RedirectURI string
	// ClientID is tokengate's client_id at the upstream. Required.
	ClientID string
	// ClientSecret is its secret; empty for a public client, which relies on PKCE alone.
	ClientSecret string
	// AuthMethod is AuthBasic or AuthPost; empty means AuthBasic.
	AuthMethod string
	// Scopes are requested; KindOIDC always adds openid.
	Scopes []string
	// Claims maps a token claim to the upstream's top-level member that fills it.
	Claims map[string]string
	// Userinfo reads an OIDC provider's userinfo endpoint, when its discovery lists one.
	Userinfo bool
	// SubjectField names the upstream member that identifies the person; empty means sub for
	// KindOIDC, id for KindOAuth2.
	SubjectField string
	// AllowedDomains, when set, admit only people whose email is in one of these domains.
	AllowedDomains []string
	// HostedDomain is Google Workspace's hd: sent, and required of the ID token.
	HostedDomain string
	// Tenants are the tenants its people may name with acr_values tenant:.
	Tenants []string
	// EnrichProfile, when set, adds to the person's members what the upstream tells besides its
	// userinfo (GitHub's /user/emails), with the access token's client.
	EnrichProfile func(ctx context.Context, client *http.Client, profile map[string]any) error
	// HTTPClient makes every upstream request; nil means NewHTTPClient(nil).
	HTTPClient *http.Client
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Provider is one upstream. Safe for concurrent use.
type Provider struct {
	cfg    Config
	client *http.Client
	// oidc is the discovery of a KindOIDC provider; nil for KindOAuth2.
	oidc *discovery
}

// New checks cfg and returns the provider. It asks the upstream nothing: discovery and keys are
// fetched when a sign-in first needs them.
func New(cfg Config) (*Provider, error) {
	switch {
	case cfg.Name == "" || cfg.ClientID == "" || cfg.RedirectURI == "":
		return nil, errors.New("federation: a name, a client_id and a redirect URI are required")
	case cfg.Kind == KindOIDC && cfg.Issuer == "":
		return nil, errors.New("federation: an OpenID Connect provider needs its issuer")
	case cfg.Kind == KindOAuth2 && (cfg.AuthorizeURL == "" || cfg.TokenURL == "" || cfg.UserinfoURL == ""):
		return nil, errors.New("federation: an OAuth 2.0 provider needs its authorize, token and userinfo URLs")
	case cfg.Kind != KindOIDC && cfg.Kind != KindOAuth2:
		return nil, errors.New("federation: unknown kind " + cfg.Kind)
	case cfg.AuthMethod != "" && cfg.AuthMethod != AuthBasic && cfg.AuthMethod != AuthPost:
		return nil, errors.New("federation: unknown auth method " + cfg.AuthMethod)
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = NewHTTPClient(nil)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.DisplayName == "" {
		cfg.DisplayName = cfg.Name
	}
	if cfg.SubjectField == "" {
		cfg.SubjectField = "id"
		if cfg.Kind == KindOIDC {
			cfg.SubjectField = "sub"
		}
	}
	if cfg.Kind == KindOIDC && !slices.Contains(cfg.Scopes, "openid") {
		cfg.Scopes = append([]string{"openid"}, cfg.Scopes...)
	}
	p := &Provider{cfg: cfg, client: cfg.HTTPClient}
	if cfg.Kind == KindOIDC {
		p.oidc = &discovery{issuer: cfg.Issuer, clientID: cfg.ClientID, client: cfg.HTTPClient, now: cfg.Now}
	}
	return p, nil
}

// Name is the provider's name.
func (p *Provider) Name() string { return p.cfg.Name }

// DisplayName is its label on the sign-in page.
func (p *Provider) DisplayName() string { return p.cfg.DisplayName }

// Issuer is an OIDC provider's issuer, "" for a plain OAuth 2.0 one.
func (p *Provider) Issuer() string { return p.cfg.Issuer }

// Tenants are the tenants its people may sign in to.
func (p *Provider) Tenants() []string { return p.cfg.Tenants }

// Pending is what a sign-in under way must remember until the callback: each value carries 256
// random bits and serves once.
type Pending struct {
	State    string `json:"state"`
	Nonce    string `json:"nonce,omitempty"`
	Verifier string `json:"verifier"`
}

// Hints are what the client's authorization request passes on (OIDC Core §3.1.2.1).
type Hints struct {
	LoginHint  string
	ForceLogin bool
}

// Start begins a sign-in: the upstream authorization URL to send the browser to, and what the
// callback needs. An OIDC provider whose discovery cannot be had fails it
// (temporarily_unavailable), so the browser is not sent on.
func (p *Provider) Start(ctx context.Context, hints Hints) (string, Pending, error) {
	endpoint, err := p.endpoint(ctx)
	if err != nil {
		return "", Pending{}, err
	}
	pending := Pending{State: random(), Verifier: oauth2.GenerateVerifier()}
	// RFC 9700 §2.1.1: PKCE always, S256.
	opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(pending.Verifier)}
	if p.oidc != nil {
		pending.Nonce = random()
		opts = append(opts, oauth2.SetAuthURLParam("nonce", pending.Nonce))
	}
	if p.cfg.HostedDomain != "" {
		opts = append(opts, oauth2.SetAuthURLParam("hd", p.cfg.HostedDomain))
	}
	if hints.LoginHint != "" {
		opts = append(opts, oauth2.SetAuthURLParam("login_hint", hints.LoginHint))
	}
	if hints.ForceLogin {
		opts = append(opts, oauth2.SetAuthURLParam("prompt", "login"))
	}
	return p.oauth2Config(endpoint).AuthCodeURL(pending.State, opts...), pending, nil
}

// endpoint is the upstream's authorization and token endpoints.
func (p *Provider) endpoint(ctx context.Context) (oauth2.Endpoint, error) {
	style := oauth2.AuthStyleInHeader
	if p.cfg.AuthMethod == AuthPost || p.cfg.ClientSecret == "" {
		style = oauth2.AuthStyleInParams
	}
	if p.oidc == nil {
		return oauth2.Endpoint{AuthURL: p.cfg.AuthorizeURL, TokenURL: p.cfg.TokenURL, AuthStyle: style}, nil
	}
	up, err := p.oidc.get(ctx)
	if err != nil {
		return oauth2.Endpoint{}, err
	}
	e := up.provider.Endpoint()
	e.AuthStyle = style
	return e, nil
}

func (p *Provider) oauth2Config(e oauth2.Endpoint) *oauth2.Config {
	return &oauth2.Config{
		ClientID:     p.cfg.ClientID,
		ClientSecret: p.cfg.ClientSecret,
		Endpoint:     e,
		RedirectURL:  p.cfg.RedirectURI,
		Scopes:       p.cfg.Scopes,
	}
}

// random is 256 random bits, base64url.
func random() string {
	var b [32]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
