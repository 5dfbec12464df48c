package identity

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// legacyLogin is a legacy application's login: it answers a POST by the username, and a GET of
// /login?error=1 (where a wrong password is redirected) with 200, as such logins do.
func legacyLogin(t *testing.T, elsewhere string) *httptest.Server {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			w.Write([]byte("<form>Wrong password, try again</form>"))
			return
		}
		r.ParseForm()
		if r.PostForm.Get("password") != "pw" {
			http.Redirect(w, r, "/login?error=1", http.StatusFound)
			return
		}
		switch r.PostForm.Get("username") {
		case "alice":
			w.Write([]byte(`{"email":"a@example.com","roles":["x"]}`))
		case "plain", "oidc|someone":
			w.Write([]byte("OK"))
		case "acme-only":
			w.Write([]byte(`{"tenant":"acme"}`))
		case "echo":
			// A backend that checks the tenant asked for and names it in its answer.
			w.Write([]byte(`{"tenant":"` + r.PostForm.Get("tenant") + `"}`))
		case "down":
			w.WriteHeader(http.StatusBadGateway)
		case "teapot":
			w.WriteHeader(http.StatusTeapot)
		case "home":
			http.Redirect(w, r, "/home?welcome=1", http.StatusFound)
		case "home-elsewhere":
			http.Redirect(w, r, elsewhere+"/home", http.StatusSeeOther)
		case "home-subpath":
			http.Redirect(w, r, "/home/evil", http.StatusFound)
		case "no-location":
			w.WriteHeader(http.StatusFound)
		case "moved":
			http.Redirect(w, r, "/login?error=1", http.StatusMovedPermanently)
		case "see-other":
			http.Redirect(w, r, "/login?error=1", http.StatusSeeOther)
		case "repost-307":
			http.Redirect(w, r, elsewhere+"/collect", http.StatusTemporaryRedirect)
		case "repost-308":
			http.Redirect(w, r, elsewhere+"/collect", http.StatusPermanentRedirect)
		default:
			w.WriteHeader(http.StatusUnauthorized)
		}
	}))
	t.Cleanup(backend.Close)
	return backend
}

// collector is another server that records whether anything reached it.
func collector(t *testing.T) (*httptest.Server, *atomic.Int32) {
	var hits atomic.Int32
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Write([]byte(`{"tenant":"victim-corp"}`))
	}))
	t.Cleanup(s.Close)
	return s, &hits
}

func newHTTPLogin(t *testing.T, url, successLocation string) *HTTPLogin {
	t.Helper()
	p, err := NewHTTPLogin(HTTPLoginConfig{URL: url, SuccessLocation: successLocation, Client: &http.Client{Timeout: 5 * time.Second}})
	if err != nil {
		t.Fatalf("NewHTTPLogin(%q, %q) = %v", url, successLocation, err)
	}
	return p
}

// outcome is what an Authenticate call means to its caller.
type outcome int

const (
	refused outcome = iota
	valid
	unavailable
)

func (o outcome) String() string { return [...]string{"refused", "valid", "unavailable"}[o] }

func outcomeOf(ok bool, err error) outcome {
	switch {
	case errors.Is(err, ErrUnavailable):
		return unavailable
	case err != nil:
		return -1
	case ok:
		return valid
	}
	return refused
}

