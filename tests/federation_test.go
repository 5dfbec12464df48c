package tests

import (
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"
	"golang.org/x/oauth2"

	"github.com/tokengate/tokengate/internal/jwtpart"
)

// The upstream OpenID Provider of these tests is zitadel/oidc's example OP (Apache-2.0), a real
// and independent implementation, started in this process on a loopback port. Its user id1 signs
// in as test-user@127.0.0.1 with the password verysecure.
const (
	zitadelUser     = "test-user@127.0.0.1"
	zitadelPassword = "verysecure"
	zitadelClient   = "tokengate"
	zitadelSecret   = "upstream-secret"
)

// federationCaddyfile signs people in locally (alice) and through the upstream OP "zitadel";
// "down" is an OpenID provider that never answers. rp may use local and zitadel, only-zitadel
// the upstream alone.
const federationCaddyfile = `{
	tokengate {
		issuer {{BASE}}
		store memory
		client rp {
			secret rp-secret
			grants authorization_code refresh_token password
			scopes openid profile email offline_access
			redirect_uris https://rp.example/callback
			identity_providers local zitadel down
		}
		client only-zitadel {
			secret only-zitadel-secret
			grants authorization_code
			scopes openid email
			redirect_uris https://rp.example/callback
			identity_providers zitadel
		}
		users local {
			user alice {{ALICE_HASH}} {
				claim email alice@example.com
			}
		}
		oidc zitadel {
			issuer {{OP}}
			client_id ` + zitadelClient + `
			client_secret {env.TOKENGATE_TEST_UPSTREAM_SECRET}
			display_name "Zitadel Test"
			claim locale_tag locale
		}
		oidc down {
			issuer {{DOWN}}
			client_id tokengate
			client_secret never-used
		}
	}
}

{{BASE}} {
	tokengate
	bearer_auth /api/*
	respond /api/* "{http.auth.user.id} {http.auth.user.idp} {http.auth.user.email}"
}
`

// federationConfig is a tokengate whose client rp (authorization_code; openid profile email) returns
// to redirect and may use the identity providers idps, declared by blocks.
func federationConfig(redirect, idps, blocks string) string {
	return `{
	tokengate {
		issuer {{BASE}}
		store memory
		client rp {
			secret rp-secret
			grants authorization_code
			scopes openid profile email
			redirect_uris ` + redirect + `
			identity_providers ` + idps + `
		}
` + blocks + `
	}
}

{{BASE}} {
	tokengate
}
`
}

// zitadelBlock declares the upstream OP at {{OP}} as the provider zitadel.
const zitadelBlock = `
		oidc zitadel {
			issuer {{OP}}
			client_id ` + zitadelClient + `
			client_secret ` + zitadelSecret + `
			display_name "Zitadel Test"
		}
`

// upstreamOP is the zitadel example OP, bound before tokengate starts so that tokengate's
// configuration can name it, and serving only once tokengate's callback URL is known.
type upstreamOP struct {
	issuer string
	ln     net.Listener
}

func listenOP(t *testing.T) *upstreamOP {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return &upstreamOP{issuer: "http://" + ln.Addr().String() + "/", ln: ln}
}

// serve starts the OP with tokengate registered as a confidential client returning to redirectURI.
func (op *upstreamOP) serve(t *testing.T, redirectURI string) {
	t.Helper()
	clients := map[string]*storage.Client{zitadelClient: storage.WebClient(zitadelClient, zitadelSecret, redirectURI)}
	router := exampleop.SetupServer(op.issuer, storage.NewStorageWithClients(storage.NewUserStore(op.issuer), clients),
		slog.New(slog.DiscardHandler), false)
	srv := httptest.NewUnstartedServer(router)
	srv.Listener.Close()
	srv.Listener = op.ln
	srv.Start()
	t.Cleanup(srv.Close)
}

// closedURL is the URL of a loopback port nothing listens on.
func closedURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr + "/"
}

// startFederation starts the upstream OP and a tokengate signing people in through it.
func startFederation(t *testing.T) (*Caddy, *upstreamOP) {
	t.Helper()
	t.Setenv("TOKENGATE_TEST_UPSTREAM_SECRET", zitadelSecret)
	op := listenOP(t)
	c := startCaddy(t, strings.NewReplacer("{{ALICE_HASH}}", aliceHash(), "{{OP}}", op.issuer,
		"{{DOWN}}", closedURL(t)).Replace(federationCaddyfile))
	op.serve(t, c.URL("/connect/external/zitadel/callback"))
	return c, op
}

// codeRequest is an authorization request of the relying party, with its PKCE verifier.
type codeRequest struct {
	client, state, nonce, verifier string
	extra                          url.Values
}

func newCodeRequest(client string, extra url.Values) codeRequest {
	return codeRequest{client: client, state: oauth2.GenerateVerifier(), nonce: oauth2.GenerateVerifier(),
		verifier: oauth2.GenerateVerifier(), extra: extra}
}

