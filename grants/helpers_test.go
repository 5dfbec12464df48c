package grants

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokengate/tokengate/gate"
	"github.com/tokengate/tokengate/identity"
	"github.com/tokengate/tokengate/internal/bcrypttest"
	"github.com/tokengate/tokengate/internal/testclock"
	"github.com/tokengate/tokengate/internal/testkeys"
	"github.com/tokengate/tokengate/store"
	"github.com/tokengate/tokengate/tokens"
)

const (
	issuer          = "https://auth.example.com"
	verificationURI = issuer + "/connect/device"
)

// fixture is a Server over a memory store with a clock the test moves.
type fixture struct {
	t        testing.TB
	srv      *Server
	store    *store.Memory
	verifier *tokens.Verifier
	deny     *gate.DenyList
	revoked  atomic.Int64
	// cfg is what srv was built from; reload builds the next one from it.
	cfg Config

	*testclock.Clock
}

// countedDenyList is the fixture's deny-list, counting the syncs that recorded revocations ask for.
type countedDenyList struct{ f *fixture }

func (d countedDenyList) Revoked(jti, gid string, derivedFrom ...string) bool {
	return d.f.deny.Revoked(jti, gid, derivedFrom...)
}

func (d countedDenyList) ClientRevoked(clientID string, issuedAt time.Time) bool {
	return d.f.deny.ClientRevoked(clientID, issuedAt)
}

func (d countedDenyList) GrantlessRevoked(clientID, gid string, issuedAt time.Time) bool {
	return d.f.deny.GrantlessRevoked(clientID, gid, issuedAt)
}

func (d countedDenyList) RevocationFor(c *tokens.Claims, ttl time.Duration) *store.Revocation {
	return d.f.deny.RevocationFor(c, ttl)
}

func (d countedDenyList) Sync(ctx context.Context) error {
	d.f.revoked.Add(1)
	err := d.f.deny.Sync(ctx)
	if err != nil {
		d.f.t.Error(err)
	}
	return err
}

