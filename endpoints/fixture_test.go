package endpoints

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"github.com/tokengate/tokengate/internal/bcrypttest"
	"github.com/tokengate/tokengate/internal/testclock"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tokengate/tokengate/gate"
	"github.com/tokengate/tokengate/grants"
	"github.com/tokengate/tokengate/identity"
	"github.com/tokengate/tokengate/resource"
	"github.com/tokengate/tokengate/store"
	"github.com/tokengate/tokengate/tokens"
)

// fixture serves the pages, the token endpoint and userinfo over a real HTTP server, on a memory
// store, with a clock the test moves. Its clients:
//   - web: confidential ("web-secret"), authorization_code and refresh_token, two redirect URIs
//     (one with a query), a post-logout URI, identity providers main and partners, claim tier=gold
//   - spa: public, one redirect URI, a post-logout URI
//   - native: public with pkce_plain, a custom-scheme redirect URI
//   - pwonly: the password grant only, though it registered a redirect URI
//   - partner: only the partners identity provider
//   - mcpClientID: a dynamic client (see mcpSource)
//
// Users: alice (main; profile and email claims, department, tenants acme and globex), carol
// (main), bob (partners).
type fixture struct {
	t      testing.TB
	srv    *httptest.Server
	issuer string
	grants *grants.Server
	pages  *Pages
	store  *store.Memory
	deny   *gate.DenyList
	keys   *tokens.KeySet
	minter *tokens.Minter
	key    []byte
	*testClock
}

type testClock = testclock.Clock

