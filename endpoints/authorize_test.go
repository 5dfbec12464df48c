package endpoints

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tokengate/tokengate/internal/jwtpart"
)

// TestAuthorizeUntrustedShowsPage: until client_id and redirect_uri are known good, nothing goes to
// the redirect_uri (RFC 6749 §4.1.2.1): every variant of a registered URI, and
// every open-redirect attempt, gets a 400 page and no Location.
func TestAuthorizeUntrustedShowsPage(t *testing.T) {
	f := newFixture(t)
	b := f.browser()
	for _, tc := range []struct {
		name   string
		params url.Values
	}{
		{"no client_id", webRequest("client_id", "")},
		{"unknown client", webRequest("client_id", "nobody")},
		{"client_id case variant", webRequest("client_id", "WEB")},
		{"client_id with NUL", webRequest("client_id", "web\x00")},
		{"host case", webRequest("redirect_uri", "https://WEB.example.com/cb")},
		{"path case", webRequest("redirect_uri", "https://web.example.com/CB")},
		{"trailing slash", webRequest("redirect_uri", "https://web.example.com/cb/")},
		{"extra query", webRequest("redirect_uri", "https://web.example.com/cb?x=2")},
		{"query dropped", webRequest("redirect_uri", "https://web.example.com/cb2")},
		{"query changed", webRequest("redirect_uri", "https://web.example.com/cb2?x=2")},
		{"fragment", webRequest("redirect_uri", "https://web.example.com/cb#frag")},
		{"percent-encoded path", webRequest("redirect_uri", "https://web.example.com/%63b")},
		{"http downgrade", webRequest("redirect_uri", "http://web.example.com/cb")},
		{"port added", webRequest("redirect_uri", "https://web.example.com:443/cb")},
		{"userinfo trick", webRequest("redirect_uri", "https://web.example.com@evil.example/cb")},
		{"evil host", webRequest("redirect_uri", "https://evil.example/cb")},
		{"scheme-relative", webRequest("redirect_uri", "//evil.example/cb")},
		{"javascript", webRequest("redirect_uri", "javascript:alert(document.cookie)")},
		{"another client's URI", webRequest("redirect_uri", "https://spa.example.com/cb")},
		{"omitted with two registered", webRequest("redirect_uri", "")},
		// spa registered one URI, which it may leave out: two are not none.
		{"repeated redirect_uri", func() url.Values {
			v := webRequest("client_id", "spa", "redirect_uri", "https://spa.example.com/cb", "scope", "openid")
			v.Add("redirect_uri", "https://evil.example/cb")
			return v
		}()},
		{"repeated client_id", func() url.Values {
			v := webRequest()
			v.Add("client_id", "web")
			return v
		}()},
		// The page comes before any other error: an unsupported response type to an unregistered URI.
		{"token to evil", webRequest("response_type", "token", "redirect_uri", "https://evil.example/cb")},
	} {
		got := b.authorize(tc.params)
		if got.status != http.StatusBadRequest || got.header.Get("Location") != "" {
			t.Errorf("%s: authorize = %d Location %q, want 400 and no Location", tc.name, got.status, got.header.Get("Location"))
		}
		if ct := got.header.Get("Content-Type"); ct != "text/html; charset=utf-8" || got.isForm() {
			t.Errorf("%s: authorize = %q page with form %v, want an HTML error page", tc.name, ct, got.isForm())
		}
		if strings.Contains(got.body, "evil") {
			t.Errorf("%s: the error page repeats the request: %s", tc.name, got.body)
		}
	}
}

