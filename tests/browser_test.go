package tests

import (
	"bytes"
	"context"
	"fmt"
	"html/template"
	"image"
	"image/png"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// signInCaddyfile is the configuration of the sign-in tests: a relying party "rp" (a confidential
// client of the authorization code flow, which may refresh, shown as "Expense Reports") that
// returns to {{RP}}/callback and {{RP}}/signed-out, and the user alice with an email claim.
const signInCaddyfile = `{
	tokengate {
		issuer {{BASE}}
		store memory
		client rp {
			display_name "Expense Reports"
			secret rp-secret
			grants authorization_code refresh_token
			scopes openid profile email offline_access
			redirect_uris {{RP}}/callback
			post_logout_redirect_uris {{RP}}/signed-out
		}
		users local {
			user alice {{ALICE_HASH}} {
				claim email alice@example.com
			}
		}
	}
}

{{BASE}} {
	tokengate
}
`

// startSignInCaddy starts Caddy on signInCaddyfile for a relying party at rp (a URL without a
// trailing slash).
func startSignInCaddy(t *testing.T, rp string) *Caddy {
	t.Helper()
	return startCaddy(t, strings.NewReplacer("{{RP}}", rp, "{{ALICE_HASH}}", aliceHash()).Replace(signInCaddyfile))
}

// needCommand returns the path of the program name. Without it the test is skipped on a developer's
// machine, and fails on CI (CI=true), whose .ci/run installs every program the tests need.
func needCommand(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is required on CI: %v", name, err)
		}
		t.Skipf("%s is not installed: %v", name, err)
	}
	return path
}

// needNodePackage returns the path of node once the npm package at path (below tests/) named what
// is installed, as needCommand does for a program: make -f xcaddy.mk test installs them from
// tests/node/package-lock.json.
func needNodePackage(t *testing.T, path, what string) string {
	t.Helper()
	node := needCommand(t, "node")
	if _, err := os.Stat(path); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not installed (make -f xcaddy.mk test runs `npm ci --prefix tests/node`): %v", what, err)
		}
		t.Skipf("%s is not installed; run `npm ci --prefix tests/node`: %v", what, err)
	}
	return node
}

// chromiumPath is Debian's Chromium, which .ci/run installs.
const chromiumPath = "/usr/bin/chromium"

// startBrowser starts a headless Chromium with a profile of its own, stopped when the test ends.
func startBrowser(t *testing.T) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(needCommand(t, chromiumPath)),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.WindowSize(1280, 800),
	)
	// The browser lives as long as the first context it runs in: testContext's, so a hung page ends
	// with the test.
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(testContext(t), opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting %s: %v", chromiumPath, err)
	}
	return ctx
}

// loginPage is what a page shows of the sign-in form's contract.
type loginPage struct {
	Forms     int    `json:"forms"`
	Usernames int    `json:"usernames"`
	Passwords int    `json:"passwords"`
	Submits   int    `json:"submits"`
	Text      string `json:"text"`
}

// readLoginPage counts the page's forms, and in the first one the text inputs named username, the
// password inputs and the submit buttons.
func readLoginPage(t *testing.T, ctx context.Context) loginPage {
	t.Helper()
	return readPage[loginPage](t, ctx, `
		return {
			forms: forms.length,
			usernames: all('input[name=username]').filter(i => i.type === 'text').length,
			passwords: all('input[type=password]').length,
			submits: `+submitButtonsJS+`.length,
			text: document.body.innerText,
		};`)
}

// submitButtonsJS lists the submit buttons of the page's first form.
const submitButtonsJS = `[...document.querySelectorAll('form')].slice(0, 1).flatMap(f =>
	[...f.querySelectorAll('button[type=submit], button:not([type]), input[type=submit]')])`

// readPage reads the page the browser shows into a T with script, the body of a JavaScript
// function that returns T's JSON. In it, forms are the page's forms and all(selector) lists the
// elements of the first form that selector matches.
func readPage[T any](t *testing.T, ctx context.Context, script string) T {
	t.Helper()
	page, err := chromedp.Run(ctx, chromedp.Evaluate[T](`(() => {
		const forms = document.querySelectorAll('form');
		const all = s => forms.length ? [...forms[0].querySelectorAll(s)] : [];`+script+`
	})()`))
	if err != nil {
		t.Fatalf("reading the page: %v", err)
	}
	return page
}