// secrets are a client's Secrets, as configured.
func secrets(t testing.TB, configured ...string) []*grants.Secret {
	t.Helper()
	out := make([]*grants.Secret, 0, len(configured))
	for _, c := range configured {
		s, err := grants.NewSecret(c)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

// newGrants is the grants server of settings at issuer, its endpoints where this package's handlers
// are served.
func newGrants(t testing.TB, issuer string, settings grants.Settings, deps grants.Dependencies) *grants.Server {
	t.Helper()
	settings.Issuer, settings.TokenEndpoint, settings.VerificationURI = issuer, URL(issuer, TokenPath), URL(issuer, DevicePath)
	s, err := grants.New(grants.Config{Settings: settings, Dependencies: deps})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// staticUsers is a users block of users.
func staticUsers(t testing.TB, users ...identity.StaticUser) identity.Provider {
	t.Helper()
	p, err := identity.NewStatic(users)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	f := &fixture{t: t, testClock: testclock.New(time.Unix(1_800_000_000, 0)), key: []byte(strings.Repeat("k", MinSessionKeyLen))}
	mux := http.NewServeMux()
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	f.issuer = f.srv.URL
	f.build(t, f.issuer)
	userinfo := Userinfo(&gate.Gate{
		Verifier:  tokens.NewVerifier(f.issuer, f.keySet, f.Now),
		Deny:      f.deny,
		Realm:     f.issuer,
		Audiences: map[string]bool{f.issuer: true, "api": true},
	}, f.grants.Client)
	meta := NewMetadata(f.issuer)
	meta.AddAuthorization(false)
	meta.IDTokenSigningAlgValuesSupported = []string{tokens.ES256}
	mux.Handle(DiscoveryPath, Discovery(meta))
	mux.Handle(JWKSPath, JWKS(f.keySet))
	mux.HandleFunc(AuthorizePath, f.pages.Authorize)
	mux.HandleFunc(EndSessionPath, f.pages.EndSession)
	mux.Handle(TokenPath, f.grants)
	mux.Handle(UserinfoPath, userinfo)
	return f
}

func (f *fixture) keySet() *tokens.KeySet { return f.keys }

// build makes the grants server and the pages for issuer.
func (f *fixture) build(t testing.TB, issuer string) {
	t.Helper()
	f.store = store.NewMemory(f.Now)
	f.deny = gate.NewDenyList(f.store, f.Now)
	f.keys = testKeySet(t, tokens.ES256)
	f.minter = tokens.NewMinter(issuer, f.keySet, f.Now)
	main := staticUsers(t,
		identity.StaticUser{Username: "alice", Hash: bcrypttest.Hash(t, "alice-pw"), Tenants: []string{"acme", "globex"}, Claims: map[string]string{
			"name": "Alice Liddell", "given_name": "Alice", "email": "alice@example.com", "department": "research"}},
		identity.StaticUser{Username: "carol", Hash: bcrypttest.Hash(t, "carol-pw")})
	partners := staticUsers(t, identity.StaticUser{Username: "bob", Hash: bcrypttest.Hash(t, "bob-pw")})
	code := []string{"authorization_code", "refresh_token"}
	known := new(resource.Known)
	known.Add(mcpResource, "mcp.tools")
	f.grants = newGrants(t, issuer, grants.Settings{
		Clients: []*grants.Client{
			{ID: "web", DisplayName: "Web & Co", Secrets: secrets(t, "web-secret"), Grants: code,
				Audience:               []string{"api", mcpResource, filesResource},
				Scopes:                 []string{"openid", "profile", "email", "offline_access", "api.read"},
				RedirectURIs:           []string{"https://web.example.com/cb", "https://web.example.com/cb2?x=1"},
				PostLogoutRedirectURIs: []string{"https://web.example.com/bye"}, Claims: map[string]string{"tier": "gold"},
				IdentityProviders: []string{"main", "partners"}},
			{ID: "spa", Public: true, Grants: code, Scopes: []string{"openid", "profile"},
				RedirectURIs: []string{"https://spa.example.com/cb"}, PostLogoutRedirectURIs: []string{"https://spa.example.com/bye"}},
			{ID: "native", Public: true, PKCEPlain: true, Grants: code, Scopes: []string{"openid"}, RedirectURIs: []string{"com.example.app:/cb"}},
			{ID: "pwonly", Secrets: secrets(t, "pw-secret"), Grants: []string{"password"}, Scopes: []string{"api.read"},
				RedirectURIs: []string{"https://pw.example.com/cb"}},
			// A client that identified itself at run time (a metadata document, a registration).
			{ID: "https://dyn.example.com/client", Public: true, Dynamic: true, Grants: code, Scopes: []string{"openid"},
				RedirectURIs: []string{"https://dyn.example.com/cb"}},
			{ID: "partner", Public: true, Grants: code, Scopes: []string{"openid"}, RedirectURIs: []string{"https://partner.example.com/cb"},
				IdentityProviders: []string{"partners"}},
		},
		IdentityProviders: []grants.IdentityProvider{{Name: "main", Provider: main}, {Name: "partners", Provider: partners}},
		Resources:         known,
	}, grants.Dependencies{
		Store:    f.store,
		Minter:   f.minter,
		Verifier: tokens.NewVerifier(issuer, f.keySet, f.Now),
		DenyList: f.deny,
		Now:      f.Now,

		ClientSource: mcpSource{},
	})
	var err error
	f.pages, err = NewPages(PagesConfig{
		Issuer:     issuer,
		Server:     f.grants,
		SessionKey: f.key,
		Keys:       f.keySet,
		Now:        f.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
}

// browser is one person's browser: its own cookies, and redirects left for the test to read.
type browser struct {
	f   *fixture
	jar *cookiejar.Jar
	hc  *http.Client
}

func (f *fixture) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{f: f, jar: jar, hc: &http.Client{
		Jar:           jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// page is a response as the test reads it.
type page struct {
	status int
	header http.Header
	body   string
}

// send sends req through hc and reads the whole answer.
func send(t testing.TB, hc *http.Client, req *http.Request) *page {
	t.Helper()
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return &page{status: resp.StatusCode, header: resp.Header, body: string(body)}
}

func (b *browser) do(req *http.Request) *page {
	b.f.t.Helper()
	return send(b.f.t, b.hc, req)
}

func (b *browser) get(path string, params url.Values) *page {
	b.f.t.Helper()
	req, err := http.NewRequest(http.MethodGet, b.f.srv.URL+path+"?"+params.Encode(), nil)
	if err != nil {
		b.f.t.Fatal(err)
	}
	return b.do(req)
}

func (b *browser) post(path string, form url.Values) *page {
	b.f.t.Helper()
	req, err := http.NewRequest(http.MethodPost, b.f.srv.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		b.f.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

// authorize sends the authorization request params.
func (b *browser) authorize(params url.Values) *page { return b.get(AuthorizePath, params) }

// signIn fills in the form on p and submits it.
func (b *browser) signIn(p *page, username, password string) *page {
	b.f.t.Helper()
	form := p.form(b.f.t)
	form.Set("username", username)
	form.Set("password", password)
	return b.post(AuthorizePath, form)
}

var hiddenField = regexp.MustCompile(`<input type="hidden" name="([^"]*)" value="([^"]*)">`)

// form returns the hidden fields of the sign-in form on p, failing when p is not the form.
func (p *page) form(t testing.TB) url.Values {
	t.Helper()
	if p.status != http.StatusOK && p.status != http.StatusUnauthorized && p.status != http.StatusTooManyRequests && p.status != http.StatusBadRequest ||
		!strings.Contains(p.body, `<input type="password"`) {
		t.Fatalf("want the sign-in form, got %d %s", p.status, p.body)
	}
	form := url.Values{}
	for _, m := range hiddenField.FindAllStringSubmatch(p.body, -1) {
		form.Add(html.UnescapeString(m[1]), html.UnescapeString(m[2]))
	}
	return form
}

func (p *page) isForm() bool {
	return strings.Contains(p.body, `<input type="password"`)
}

// location parses the redirect of p, failing when p is not a redirect.
func (p *page) location(t testing.TB) *url.URL {
	t.Helper()
	if p.status != http.StatusFound {
		t.Fatalf("want a redirect, got %d %s", p.status, p.body)
	}
	u, err := url.Parse(p.header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// base is a redirect location without its query: where it goes.
func base(u *url.URL) string {
	c := *u
	c.RawQuery = ""
	return c.String()
}

const verifier = "a-code-verifier-of-43-characters-or-more-0123456789"

func s256(v string) string {
	sum := sha256.Sum256([]byte(v))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// webRequest is a valid authorization request of the web client, with PKCE.
func webRequest(kv ...string) url.Values {
	v := url.Values{
		"client_id":             {"web"},
		"redirect_uri":          {"https://web.example.com/cb"},
		"response_type":         {"code"},
		"scope":                 {"openid profile email api.read"},
		"state":                 {"st-123"},
		"nonce":                 {"n-456"},
		"code_challenge":        {s256(verifier)},
		"code_challenge_method": {"S256"},
	}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == "" {
			v.Del(kv[i])
		} else {
			v.Set(kv[i], kv[i+1])
		}
	}
	return v
}

// signedIn returns a browser where alice has signed in through the web client.
func (f *fixture) signedIn() *browser {
	f.t.Helper()
	b := f.browser()
	got := b.signIn(b.authorize(webRequest()), "alice", "alice-pw")
	got.location(f.t)
	return b
}

// redeem exchanges code at the token endpoint as the web client.
func (f *fixture) redeem(code, redirectURI, codeVerifier string) (int, map[string]any) {
	f.t.Helper()
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirectURI}, "code_verifier": {codeVerifier}}
	req := httptest.NewRequest(http.MethodPost, TokenPath, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("web", "web-secret")
	rec := httptest.NewRecorder()
	f.grants.ServeHTTP(rec, req)
	var body map[string]any
	json.Unmarshal(rec.Body.Bytes(), &body)
	return rec.Code, body
}

// accessToken mints an access token for alice, as the token endpoint would for the web client.
func (f *fixture) accessToken(scope, gid string) string {
	f.t.Helper()
	raw, _, _, err := f.minter.AccessToken(tokens.AccessToken{
		Subject: "alice", ClientID: "web", Scope: scope, GrantID: gid, Audience: []string{"api"}, TTL: time.Hour,
		Claims: map[string]any{"tier": "gold", "name": "Alice Liddell", "given_name": "Alice", "email": "alice@example.com",
			"email_verified": true, "department": "research", "tenant": "acme"},
	})
	if err != nil {
		f.t.Fatal(err)
	}
	return raw
}
