package caddymodule

import (
	"context"
	"encoding/json"
	"errors"
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
func mintFor(t testing.TB, app *App, at tokens.AccessToken) string {
	t.Helper()
	m := tokens.NewMinter(app.Issuer, app.keySet.Load, app.now)
	raw, _, _, err := m.AccessToken(at)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// serveBearerAuth runs a request with the Authorization header auth (none when empty) through
// bearer_auth b in front of next, with a fresh replacer, and returns what b wrote and returned.
func serveBearerAuth(b *BearerAuth, auth string, next caddyhttp.HandlerFunc) (*httptest.ResponseRecorder, error) {
	r := httptest.NewRequest(http.MethodGet, "/api", nil)
	if auth != "" {
		r.Header.Set("Authorization", auth)
	}
	r = r.WithContext(context.WithValue(r.Context(), caddy.ReplacerCtxKey, caddy.NewReplacer()))
	w := httptest.NewRecorder()
	return w, b.ServeHTTP(w, r, next)
}

// placeholdersAfter runs a request with raw through bearer_auth b and returns the placeholders
// the next handler sees, or nil when it was not reached.
func placeholdersAfter(t *testing.T, b *BearerAuth, raw string, names ...string) map[string]string {
	t.Helper()
	var seen map[string]string
	next := func(w http.ResponseWriter, r *http.Request) error {
		repl := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
		seen = make(map[string]string, len(names))
		for _, name := range names {
			if v, ok := repl.GetString("http.auth.user." + name); ok {
				seen[name] = v
			}
		}
		return nil
	}
	if _, err := serveBearerAuth(b, "Bearer "+raw, next); err != nil && seen != nil {
		t.Fatalf("bearer_auth returned %v after the next handler ran", err)
	}
	return seen
}

func TestBearerAuthPlaceholders(t *testing.T) {
	app := provision(t, testConfig)
	b := &BearerAuth{Audience: "api", audit: app.audit}
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

// writeGate is app's bearer_auth for audience api and scope api.write, and a token of svc's for api
// with api.read only.
func writeGate(t testing.TB, app *App) (b *BearerAuth, readOnly string) {
	t.Helper()
	b = &BearerAuth{audit: app.audit}
	var err error
	if b.gate, err = app.Gate(gate.Requirements{Audience: "api", ScopeSets: [][]string{{"api.write"}}}); err != nil {
		t.Fatal(err)
	}
	return b, mintFor(t, app, tokens.AccessToken{
		Subject: "svc", ClientID: "svc", Scope: "api.read", Audience: []string{"api"}, TTL: time.Hour,
	})
}

// A refusal carries the gate's status and RFC 6750 §3 challenge and never reaches the next handler.
// Where error routes may take it, it is a Caddy HTTP error, with the challenge on the response
// before it, so it stays whether or not a handle_errors route writes the body; elsewhere bearer_auth
// writes the status itself. It never writes a body.
func TestBearerAuthRefusals(t *testing.T) {
	app := provision(t, testConfig)
	b, readOnly := writeGate(t, app)
	realm := `Bearer realm="` + app.Issuer + `"`
	for _, tc := range []struct {
		name, auth string
		status     int
		challenge  string
	}{
		{"no token", "", http.StatusUnauthorized, realm},
		{"forged token", "Bearer " + readOnly + "x", http.StatusUnauthorized, realm + `, error="invalid_token"`},
		{"missing scope", "Bearer " + readOnly, http.StatusForbidden, realm + `, error="insufficient_scope", scope="api.write"`},
	} {
		for _, answers := range []bool{false, true} {
			b.answers = answers
			reached := false
			w, err := serveBearerAuth(b, tc.auth, func(http.ResponseWriter, *http.Request) error {
				reached = true
				return nil
			})
			if reached {
				t.Errorf("%s (answers %t): the next handler was reached", tc.name, answers)
			}
			if got := w.Header().Get("WWW-Authenticate"); got != tc.challenge {
				t.Errorf("%s (answers %t): WWW-Authenticate = %q, want %q", tc.name, answers, got, tc.challenge)
			}
			if w.Body.Len() != 0 {
				t.Errorf("%s (answers %t): body %q, want none", tc.name, answers, w.Body)
			}
			if answers {
				if err != nil || w.Code != tc.status {
					t.Errorf("%s: ServeHTTP wrote %d and returned %v, want %d and nil", tc.name, w.Code, err, tc.status)
				}
				continue
			}
			// The recorder's status stays 200 unless a handler wrote one: Caddy's error handling
			// answers.
			var herr caddyhttp.HandlerError
			if !errors.As(err, &herr) || herr.StatusCode != tc.status || w.Code != http.StatusOK {
				t.Errorf("%s: ServeHTTP wrote %d and returned %v, want nothing written and a Caddy HTTP error %d", tc.name, w.Code, err, tc.status)
			}
		}
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

// BenchmarkBearerAuthRefusesMalformed is bearer_auth's whole answer to a token that is no JWT, on a
// site without handle_errors: the gate, the metric, the audit trail and the 401.
func BenchmarkBearerAuthRefusesMalformed(b *testing.B) {
	app := provision(b, testConfig)
	bearer, _ := writeGate(b, app)
	bearer.answers = true
	r := httptest.NewRequest(http.MethodGet, "/api", nil)
	r.Header.Set("Authorization", "Bearer not.a.token")
	r = r.WithContext(context.WithValue(r.Context(), caddy.ReplacerCtxKey, caddy.NewReplacer()))
	next := caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { return nil })
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		if err := bearer.ServeHTTP(w, r, next); err != nil || w.Code != http.StatusUnauthorized {
			b.Fatalf("ServeHTTP = %d %v, want 401", w.Code, err)
		}
	}
}
