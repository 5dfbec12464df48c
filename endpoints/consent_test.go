package endpoints

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/tokengate/tokengate/grants"
)

const (
	mcpClientID = "https://mcp.example/client.json"
	mcpRedirect = "http://127.0.0.1/callback"
	brokenID    = "https://broken.example/client.json"
	downID      = "https://down.example/client.json"
)

// mcpSource resolves mcpClientID to a public dynamic client whose name tries to inject markup, and
// refuses brokenID as a metadata document that does not hold.
type mcpSource struct{}

func (mcpSource) LookupClient(_ context.Context, id string) (*grants.Client, error) {
	switch id {
	case mcpClientID:
		return &grants.Client{ID: mcpClientID, Dynamic: true, Public: true, DisplayName: `Evil <script>alert(1)</script> "App"`,
			Grants: []string{"authorization_code", "refresh_token"}, Scopes: []string{"openid", "mcp.tools"},
			RedirectURIs: []string{mcpRedirect, "com.example.mcp:/cb"}}, nil
	case brokenID:
		return nil, errors.New("the client metadata document's client_id is not the URL it was fetched from")
	case downID:
		return nil, fmt.Errorf("%w: the store does not answer", grants.ErrSourceUnavailable)
	}
	return nil, grants.ErrNotOwned
}

func (mcpSource) Owns(id string) bool { return id == mcpClientID || id == brokenID }

// mcpRequest is a valid authorization request of the dynamic client, its loopback redirect URI on
// an ephemeral port.
func mcpRequest(kv ...string) url.Values {
	v := webRequest(append([]string{"client_id", mcpClientID, "redirect_uri", "http://127.0.0.1:49152/callback",
		"scope", "openid mcp.tools", "nonce", "", "resource", mcpResource}, kv...)...)
	return v
}

// consentForm returns the fields the consent page on p posts, failing when p is not that page:
// one form, allow first, deny second, no password input.
func (p *page) consentForm(t testing.TB) url.Values {
	t.Helper()
	allow := strings.Index(p.body, `<button type="submit" name="consent" value="allow">`)
	deny := strings.Index(p.body, `<button type="submit" name="consent" value="deny"`)
	if p.status != http.StatusOK || allow < 0 || deny < allow || p.isForm() || strings.Count(p.body, "<form") != 1 {
		t.Fatalf("want the consent page, got %d %s", p.status, p.body)
	}
	form := url.Values{}
	for _, m := range hiddenField.FindAllStringSubmatch(p.body, -1) {
		form.Add(m[1], strings.ReplaceAll(strings.ReplaceAll(m[2], "&#43;", "+"), "&amp;", "&"))
	}
	return form
}

// The sign-in and consent pages name a dynamic client as not verified, escaped, with its
// client_id's host and where the browser returns; after sign-in the person is asked, and allow
// sends a code the client redeems.
func TestConsentAfterSignIn(t *testing.T) {
	f := newFixture(t)
	b := f.browser()
	login := b.authorize(mcpRequest())
	for _, want := range []string{"Evil &lt;script&gt;alert(1)&lt;/script&gt; &#34;App&#34;", "not verified", "mcp.example", "127.0.0.1:49152"} {
		if !strings.Contains(login.body, want) {
			t.Errorf("the sign-in page lacks %q: %s", want, login.body)
		}
	}
	if strings.Contains(login.body, "<script>") {
		t.Fatal("the client's name reached the page unescaped")
	}
	consent := b.signIn(login, "alice", "alice-pw")
	form := consent.consentForm(t)
	for _, want := range []string{"not verified", "mcp.example", "127.0.0.1:49152", "alice", "mcp.tools"} {
		if !strings.Contains(consent.body, want) {
			t.Errorf("the consent page lacks %q", want)
		}
	}
	form.Set("consent", "allow")
	back := b.post(AuthorizePath, form).location(t)
	if base(back) != "http://127.0.0.1:49152/callback" || back.Query().Get("state") != "st-123" || back.Query().Get("iss") != f.issuer {
		t.Fatalf("allow redirected to %s", back)
	}
	// The public dynamic client redeems the code with PKCE, and gets a refresh token without
	// offline_access.
	tokenForm := url.Values{"grant_type": {"authorization_code"}, "client_id": {mcpClientID}, "code": {back.Query().Get("code")},
		"redirect_uri": {"http://127.0.0.1:49152/callback"}, "code_verifier": {verifier}}
	resp := b.post(TokenPath, tokenForm)
	if resp.status != http.StatusOK || !strings.Contains(resp.body, `"refresh_token"`) {
		t.Fatalf("redeeming the code: %d %s", resp.status, resp.body)
	}
}

