package endpoints

import (
	"html/template"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tokengate/tokengate/internal/jwtpart"
)

// TestLoginCSRF: a sign-in POST must carry the token of a form this site gave this browser (login
// CSRF); anything else is a 403 page, with no redirect and no session.
func TestLoginCSRF(t *testing.T) {
	f := newFixture(t)
	victim := f.browser()
	victimForm := victim.authorize(webRequest()).form(t)
	attacker := f.browser()
	attackerForm := attacker.authorize(webRequest()).form(t)
	creds := func(form url.Values) url.Values {
		form = cloneValues(form)
		form.Set("username", "alice")
		form.Set("password", "alice-pw")
		return form
	}
	without := creds(victimForm)
	without.Del(fieldCSRF)
	empty := creds(victimForm)
	empty.Set(fieldCSRF, "")
	tampered := creds(victimForm)
	tampered.Set(fieldCSRF, tampered.Get(fieldCSRF)+"A")
	forgedExpiry := creds(victimForm)
	_, mac, _ := strings.Cut(forgedExpiry.Get(fieldCSRF), ".")
	forgedExpiry.Set(fieldCSRF, strconv.FormatInt(f.Now().Add(48*time.Hour).Unix(), 10)+"."+mac)
	for _, tc := range []struct {
		name string
		b    *browser
		form url.Values
	}{
		{"no token", victim, without},
		{"empty token", victim, empty},
		{"another browser's token", victim, creds(attackerForm)},
		{"tampered token", victim, tampered},
		{"token with a forged expiry", victim, forgedExpiry},
		{"token without its cookie", f.browser(), creds(victimForm)},
		{"password without username or token", victim, url.Values{"password": {"alice-pw"}, "client_id": {"web"}}},
	} {
		got := tc.b.post(AuthorizePath, tc.form)
		if got.status != http.StatusForbidden || got.header.Get("Location") != "" || got.isForm() {
			t.Errorf("%s: sign-in POST = %d Location %q, want a 403 page", tc.name, got.status, got.header.Get("Location"))
		}
	}
	// Credentials in a GET never sign anyone in.
	if got := victim.authorize(creds(victimForm)); got.status != http.StatusForbidden {
		t.Errorf("sign-in by GET = %d, want 403", got.status)
	}
	if got := victim.authorize(webRequest()); !got.isForm() {
		t.Errorf("after the refused POSTs the victim has a session: %d", got.status)
	}
	// The token expires with the form.
	f.Advance(csrfTTL + time.Second)
	if got := victim.post(AuthorizePath, creds(victimForm)); got.status != http.StatusForbidden {
		t.Errorf("an expired form = %d, want 403", got.status)
	}
	// A fresh form works.
	if got := victim.signIn(victim.authorize(webRequest()), "alice", "alice-pw"); got.status != http.StatusFound {
		t.Errorf("a fresh form = %d %s, want 302", got.status, got.body)
	}
}

func cloneValues(v url.Values) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

// TestLoginWrongPassword: the form again, the same for an unknown user as for a wrong password,
// and the username kept.
func TestLoginWrongPassword(t *testing.T) {
	f := newFixture(t)
	b := f.browser()
	wrong := b.signIn(b.authorize(webRequest()), "alice", "nope")
	unknown := b.signIn(b.authorize(webRequest()), "mallory", "nope")
	for name, got := range map[string]*page{"wrong password": wrong, "unknown user": unknown} {
		if got.status != http.StatusUnauthorized || !got.isForm() || !strings.Contains(got.body, "The username or password is incorrect.") {
			t.Errorf("%s: sign-in = %d, want 401 with the form and the message; %s", name, got.status, got.body)
		}
		if got.header.Get("Location") != "" || strings.Contains(got.header.Get("Set-Cookie"), sessionCookie) {
			t.Errorf("%s: sign-in redirected or started a session", name)
		}
	}
	if !strings.Contains(wrong.body, `name="username" value="alice"`) {
		t.Errorf("the form after a wrong password lost the username")
	}
	if missing := b.signIn(b.authorize(webRequest()), "alice", ""); missing.status != http.StatusBadRequest || !missing.isForm() {
		t.Errorf("sign-in without a password = %d, want 400 with the form", missing.status)
	}
	// The form shown again still works.
	if got := b.signIn(wrong, "alice", "alice-pw"); got.status != http.StatusFound {
		t.Errorf("signing in from the form shown again = %d, want 302", got.status)
	}
}

