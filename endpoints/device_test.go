package endpoints

import (
	"context"
	"encoding/json"
	"html"
	"html/template"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tokengate/tokengate/grants"
	"github.com/tokengate/tokengate/identity"
	"github.com/tokengate/tokengate/internal/bcrypttest"
	"github.com/tokengate/tokengate/internal/testclock"
	"github.com/tokengate/tokengate/store"
	"github.com/tokengate/tokengate/tokens"
	"golang.org/x/oauth2"
)

// deviceEnv serves the token endpoint, the device authorization endpoint and the device page over
// a real HTTP server whose URL is the issuer, on a memory store. Clients: tv (public) and box
// (confidential, "box-secret"), both with device_code; user alice ("alice-pw"). A request's
// address is its X-Test-Address header, so a test can speak from several.
type deviceEnv struct {
	t        *testing.T
	srv      *httptest.Server
	grants   *grants.Server
	page     *DevicePage
	store    *store.Memory
	verifier *tokens.Verifier
	now      func() time.Time
	// throttled is the addresses whose user code guesses the page throttled, one a refusal.
	throttled chan string
}

func newDeviceEnv(t *testing.T, now func() time.Time, tmpl *template.Template) *deviceEnv {
	t.Helper()
	mux := http.NewServeMux()
	e := &deviceEnv{t: t, srv: httptest.NewServer(mux), now: now, throttled: make(chan string, 100)}
	t.Cleanup(e.srv.Close)
	issuer := e.srv.URL
	e.store = store.NewMemory(now)
	keys := testKeySet(t, tokens.ES256)
	keySource := func() *tokens.KeySet { return keys }
	e.verifier = tokens.NewVerifier(issuer, keySource, now)
	users := staticUsers(t, identity.StaticUser{Username: "alice", Hash: bcrypttest.Hash(t, "alice-pw")})
	address := func(r *http.Request) string { return r.Header.Get("X-Test-Address") }
	e.grants = newGrants(t, issuer, grants.Settings{
		Clients: []*grants.Client{
			{ID: "tv", DisplayName: "Living Room TV", Public: true, Grants: []string{"device_code"}, Scopes: []string{"openid", "api.read"}},
			{ID: "box", Secrets: secrets(t, "box-secret"), Grants: []string{"device_code"}, Scopes: []string{"api.read"}},
		},
		IdentityProviders: []grants.IdentityProvider{{Name: "main", Provider: users}},
	}, grants.Dependencies{
		Store:    e.store,
		Minter:   tokens.NewMinter(issuer, keySource, now),
		Verifier: e.verifier,
		ClientIP: address,
		Now:      now,
	})
	observe := func(ev grants.Event) {
		if ev.Kind == grants.EventThrottled && ev.What == grants.ThrottledUserCode {
			e.throttled <- ev.RemoteIP
		}
	}
	var err error
	e.page, err = NewDevicePage(DeviceConfig{Issuer: issuer, Server: e.grants, ClientIP: address, SignIns: e.store,
		Template: tmpl, Observe: observe, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	mux.Handle(TokenPath, e.grants)
	mux.HandleFunc(DeviceAuthorizationPath, e.grants.DeviceAuthorization)
	mux.Handle(DevicePath, e.page)
	return e
}

// post sends a form to path and decodes the JSON answer.
func (e *deviceEnv) post(path string, form url.Values) (int, map[string]any) {
	e.t.Helper()
	resp, err := http.PostForm(e.srv.URL+path, form)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body
}

// start asks for a device code as tv and returns device_code and verification_uri_complete.
func (e *deviceEnv) start() (deviceCode, complete string) {
	e.t.Helper()
	status, body := e.post(DeviceAuthorizationPath, url.Values{"client_id": {"tv"}, "scope": {"openid api.read"}})
	deviceCode, _ = body["device_code"].(string)
	complete, _ = body["verification_uri_complete"].(string)
	if status != http.StatusOK || deviceCode == "" || !strings.HasPrefix(complete, e.srv.URL+DevicePath+"?user_code=") {
		e.t.Fatalf("device authorization = %d %v, want 200 with a code and the page's URL", status, body)
	}
	return deviceCode, complete
}

// poll polls the token endpoint as tv and returns the status and the error code or access token.
func (e *deviceEnv) poll(deviceCode string) (int, string) {
	e.t.Helper()
	status, body := e.post(TokenPath, url.Values{"client_id": {"tv"}, "grant_type": {grants.GrantTypeDeviceCode},
		"device_code": {deviceCode}})
	if token, ok := body["access_token"].(string); ok {
		return status, token
	}
	code, _ := body["error"].(string)
	return status, code
}

// deviceBrowser is one person's browser at one address.
type deviceBrowser struct {
	e       *deviceEnv
	address string
	hc      *http.Client
}

func (e *deviceEnv) browser(address string) *deviceBrowser {
	jar, _ := cookiejar.New(nil)
	return &deviceBrowser{e: e, address: address, hc: &http.Client{Jar: jar}}
}

func (b *deviceBrowser) do(method, target string, form url.Values) *page {
	b.e.t.Helper()
	req, err := http.NewRequest(method, target, strings.NewReader(form.Encode()))
	if err != nil {
		b.e.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.Header.Set("X-Test-Address", b.address)
	return send(b.e.t, b.hc, req)
}

func (b *deviceBrowser) open(target string) *page {
	return b.do(http.MethodGet, target, nil)
}

// submit posts the form on p with its fields, the given ones set, as a browser would.
func (b *deviceBrowser) submit(p *page, set ...string) *page {
	b.e.t.Helper()
	form := p.fields(b.e.t)
	for i := 0; i < len(set); i += 2 {
		form.Set(set[i], set[i+1])
	}
	return b.do(http.MethodPost, b.e.srv.URL+DevicePath, form)
}

var deviceInput = regexp.MustCompile(`<input type="(?:hidden|text)"[^>]* name="([^"]*)" value="([^"]*)"`)

// fields returns the values of the one form on p, failing when there is none.
func (p *page) fields(t *testing.T) url.Values {
	t.Helper()
	if strings.Count(p.body, "<form") != 1 {
		t.Fatalf("want one form, got %d %s", p.status, p.body)
	}
	form := url.Values{}
	for _, m := range deviceInput.FindAllStringSubmatch(p.body, -1) {
		form.Set(html.UnescapeString(m[1]), html.UnescapeString(m[2]))
	}
	return form
}

func (p *page) expect(t *testing.T, what string, status int, contains ...string) {
	t.Helper()
	if p.status != status {
		t.Fatalf("%s: %d, want %d: %s", what, p.status, status, p.body)
	}
	for _, s := range contains {
		if !strings.Contains(p.body, s) {
			t.Fatalf("%s: the page lacks %q: %s", what, s, p.body)
		}
	}
}

// The markup each step must hold: the forms' contract, described at DeviceView.
const (
	codeInput     = `name="user_code"`
	passwordInput = `<input type="password"`
	approveButton = `<button type="submit" name="approve"`
	denyButton    = `<button type="submit" name="deny" value="deny">Deny</button>`
)

// decideFrom walks the page from verification_uri_complete to the decision form.
func (b *deviceBrowser) decideFrom(complete string) *page {
	b.e.t.Helper()
	codePage := b.open(complete)
	codePage.expect(b.e.t, "verification_uri_complete", http.StatusOK, codeInput)
	login := b.submit(codePage)
	login.expect(b.e.t, "code entered", http.StatusOK, passwordInput, "to continue to Living Room TV")
	decide := b.submit(login, "username", "alice", "password", "alice-pw")
	decide.expect(b.e.t, "signed in", http.StatusOK, approveButton, denyButton)
	if strings.Index(decide.body, approveButton) > strings.Index(decide.body, denyButton) {
		b.e.t.Errorf("the deny button comes before approve: %s", decide.body)
	}
	return decide
}

// decisionReached is a device flow on a test clock whose person, in a browser at 192.0.2.1, has
// signed in and sees the decision form.
type decisionReached struct {
	*deviceEnv
	clock      *testclock.Clock
	deviceCode string
	complete   string
	person     *deviceBrowser
	decide     *page
}

func reachDecision(t *testing.T) *decisionReached {
	t.Helper()
	clock := testclock.New(time.Unix(1_800_000_000, 0))
	e := newDeviceEnv(t, clock.Now, nil)
	deviceCode, complete := e.start()
	b := e.browser("192.0.2.1")
	return &decisionReached{deviceEnv: e, clock: clock, deviceCode: deviceCode, complete: complete, person: b, decide: b.decideFrom(complete)}
}

func userCodeOf(t *testing.T, complete string) string {
	t.Helper()
	u, err := url.Parse(complete)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query().Get("user_code")
}

func TestDevicePageApprove(t *testing.T) {
	c := testclock.New(time.Unix(1_800_000_000, 0))
	e := newDeviceEnv(t, c.Now, nil)
	deviceCode, complete := e.start()
	if status, code := e.poll(deviceCode); status != http.StatusBadRequest || code != grants.CodeAuthorizationPending {
		t.Fatalf("poll before the person acts = %d %q, want 400 authorization_pending", status, code)
	}
	b := e.browser("192.0.2.1")
	// The person types the code: lower case, no dash.
	codePage := b.open(e.srv.URL + DevicePath)
	codePage.expect(t, "the page", http.StatusOK, codeInput)
	// A framed approve button invites clickjacking; a cached page would keep the CSRF token.
	for header, want := range map[string]string{"X-Frame-Options": "DENY", "Cache-Control": "no-store"} {
		if got := codePage.header.Get(header); got != want {
			t.Errorf("%s = %q, want %q", header, got, want)
		}
	}
	if got := codePage.header.Get("Content-Security-Policy"); !strings.Contains(got, "frame-ancestors 'none'") {
		t.Errorf("Content-Security-Policy = %q, want frame-ancestors 'none'", got)
	}
	typed := strings.ToLower(strings.ReplaceAll(userCodeOf(t, complete), "-", ""))
	login := b.submit(codePage, "user_code", typed)
	// The device's application is named by its display name on every page about its request.
	login.expect(t, "code typed", http.StatusOK, passwordInput, "api.read", "to continue to Living Room TV")
	wrong := b.submit(login, "username", "alice", "password", "wrong")
	wrong.expect(t, "wrong password", http.StatusUnauthorized, passwordInput, "incorrect")
	decide := b.submit(wrong, "username", "alice", "password", "alice-pw")
	decide.expect(t, "signed in", http.StatusOK, approveButton, denyButton, "to continue to Living Room TV")

	done := b.submit(decide, "approve", "approve")
	done.expect(t, "approved", http.StatusOK, "approved")
	if strings.Contains(done.body, "<form") {
		t.Errorf("the page after approval holds a form: %s", done.body)
	}
	c.Advance(5 * time.Second)
	status, token := e.poll(deviceCode)
	if status != http.StatusOK {
		t.Fatalf("poll after approval = %d %q, want 200", status, token)
	}
	if claims, err := e.verifier.VerifyAccessToken(token); err != nil || claims.Subject != "alice" || claims.ClientID != "tv" {
		t.Errorf("access token = %+v, %v, want alice's for tv", claims, err)
	}
	if status, code := e.poll(deviceCode); status != http.StatusBadRequest || code != grants.CodeInvalidGrant {
		t.Errorf("second poll = %d %q, want 400 invalid_grant", status, code)
	}
	// The decision form posted again decides nothing more.
	again := b.submit(decide, "deny", "deny")
	again.expect(t, "decision replayed", http.StatusBadRequest, codeInput)
}

func TestDevicePageDeny(t *testing.T) {
	for _, tt := range []struct {
		name string
		set  []string
	}{
		{"deny button", []string{"deny", "deny"}},
		{"no button, as a cancel control would post", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := reachDecision(t)
			done := d.person.submit(d.decide, tt.set...)
			done.expect(t, "denied", http.StatusOK, "denied")
			if strings.Contains(done.body, "<form") {
				t.Errorf("the page after denial holds a form: %s", done.body)
			}
			if status, code := d.poll(d.deviceCode); status != http.StatusBadRequest || code != grants.CodeAccessDenied {
				t.Errorf("poll after denial = %d %q, want 400 access_denied", status, code)
			}
		})
	}
}

// Every step refuses a form not posted from this page in this browser, and a decision needs the
// sign-in of the browser that posts it.
func TestDevicePageCSRF(t *testing.T) {
	d := reachDecision(t)
	victim := d.person
	ticket := d.decide.fields(t).Get("ticket")

	// A page elsewhere makes the victim's browser post: the cookie goes along, the token cannot.
	forged := url.Values{"step": {DeviceStepDecide}, "ticket": {ticket}, "approve": {"approve"}}
	victim.do(http.MethodPost, d.srv.URL+DevicePath, forged).expect(t, "no token", http.StatusForbidden)
	forged.Set("csrf", "x")
	victim.do(http.MethodPost, d.srv.URL+DevicePath, forged).expect(t, "wrong token", http.StatusForbidden)

	// An attacker with the ticket, its own cookie and token: the ticket is bound to the victim's.
	attacker := d.browser("198.51.100.7")
	own := attacker.open(d.srv.URL + DevicePath).fields(t).Get("csrf")
	forged.Set("csrf", own)
	attacker.do(http.MethodPost, d.srv.URL+DevicePath, forged).expect(t, "another browser's ticket", http.StatusForbidden)

	// The code and login steps too.
	for _, step := range []url.Values{
		{"step": {DeviceStepCode}, "user_code": {userCodeOf(t, d.complete)}},
		{"step": {DeviceStepLogin}, "user_code": {userCodeOf(t, d.complete)}, "username": {"alice"}, "password": {"alice-pw"}},
	} {
		d.browser("192.0.2.9").do(http.MethodPost, d.srv.URL+DevicePath, step).expect(t, "step "+step.Get("step")+" without cookie", http.StatusForbidden)
	}
	if status, code := d.poll(d.deviceCode); code != grants.CodeAuthorizationPending {
		t.Errorf("poll after the forgeries = %d %q, want authorization_pending", status, code)
	}
}

// From the 10th wrong user code from one address within a minute, the page answers 429, to a
// right code too; other addresses are unaffected, and a minute later it answers again.
func TestDevicePageThrottlesWrongCodes(t *testing.T) {
	c := testclock.New(time.Unix(1_800_000_000, 0))
	e := newDeviceEnv(t, c.Now, nil)
	_, complete := e.start()
	right := userCodeOf(t, complete)
	guesser := e.browser("203.0.113.5")
	page := guesser.open(e.srv.URL + DevicePath)
	for i := range 9 {
		page = guesser.submit(page, "user_code", "BCDF-GHJ"+string("BCDFGHJKLM"[i]))
		if page.status != http.StatusBadRequest {
			t.Fatalf("wrong code %d = %d, want 400", i+1, page.status)
		}
	}
	page = guesser.submit(page, "user_code", right)
	page.expect(t, "the right code after 9 wrong ones", http.StatusTooManyRequests, codeInput, "Too many wrong codes")
	if secs, err := strconv.Atoi(page.header.Get("Retry-After")); err != nil || secs < 1 || secs > 60 {
		t.Errorf("Retry-After = %q, want 1 to 60 s", page.header.Get("Retry-After"))
	}
	// The login step's hidden user_code is a way to guess too.
	guesser.do(http.MethodPost, e.srv.URL+DevicePath, url.Values{"csrf": {page.fields(t).Get("csrf")}, "step": {DeviceStepLogin},
		"user_code": {right}, "username": {"alice"}, "password": {"alice-pw"}}).expect(t, "login step while throttled", http.StatusTooManyRequests)

	if n := len(e.throttled); n != 2 || <-e.throttled != "203.0.113.5" {
		t.Errorf("%d throttled guesses observed, want 2 from 203.0.113.5", n)
	}

	other := e.browser("192.0.2.1")
	other.submit(other.open(complete)).expect(t, "another address", http.StatusOK, passwordInput)
	c.Advance(time.Minute)
	guesser.submit(page, "user_code", right).expect(t, "a minute later", http.StatusOK, passwordInput)
}

// A sign-in outlives nothing: once the code has expired, the decision records nothing.
func TestDevicePageExpired(t *testing.T) {
	d := reachDecision(t)
	b := d.person
	d.clock.Advance(300 * time.Second)
	b.submit(d.decide, "approve", "approve").expect(t, "approval after expiry", http.StatusBadRequest, codeInput)
	if status, code := d.poll(d.deviceCode); code != grants.CodeExpiredToken {
		t.Errorf("poll after expiry = %d %q, want expired_token", status, code)
	}
	b.submit(b.open(d.complete)).expect(t, "expired code typed", http.StatusBadRequest, codeInput, "expired")
}

func TestDevicePageMethods(t *testing.T) {
	e := newDeviceEnv(t, time.Now, nil)
	b := e.browser("192.0.2.1")
	if got := b.do(http.MethodPut, e.srv.URL+DevicePath, url.Values{}); got.status != http.StatusMethodNotAllowed || got.header.Get("Allow") != "GET, HEAD, POST" {
		t.Errorf("PUT = %d (Allow %q), want 405", got.status, got.header.Get("Allow"))
	}
	if got := b.open(e.srv.URL + DevicePath + "?user_code=" + strings.Repeat("B", 100)); strings.Contains(got.body, strings.Repeat("B", 100)) {
		t.Error("an overlong user_code in the URL was echoed into the form")
	}
	page := b.open(e.srv.URL + DevicePath)
	b.submit(page, "step", "other").expect(t, "unknown step", http.StatusBadRequest, codeInput)
}

// login_template replaces the device pages too, fed a DeviceView.
func TestDevicePageTemplate(t *testing.T) {
	tmpl := template.Must(template.New("custom").Parse(`<p>custom {{.Step}}</p>{{if .Step}}<form method="post" action="{{.Action}}">` +
		`<input type="hidden" name="csrf" value="{{.CSRF}}"><input type="hidden" name="step" value="{{.Step}}"></form>{{end}}`))
	e := newDeviceEnv(t, time.Now, tmpl)
	e.browser("192.0.2.1").open(e.srv.URL+DevicePath).expect(t, "custom template", http.StatusOK, "custom code", `action="`+DevicePath+`"`)
}

func TestNewDevicePageRefuses(t *testing.T) {
	e := newDeviceEnv(t, time.Now, nil)
	for name, cfg := range map[string]DeviceConfig{
		"no issuer":  {Server: e.grants, SignIns: e.store},
		"no server":  {Issuer: e.srv.URL, SignIns: e.store},
		"no store":   {Issuer: e.srv.URL, Server: e.grants},
		"bad issuer": {Issuer: "http://[::1", Server: e.grants, SignIns: e.store},
	} {
		if _, err := NewDevicePage(cfg); err == nil {
			t.Errorf("NewDevicePage with %s = nil error, want one", name)
		}
	}
}

// TestDeviceFlowOAuth2 runs the whole flow with golang.org/x/oauth2 as the device, on real time:
// it asks for a code, polls while a person approves in a browser, and gets the token.
func TestDeviceFlowOAuth2(t *testing.T) {
	if testing.Short() {
		t.Skip("polls on real time, at least one 5 s interval")
	}
	e := newDeviceEnv(t, time.Now, nil)
	cfg := &oauth2.Config{
		ClientID: "tv",
		Endpoint: oauth2.Endpoint{DeviceAuthURL: e.srv.URL + DeviceAuthorizationPath, TokenURL: e.srv.URL + TokenPath,
			AuthStyle: oauth2.AuthStyleInParams},
		Scopes: []string{"openid", "api.read"},
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	da, err := cfg.DeviceAuth(ctx)
	if err != nil {
		t.Fatalf("DeviceAuth: %v", err)
	}
	if da.VerificationURI != e.srv.URL+DevicePath || da.Interval != 5 || da.Expiry.IsZero() {
		t.Errorf("DeviceAuth = %+v, want the page's URL, interval 5, an expiry", da)
	}
	b := e.browser("192.0.2.1")
	b.submit(b.decideFrom(da.VerificationURIComplete), "approve", "approve").expect(t, "approved", http.StatusOK, "approved")
	tok, err := cfg.DeviceAccessToken(ctx, da)
	if err != nil {
		t.Fatalf("DeviceAccessToken: %v", err)
	}
	if claims, err := e.verifier.VerifyAccessToken(tok.AccessToken); err != nil || claims.Subject != "alice" {
		t.Errorf("access token = %+v, %v, want alice's", claims, err)
	}
	if id, _ := tok.Extra("id_token").(string); id == "" {
		t.Error("no id_token for openid")
	}
}