// A person already signed in is asked at once, every time; deny sends access_denied.
func TestConsentEveryTimeAndDeny(t *testing.T) {
	f := newFixture(t)
	b := f.signedIn()
	for range 2 {
		form := b.authorize(mcpRequest()).consentForm(t)
		form.Set("consent", "allow")
		if got := b.post(AuthorizePath, form).location(t); got.Query().Get("code") == "" {
			t.Fatalf("allow redirected to %s", got)
		}
	}
	form := b.authorize(mcpRequest()).consentForm(t)
	form.Set("consent", "deny")
	got := b.post(AuthorizePath, form).location(t)
	if base(got) != "http://127.0.0.1:49152/callback" || got.Query().Get("error") != "access_denied" ||
		got.Query().Get("state") != "st-123" || got.Query().Get("code") != "" || got.Query().Get("iss") != f.issuer {
		t.Errorf("deny redirected to %s", got)
	}
	// A configured client is not asked.
	if got := b.authorize(webRequest()).location(t); got.Query().Get("code") == "" {
		t.Errorf("the configured client got %s", got)
	}
	// prompt=none cannot show the page (OIDC Core §3.1.2.6).
	if got := b.authorize(mcpRequest("prompt", "none")).location(t); got.Query().Get("error") != "consent_required" {
		t.Errorf("prompt=none redirected to %s", got)
	}
}

// A consent answer that this site's form did not carry is refused, and sends nothing anywhere.
func TestConsentForged(t *testing.T) {
	f := newFixture(t)
	victim := f.signedIn()
	form := victim.authorize(mcpRequest()).consentForm(t)
	form.Set("consent", "allow")
	noCSRF := url.Values{}
	for k, v := range form {
		if k != "csrf_token" {
			noCSRF[k] = v
		}
	}
	attacker := f.signedIn()
	for name, try := range map[string]func() *page{
		"without a CSRF token": func() *page { return victim.post(AuthorizePath, noCSRF) },
		"with another browser's CSRF token": func() *page {
			return victim.post(AuthorizePath, attacker.authorize(mcpRequest()).consentForm(t))
		},
		"by GET": func() *page { return victim.get(AuthorizePath, form) },
	} {
		if got := try(); got.status != http.StatusForbidden || got.header.Get("Location") != "" {
			t.Errorf("a consent %s: %d %s", name, got.status, got.header.Get("Location"))
		}
	}
	// Without a session the answer counts for nothing: the sign-in form comes back.
	stranger := f.browser()
	strangerForm := stranger.authorize(mcpRequest()).form(t)
	strangerForm.Set("consent", "allow")
	if got := stranger.post(AuthorizePath, strangerForm); !got.isForm() {
		t.Errorf("a consent without a session: %d %s", got.status, got.body)
	}
	// Neither allow nor deny, or both at once: an error page.
	form.Add("consent", "deny")
	if got := victim.post(AuthorizePath, form); got.status != http.StatusBadRequest || got.header.Get("Location") != "" {
		t.Errorf("allow and deny at once: %d %s", got.status, got.header.Get("Location"))
	}
}

// A dynamic client's failures are the person's error page, never a redirect; its requests obey
// the public client's PKCE rule.
func TestDynamicClientRefusals(t *testing.T) {
	f := newFixture(t)
	b := f.browser()
	for name, params := range map[string]url.Values{
		"a document that does not hold":       mcpRequest("client_id", brokenID),
		"a redirect URI not in the document":  mcpRequest("redirect_uri", "http://127.0.0.1:49152/other"),
		"a loopback redirect on another host": mcpRequest("redirect_uri", "http://localhost:49152/callback"),
		"an https redirect on another port":   mcpRequest("redirect_uri", "https://127.0.0.1:49152/callback"),
	} {
		got := b.authorize(params)
		if got.status != http.StatusBadRequest || got.header.Get("Location") != "" {
			t.Errorf("%s: %d %s", name, got.status, got.header.Get("Location"))
		}
	}
	if got := b.authorize(mcpRequest("client_id", downID)); got.status != http.StatusServiceUnavailable || got.header.Get("Location") != "" {
		t.Errorf("a client whose source is down: %d %s", got.status, got.header.Get("Location"))
	}
	if got := b.authorize(mcpRequest("client_id", brokenID)); !strings.Contains(got.body, "client_id is not the URL") {
		t.Errorf("the error page does not say why the document was refused: %s", got.body)
	}
	for name, params := range map[string]url.Values{
		"without PKCE":    mcpRequest("code_challenge", "", "code_challenge_method", ""),
		"with PKCE plain": mcpRequest("code_challenge", verifier, "code_challenge_method", "plain"),
	} {
		if got := b.authorize(params).location(t); got.Query().Get("error") != "invalid_request" {
			t.Errorf("%s: redirected to %s", name, got)
		}
	}
}