// TestAuthorizeRedirectsErrors: once the redirect URI is trusted, errors go back to it with error,
// state and iss (RFC 6749 §4.1.2.1, RFC 9207), and no code.
func TestAuthorizeRedirectsErrors(t *testing.T) {
	f := newFixture(t)
	b := f.browser()
	for _, tc := range []struct {
		name   string
		params url.Values
		to     string
		code   string
	}{
		{"response_type token", webRequest("response_type", "token"), "https://web.example.com/cb", "unsupported_response_type"},
		{"response_type code id_token", webRequest("response_type", "code id_token"), "https://web.example.com/cb", "unsupported_response_type"},
		{"no response_type", webRequest("response_type", ""), "https://web.example.com/cb", "invalid_request"},
		{"public client without PKCE", url.Values{"client_id": {"spa"}, "response_type": {"code"}, "state": {"st-123"}},
			"https://spa.example.com/cb", "invalid_request"},
		{"plain refused", webRequest("client_id", "spa", "redirect_uri", "https://spa.example.com/cb", "scope", "openid",
			"code_challenge", verifier, "code_challenge_method", "plain"), "https://spa.example.com/cb", "invalid_request"},
		{"missing method means plain", webRequest("client_id", "spa", "redirect_uri", "", "scope", "openid",
			"code_challenge", verifier, "code_challenge_method", ""), "https://spa.example.com/cb", "invalid_request"},
		{"S256 challenge too short", webRequest("code_challenge", "abc"), "https://web.example.com/cb", "invalid_request"},
		{"S256 challenge not base64url", webRequest("code_challenge", strings.Repeat("+", 43)), "https://web.example.com/cb", "invalid_request"},
		{"unknown challenge method", webRequest("code_challenge_method", "S512"), "https://web.example.com/cb", "invalid_request"},
		{"method without challenge", webRequest("code_challenge", ""), "https://web.example.com/cb", "invalid_request"},
		{"scope not allowed", webRequest("scope", "openid admin"), "https://web.example.com/cb", "invalid_scope"},
		{"scope with a quote", webRequest("scope", `openid "x"`), "https://web.example.com/cb", "invalid_scope"},
		{"scope non-ASCII", webRequest("scope", "openid prófile"), "https://web.example.com/cb", "invalid_scope"},
		{"client without the grant", url.Values{"client_id": {"pwonly"}, "response_type": {"code"}, "state": {"st-123"}},
			"https://pw.example.com/cb", "unauthorized_client"},
		{"prompt none and login", webRequest("prompt", "none login"), "https://web.example.com/cb", "invalid_request"},
		{"prompt unknown", webRequest("prompt", "sometimes"), "https://web.example.com/cb", "invalid_request"},
		{"max_age negative", webRequest("max_age", "-1"), "https://web.example.com/cb", "invalid_request"},
		{"max_age not a number", webRequest("max_age", "1h"), "https://web.example.com/cb", "invalid_request"},
		{"max_age with sign", webRequest("max_age", "+5"), "https://web.example.com/cb", "invalid_request"},
		{"request object", webRequest("request", "eyJhbGciOiJub25lIn0.e30."), "https://web.example.com/cb", "request_not_supported"},
		{"request_uri", webRequest("request_uri", "https://evil.example/req"), "https://web.example.com/cb", "request_uri_not_supported"},
		{"response_mode fragment", webRequest("response_mode", "fragment"), "https://web.example.com/cb", "invalid_request"},
		{"identity provider not allowed", webRequest("acr_values", "idp:nowhere"), "https://web.example.com/cb", "invalid_request"},
		{"nonce too long", webRequest("nonce", strings.Repeat("n", maxParamLen+1)), "https://web.example.com/cb", "invalid_request"},
		{"repeated scope", func() url.Values {
			v := webRequest()
			v.Add("scope", "openid")
			return v
		}(), "https://web.example.com/cb", "invalid_request"},
		{"registered query kept", webRequest("redirect_uri", "https://web.example.com/cb2?x=1", "response_type", "token"),
			"https://web.example.com/cb2", "unsupported_response_type"},
		{"prompt none without session", webRequest("prompt", "none"), "https://web.example.com/cb", "login_required"},
	} {
		got := b.authorize(tc.params)
		if got.status != http.StatusFound {
			t.Errorf("%s: authorize = %d %s, want 302", tc.name, got.status, got.body)
			continue
		}
		loc := got.location(t)
		q := loc.Query()
		if base(loc) != tc.to || q.Get("error") != tc.code || q.Get("state") != "st-123" || q.Get("iss") != f.issuer || q.Has("code") {
			t.Errorf("%s: authorize redirects to %q, want %s with error=%s state=st-123 iss=%s and no code", tc.name, loc, tc.to, tc.code, f.issuer)
		}
		if tc.to == "https://web.example.com/cb2" && q.Get("x") != "1" {
			t.Errorf("%s: the registered query was dropped: %q", tc.name, loc)
		}
		if d := q.Get("error_description"); strings.ContainsAny(d, "\"\\\r\n") || strings.ContainsFunc(d, func(r rune) bool { return r > 0x7e }) {
			t.Errorf("%s: error_description %q holds characters RFC 6749 §4.1.2.1 forbids", tc.name, d)
		}
	}
}