// TestLoginThrottled: from the 10th wrong password, 429 with Retry-After and a message saying when
// to retry, even for the right password; another user is unaffected.
func TestLoginThrottled(t *testing.T) {
	f := newFixture(t)
	b := f.browser()
	var got *page
	for i := 0; i < 12; i++ {
		got = b.signIn(b.authorize(webRequest()), "alice", "wrong")
	}
	if got.status != http.StatusTooManyRequests || !got.isForm() {
		t.Fatalf("the 12th wrong password = %d, want 429 with the form", got.status)
	}
	retry, err := strconv.Atoi(got.header.Get("Retry-After"))
	if err != nil || retry < 1 {
		t.Errorf("Retry-After = %q, want whole seconds", got.header.Get("Retry-After"))
	}
	if want := "Too many attempts. Try again in " + strconv.Itoa(retry) + " s."; !strings.Contains(got.body, want) {
		t.Errorf("the throttled form does not say %q: %s", want, got.body)
	}
	if right := b.signIn(b.authorize(webRequest()), "alice", "alice-pw"); right.status != http.StatusTooManyRequests {
		t.Errorf("the right password while throttled = %d, want 429", right.status)
	}
	if carol := b.signIn(b.authorize(webRequest()), "carol", "carol-pw"); carol.status != http.StatusFound {
		t.Errorf("another user while alice is throttled = %d, want 302", carol.status)
	}
}

// TestLoginParamsRevalidated: the form carries the request as hidden fields, checked again on POST,
// so editing them cannot reach an unregistered URI or widen the scope; extra fields do nothing.
func TestLoginParamsRevalidated(t *testing.T) {
	f := newFixture(t)
	b := f.browser()
	for _, tc := range []struct {
		name, field, value string
		wantStatus         int
	}{
		{"redirect to evil", "redirect_uri", "https://evil.example/cb", http.StatusBadRequest},
		{"scheme-relative", "redirect_uri", "//evil.example/cb", http.StatusBadRequest},
		{"javascript", "redirect_uri", "javascript:alert(1)", http.StatusBadRequest},
		{"unknown client", "client_id", "nobody", http.StatusBadRequest},
		{"wider scope", "scope", "openid admin", http.StatusFound},
		{"client swapped", "client_id", "spa", http.StatusBadRequest},
	} {
		form := b.authorize(webRequest()).form(t)
		form.Set(tc.field, tc.value)
		form.Set("username", "alice")
		form.Set("password", "alice-pw")
		got := b.post(AuthorizePath, form)
		if got.status != tc.wantStatus {
			t.Errorf("%s: sign-in = %d, want %d", tc.name, got.status, tc.wantStatus)
			continue
		}
		if got.status == http.StatusFound {
			if loc := got.location(t); base(loc) != "https://web.example.com/cb" || loc.Query().Get("error") != "invalid_scope" {
				t.Errorf("%s: redirect %q, want invalid_scope to the registered URI", tc.name, loc)
			}
		}
	}
	form := b.authorize(webRequest()).form(t)
	form.Set("return_to", "https://evil.example/")
	form.Set("username", "alice")
	form.Set("password", "alice-pw")
	if loc := b.post(AuthorizePath, form).location(t); base(loc) != "https://web.example.com/cb" {
		t.Errorf("a return_to field redirected to %q", loc)
	}
}

// TestLoginPromptLoginSignsIn: prompt=login shows the form, and signing in on it answers the
// request rather than showing the form again.
func TestLoginPromptLoginSignsIn(t *testing.T) {
	f := newFixture(t)
	b := f.signedIn()
	form := b.authorize(webRequest("prompt", "login", "max_age", "0"))
	if loc := b.signIn(form, "carol", "carol-pw").location(t); loc.Query().Get("code") == "" {
		t.Fatalf("signing in on a prompt=login form: %q, want a code", loc)
	}
	loc := b.authorize(webRequest()).location(t)
	_, body := f.redeem(loc.Query().Get("code"), "https://web.example.com/cb", verifier)
	if sub := jwtpart.Claims(t, body["access_token"].(string))["sub"]; sub != "carol" {
		t.Errorf("after signing in again the session is %v's, want carol's", sub)
	}
}

