package tests

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/tokengate/tokengate/internal/jwtpart"
)

// fakeGitHub is a GitHub Enterprise Server as far as signing in goes: its OAuth endpoints answer
// form-encoded as GitHub does, its /user has a numeric id beyond 2^32 and no public email, and
// /user/emails lists a primary verified address among others.
type fakeGitHub struct {
	srv *httptest.Server

	mu sync.Mutex
	// verifier is the code_verifier the last code redemption sent.
	verifier string
}

func startFakeGitHub(t *testing.T) *fakeGitHub {
	t.Helper()
	gh := &fakeGitHub{}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /login/oauth/access_token", func(w http.ResponseWriter, r *http.Request) {
		id, secret, _ := r.BasicAuth()
		if id != "gh-client" || secret != "gh-secret" || r.FormValue("code") != "gh-code" {
			w.Header().Set("Content-Type", "application/x-www-form-urlencoded")
			w.Write([]byte("error=bad_verification_code"))
			return
		}
		gh.mu.Lock()
		gh.verifier = r.FormValue("code_verifier")
		gh.mu.Unlock()
		w.Header().Set("Content-Type", "application/x-www-form-urlencoded")
		w.Write([]byte("access_token=gho_test&token_type=bearer&scope=read%3Auser%2Cuser%3Aemail"))
	})
	authorized := func(r *http.Request) bool { return r.Header.Get("Authorization") == "Bearer gho_test" }
	mux.HandleFunc("GET /api/v3/user", func(w http.ResponseWriter, r *http.Request) {
		if !authorized(r) {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Write([]byte(`{"login":"octocat","id":12345678901,"name":null,"email":null,"company":"GitHub"}`))
	})
	mux.HandleFunc("GET /api/v3/user/emails", func(w http.ResponseWriter, r *http.Request) {
		if !authorized(r) {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		json.NewEncoder(w).Encode([]map[string]any{
			{"email": "old@example.org", "primary": false, "verified": true},
			{"email": "unverified@example.com", "primary": false, "verified": false},
			{"email": "octocat@example.com", "primary": true, "verified": true},
		})
	})
	// A plain OAuth 2.0 provider on the same server: JSON answers, the person's id under uid.
	mux.HandleFunc("POST /plain/token", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"access_token":"gho_test","token_type":"Bearer"}`))
	})
	mux.HandleFunc("GET /plain/me", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"uid":"u-7","email":"seven@corp.example","name":"Seven"}`))
	})
	gh.srv = httptest.NewServer(mux)
	t.Cleanup(gh.srv.Close)
	return gh
}

// federationOAuth2 declares the fake GitHub at {{GH}} as the github provider gh, and its plain
// OAuth 2.0 side as the oauth2 provider plain.
var federationOAuth2 = federationConfig("https://rp.example/callback", "gh plain", `
		github gh {
			client_id gh-client
			client_secret gh-secret
			base_url {{GH}}
			claim company company
			allowed_domains example.com
		}
		oauth2 plain {
			authorize_url {{GH}}/plain/authorize
			token_url {{GH}}/plain/token
			userinfo_url {{GH}}/plain/me
			client_id plain-client
			auth_method client_secret_post
			client_secret plain-secret
			subject_field uid
			display_name "Corp SSO"
		}
`)

func TestFederationGitHubAndOAuth2(t *testing.T) {
	gh := startFakeGitHub(t)
	c := startCaddy(t, strings.ReplaceAll(federationOAuth2, "{{GH}}", gh.srv.URL))

	// The sign-in page offers both, labelled, and no password form: the client may use no users block.
	page := newFormClient(t).submit(newCodeRequest("rp", url.Values{"scope": {"openid profile email"}}).url(c), nil)
	if page.status != http.StatusOK || strings.Contains(page.body, `type="password"`) ||
		!strings.Contains(page.body, "Sign in with GitHub") || !strings.Contains(page.body, "Sign in with Corp SSO") {
		t.Fatalf("sign-in page: HTTP %d %s, want a link per provider and no password form", page.status, page.body)
	}

	signIn := func(t *testing.T, provider, wantAuthorize string) map[string]any {
		t.Helper()
		f := newFormClient(t)
		req := newCodeRequest("rp", url.Values{"acr_values": {"idp:" + provider}, "scope": {"openid profile email"}})
		first := f.submit(req.url(c), nil)
		if first.location == nil {
			t.Fatalf("idp:%s: HTTP %d, want a redirect to the upstream", provider, first.status)
		}
		if got := first.location.Scheme + "://" + first.location.Host + first.location.Path; got != wantAuthorize {
			t.Fatalf("idp:%s went to %s, want %s", provider, got, wantAuthorize)
		}
		q := first.location.Query()
		if q.Get("code_challenge_method") != "S256" || q.Has("nonce") || q.Get("redirect_uri") != c.URL("/connect/external/"+provider+"/callback") {
			t.Errorf("upstream authorization request %v: want PKCE S256, no nonce, the provider's callback", q)
		}
		back := f.submit(c.URL("/connect/external/"+provider+"/callback?"+url.Values{"code": {"gh-code"}, "state": {q.Get("state")}}.Encode()), nil)
		if back.location == nil || back.location.Query().Get("code") == "" {
			t.Fatalf("callback: HTTP %d to %v (%.300s), want a code", back.status, back.location, back.body)
		}
		tok := redeemRequest(t, c, req, back.location.Query().Get("code"))
		return jwtpart.Claims(t, tok.AccessToken)
	}

	t.Run("github", func(t *testing.T) {
		claims := signIn(t, "gh", gh.srv.URL+"/login/oauth/authorize")
		want := map[string]any{"sub": "gh|12345678901", "idp": "gh", "preferred_username": "octocat", "name": "octocat",
			"email": "octocat@example.com", "company": "GitHub"}
		for k, v := range want {
			if claims[k] != v {
				t.Errorf("claim %s = %v, want %v (claims %v)", k, claims[k], v, claims)
			}
		}
		gh.mu.Lock()
		verifier := gh.verifier
		gh.mu.Unlock()
		if len(verifier) < 43 {
			t.Errorf("code_verifier sent to GitHub = %q, want PKCE", verifier)
		}
	})
	t.Run("oauth2", func(t *testing.T) {
		claims := signIn(t, "plain", gh.srv.URL+"/plain/authorize")
		if claims["sub"] != "plain|u-7" || claims["idp"] != "plain" || claims["name"] != "Seven" {
			t.Errorf("claims %v, want sub plain|u-7, idp plain, name Seven", claims)
		}
	})
}
