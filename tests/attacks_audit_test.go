package tests

import (
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/oauth2"

	"github.com/tokengate/tokengate/internal/assertiontest"
	"github.com/tokengate/tokengate/internal/jwtpart"
)

// The attacks an outside audit performed: a legacy login's redirects taken for a valid login,
// a tenant forged through acr_values, and a jwks_uri redirecting to an internal address.

// signInAttackCaddyfile signs people in three ways: the users block local (alice, of the tenant
// acme, and carol, of no tenant), the legacy login legacy, and the legacy login portal, which
// answers a valid login with a redirect to its home page. web uses the password grant, app the
// sign-in page, tv the device page.
const signInAttackCaddyfile = `{
	tokengate {
		issuer {{BASE}}
		store memory
		client web {
			secret web-secret
			grants password
			scopes api.read
			audience api
			identity_providers local legacy portal
		}
` + appClient + `			identity_providers local legacy portal
		}
		client tv {
			public
			grants device_code
			scopes api.read
			audience api
			identity_providers legacy
		}
		users local {
			user alice {{ALICE_HASH}} {
				tenant acme
			}
			user carol {{ALICE_HASH}}
		}
		users legacy {
			http_login {{LEGACY}}/login
		}
		users portal {
			http_login {{LEGACY}}/portal {
				success_location {{LEGACY}}/home
			}
		}
	}
}

{{BASE}} {
	tokengate
}
`

// appRedirectURI is app's redirect URI; nothing listens there, and the tests never follow it.
const appRedirectURI = "http://127.0.0.1:9/cb"

// appClient opens the client block of app, a public client of the sign-in page for api; the
// Caddyfile adds its identity providers, if any, and closes the block.
const appClient = `		client app {
			public
			grants authorization_code
			redirect_uris ` + appRedirectURI + `
			scopes openid api.read
			audience api
`

// legacyApp is a legacy application's login, as many are: a wrong password is answered with a
// 302 to /login?error=1, whose GET is a 200 page. At /login a valid login is a 200 JSON object
// (erin's names her tenant, acme); at /portal it is a 302 to /home. mallory's login answers 307,
// and sam's 308, to another server: the collector, which records any password that reaches it.
type legacyApp struct {
	*httptest.Server
	collector *httptest.Server

	mu        sync.Mutex
	tenants   []string // the tenant field of each POST, "" when absent
	collected []string // the passwords that reached the collector
}

func startLegacyApp(t *testing.T) *legacyApp {
	l := &legacyApp{}
	l.collector = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		l.mu.Lock()
		l.collected = append(l.collected, r.PostForm.Get("password"))
		l.mu.Unlock()
		w.Write([]byte(`{"tenant":"victim-corp"}`))
	}))
	t.Cleanup(l.collector.Close)
	l.Server = httptest.NewServer(http.HandlerFunc(l.serve))
	t.Cleanup(l.Server.Close)
	return l
}

func (l *legacyApp) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet {
		w.Write([]byte("<html><form>The username or password is wrong. Try again.</form></html>"))
		return
	}
	r.ParseForm()
	l.mu.Lock()
	l.tenants = append(l.tenants, r.PostForm.Get("tenant"))
	l.mu.Unlock()
	switch username := r.PostForm.Get("username"); {
	case username == "mallory":
		http.Redirect(w, r, l.collector.URL+"/login", http.StatusTemporaryRedirect)
	case username == "sam":
		http.Redirect(w, r, l.collector.URL+"/login", http.StatusPermanentRedirect)
	case r.PostForm.Get("password") != alicePassword:
		http.Redirect(w, r, "/login?error=1", http.StatusFound)
	case r.URL.Path == "/portal":
		http.Redirect(w, r, "/home?welcome="+url.QueryEscape(username), http.StatusFound)
	case username == "erin":
		w.Write([]byte(`{"email":"erin@legacy.example","tenant":"acme"}`))
	default:
		w.Write([]byte(`{"email":"` + username + `@legacy.example"}`))
	}
}

// lastTenant is the tenant field of the last login the app was asked for.
func (l *legacyApp) lastTenant() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.tenants) == 0 {
		return ""
	}
	return l.tenants[len(l.tenants)-1]
}

func (l *legacyApp) collectedPasswords() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.collected...)
}

func startSignInAttackCaddy(t *testing.T) (*Caddy, *legacyApp) {
	t.Helper()
	legacy := startLegacyApp(t)
	c := startCaddy(t, strings.NewReplacer("{{ALICE_HASH}}", aliceHash(), "{{LEGACY}}", legacy.URL).Replace(signInAttackCaddyfile))
	return c, legacy
}