// TestAuthorizeFormServed: a person without a session ends on a 200 page with one form: a text
// input for the username, a password input and one submit button, no script, no external asset.
func TestAuthorizeFormServed(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		name   string
		params url.Values
	}{
		{"web", webRequest()},
		{"public with S256 and one redirect URI omitted", webRequest("client_id", "spa", "redirect_uri", "", "scope", "")},
		{"plain allowed by pkce_plain", webRequest("client_id", "native", "redirect_uri", "com.example.app:/cb", "scope", "openid",
			"code_challenge", verifier, "code_challenge_method", "plain")},
		{"confidential without PKCE", webRequest("code_challenge", "", "code_challenge_method", "")},
		{"prompt consent", webRequest("prompt", "consent")},
		{"POSTed request", nil},
	} {
		b := f.browser()
		var got *page
		if tc.params == nil {
			got = b.post(AuthorizePath, webRequest())
		} else {
			got = b.authorize(tc.params)
		}
		if got.status != http.StatusOK {
			t.Fatalf("%s: authorize = %d %s, want 200", tc.name, got.status, got.body)
		}
		for _, want := range []struct {
			pattern string
			count   int
		}{
			{`<form `, 1},
			{`<input type="text"[^>]* name="username"`, 1},
			{`<input type="password"[^>]* name="password"`, 1},
			{`<button type="submit"`, 1},
			{`<meta name="viewport"`, 1},
			{`<script|src="http|href="http|@import|url\(`, 0},
		} {
			if n := len(regexp.MustCompile(want.pattern).FindAllString(got.body, -1)); n != want.count {
				t.Errorf("%s: the page has %d of %q, want %d", tc.name, n, want.pattern, want.count)
			}
		}
		for name, want := range map[string]string{
			"Content-Type":    "text/html; charset=utf-8",
			"Cache-Control":   "no-store",
			"X-Frame-Options": "DENY",
		} {
			if v := got.header.Get(name); v != want {
				t.Errorf("%s: %s = %q, want %q", tc.name, name, v, want)
			}
		}
		if csp := got.header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Errorf("%s: Content-Security-Policy = %q, want frame-ancestors 'none'", tc.name, csp)
		}
	}
}

// The sign-in page names the application by its display name, escaped, or else by its client_id.
func TestAuthorizeFormNamesTheClient(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		client string
		req    url.Values
		want   string
	}{
		{"web", webRequest(), "to continue to Web &amp; Co"},
		{"spa", webRequest("client_id", "spa", "redirect_uri", "", "scope", ""), "to continue to spa"},
	} {
		got := f.browser().authorize(tc.req)
		if got.status != http.StatusOK || !strings.Contains(got.body, tc.want) {
			t.Errorf("%s: authorize = %d, want 200 with %q in %s", tc.client, got.status, tc.want, got.body)
		}
	}
}

// TestAuthorizeMethods: GET and POST only.
func TestAuthorizeMethods(t *testing.T) {
	f := newFixture(t)
	for _, method := range []string{http.MethodPut, http.MethodDelete, http.MethodPatch} {
		req, _ := http.NewRequest(method, f.srv.URL+AuthorizePath+"?"+webRequest().Encode(), nil)
		got := f.browser().do(req)
		if got.status != http.StatusMethodNotAllowed || got.header.Get("Allow") != "GET, POST" {
			t.Errorf("%s %s = %d Allow %q, want 405 Allow %q", method, AuthorizePath, got.status, got.header.Get("Allow"), "GET, POST")
		}
	}
	req, _ := http.NewRequest(http.MethodGet, f.srv.URL+AuthorizePath+"?client_id=web&scope=%zz", nil)
	if got := f.browser().do(req); got.status != http.StatusBadRequest || got.header.Get("Location") != "" {
		t.Errorf("GET %s with %%zz = %d, want 400 and no redirect", AuthorizePath, got.status)
	}
}

