package identity

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

func TestStatic(t *testing.T) {
	h, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	s, err := NewStatic([]StaticUser{{Username: "alice", Hash: string(h), Claims: map[string]string{"email": "a@example.com"}, Tenants: []string{"acme"}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, tc := range []struct {
		user, pw string
		want     bool
	}{
		{"alice", "pw", true},
		{"alice", "pw", true},
		{"alice", "PW", false},
		{"Alice", "pw", false},
		{"bob", "pw", false},
	} {
		u, ok, err := s.Authenticate(ctx, tc.user, tc.pw)
		if ok != tc.want || err != nil {
			t.Errorf("Authenticate(%q, %q) = %v, %v, want %v", tc.user, tc.pw, ok, err, tc.want)
		}
		if ok && (u.Subject != "alice" || u.Claims["email"] != "a@example.com" || u.Tenants[0] != "acme") {
			t.Errorf("Authenticate(%q) user = %+v", tc.user, u)
		}
	}
}

func TestNewStaticRefusesBadConfig(t *testing.T) {
	h, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	for name, users := range map[string][]StaticUser{
		"plaintext": {{Username: "a", Hash: "pw"}},
		"duplicate": {{Username: "a", Hash: string(h)}, {Username: "a", Hash: string(h)}},
		"empty":     {{Username: "", Hash: string(h)}},
	} {
		if _, err := NewStatic(users); err == nil {
			t.Errorf("NewStatic(%s) = nil error", name)
		}
	}
}

func TestHTTPLogin(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		switch r.PostForm.Get("username") + ":" + r.PostForm.Get("password") {
		case "alice:pw":
			w.Write([]byte(`{"email":"a@example.com","roles":["x"]}`))
		case "plain:pw":
			w.Write([]byte("OK"))
		case "down:pw":
			w.WriteHeader(http.StatusBadGateway)
		default:
			w.WriteHeader(http.StatusUnauthorized)
		}
	}))
	defer backend.Close()
	p := NewHTTPLogin(backend.URL, &http.Client{Timeout: 5 * time.Second})
	ctx := context.Background()

	u, ok, err := p.Authenticate(ctx, "alice", "pw")
	if !ok || err != nil || u.Subject != "alice" || u.Claims["email"] != "a@example.com" {
		t.Fatalf("alice: %+v %v %v", u, ok, err)
	}
	if _, ok, err := p.Authenticate(ctx, "plain", "pw"); !ok || err != nil {
		t.Fatalf("a 2xx without JSON: %v %v, want valid", ok, err)
	}
	if _, ok, err := p.Authenticate(ctx, "alice", "nope"); ok || err != nil {
		t.Fatalf("wrong password: %v %v, want false, nil", ok, err)
	}
	if _, _, err := p.Authenticate(ctx, "down", "pw"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("5xx: err = %v, want ErrUnavailable", err)
	}
	backend.Close()
	if _, _, err := p.Authenticate(ctx, "alice", "pw"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("unreachable: err = %v, want ErrUnavailable", err)
	}
}