// passwordGrant asks for a token as web for username, with acr_values when not empty.
func passwordGrant(t *testing.T, c *Caddy, username, password, acrValues string) reply {
	t.Helper()
	pairs := []string{"grant_type", "password", "username", username, "password", password}
	if acrValues != "" {
		pairs = append(pairs, "acr_values", acrValues)
	}
	return postToken(t, c, basicAuth("web", "web-secret"), formBody(pairs...))
}

// accessClaims are the claims of the access token r answered.
func accessClaims(t *testing.T, what string, r reply) map[string]any {
	t.Helper()
	var claims map[string]any
	jwtpart.Decode(t, wantToken(t, what, r).AccessToken, jwtpart.Payload, &claims)
	return claims
}

// authorizeApp sends the browser f to app's authorization request (PKCE S256) for scope with
// acrValues and returns the page it got, and the code verifier.
func authorizeApp(t *testing.T, f *formClient, c *Caddy, scope, acrValues string) (page formPage, verifier string) {
	t.Helper()
	verifier = oauth2.GenerateVerifier()
	query := url.Values{"client_id": {"app"}, "redirect_uri": {appRedirectURI}, "response_type": {"code"},
		"scope": {scope}, "state": {"s1"}, "code_challenge": {oauth2.S256ChallengeFromVerifier(verifier)},
		"code_challenge_method": {"S256"}, "acr_values": {acrValues}}
	return f.submit(c.URL("/connect/authorize?"+query.Encode()), nil), verifier
}

// signInForm opens app's authorization request for scope with acrValues in the browser f, and
// returns the sign-in form's fields and the request's PKCE verifier.
func signInForm(t *testing.T, f *formClient, c *Caddy, scope, acrValues string) (form url.Values, verifier string) {
	t.Helper()
	login, verifier := authorizeApp(t, f, c, scope, acrValues)
	if !isSignInForm(login) {
		t.Fatalf("GET /connect/authorize = %d, want the sign-in form:\n%s", login.status, login.body)
	}
	return login.fields, verifier
}

// isSignInForm reports whether p is the sign-in page: 200 with a password field.
func isSignInForm(p formPage) bool {
	return p.status == http.StatusOK && strings.Contains(p.body, `type="password"`)
}

// signInPage is app's authorization request for "openid api.read" with acrValues, signed in on the
// sign-in page as username. code is the code the page redirected with, "" when none; page is the
// answer to the password.
func signInPage(t *testing.T, c *Caddy, acrValues, username, password string) (code, verifier string, page formPage) {
	t.Helper()
	return signInWith(t, newFormClient(t), c, "openid api.read", acrValues, username, password)
}

// signInWith is signInPage for scope in the browser f, which keeps the session it gets.
func signInWith(t *testing.T, f *formClient, c *Caddy, scope, acrValues, username, password string) (code, verifier string, page formPage) {
	t.Helper()
	form, verifier := signInForm(t, f, c, scope, acrValues)
	form.Set("username", username)
	form.Set("password", password)
	page = f.submit(c.URL("/connect/authorize"), form)
	if page.location != nil {
		code = page.location.Query().Get("code")
	}
	return code, verifier, page
}

// redeem trades app's code for its token's answer.
func redeem(t *testing.T, c *Caddy, code, verifier string) reply {
	t.Helper()
	return postToken(t, c, nil, formBody("grant_type", "authorization_code", "client_id", "app", "code", code,
		"redirect_uri", appRedirectURI, "code_verifier", verifier))
}

// wantNoCode checks the sign-in page refused: the form again with 401, and no code.
func wantNoCode(t *testing.T, what, code string, page formPage) {
	t.Helper()
	if code != "" || page.status != http.StatusUnauthorized || !strings.Contains(page.body, `type="password"`) {
		t.Errorf("%s: HTTP %d, code %q, location %v, want 401 with the form again and no code:\n%.300s", what, page.status, code, page.location, page.body)
	}
}