// TestSessionSkipsForm: after a sign-in, another authorization in the same browser gets a code
// without the form; prompt=login, a stale max_age, another identity provider or tenant, an expired
// or tampered session bring the form back, or login_required with prompt=none.
func TestSessionSkipsForm(t *testing.T) {
	f := newFixture(t)
	b := f.signedIn()

	got := b.authorize(webRequest("state", "second"))
	loc := got.location(t)
	if base(loc) != "https://web.example.com/cb" || loc.Query().Get("code") == "" || loc.Query().Get("state") != "second" {
		t.Fatalf("a second authorization redirected to %q, want a code and state=second", loc)
	}
	got = b.authorize(webRequest("client_id", "spa", "redirect_uri", "", "scope", "openid", "prompt", "none"))
	if loc := got.location(t); loc.Query().Get("code") == "" {
		t.Errorf("prompt=none with a session redirected to %q, want a code", loc)
	}

	f.Advance(10 * time.Minute)
	for _, tc := range []struct {
		name     string
		params   url.Values
		wantForm bool
	}{
		{"max_age not reached", webRequest("max_age", "3600"), false},
		{"prompt login", webRequest("prompt", "login"), true},
		{"prompt select_account", webRequest("prompt", "select_account"), true},
		{"max_age passed", webRequest("max_age", "300"), true},
		{"max_age 0", webRequest("max_age", "0"), true},
		{"another identity provider", webRequest("acr_values", "idp:partners"), true},
		{"client of another identity provider", url.Values{"client_id": {"partner"}, "response_type": {"code"},
			"code_challenge": {s256(verifier)}, "code_challenge_method": {"S256"}}, true},
		{"a tenant", webRequest("acr_values", "tenant:acme"), true},
	} {
		got := b.authorize(tc.params)
		if got.isForm() != tc.wantForm || (!tc.wantForm && got.status != http.StatusFound) {
			t.Errorf("%s: authorize = %d form %v, want form %v", tc.name, got.status, got.isForm(), tc.wantForm)
		}
		if !tc.wantForm {
			continue
		}
		params := tc.params
		params.Set("prompt", "none")
		if tc.name == "prompt login" || tc.name == "prompt select_account" {
			continue // prompt=none cannot be combined with them
		}
		if loc := b.authorize(params).location(t); loc.Query().Get("error") != "login_required" {
			t.Errorf("%s with prompt=none: redirect %q, want error=login_required", tc.name, loc)
		}
	}

	f.Advance(DefaultSessionTTL)
	if got := b.authorize(webRequest()); !got.isForm() {
		t.Errorf("after the session expired: authorize = %d, want the form", got.status)
	}
}

// removedUser is the grants server after a reload that removed one user from their identity
// provider.
type removedUser struct {
	SignInService
	subject string
}

func (r removedUser) UserKnown(idp, subject string) bool {
	return subject != r.subject && r.SignInService.UserKnown(idp, subject)
}

// A session whose user a reload removed answers nothing: the form is shown again, and prompt=none
// is login_required. Another user's session still answers.
func TestSessionOfARemovedUser(t *testing.T) {
	f := newFixture(t)
	alice := f.signedIn()
	carol := f.browser()
	carol.signIn(carol.authorize(webRequest()), "carol", "carol-pw").location(t)
	f.pages.server = removedUser{f.grants, "alice"}

	if got := alice.authorize(webRequest()); !got.isForm() {
		t.Errorf("alice's session once she is removed: authorize = %d, want the form", got.status)
	}
	if loc := alice.authorize(webRequest("prompt", "none")).location(t); loc.Query().Get("error") != "login_required" || loc.Query().Has("code") {
		t.Errorf("alice's session once she is removed, prompt=none: redirect %q, want error=login_required", loc)
	}
	if loc := carol.authorize(webRequest()).location(t); loc.Query().Get("code") == "" {
		t.Errorf("carol's session: redirect %q, want a code", loc)
	}
}

