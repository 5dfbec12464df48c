package endpoints

import (
	"html"
	"html/template"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tokengate/tokengate/federation"
	"github.com/tokengate/tokengate/grants"
	"github.com/tokengate/tokengate/identity"
	"github.com/tokengate/tokengate/internal/bcrypttest"
	"github.com/tokengate/tokengate/internal/testclock"
	"github.com/tokengate/tokengate/store"
	"github.com/tokengate/tokengate/tokens"
)

const upstreamAuthorize = "https://upstream.example/authorize"

// externalPages are pages whose client fed may use the users block main and the external
// provider ext (tenant acme), and whose client localonly may use main alone.
func externalPages(t *testing.T, tmpl *template.Template) *Pages {
	t.Helper()
	clk := testclock.New(time.Unix(1_800_000_000, 0))
	mem := store.NewMemory(clk.Now)
	keys := testKeySet(t, tokens.ES256)
	keySet := func() *tokens.KeySet { return keys }
	main := staticUsers(t, identity.StaticUser{Username: "alice", Hash: bcrypttest.Hash(t, "alice-pw")})
	const issuer = "https://tg.example"
	code := []string{"authorization_code"}
	server := newGrants(t, issuer, grants.Settings{
		Clients: []*grants.Client{
			{ID: "fed", Public: true, Grants: code, Scopes: []string{"openid"}, RedirectURIs: []string{"https://fed.example/cb"},
				IdentityProviders: []string{"main", "ext"}},
			{ID: "localonly", Public: true, Grants: code, Scopes: []string{"openid"}, RedirectURIs: []string{"https://local.example/cb"}},
		},
		IdentityProviders: []grants.IdentityProvider{{Name: "ext", External: true}, {Name: "main", Provider: main}},
	}, grants.Dependencies{Store: mem, Minter: tokens.NewMinter(issuer, keySet, clk.Now),
		Verifier: tokens.NewVerifier(issuer, keySet, clk.Now), Now: clk.Now})
	ext, err := federation.New(federation.Config{Name: "ext", DisplayName: "Example SSO", Kind: federation.KindOAuth2,
		AuthorizeURL: upstreamAuthorize, TokenURL: "https://upstream.example/token", UserinfoURL: "https://upstream.example/me",
		ClientID: "tg", RedirectURI: URL(issuer, ExternalCallbackPath("ext")), Tenants: []string{"acme"}})
	if err != nil {
		t.Fatal(err)
	}
	pages, err := NewPages(PagesConfig{Issuer: issuer, Server: server, SessionKey: []byte(strings.Repeat("k", MinSessionKeyLen)),
		Keys: keySet, Template: tmpl, External: []*federation.Provider{ext}, Used: mem, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	return pages
}

func authorizeAt(pages *Pages, client string, extra ...string) *httptest.ResponseRecorder {
	redirect := map[string]string{"fed": "https://fed.example/cb", "localonly": "https://local.example/cb"}[client]
	q := url.Values{"client_id": {client}, "response_type": {"code"}, "redirect_uri": {redirect}, "state": {"st"},
		"code_challenge": {s256(verifier)}, "code_challenge_method": {"S256"}}
	for i := 0; i+1 < len(extra); i += 2 {
		q.Set(extra[i], extra[i+1])
	}
	rec := httptest.NewRecorder()
	pages.Authorize(rec, httptest.NewRequest(http.MethodGet, AuthorizePath+"?"+q.Encode(), nil))
	return rec
}

// locationQuery is the query of where rec redirects to, empty when it does not.
func locationQuery(rec *httptest.ResponseRecorder) url.Values {
	to, err := url.Parse(rec.Header().Get("Location"))
	if err != nil {
		return url.Values{}
	}
	return to.Query()
}

// TestLoginTemplateGetsProviders: a login_template draws the providers itself from .Login.External
// and knows from .Login.Password whether to draw the password form.
func TestLoginTemplateGetsProviders(t *testing.T) {
	custom := template.Must(template.New("custom").Parse(`{{with .Login}}password={{.Password}}` +
		`{{range .External}};{{.Name}}|{{.DisplayName}}|{{.URL}}{{end}}{{end}}`))
	rec := authorizeAt(externalPages(t, custom), "fed")
	body := rec.Body.String()
	parts := strings.SplitN(strings.TrimPrefix(body, "password=true;"), "|", 3)
	if !strings.HasPrefix(body, "password=true;") || len(parts) != 3 || parts[0] != "ext" {
		t.Fatalf("page = %s, want password=true and the provider ext", body)
	}
	label, link := parts[1], html.UnescapeString(parts[2])
	u, err := url.Parse(link)
	if label != "Example SSO" || err != nil || u.Path != AuthorizePath || u.Query().Get("acr_values") != "idp:ext" || u.Query().Get("state") != "st" {
		t.Errorf("provider %q links to %q, want its display name and this request naming idp:ext", label, link)
	}
	if body := authorizeAt(externalPages(t, custom), "localonly").Body.String(); body != "password=true" {
		t.Errorf("page of a client without the provider = %s, want no provider", body)
	}
}

// TestExternalStart: idp: sends the browser to the upstream with a pending cookie, a tenant the
// provider does not declare or a provider the client may not use is invalid_request at the client,
// and the upstream is never reached.
func TestExternalStart(t *testing.T) {
	pages := externalPages(t, nil)
	for _, tc := range []struct {
		name, client, acr string
		upstream          bool
	}{
		{"idp:ext", "fed", "idp:ext", true},
		{"idp:ext with a declared tenant", "fed", "idp:ext tenant:acme", true},
		{"idp:ext with another tenant", "fed", "idp:ext tenant:globex", false},
		{"idp:ext for a client without it", "localonly", "idp:ext", false},
	} {
		rec := authorizeAt(pages, tc.client, "acr_values", tc.acr)
		to, _ := url.Parse(rec.Header().Get("Location"))
		switch {
		case tc.upstream && (to == nil || !strings.HasPrefix(to.String(), upstreamAuthorize+"?")):
			t.Errorf("%s: HTTP %d to %v, want the upstream", tc.name, rec.Code, to)
		case tc.upstream && !strings.Contains(rec.Header().Get("Set-Cookie"), externalCookie+"="):
			t.Errorf("%s: no pending sign-in cookie", tc.name)
		case !tc.upstream && (to == nil || to.Query().Get("error") != "invalid_request" || to.Query().Get("state") != "st"):
			t.Errorf("%s: HTTP %d to %v, want invalid_request at the client", tc.name, rec.Code, to)
		}
	}
	// OIDC Core §3.1.2.1: the client's login_hint and prompt=login go on to the upstream, which
	// otherwise would answer from its own session the person asked to leave.
	rec := authorizeAt(pages, "fed", "acr_values", "idp:ext", "prompt", "login", "login_hint", "a@b.example")
	if q := locationQuery(rec); q.Get("prompt") != "login" || q.Get("login_hint") != "a@b.example" {
		t.Errorf("upstream request %v, want prompt=login and the login_hint passed on", q)
	}
	if q := locationQuery(authorizeAt(pages, "fed", "acr_values", "idp:ext")); q.Has("prompt") || q.Has("login_hint") {
		t.Errorf("upstream request %v, want no prompt or login_hint the client did not send", q)
	}
	rec = authorizeAt(pages, "fed")
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "Sign in with Example SSO") || !strings.Contains(rec.Body.String(), `type="password"`) {
		t.Errorf("sign-in page = %d %s, want the password form and the provider link", rec.Code, rec.Body)
	}
}