func (r codeRequest) url(c *Caddy) string {
	q := url.Values{"client_id": {r.client}, "response_type": {"code"}, "redirect_uri": {"https://rp.example/callback"},
		"scope": {"openid profile email offline_access"}, "state": {r.state}, "nonce": {r.nonce},
		"code_challenge": {oauth2.S256ChallengeFromVerifier(r.verifier)}, "code_challenge_method": {"S256"}}
	if r.client == "only-zitadel" {
		q.Set("scope", "openid email")
	}
	for k, v := range r.extra {
		q[k] = v
	}
	return c.URL("/connect/authorize?" + q.Encode())
}

// toRP follows redirects from target, signing in at the upstream OP when its form shows, until
// the browser is sent back to the relying party; it returns that redirect's query.
func toRP(t *testing.T, f *formClient, target string) url.Values {
	t.Helper()
	at, _ := url.Parse(target)
	page := f.submit(target, nil)
	for range 10 {
		switch {
		case page.location != nil && page.location.Host == "rp.example":
			return page.location.Query()
		case page.location != nil:
			at = page.location
			page = f.submit(at.String(), nil)
		case page.status == http.StatusOK && strings.Contains(page.body, `action="/login/username"`):
			// The upstream's own sign-in form.
			at = at.ResolveReference(&url.URL{Path: "/login/username"})
			page = f.submit(at.String(), url.Values{"id": {page.fields.Get("id")}, "username": {zitadelUser}, "password": {zitadelPassword}})
		default:
			t.Fatalf("the sign-in stopped at %s: HTTP %d: %s", at, page.status, page.body)
		}
	}
	t.Fatal("the sign-in went through too many redirects")
	return nil
}

// redeemRequest trades the code of a completed request for tokens.
func redeemRequest(t *testing.T, c *Caddy, r codeRequest, code string) tokenAnswer {
	t.Helper()
	status, body := postForm(t, c, "/connect/token", r.client, r.client+"-secret", url.Values{"grant_type": {"authorization_code"},
		"code": {code}, "redirect_uri": {"https://rp.example/callback"}, "code_verifier": {r.verifier}})
	a, err := reply{status: status, body: body}.tokenAnswer()
	if err != nil || a.AccessToken == "" {
		t.Fatalf("redeeming the code: %v %s", err, body)
	}
	return a
}

