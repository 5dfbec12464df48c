package identity

import (
	"testing"
)

// FuzzHTTPLoginAnswer feeds the reading of a legacy login's answer whatever a hostile or broken
// backend may send, and checks the rules that keep it from signing the wrong person in: only a 2xx
// or a redirect to the success location is a valid login, the subject is always the username sent,
// and a tenant asked for is in the result only when the backend's body named exactly it.
func FuzzHTTPLoginAnswer(f *testing.F) {
	f.Add(200, "", []byte(`{"email":"a@example.com"}`), "")
	f.Add(200, "", []byte(`{"tenant":"acme"}`), "acme")
	f.Add(200, "", []byte(`{"tenant":"other"}`), "acme")
	f.Add(302, "/login?error=1", []byte(nil), "")
	f.Add(302, "https://legacy.example/home?x=1", []byte(nil), "")
	f.Add(303, "//legacy.example/home", []byte(nil), "acme")
	f.Add(401, "", []byte("no"), "")
	f.Add(500, "", []byte(nil), "")
	f.Add(200, "", []byte(`{"tenant":`), "acme")
	h, err := NewHTTPLogin(HTTPLoginConfig{URL: "https://legacy.example/login", SuccessLocation: "https://legacy.example/home"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, status int, location string, body []byte, tenant string) {
		user, ok, err := h.answer(status, location, body, "alice", tenant)
		if !ok {
			return
		}
		if err != nil {
			t.Fatalf("answer(%d) = ok and error %v", status, err)
		}
		if status == 401 || status == 403 || status < 200 || status > 399 {
			t.Fatalf("answer(%d) signed in", status)
		}
		if status >= 300 && !h.isSuccessLocation(location) {
			t.Fatalf("answer(%d, %q) signed in through a redirect elsewhere", status, location)
		}
		if user.Subject != "alice" {
			t.Fatalf("answer: subject %q, want the username sent", user.Subject)
		}
		if tenant != "" && (status >= 300 || user.Claims[tenantClaim] != tenant) {
			t.Fatalf("answer(%d, tenant %q) = claims %v: a tenant the backend did not name", status, tenant, user.Claims)
		}
	})
}