// TestSessionCookieForged: a session cookie that is altered, or signed with another key, is no
// session.
func TestSessionCookieForged(t *testing.T) {
	f := newFixture(t)
	b := f.signedIn()
	u, _ := url.Parse(f.srv.URL)
	var value string
	for _, c := range b.jar.Cookies(u) {
		if c.Name == sessionCookie {
			value = c.Value
		}
	}
	payload, mac, ok := strings.Cut(value, ".")
	if !ok {
		t.Fatalf("session cookie %q is not payload.mac", value)
	}
	other := *f.pages
	other.sessionKey = []byte(strings.Repeat("x", MinSessionKeyLen))
	raw, _ := b64.DecodeString(payload)
	bob := strings.Replace(string(raw), `"sub":"alice"`, `"sub":"bob"`, 1)
	for name, forged := range map[string]string{
		"payload changed":  b64.EncodeToString([]byte(bob)) + "." + mac,
		"other key":        b64.EncodeToString([]byte(bob)) + "." + b64.EncodeToString(other.mac("session", []byte(bob))),
		"CSRF label":       payload + "." + b64.EncodeToString(f.pages.mac("csrf", raw)),
		"no mac":           payload,
		"empty":            "",
		"oversized":        strings.Repeat("A", maxCookieValue+1) + "." + mac,
		"mac of another":   payload + "." + b64.EncodeToString(f.pages.mac("session", []byte(bob))),
		"not base64 chars": "!!!." + mac,
	} {
		jar := f.browser()
		jar.jar.SetCookies(u, []*http.Cookie{{Name: sessionCookie, Value: forged, Path: "/"}})
		if got := jar.authorize(webRequest()); !got.isForm() {
			t.Errorf("%s: authorize with a forged session = %d %s, want the form", name, got.status, got.header.Get("Location"))
		}
	}
}

// TestCodeFlow: the whole authorization code flow, ending with the token endpoint: the code is
// bound to the client, redirect URI, PKCE verifier and nonce, and carries the session's person.
func TestCodeFlow(t *testing.T) {
	f := newFixture(t)
	b := f.browser()
	form := b.authorize(webRequest("redirect_uri", "https://web.example.com/cb2?x=1", "login_hint", "alice"))
	if !strings.Contains(form.body, `name="username" value="alice"`) {
		t.Errorf("the form does not prefill login_hint: %s", form.body)
	}
	loc := b.signIn(form, "alice", "alice-pw").location(t)
	q := loc.Query()
	if base(loc) != "https://web.example.com/cb2" || q.Get("x") != "1" || q.Get("state") != "st-123" || q.Get("iss") != f.issuer || q.Get("code") == "" {
		t.Fatalf("sign-in redirected to %q, want the registered URI with x=1, code, state and iss", loc)
	}
	if len(q.Get("code")) < 43 {
		t.Errorf("code %q is under 256 bits", q.Get("code"))
	}
	status, body := f.redeem(q.Get("code"), "https://web.example.com/cb2?x=1", verifier)
	if status != http.StatusOK {
		t.Fatalf("redeeming the code = %d %v, want 200", status, body)
	}
	id := jwtpart.Claims(t, body["id_token"].(string))
	for name, want := range map[string]any{"iss": f.issuer, "sub": "alice", "aud": "web", "nonce": "n-456", "auth_time": float64(f.Now().Unix())} {
		if id[name] != want {
			t.Errorf("id_token[%q] = %v, want %v", name, id[name], want)
		}
	}
	if access := jwtpart.Claims(t, body["access_token"].(string)); access["scope"] != "openid profile email api.read" || access["department"] != "research" {
		t.Errorf("access token scope %v department %v, want the requested scope and the user's claims", access["scope"], access["department"])
	}

	// A code from the session (no form) carries the same person and auth_time.
	f.Advance(time.Minute)
	loc = b.authorize(webRequest("nonce", "n-2")).location(t)
	status, body = f.redeem(loc.Query().Get("code"), "https://web.example.com/cb", verifier)
	if status != http.StatusOK {
		t.Fatalf("redeeming the session's code = %d %v", status, body)
	}
	id = jwtpart.Claims(t, body["id_token"].(string))
	if id["sub"] != "alice" || id["nonce"] != "n-2" || id["auth_time"] != float64(f.Now().Add(-time.Minute).Unix()) {
		t.Errorf("session id_token sub %v nonce %v auth_time %v, want alice, n-2 and the sign-in time", id["sub"], id["nonce"], id["auth_time"])
	}

	// The code is bound to its verifier (and is used up by a wrong one).
	loc = b.authorize(webRequest()).location(t)
	if status, body := f.redeem(loc.Query().Get("code"), "https://web.example.com/cb", verifier+"x"); status != http.StatusBadRequest || body["error"] != "invalid_grant" {
		t.Errorf("redeeming with a wrong verifier = %d %v, want invalid_grant", status, body)
	}
	// And to its redirect URI.
	loc = b.authorize(webRequest()).location(t)
	if status, body := f.redeem(loc.Query().Get("code"), "https://web.example.com/cb/", verifier); status != http.StatusBadRequest || body["error"] != "invalid_grant" {
		t.Errorf("redeeming with another redirect_uri = %d %v, want invalid_grant", status, body)
	}
}