func TestFederationOIDC(t *testing.T) {
	c, op := startFederation(t)
	f := newFormClient(t)

	// The sign-in page of a client that may use a users block and two external providers.
	page := f.submit(newCodeRequest("rp", nil).url(c), nil)
	if page.status != http.StatusOK || !strings.Contains(page.body, `type="password"`) {
		t.Fatalf("sign-in page: HTTP %d %s, want the password form", page.status, page.body)
	}
	if !strings.Contains(page.body, "Sign in with Zitadel Test") || !strings.Contains(page.body, "Sign in with down") {
		t.Fatalf("sign-in page %s: want a link per external provider", page.body)
	}

	req := newCodeRequest("rp", url.Values{"acr_values": {"idp:zitadel"}})
	first := f.submit(req.url(c), nil)
	if first.location == nil || !strings.HasPrefix(first.location.String(), op.issuer) {
		t.Fatalf("idp:zitadel: HTTP %d to %v, want a redirect to the upstream %s", first.status, first.location, op.issuer)
	}
	up := first.location.Query()
	for name, want := range map[string]string{"client_id": zitadelClient, "response_type": "code", "code_challenge_method": "S256",
		"redirect_uri": c.URL("/connect/external/zitadel/callback")} {
		if got := up.Get(name); got != want {
			t.Errorf("upstream authorization request %s = %q, want %q", name, got, want)
		}
	}
	for _, name := range []string{"state", "nonce", "code_challenge"} {
		if len(up.Get(name)) < 43 {
			t.Errorf("upstream authorization request %s = %q, want 256 random bits", name, up.Get(name))
		}
	}
	if !strings.Contains(up.Get("scope"), "openid") {
		t.Errorf("upstream scope = %q, want openid", up.Get("scope"))
	}

	back := toRP(t, f, first.location.String())
	if back.Get("state") != req.state || back.Get("code") == "" || back.Get("iss") != c.Base {
		t.Fatalf("back at the client with %v, want a code, its state and tokengate's iss", back)
	}
	tok := redeemRequest(t, c, req, back.Get("code"))
	access, id := jwtpart.Claims(t, tok.AccessToken), jwtpart.Claims(t, tok.IDToken)
	for _, claims := range []map[string]any{access, id} {
		if claims["sub"] != "zitadel|id1" || claims["idp"] != "zitadel" {
			t.Errorf("token claims %v: want sub zitadel|id1 and idp zitadel", claims)
		}
		if claims["email"] != "test-user@zitadel.ch" {
			t.Errorf("token claims %v: want the upstream's email", claims)
		}
	}
	if id["nonce"] != req.nonce {
		t.Errorf("ID token nonce = %v, want the client's %q", id["nonce"], req.nonce)
	}

	t.Run("userinfo", func(t *testing.T) {
		r := call(t, c, "/connect/userinfo", tok.AccessToken, nil)
		var info map[string]any
		if r.status != http.StatusOK || json.Unmarshal(r.body, &info) != nil || info["sub"] != "zitadel|id1" {
			t.Fatalf("userinfo = %d %s, want sub zitadel|id1", r.status, r.body)
		}
	})
	t.Run("introspection", func(t *testing.T) {
		status, body := postForm(t, c, "/connect/introspect", "rp", "rp-secret", url.Values{"token": {tok.AccessToken}})
		if status != http.StatusOK || !strings.Contains(string(body), `"active":true`) || !strings.Contains(string(body), `zitadel|id1`) {
			t.Fatalf("introspection = %d %s, want an active token of zitadel|id1", status, body)
		}
	})
	t.Run("refresh", func(t *testing.T) {
		a, err := requestToken(testContext(t), c, "rp", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}})
		if err != nil || a.AccessToken == "" {
			t.Fatalf("refresh: %v %v", err, a)
		}
		if claims := jwtpart.Claims(t, a.AccessToken); claims["sub"] != "zitadel|id1" || claims["idp"] != "zitadel" {
			t.Errorf("refreshed token claims %v, want the sign-in's", claims)
		}
	})
	t.Run("session", func(t *testing.T) {
		// The browser's session answers prompt=none without the upstream.
		again := newCodeRequest("rp", url.Values{"prompt": {"none"}, "acr_values": {"idp:zitadel"}})
		p := f.submit(again.url(c), nil)
		if p.location == nil || p.location.Query().Get("code") == "" {
			t.Fatalf("prompt=none with a session: HTTP %d to %v, want a code", p.status, p.location)
		}
	})
	t.Run("local user says idp", func(t *testing.T) {
		a, err := requestToken(testContext(t), c, "rp", url.Values{"grant_type": {"password"}, "username": {"alice"},
			"password": {alicePassword}, "scope": {"openid"}})
		if err != nil || a.AccessToken == "" {
			t.Fatalf("password grant: %v %v", err, a)
		}
		if claims := jwtpart.Claims(t, a.AccessToken); claims["idp"] != "local" || claims["sub"] != "alice" {
			t.Errorf("alice's token claims %v, want idp local", claims)
		}
	})
	t.Run("password grant refuses an external provider", func(t *testing.T) {
		a, _ := requestToken(testContext(t), c, "rp", url.Values{"grant_type": {"password"}, "username": {"alice"},
			"password": {alicePassword}, "acr_values": {"idp:zitadel"}})
		if a.Error != "invalid_request" {
			t.Errorf("password grant with idp:zitadel = %v, want invalid_request", a)
		}
	})
	t.Run("bearer_auth", func(t *testing.T) {
		r := call(t, c, "/api/x", tok.AccessToken, nil)
		if r.status != http.StatusOK || string(r.body) != "zitadel|id1 zitadel test-user@zitadel.ch" {
			t.Errorf("GET /api/x = %d %q, want the person's sub, idp and email as placeholders", r.status, r.body)
		}
	})
	t.Run("end session", func(t *testing.T) {
		g := newFormClient(t)
		first := newCodeRequest("rp", url.Values{"acr_values": {"idp:zitadel"}})
		toRP(t, g, first.url(c))
		if p := g.submit(c.URL("/connect/endsession"), nil); p.status >= 500 {
			t.Fatalf("end session = %d", p.status)
		}
		again := newCodeRequest("rp", url.Values{"prompt": {"none"}, "acr_values": {"idp:zitadel"}})
		if p := g.submit(again.url(c), nil); p.location == nil || p.location.Query().Get("error") != "login_required" {
			t.Errorf("prompt=none after signing out: HTTP %d to %v, want login_required", p.status, p.location)
		}
	})
	t.Run("revocation", func(t *testing.T) {
		status, body := postForm(t, c, "/connect/revocation", "rp", "rp-secret", url.Values{"token": {tok.RefreshToken}})
		if status != http.StatusOK {
			t.Fatalf("revocation = %d %s", status, body)
		}
		a, _ := requestToken(testContext(t), c, "rp", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}})
		if a.Error != "invalid_grant" {
			t.Errorf("refresh after revocation = %v, want invalid_grant", a)
		}
		if r := call(t, c, "/api/x", tok.AccessToken, nil); r.status != http.StatusUnauthorized {
			t.Errorf("the revoked family's access token at bearer_auth = %d, want 401", r.status)
		}
	})
	t.Run("a client limited to the provider goes straight to it", func(t *testing.T) {
		p := newFormClient(t).submit(newCodeRequest("only-zitadel", nil).url(c), nil)
		if p.location == nil || !strings.HasPrefix(p.location.String(), op.issuer) {
			t.Fatalf("only-zitadel without idp: HTTP %d to %v, want the upstream", p.status, p.location)
		}
	})
}