// wantFitsPhone shows the page on a phone's 390 px wide screen and fails t unless nothing of page
// is wider than the screen and the first form's submit buttons are within reach; it keeps a
// screenshot under name.
func wantFitsPhone(t *testing.T, ctx context.Context, page, name string) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile, chromedp.EmulatePortrait)); err != nil {
		t.Fatal(err)
	}
	fit, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth <= innerWidth &&
		`+submitButtonsJS+`.every(b => b.getBoundingClientRect().right <= innerWidth)`))
	if err != nil || !fit {
		t.Errorf("on a 390 px wide screen %s is wider than the screen or a button is out of view (%v)", page, err)
	}
	saveScreenshot(t, ctx, name, 390)
}

// wantLoginForm fails the test unless the page holds exactly one form with one username text
// input, one password input and one submit button.
func wantLoginForm(t *testing.T, ctx context.Context, what string) loginPage {
	t.Helper()
	page := readLoginPage(t, ctx)
	if page.Forms != 1 || page.Usernames != 1 || page.Passwords != 1 || page.Submits != 1 {
		t.Fatalf("%s: %d forms, the first with %d username text inputs, %d password inputs, %d submit buttons; want 1 form with 1 of each\npage text: %q",
			what, page.Forms, page.Usernames, page.Passwords, page.Submits, page.Text)
	}
	return page
}

// relyingParty is the application the browser signs in to: its redirect URIs answer with a page,
// and it authorizes with PKCE and a nonce and checks what comes back as an OIDC client library does.
type relyingParty struct {
	*httptest.Server
	config   *oauth2.Config
	verifier *oidc.IDTokenVerifier
}

func startRelyingParty(t *testing.T) *relyingParty {
	t.Helper()
	rp := &relyingParty{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /callback", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "<!DOCTYPE html><title>rp</title><p>back at the application")
	})
	mux.HandleFunc("GET /signed-out", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "<!DOCTYPE html><title>rp</title><p>signed out")
	})
	mux.HandleFunc("GET /attack", rp.attack)
	rp.Server = httptest.NewServer(mux)
	t.Cleanup(rp.Close)
	return rp
}

// connect points rp at the tokengate of c, through discovery.
func (rp *relyingParty) connect(t *testing.T, c *Caddy) {
	t.Helper()
	provider, err := oidc.NewProvider(testContext(t), c.Base)
	if err != nil {
		t.Fatalf("oidc.NewProvider(%q) = %v", c.Base, err)
	}
	ep := provider.Endpoint()
	ep.AuthStyle = oauth2.AuthStyleInHeader
	rp.config = &oauth2.Config{
		ClientID:     "rp",
		ClientSecret: "rp-secret",
		Endpoint:     ep,
		RedirectURL:  rp.URL + "/callback",
		Scopes:       []string{oidc.ScopeOpenID, "email"},
	}
	rp.verifier = provider.Verifier(&oidc.Config{ClientID: "rp"})
}

// authRequest is one authorization request of rp: its URL and the secrets it keeps to check the answer.
type authRequest struct {
	url, state, nonce, verifier string
}

func (rp *relyingParty) newRequest() authRequest {
	req := authRequest{state: oauth2.GenerateVerifier(), nonce: oauth2.GenerateVerifier(), verifier: oauth2.GenerateVerifier()}
	req.url = rp.config.AuthCodeURL(req.state, oauth2.S256ChallengeOption(req.verifier), oauth2.SetAuthURLParam("nonce", req.nonce))
	return req
}

// finish checks that the browser came back to the callback with req's state and a code, redeems the
// code with the PKCE verifier and verifies the ID token, nonce included. It returns the raw ID token.
func (rp *relyingParty) finish(t *testing.T, req authRequest, landed string) string {
	t.Helper()
	back, err := url.Parse(landed)
	if err != nil || !strings.HasPrefix(landed, rp.config.RedirectURL+"?") {
		t.Fatalf("the browser is at %q, want the redirect_uri %q with a query", landed, rp.config.RedirectURL)
	}
	q := back.Query()
	if q.Get("state") != req.state || q.Get("code") == "" || q.Get("error") != "" {
		t.Fatalf("redirect_uri query = %q, want a code and state %q", back.RawQuery, req.state)
	}
	ctx := testContext(t)
	tok, err := rp.config.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(req.verifier))
	if err != nil {
		t.Fatalf("redeeming the code with the PKCE verifier: %v", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	idToken, err := rp.verifier.Verify(ctx, raw)
	if err != nil {
		t.Fatalf("verifying the id_token %q: %v", raw, err)
	}
	if idToken.Subject != "alice" || idToken.Nonce != req.nonce {
		t.Errorf("id_token sub %q nonce %q, want alice and the request's nonce %q", idToken.Subject, idToken.Nonce, req.nonce)
	}
	return raw
}

// attackPage is a page of another site (CSRF): it posts a sign-in form to the authorization
// endpoint, with alice's right password and the authorization request's parameters, so that only the
// CSRF defence stops the browser from being signed in.
var attackPage = template.Must(template.New("attack").Parse(`<!DOCTYPE html>
<title>another site</title>
<form method="post" action="{{.Action}}">
{{range $name, $values := .Fields}}{{range $values}}<input type="hidden" name="{{$name}}" value="{{.}}">
{{end}}{{end}}<button type="submit">win a prize</button>
</form>`))

// attack serves attackPage for the authorization request and CSRF token in its query: action, the
// URL of the authorization request, and csrf_token, a token to send along (none when empty).
func (rp *relyingParty) attack(w http.ResponseWriter, r *http.Request) {
	authURL, err := url.Parse(r.URL.Query().Get("action"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	fields := authURL.Query()
	fields.Set("username", "alice")
	fields.Set("password", alicePassword)
	if token := r.URL.Query().Get("csrf_token"); token != "" {
		fields.Set("csrf_token", token)
	}
	authURL.RawQuery = ""
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	attackPage.Execute(w, struct {
		Action string
		Fields url.Values
	}{authURL.String(), fields})
}

// TestBrowserSignIn walks a person through the authorization code flow in Chromium: the sign-in
// page (a plain HTML form that works without JavaScript), a wrong and a right password, the code redeemed by an
// OIDC relying party, single sign-on through the session cookie, login CSRF from another site, and
// logout. It saves screenshots of the sign-in page at desktop and phone sizes.
func TestBrowserSignIn(t *testing.T) {
	t.Parallel()
	ctx := startBrowser(t)
	rp := startRelyingParty(t)
	c := startSignInCaddy(t, rp.URL)
	rp.connect(t, c)

	first := rp.newRequest()
	resp, err := chromedp.RunResponse(ctx, chromedp.Navigate(first.url))
	if err != nil {
		t.Fatalf("opening the authorization URL: %v", err)
	}
	if resp.Status != http.StatusOK || !strings.HasPrefix(resp.URL, c.URL("/")) {
		t.Fatalf("GET /connect/authorize without a session ended at %s with HTTP %d, want a 200 page of the site", resp.URL, resp.Status)
	}
	if page := wantLoginForm(t, ctx, "the sign-in page"); !strings.Contains(page.Text, "to continue to Expense Reports") {
		t.Errorf("the sign-in page does not name the client by its display_name; its text:\n%s", page.Text)
	}
	saveScreenshot(t, ctx, "tokengate-login.png", 1280)

	// A wrong password shows the form again, saying why.
	resp = typePassword(t, ctx, "alice", "not-"+alicePassword)
	page := wantLoginForm(t, ctx, "the sign-in page after a wrong password")
	if resp.Status != http.StatusUnauthorized || !strings.Contains(strings.ToLower(page.Text), "incorrect") {
		t.Errorf("a wrong password: HTTP %d, page text %q; want 401 and a page that says the password is incorrect", resp.Status, page.Text)
	}

	resp = typePassword(t, ctx, "alice", alicePassword)
	rawIDToken := rp.finish(t, first, resp.URL)

	// The session cookie answers the next authorization request without the form, and no script or
	// cross-site subrequest gets it.
	cookies, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{c.URL("/")}})
	if err != nil {
		t.Fatal(err)
	}
	if session := findCookie(cookies.Cookies, "tokengate_session"); session == nil {
		t.Errorf("after signing in the browser holds no tokengate_session cookie for %s", c.Base)
	} else if !session.HTTPOnly || session.SameSite != network.CookieSameSiteLax {
		t.Errorf("tokengate_session cookie HttpOnly %v SameSite %q, want HttpOnly and SameSite Lax", session.HTTPOnly, session.SameSite)
	}
	second := rp.newRequest()
	resp, err = chromedp.RunResponse(ctx, chromedp.Navigate(second.url))
	if err != nil {
		t.Fatal(err)
	}
	rp.finish(t, second, resp.URL)

	// RP-Initiated Logout ends the session and returns to the registered post-logout URI with state.
	logout := c.URL("/connect/endsession?") + url.Values{
		"id_token_hint":            {rawIDToken},
		"post_logout_redirect_uri": {rp.URL + "/signed-out"},
		"state":                    {"bye"},
	}.Encode()
	resp, err = chromedp.RunResponse(ctx, chromedp.Navigate(logout))
	if err != nil {
		t.Fatal(err)
	}
	if want := rp.URL + "/signed-out?state=bye"; resp.URL != want {
		t.Errorf("after /connect/endsession the browser is at %q, want %q", resp.URL, want)
	}
	third := rp.newRequest()
	if _, err := chromedp.RunResponse(ctx, chromedp.Navigate(third.url)); err != nil {
		t.Fatal(err)
	}
	wantLoginForm(t, ctx, "an authorization request after logout")

	// The same form on a phone: nothing wider than the screen, the button within reach.
	wantFitsPhone(t, ctx, "the sign-in page", "tokengate-login-phone.png")

	// Login CSRF: another site posts alice's credentials to the authorization endpoint, without a
	// CSRF token, or with the token of this browser's own form (its cookie stays home: SameSite=Lax).
	token, err := chromedp.Run(ctx, chromedp.Value(chromedp.CSS(`input[name=csrf_token]`)))
	if err != nil {
		t.Fatal(err)
	}
	// localhost is another site than 127.0.0.1, where tokengate is.
	attacker := strings.Replace(rp.URL, "127.0.0.1", "localhost", 1) + "/attack?"
	for name, csrf := range map[string]string{"no token": "", "this browser's token": token} {
		page := attacker + url.Values{"action": {third.url}, "csrf_token": {csrf}}.Encode()
		if err := chromedp.Do(ctx, chromedp.Navigate(page)); err != nil {
			t.Fatal(err)
		}
		resp, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(`button[type=submit]`)))
		if err != nil {
			t.Fatalf("cross-site POST with %s: %v", name, err)
		}
		if got := readLoginPage(t, ctx); resp.Status != http.StatusForbidden || got.Forms != 0 {
			t.Errorf("cross-site POST with %s of alice's password: HTTP %d at %s with %d forms, want 403 and no form", name, resp.Status, resp.URL, got.Forms)
		}
	}
	if _, err := chromedp.RunResponse(ctx, chromedp.Navigate(rp.newRequest().url)); err != nil {
		t.Fatal(err)
	}
	wantLoginForm(t, ctx, "an authorization request after the cross-site POSTs (they must not sign the browser in)")
}

// typePassword types username and password into the sign-in form and submits it, returning the response
// the browser ends on.
func typePassword(t *testing.T, ctx context.Context, username, password string) *network.Response {
	t.Helper()
	resp, err := chromedp.RunResponse(ctx,
		chromedp.Clear(chromedp.CSS(`input[name=username]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name=username]`), username),
		chromedp.SendKeys(chromedp.CSS(`input[type=password]`), password),
		chromedp.Click(chromedp.CSS(`form [type=submit]`)),
	)
	if err != nil {
		t.Fatalf("submitting the sign-in form: %v", err)
	}
	return resp
}

func findCookie(cookies []*network.Cookie, name string) *network.Cookie {
	for _, c := range cookies {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// saveScreenshot takes a screenshot of the whole page, checks that it is a PNG width pixels wide with
// more than a blank page's few colours, and keeps it in the test's directory and, for a person to
// look at, in the system's temporary directory under name.
func saveScreenshot(t *testing.T, ctx context.Context, name string, width int) {
	t.Helper()
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	for _, dir := range []string{t.TempDir(), os.TempDir()} {
		if err := os.WriteFile(filepath.Join(dir, name), shot, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	img, err := png.Decode(bytes.NewReader(shot))
	if err != nil {
		t.Fatalf("screenshot %s is not a PNG: %v", name, err)
	}
	size := img.Bounds().Size()
	if size.X != width || size.Y < 400 || size.Y > 4000 {
		t.Errorf("screenshot %s is %dx%d, want %d wide and 400 to 4000 high", name, size.X, size.Y, width)
	}
	if n := colours(img); n < 16 {
		t.Errorf("screenshot %s has %d colours, want a rendered page (at least 16: text, fields, a button)", name, n)
	}
}

// colours counts the distinct colours of img.
func colours(img image.Image) int {
	seen := map[[4]uint32]bool{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, a := img.At(x, y).RGBA()
			seen[[4]uint32{r, g, bl, a}] = true
		}
	}
	return len(seen)
}
