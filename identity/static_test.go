package identity

import (
	"context"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

func TestStatic(t *testing.T) {
	h, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	s, err := NewStatic([]StaticUser{
		{Username: "alice", Hash: string(h), Claims: map[string]string{"email": "a@example.com"}, Tenants: []string{"acme", "globex"}},
		{Username: "bob", Hash: string(h)},
		{Username: "carol", Hash: string(h), Claims: map[string]string{"tenant": "initech"}, Tenants: []string{"acme"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, tc := range []struct {
		user, pw, tenant string
		want             bool
		wantTenant       any // the tenant claim of a valid sign-in; nil: none
	}{
		{"alice", "pw", "", true, nil},
		{"alice", "pw", "", true, nil},
		{"alice", "PW", "", false, nil},
		{"Alice", "pw", "", false, nil},
		{"dave", "pw", "", false, nil},
		{"alice", "pw", "acme", true, "acme"},
		{"alice", "pw", "globex", true, "globex"},
		{"alice", "PW", "acme", false, nil},
		// A tenant the user's tenant lines do not name.
		{"alice", "pw", "victim-corp", false, nil},
		// A user without tenant lines belongs to no tenant.
		{"bob", "pw", "victim-corp", false, nil},
		{"bob", "pw", "", true, nil},
		// A tenant claim of the user's own is never replaced by the request.
		{"carol", "pw", "acme", false, nil},
		{"carol", "pw", "", true, "initech"},
	} {
		u, ok, err := s.Authenticate(ctx, tc.user, tc.pw, tc.tenant)
		if ok != tc.want || err != nil {
			t.Errorf("Authenticate(%q, %q, tenant %q) = %v, %v, want %v", tc.user, tc.pw, tc.tenant, ok, err, tc.want)
			continue
		}
		if !ok {
			if u.Subject != "" || u.Claims != nil {
				t.Errorf("Authenticate(%q, %q, tenant %q) refused with user %+v, want none", tc.user, tc.pw, tc.tenant, u)
			}
			continue
		}
		if u.Subject != tc.user || u.Claims["tenant"] != tc.wantTenant {
			t.Errorf("Authenticate(%q, tenant %q) user = %+v, want tenant %v", tc.user, tc.tenant, u, tc.wantTenant)
		}
		if tc.user == "alice" && u.Claims["email"] != "a@example.com" {
			t.Errorf("Authenticate(%q) claims = %v, want the user's email", tc.user, u.Claims)
		}
	}
	// A sign-in to a tenant must not leak the tenant into the user's other sign-ins.
	if u, _, _ := s.Authenticate(ctx, "alice", "pw", ""); u.Claims["tenant"] != nil {
		t.Errorf("Authenticate(alice, no tenant) after a tenant sign-in: tenant = %v, want none", u.Claims["tenant"])
	}
}

func TestStaticHas(t *testing.T) {
	h, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	s, err := NewStatic([]StaticUser{{Username: "alice", Hash: string(h)}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		user string
		want bool
	}{{"alice", true}, {"Alice", false}, {"bob", false}, {"", false}} {
		if got := s.Has(tc.user); got != tc.want {
			t.Errorf("Has(%q) = %v, want %v", tc.user, got, tc.want)
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