// A legacy login's redirects are never followed: a wrong password's 302 to an error page that
// answers 200 is a wrong password, and a 307 or 308 never re-posts the password elsewhere, on the
// password grant, the sign-in page and the device page.
func TestAttackHTTPLoginRedirects(t *testing.T) {
	t.Parallel()
	c, legacy := startSignInAttackCaddy(t)

	// The password grant (RFC 6749 §4.3.2: a wrong password is invalid_grant).
	wantError(t, "a wrong password, answered 302 to an error page", passwordGrant(t, c, "alice", "wrong", "idp:legacy"), "invalid_grant")
	if sub := accessClaims(t, "the right password", passwordGrant(t, c, "alice", alicePassword, "idp:legacy"))["sub"]; sub != "alice" {
		t.Errorf("the right password: sub = %v, want alice", sub)
	}
	wantError(t, "a login answered 307 to another server", passwordGrant(t, c, "mallory", alicePassword, "idp:legacy"), "invalid_grant")
	wantError(t, "a login answered 308 to another server", passwordGrant(t, c, "sam", alicePassword, "idp:legacy"), "invalid_grant")
	if got := legacy.collectedPasswords(); len(got) != 0 {
		t.Errorf("the other server received the passwords %q, want none", got)
	}

	// success_location: a redirect to the home page is a valid login, one to the error page is not.
	if sub := accessClaims(t, "portal, the right password", passwordGrant(t, c, "alice", alicePassword, "idp:portal"))["sub"]; sub != "alice" {
		t.Errorf("portal, the right password: sub = %v, want alice", sub)
	}
	wantError(t, "portal, a wrong password", passwordGrant(t, c, "alice", "wrong", "idp:portal"), "invalid_grant")

	// The sign-in page.
	code, _, page := signInPage(t, c, "idp:legacy", "alice", "wrong")
	wantNoCode(t, "sign-in page, a wrong password", code, page)
	code, _, page = signInPage(t, c, "idp:portal", "alice", "wrong")
	wantNoCode(t, "sign-in page through portal, a wrong password", code, page)
	if code, _, page := signInPage(t, c, "idp:legacy", "alice", alicePassword); code == "" {
		t.Errorf("sign-in page, the right password: HTTP %d, location %v, want a code", page.status, page.location)
	}

	// The device page (RFC 8628 §3.3), where tv signs in through legacy.
	r := send(t, c, request{path: "/connect/deviceauthorization", body: formBody("client_id", "tv", "scope", "api.read")})
	var auth struct {
		UserCode string `json:"user_code"`
	}
	if err := json.Unmarshal(r.body, &auth); r.status != http.StatusOK || err != nil {
		t.Fatalf("device authorization: HTTP %d %s", r.status, r.body)
	}
	f := newFormClient(t)
	codeStep := f.submit(c.URL("/connect/device"), nil)
	codeStep.fields.Set("user_code", auth.UserCode)
	loginStep := f.submit(c.URL("/connect/device"), codeStep.fields)
	if loginStep.status != http.StatusOK || !strings.Contains(loginStep.body, `type="password"`) {
		t.Fatalf("the device page after the code: HTTP %d, want the sign-in form:\n%s", loginStep.status, loginStep.body)
	}
	wrong := loginStep.fields
	wrong.Set("username", "alice")
	wrong.Set("password", "wrong")
	if p := f.submit(c.URL("/connect/device"), wrong); p.status != http.StatusUnauthorized || strings.Contains(p.body, `name="deny"`) {
		t.Errorf("device page, a wrong password: HTTP %d, want 401 and no decision:\n%.300s", p.status, p.body)
	}
}