func secrets(t testing.TB, configured ...string) []*Secret {
	t.Helper()
	var out []*Secret
	for _, c := range configured {
		s, err := NewSecret(c)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

// newFixture registers:
//   - app: confidential (bcrypt secret "app-secret"), every grant, two identity providers
//   - plain: confidential, a plaintext secret full of characters Basic must form-encode
//   - spa: public, password and refresh_token
//   - other: confidential, password and refresh_token
//   - pwonly: confidential, password only
//
// options change the Config before the Server is built.
func newFixture(t testing.TB, options ...func(*fixture, *Config)) *fixture {
	t.Helper()
	f := &fixture{t: t, Clock: testclock.New(time.Unix(1_800_000_000, 0))}
	f.store = store.NewMemory(f.Now)
	f.deny = gate.NewDenyList(f.store, f.Now)
	keys := testkeys.Set(t, testkeys.New(t, tokens.ES256, time.Time{}))
	keySource := func() *tokens.KeySet { return keys }
	f.verifier = tokens.NewVerifier(issuer, keySource, f.Now)

	main, err := identity.NewStatic([]identity.StaticUser{
		{Username: "alice", Hash: bcrypttest.Hash(t, "alice-pw"), Claims: map[string]string{"email": "alice@example.com"}, Tenants: []string{"acme"}},
		{Username: "carol", Hash: bcrypttest.Hash(t, "carol-pw")},
	})
	if err != nil {
		t.Fatal(err)
	}
	partners, err := identity.NewStatic([]identity.StaticUser{{Username: "bob", Hash: bcrypttest.Hash(t, "bob-pw")}})
	if err != nil {
		t.Fatal(err)
	}
	all := []string{"client_credentials", "password", "refresh_token"}
	cfg := Config{Settings: Settings{
		Issuer:          issuer,
		TokenEndpoint:   tokenEndpoint,
		VerificationURI: verificationURI,
		Clients: []*Client{
			{ID: "app", Secrets: secrets(t, bcrypttest.Hash(t, "app-secret")), Grants: all,
				Scopes: []string{"openid", "profile", "offline_access", "api.read", "api.write"}, Audience: []string{"api"},
				Claims: map[string]string{"tier": "gold"}, IdentityProviders: []string{"main", "partners"}},
			{ID: "plain", Secrets: secrets(t, "p:%+& secret"), Grants: []string{"client_credentials"}, Scopes: []string{"api.read"}},
			{ID: "spa", Public: true, Grants: []string{"password", "refresh_token"}, Scopes: []string{"openid", "offline_access", "api.read"}},
			{ID: "other", Secrets: secrets(t, "other-secret"), Grants: []string{"password", "refresh_token"}, Scopes: []string{"offline_access", "api.read"}},
			{ID: "pwonly", Secrets: secrets(t, "pwonly-secret"), Grants: []string{"password"}, Scopes: []string{"api.read"}},
			{ID: "auditor", Secrets: secrets(t, "auditor-secret"), IntrospectAny: true},
			{ID: "web", Secrets: secrets(t, "web-secret"), Grants: []string{"authorization_code", "refresh_token"},
				Scopes: []string{"openid", "offline_access", "api.read"}, RedirectURIs: []string{"https://web.example.com/cb"}},
			{ID: "native", Public: true, Grants: []string{"authorization_code", "refresh_token"},
				Scopes: []string{"openid", "offline_access", "api.read"}, RedirectURIs: []string{"com.example.app:/cb"}, PKCEPlain: true},
		},
		IdentityProviders: []IdentityProvider{{Name: "main", Provider: main}, {Name: "partners", Provider: partners}},
	}, Dependencies: Dependencies{
		Store:    f.store,
		Minter:   tokens.NewMinter(issuer, keySource, f.Now),
		Verifier: f.verifier,
		DenyList: countedDenyList{f},
		Now:      f.Now,
	}}
	for _, o := range options {
		o(f, &cfg)
	}
	f.cfg = cfg
	f.srv, err = New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// reload replaces the Server by one built from the configuration as edit leaves it, over the same
// store and deny-list, as a Caddy config reload does. edit may change the clients in place: they
// are copies.
func (f *fixture) reload(edit func(*Config)) {
	f.t.Helper()
	cfg := f.cfg
	cfg.Clients = make([]*Client, len(f.cfg.Clients))
	for i, c := range f.cfg.Clients {
		clone := *c
		cfg.Clients[i] = &clone
	}
	cfg.IdentityProviders = slices.Clone(f.cfg.IdentityProviders)
	edit(&cfg)
	srv, err := New(cfg)
	if err != nil {
		f.t.Fatalf("reload: %v", err)
	}
	f.cfg, f.srv = cfg, srv
}

// client returns the configured client with the id, for reload to edit.
func (cfg *Config) client(id string) *Client {
	i := slices.IndexFunc(cfg.Clients, func(c *Client) bool { return c.ID == id })
	return cfg.Clients[i]
}

// request is one token request.
type request struct {
	method      string
	contentType string
	target      string
	body        string
	basic       [2]string // id, secret: form-encoded then Base64 as RFC 6749 §2.3.1 says
	header      map[string]string
}

type response struct {
	status int
	header http.Header
	raw    string
	json   map[string]any
}

func (r *response) str(name string) string {
	s, _ := r.json[name].(string)
	return s
}

func (f *fixture) do(req request) *response {
	f.t.Helper()
	if req.method == "" {
		req.method = http.MethodPost
	}
	if req.contentType == "" {
		req.contentType = "application/x-www-form-urlencoded"
	}
	if req.target == "" {
		req.target = "/connect/token"
	}
	handler := f.srv.ServeHTTP
	switch req.target {
	case "/connect/introspect":
		handler = f.srv.Introspect
	case "/connect/revocation":
		handler = f.srv.Revoke
	case "/connect/deviceauthorization":
		handler = f.srv.DeviceAuthorization
	}
	r := httptest.NewRequest(req.method, req.target, strings.NewReader(req.body))
	r.Header.Set("Content-Type", req.contentType)
	if req.basic[0] != "" {
		cred := url.QueryEscape(req.basic[0]) + ":" + url.QueryEscape(req.basic[1])
		r.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(cred)))
	}
	for k, v := range req.header {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	handler(w, r)
	resp := &response{status: w.Code, header: w.Header(), raw: w.Body.String()}
	json.Unmarshal(w.Body.Bytes(), &resp.json)
	return resp
}

// post sends form values with the app client's Basic credentials.
func (f *fixture) post(values url.Values) *response {
	f.t.Helper()
	return f.do(request{body: values.Encode(), basic: [2]string{"app", "app-secret"}})
}

func (f *fixture) expectError(what string, resp *response, status int, code string) {
	f.t.Helper()
	if resp.status != status || resp.str("error") != code {
		f.t.Errorf("%s: %d %s, want %d %s", what, resp.status, resp.raw, status, code)
	}
	if resp.header.Get("Cache-Control") != "no-store" {
		f.t.Errorf("%s: Cache-Control = %q, want no-store", what, resp.header.Get("Cache-Control"))
	}
}

func (f *fixture) expectOK(what string, resp *response) {
	f.t.Helper()
	if resp.status != http.StatusOK || resp.str("access_token") == "" {
		f.t.Fatalf("%s: %d %s, want 200 with a token", what, resp.status, resp.raw)
	}
}

// accessClaims checks that resp carries tokens and returns its access token's claims.
func (f *fixture) accessClaims(what string, resp *response) *tokens.Claims {
	f.t.Helper()
	f.expectOK(what, resp)
	claims, err := f.verifier.VerifyAccessToken(resp.str("access_token"))
	if err != nil {
		f.t.Fatalf("%s: %v", what, err)
	}
	return claims
}

func vals(kv ...string) url.Values {
	v := url.Values{}
	for i := 0; i < len(kv); i += 2 {
		v.Add(kv[i], kv[i+1])
	}
	return v
}
