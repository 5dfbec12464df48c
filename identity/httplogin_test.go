package identity

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestHTTPLogin(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		switch r.PostForm.Get("username") + ":" + r.PostForm.Get("password") {
		case "alice:pw":
			w.Write([]byte(`{"email":"a@example.com","roles":["x"]}`))
		case "plain:pw":
			w.Write([]byte("OK"))
		case "acme-only:pw":
			w.Write([]byte(`{"tenant":"acme"}`))
		case "echo:pw":
			// A backend that checks the tenant asked for and names it in its answer.
			w.Write([]byte(`{"tenant":"` + r.PostForm.Get("tenant") + `"}`))
		case "down:pw":
			w.WriteHeader(http.StatusBadGateway)
		default:
			w.WriteHeader(http.StatusUnauthorized)
		}
	}))
	defer backend.Close()
	p := NewHTTPLogin(backend.URL, &http.Client{Timeout: 5 * time.Second})
	ctx := context.Background()

	u, ok, err := p.Authenticate(ctx, "alice", "pw", "")
	if !ok || err != nil || u.Subject != "alice" || u.Claims["email"] != "a@example.com" {
		t.Fatalf("alice: %+v %v %v", u, ok, err)
	}
	if _, ok, err := p.Authenticate(ctx, "plain", "pw", ""); !ok || err != nil {
		t.Fatalf("a 2xx without JSON: %v %v, want valid", ok, err)
	}
	if _, ok, err := p.Authenticate(ctx, "alice", "nope", ""); ok || err != nil {
		t.Fatalf("wrong password: %v %v, want false, nil", ok, err)
	}
	for _, tc := range []struct {
		name, user, tenant string
		want               bool
		wantTenant         any
	}{
		{"tenant vouched for", "echo", "acme", true, "acme"},
		{"tenant the backend does not name", "alice", "victim-corp", false, nil},
		{"tenant of a 2xx without JSON", "plain", "victim-corp", false, nil},
		{"tenant other than the backend's", "acme-only", "victim-corp", false, nil},
		{"the backend's tenant, none asked", "acme-only", "", true, "acme"},
	} {
		u, ok, err := p.Authenticate(ctx, tc.user, "pw", tc.tenant)
		if ok != tc.want || err != nil || ok && u.Claims["tenant"] != tc.wantTenant {
			t.Errorf("%s: Authenticate(%q, tenant %q) = %+v, %v, %v; want %v with tenant %v", tc.name, tc.user, tc.tenant, u, ok, err, tc.want, tc.wantTenant)
		}
	}
	if _, _, err := p.Authenticate(ctx, "down", "pw", ""); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("5xx: err = %v, want ErrUnavailable", err)
	}
	backend.Close()
	if _, _, err := p.Authenticate(ctx, "alice", "pw", ""); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("unreachable: err = %v, want ErrUnavailable", err)
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
	p := NewHTTPLogin(backend.URL, &http.Client{Timeout: 5 * time.Second})
	p.Authenticate(context.Background(), "alice", "pw", "acme")
	if len(got) != 1 || got[0] != "acme" {
		t.Errorf("tenant field = %q, want [acme]", got)
	}
	p.Authenticate(context.Background(), "alice", "pw", "")
	if got != nil {
		t.Errorf("tenant field without a tenant = %q, want none", got)
	}
}