// A tenant comes only from the identity provider: acr_values=tenant:<name> never puts a tenant the
// provider did not vouch for into a token, and never replaces the tenant a legacy login answered.
func TestAttackTenantForgery(t *testing.T) {
	t.Parallel()
	c, legacy := startSignInAttackCaddy(t)

	// The password grant.
	wantError(t, "carol, of no tenant, into victim-corp", passwordGrant(t, c, "carol", alicePassword, "tenant:victim-corp"), "invalid_grant")
	wantError(t, "alice, of acme, into victim-corp", passwordGrant(t, c, "alice", alicePassword, "tenant:victim-corp"), "invalid_grant")
	if tenant := accessClaims(t, "alice into acme", passwordGrant(t, c, "alice", alicePassword, "tenant:acme"))["tenant"]; tenant != "acme" {
		t.Errorf("alice into acme: tenant = %v, want acme", tenant)
	}
	if tenant, ok := accessClaims(t, "carol, no tenant asked", passwordGrant(t, c, "carol", alicePassword, ""))["tenant"]; ok {
		t.Errorf("carol, no tenant asked: tenant = %v, want none", tenant)
	}
	wantError(t, "a legacy user the login vouches no tenant for, into victim-corp",
		passwordGrant(t, c, "bob", alicePassword, "idp:legacy tenant:victim-corp"), "invalid_grant")
	if got := legacy.lastTenant(); got != "victim-corp" {
		t.Errorf("the legacy login was sent tenant %q, want victim-corp", got)
	}
	wantError(t, "erin, of acme by her login, into victim-corp",
		passwordGrant(t, c, "erin", alicePassword, "idp:legacy tenant:victim-corp"), "invalid_grant")
	if tenant := accessClaims(t, "erin, no tenant asked", passwordGrant(t, c, "erin", alicePassword, "idp:legacy"))["tenant"]; tenant != "acme" {
		t.Errorf("erin, no tenant asked: tenant = %v, want acme, her login's", tenant)
	}
	if got := legacy.lastTenant(); got != "" {
		t.Errorf("the legacy login was sent tenant %q when none was asked, want none", got)
	}
	if tenant := accessClaims(t, "erin into acme", passwordGrant(t, c, "erin", alicePassword, "idp:legacy tenant:acme"))["tenant"]; tenant != "acme" {
		t.Errorf("erin into acme: tenant = %v, want acme", tenant)
	}
	wantError(t, "a login that answers with a redirect, into victim-corp",
		passwordGrant(t, c, "alice", alicePassword, "idp:portal tenant:victim-corp"), "invalid_grant")

	// The sign-in page.
	code, _, page := signInPage(t, c, "tenant:victim-corp", "carol", alicePassword)
	wantNoCode(t, "sign-in page, carol into victim-corp", code, page)
	code, _, page = signInPage(t, c, "idp:legacy tenant:victim-corp", "erin", alicePassword)
	wantNoCode(t, "sign-in page, erin into victim-corp", code, page)
	code, verifier, page := signInPage(t, c, "tenant:acme", "alice", alicePassword)
	if code == "" {
		t.Fatalf("sign-in page, alice into acme: HTTP %d, location %v, want a code", page.status, page.location)
	}
	if tenant := accessClaims(t, "alice's code for acme", redeem(t, c, code, verifier))["tenant"]; tenant != "acme" {
		t.Errorf("alice's code for acme: tenant = %v, want acme", tenant)
	}
}

// jwksRedirectCaddyfile has a private_key_jwt client and a trusted assertion issuer whose jwks_uri
// answers with a redirect to an internal address.
const jwksRedirectCaddyfile = `{
	tokengate {
		issuer {{BASE}}
		store memory
		client remote {
			auth_method private_key_jwt
			jwks_uri {{JWKS}}/client
			grants client_credentials
			scopes api.read
		}
		client relying {
			secret relying-secret
			grants jwt_bearer
			scopes api.read
		}
		trust partner {
			issuer ` + partnerIssuer + `
			jwks_uri {{JWKS}}/partner
		}
	}
}

{{BASE}} {
	tokengate
}
`

// A jwks_uri fetch never follows a redirect: a key set that redirects to an internal address (a
// loopback server answering the right keys) is a failed fetch, as an unreachable one is, and the
// internal address is never asked.
func TestAttackJWKSURIRedirect(t *testing.T) {
	t.Parallel()
	key := assertiontest.ECKey(t)
	set := jwkSet(t, "k1", &key.PublicKey)
	var internalHits atomic.Int32
	internal := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		internalHits.Add(1)
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.Write(set)
	}))
	t.Cleanup(internal.Close)
	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, internal.URL+"/latest/meta-data/jwks", http.StatusFound)
	}))
	t.Cleanup(jwks.Close)
	c := startCaddy(t, strings.ReplaceAll(jwksRedirectCaddyfile, "{{JWKS}}", jwks.URL))

	claims := func(iss, sub string) jwt.MapClaims {
		now := time.Now()
		return jwt.MapClaims{"iss": iss, "sub": sub, "aud": c.URL("/connect/token"),
			"iat": now.Unix(), "exp": now.Add(time.Minute).Unix(), "jti": rand.Text()}
	}
	clientAssertion := signed(t, jwt.SigningMethodES256, key, "k1", claims("remote", "remote"))
	wantError(t, "a client assertion whose key set redirects", postToken(t, c, nil, withClientAssertion(clientAssertion)),
		"temporarily_unavailable", http.StatusServiceUnavailable)
	partnerAssertion := signed(t, jwt.SigningMethodES256, key, "k1", claims(partnerIssuer, "alice@partner"))
	wantError(t, "a trusted issuer's assertion whose key set redirects", postToken(t, c, basicAuth("relying", "relying-secret"),
		formBody("grant_type", grantJWTBearer, "assertion", partnerAssertion)), "temporarily_unavailable", http.StatusServiceUnavailable)
	if n := internalHits.Load(); n != 0 {
		t.Errorf("the internal address was asked %d times, want never", n)
	}
	// The operator learns why.
	if log := c.log.String(); !strings.Contains(log, "not followed") {
		t.Errorf("Caddy's log does not say a key set redirect was not followed:\n%s", log)
	}
}