// TestCodeFlowTenantAndIdP: acr_values picks the identity provider and the tenant, which the
// session then remembers.
func TestCodeFlowTenantAndIdP(t *testing.T) {
	f := newFixture(t)
	b := f.browser()
	loc := b.signIn(b.authorize(webRequest("acr_values", "idp:partners")), "bob", "bob-pw").location(t)
	if loc.Query().Get("code") == "" {
		t.Fatalf("bob signing in through partners: %q, want a code", loc)
	}
	// The partners session serves the client that may only use partners, without a form.
	got := b.authorize(url.Values{"client_id": {"partner"}, "response_type": {"code"}, "code_challenge": {s256(verifier)}, "code_challenge_method": {"S256"}})
	if got.location(t).Query().Get("code") == "" {
		t.Errorf("a partners session for the partner client: %d, want a code", got.status)
	}

	b = f.browser()
	form := b.authorize(webRequest("acr_values", "tenant:acme"))
	// alice is not in tenant initech: as wrong as a wrong password.
	if got := b.signIn(b.authorize(webRequest("acr_values", "tenant:initech")), "alice", "alice-pw"); got.status != http.StatusUnauthorized {
		t.Errorf("alice into tenant initech = %d, want 401", got.status)
	}
	loc = b.signIn(form, "alice", "alice-pw").location(t)
	_, body := f.redeem(loc.Query().Get("code"), "https://web.example.com/cb", verifier)
	if access := jwtpart.Claims(t, body["access_token"].(string)); access["tenant"] != "acme" {
		t.Errorf("access token tenant = %v, want acme", access["tenant"])
	}
	if got := b.authorize(webRequest("acr_values", "tenant:acme")); got.status != http.StatusFound {
		t.Errorf("the acme session for tenant:acme = %d, want a code without the form", got.status)
	}
}

// TestMetadataAddAuthorization: the interactive endpoints, code only, S256 and plain only when asked.
func TestMetadataAddAuthorization(t *testing.T) {
	for _, tc := range []struct {
		plain bool
		want  string
	}{
		{false, `["S256"]`},
		{true, `["S256","plain"]`},
	} {
		meta := NewMetadata("https://auth.example.com/t")
		meta.AddAuthorization(tc.plain)
		if got := mustJSON(meta.CodeChallengeMethodsSupported); got != tc.want {
			t.Errorf("AddAuthorization(%v): code_challenge_methods_supported = %s, want %s", tc.plain, got, tc.want)
		}
		for name, pair := range map[string][2]string{
			"authorization_endpoint":   {meta.AuthorizationEndpoint, "https://auth.example.com/t/connect/authorize"},
			"userinfo_endpoint":        {meta.UserinfoEndpoint, "https://auth.example.com/t/connect/userinfo"},
			"end_session_endpoint":     {meta.EndSessionEndpoint, "https://auth.example.com/t/connect/endsession"},
			"response_types_supported": {mustJSON(meta.ResponseTypesSupported), `["code"]`},
		} {
			if pair[0] != pair[1] {
				t.Errorf("AddAuthorization(%v): %s = %q, want %q", tc.plain, name, pair[0], pair[1])
			}
		}
	}
}