// TestCookieAttributes: HttpOnly, SameSite=Lax, Path=/; over TLS Secure and the __Host- prefix,
// which a sibling subdomain cannot set.
func TestCookieAttributes(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		target string
		name   string
		secure bool
	}{
		{"http://auth.example.com" + AuthorizePath, sessionCookie, false},
		{"https://auth.example.com" + AuthorizePath, "__Host-" + sessionCookie, true},
	} {
		rec := httptest.NewRecorder()
		f.pages.Authorize(rec, httptest.NewRequest(http.MethodGet, tc.target+"?"+webRequest().Encode(), nil))
		form := (&page{status: rec.Code, body: rec.Body.String()}).form(t)
		csrf := rec.Result().Cookies()
		form.Set("username", "alice")
		form.Set("password", "alice-pw")
		req := httptest.NewRequest(http.MethodPost, tc.target, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for _, c := range csrf {
			req.AddCookie(c)
		}
		rec = httptest.NewRecorder()
		f.pages.Authorize(rec, req)
		if rec.Code != http.StatusFound {
			t.Fatalf("%s: sign-in = %d %s, want 302", tc.target, rec.Code, rec.Body)
		}
		cookies := append(csrf, rec.Result().Cookies()...)
		var found bool
		for _, c := range cookies {
			found = found || c.Name == tc.name
			if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Secure != tc.secure || c.Domain != "" {
				t.Errorf("%s: cookie %s HttpOnly %v SameSite %v Path %q Secure %v Domain %q, want true Lax / %v none",
					tc.target, c.Name, c.HttpOnly, c.SameSite, c.Path, c.Secure, c.Domain, tc.secure)
			}
		}
		if !found {
			t.Errorf("%s: no cookie %s among %v", tc.target, tc.name, cookies)
		}
	}
}

// TestLoginTemplateReplaced: a login_template renders every page from the same data.
func TestLoginTemplateReplaced(t *testing.T) {
	f := newFixture(t)
	custom := template.Must(template.New("custom").Parse(
		`<p>ACME {{.Title}}: {{.Message}}</p>{{with .Login}}<form method="post" action="{{.Action}}">` +
			`{{range .Hidden}}<input type="hidden" name="{{.Name}}" value="{{.Value}}">{{end}}` +
			`<input type="text" name="username" value="{{.Username}}"><input type="password" name="password"><button type="submit">Go</button></form>{{end}}`))
	pages, err := NewPages(PagesConfig{Issuer: f.issuer, Server: f.grants,
		SessionKey: f.key, Keys: f.keySet, Template: custom, Now: f.Now})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	pages.Authorize(rec, httptest.NewRequest(http.MethodGet, AuthorizePath+"?"+webRequest().Encode(), nil))
	if !strings.HasPrefix(rec.Body.String(), "<p>ACME Sign in: </p><form") || !strings.Contains(rec.Body.String(), `name="csrf_token"`) {
		t.Errorf("custom template page = %s", rec.Body)
	}
	rec = httptest.NewRecorder()
	pages.Authorize(rec, httptest.NewRequest(http.MethodGet, AuthorizePath+"?client_id=nobody", nil))
	if rec.Code != http.StatusBadRequest || !strings.HasPrefix(rec.Body.String(), "<p>ACME Sign-in problem: ") {
		t.Errorf("custom template error page = %d %s", rec.Code, rec.Body)
	}
}

// TestNewPagesRefuses: the session key must be long enough; the server and keys are required.
func TestNewPagesRefuses(t *testing.T) {
	f := newFixture(t)
	for name, cfg := range map[string]PagesConfig{
		"short key":  {Issuer: f.issuer, Server: f.grants, Keys: f.keySet, SessionKey: []byte("short")},
		"no issuer":  {Server: f.grants, Keys: f.keySet, SessionKey: f.key},
		"no server":  {Issuer: f.issuer, Keys: f.keySet, SessionKey: f.key},
		"no keys":    {Issuer: f.issuer, Server: f.grants, SessionKey: f.key},
		"bad issuer": {Issuer: "http://a b", Server: f.grants, Keys: f.keySet, SessionKey: f.key},
	} {
		if _, err := NewPages(cfg); err == nil {
			t.Errorf("NewPages(%s) = nil error, want a refusal", name)
		}
	}
}
