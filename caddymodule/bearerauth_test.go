package caddymodule

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/tokengate/tokengate/gate"
	"github.com/tokengate/tokengate/tokens"
)

// mintFor signs an access token with app's keys, as its token endpoint would.
func mintFor(t *testing.T, app *App, at tokens.AccessToken) string {
	t.Helper()
	m := tokens.NewMinter(app.Issuer, app.keySet.Load, app.now)
	raw, _, _, err := m.AccessToken(at)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// placeholdersAfter runs a request with raw through bearer_auth b and returns the placeholders
// the next handler sees, or nil when it was not reached.
func placeholdersAfter(t *testing.T, b *BearerAuth, raw string, names ...string) map[string]string {
	t.Helper()
	repl := caddy.NewReplacer()
	r := httptest.NewRequest(http.MethodGet, "/api", nil)
	r.Header.Set("Authorization", "Bearer "+raw)
	r = r.WithContext(context.WithValue(r.Context(), caddy.ReplacerCtxKey, repl))
	var seen map[string]string
	next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		seen = make(map[string]string, len(names))
		for _, name := range names {
			if v, ok := repl.GetString("http.auth.user." + name); ok {
				seen[name] = v
			}
		}
		return nil
	})
	if err := b.ServeHTTP(httptest.NewRecorder(), r, next); err != nil {
		t.Fatal(err)
	}
	return seen
}

func TestBearerAuthPlaceholders(t *testing.T) {
	app := provision(t, testConfig)
	b := &BearerAuth{Audience: "api"}
	var err error
	if b.gate, err = app.Gate(gate.Requirements{Audience: b.Audience}); err != nil {
		t.Fatal(err)
	}
	exp := app.now().Add(time.Hour).Unix()
	raw := mintFor(t, app, tokens.AccessToken{
		Subject:  "alice",
		ClientID: "svc",
		Scope:    "api.read api.write",
		Audience: []string{"api", "other"},
		TTL:      time.Hour,
		// A claim named "id" must not stand in for the subject.
		Claims: map[string]any{"id": "mallory", "tier": "gold", "level": 3, "admin": true, "groups": []string{"a", "b"}},
	})
	got := placeholdersAfter(t, b, raw, "id", "client_id", "scope", "tier", "level", "admin", "groups", "aud", "exp", "sub")
	want := map[string]string{
		"id":        "alice",
		"client_id": "svc",
		"scope":     "api.read api.write",
		"tier":      "gold",
		"level":     "3",
		"admin":     "true",
		"groups":    "a b",
		"aud":       "api other",
		"exp":       strconv.FormatInt(exp, 10),
	}
	for name, w := range want {
		if got[name] != w {
			t.Errorf("{http.auth.user.%s} = %q, want %q", name, got[name], w)
		}
	}
	if v, ok := got["sub"]; ok {
		t.Errorf("{http.auth.user.sub} = %q, want it unset: the subject is {http.auth.user.id}", v)
	}

	// A refused request never reaches the next handler, so it sees no placeholders.
	if got := placeholdersAfter(t, b, raw+"x", "id"); got != nil {
		t.Errorf("placeholders after a forged token = %q, want the request refused", got)
	}
}

func TestClaimText(t *testing.T) {
	var decoded map[string]any
	if err := json.Unmarshal([]byte(`{"n": 1700000000, "f": 1.5, "a": ["x", 2, true], "o": {"k": "v"}, "z": null}`), &decoded); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		claim, want string
	}{
		{"n", "1700000000"},
		{"f", "1.5"},
		{"a", "x 2 true"},
		{"o", `{"k":"v"}`},
		{"z", ""},
	} {
		if got := claimText(decoded[tc.claim]); got != tc.want {
			t.Errorf("claimText(%q) = %q, want %q", tc.claim, got, tc.want)
		}
	}
}