func TestHTTPLogin(t *testing.T) {
	elsewhere, hits := collector(t)
	backend := legacyLogin(t, elsewhere.URL)
	p := newHTTPLogin(t, backend.URL+"/login", "")
	withSuccess := newHTTPLogin(t, backend.URL+"/login", backend.URL+"/home")
	ctx := context.Background()
	for _, tc := range []struct {
		name           string
		p              *HTTPLogin
		user, password string
		tenant         string
		want           outcome
		wantTenant     any
	}{
		{"2xx with a JSON object", p, "alice", "pw", "", valid, nil},
		{"2xx without JSON", p, "plain", "pw", "", valid, nil},
		{"a username an external provider's subjects have", p, "oidc|someone", "pw", "", refused, nil},
		{"401", p, "mallory", "pw", "", refused, nil},
		{"302 to an error page that answers 200", p, "alice", "wrong", "", refused, nil},
		{"301", p, "moved", "pw", "", refused, nil},
		{"303", p, "see-other", "pw", "", refused, nil},
		{"307 re-posting elsewhere", p, "repost-307", "pw", "", refused, nil},
		{"308 re-posting elsewhere", p, "repost-308", "pw", "", refused, nil},
		{"302 without success_location", p, "home", "pw", "", refused, nil},
		{"5xx", p, "down", "pw", "", unavailable, nil},
		{"another 4xx", p, "teapot", "pw", "", unavailable, nil},

		{"302 to the success location, query ignored", withSuccess, "home", "pw", "", valid, nil},
		{"302 to error page with success_location", withSuccess, "alice", "wrong", "", refused, nil},
		{"303 to the success path on another host", withSuccess, "home-elsewhere", "pw", "", refused, nil},
		{"302 below the success path", withSuccess, "home-subpath", "pw", "", refused, nil},
		{"302 without Location", withSuccess, "no-location", "pw", "", refused, nil},

		{"tenant vouched for", p, "echo", "pw", "acme", valid, "acme"},
		{"tenant the backend does not name", p, "alice", "pw", "victim-corp", refused, nil},
		{"tenant of a 2xx without JSON", p, "plain", "pw", "victim-corp", refused, nil},
		{"tenant other than the backend's", p, "acme-only", "pw", "victim-corp", refused, nil},
		{"the backend's tenant, none asked", p, "acme-only", "pw", "", valid, "acme"},
		{"tenant of a success redirect", withSuccess, "home", "pw", "victim-corp", refused, nil},
		{"tenant with a wrong password", p, "echo", "wrong", "acme", refused, nil},
	} {
		u, ok, err := tc.p.Authenticate(ctx, tc.user, tc.password, tc.tenant)
		if got := outcomeOf(ok, err); got != tc.want {
			t.Errorf("%s: Authenticate(%q, %q, tenant %q) = %v, %v: %v, want %v", tc.name, tc.user, tc.password, tc.tenant, ok, err, got, tc.want)
			continue
		}
		if ok && (u.Subject != tc.user || u.Claims["tenant"] != tc.wantTenant) {
			t.Errorf("%s: user = %+v, want sub %q and tenant %v", tc.name, u, tc.user, tc.wantTenant)
		}
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("a redirect was followed: the other server got %d requests, want 0", n)
	}
	u, _, _ := p.Authenticate(ctx, "alice", "pw", "")
	if u.Claims["email"] != "a@example.com" {
		t.Errorf("alice's claims = %v, want the backend's email", u.Claims)
	}
	backend.Close()
	if _, _, err := p.Authenticate(ctx, "alice", "pw", ""); !errors.Is(err, ErrUnavailable) {
		t.Errorf("unreachable: err = %v, want ErrUnavailable", err)
	}
}

// TestHTTPLoginSendsTenant: the backend is told the tenant asked for, and only then.
func TestHTTPLoginSendsTenant(t *testing.T) {
	var got []string
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		got = r.PostForm["tenant"]
		w.Write([]byte(`{}`))
	}))
	defer backend.Close()
	p := newHTTPLogin(t, backend.URL, "")
	p.Authenticate(context.Background(), "alice", "pw", "acme")
	if len(got) != 1 || got[0] != "acme" {
		t.Errorf("tenant field = %q, want [acme]", got)
	}
	p.Authenticate(context.Background(), "alice", "pw", "")
	if got != nil {
		t.Errorf("tenant field without a tenant = %q, want none", got)
	}
}

func TestNewHTTPLogin(t *testing.T) {
	for _, tc := range []struct {
		url, success string
		ok           bool
	}{
		{"https://legacy.example.com/login", "", true},
		{"http://127.0.0.1:8080/login", "http://127.0.0.1:8080/home", true},
		{"/login", "", false},
		{"ftp://legacy.example.com/login", "", false},
		{"https:///login", "", false},
		{"https://legacy.example.com/login", "/home", false},
		{"https://legacy.example.com/login", "javascript:alert(1)", false},
	} {
		_, err := NewHTTPLogin(HTTPLoginConfig{URL: tc.url, SuccessLocation: tc.success})
		if (err == nil) != tc.ok {
			t.Errorf("NewHTTPLogin(%q, %q) = %v, want ok %v", tc.url, tc.success, err, tc.ok)
		}
	}
	// The caller's client is not changed: it may serve others who follow redirects.
	client := &http.Client{Timeout: time.Second}
	if _, err := NewHTTPLogin(HTTPLoginConfig{URL: "https://legacy.example.com/login", Client: client}); err != nil || client.CheckRedirect != nil {
		t.Errorf("NewHTTPLogin changed the caller's client (err %v)", err)
	}
}
