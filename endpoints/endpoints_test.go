package endpoints

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/tokengate/tokengate/internal/testkeys"
	"github.com/tokengate/tokengate/tokens"
)

func TestURL(t *testing.T) {
	for _, tc := range []struct{ issuer, path, want string }{
		{"https://auth.example.com", TokenPath, "https://auth.example.com/connect/token"},
		{"https://auth.example.com/", TokenPath, "https://auth.example.com/connect/token"},
		{"https://example.com/tenant", JWKSPath, "https://example.com/tenant/.well-known/openid-configuration/jwks"},
	} {
		if got := URL(tc.issuer, tc.path); got != tc.want {
			t.Errorf("URL(%q, %q) = %q, want %q", tc.issuer, tc.path, got, tc.want)
		}
	}
}

func testKeySet(t testing.TB, alg string) *tokens.KeySet {
	t.Helper()
	return testkeys.Set(t, testkeys.New(t, alg, time.Time{}))
}

func TestDiscoveryMethods(t *testing.T) {
	meta := NewMetadata("https://auth.example.com")
	meta.IDTokenSigningAlgValuesSupported = []string{tokens.ES256}
	h := Discovery(meta)
	for _, tc := range []struct {
		method   string
		status   int
		wantBody bool
	}{
		{http.MethodGet, http.StatusOK, true},
		{http.MethodHead, http.StatusOK, false},
		{http.MethodPost, http.StatusMethodNotAllowed, true},
		{http.MethodPut, http.StatusMethodNotAllowed, true},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(tc.method, DiscoveryPath, nil))
		if rec.Code != tc.status {
			t.Errorf("%s %s = %d, want %d", tc.method, DiscoveryPath, rec.Code, tc.status)
		}
		if got := rec.Body.Len() > 0; got != tc.wantBody {
			t.Errorf("%s %s: body present = %v, want %v", tc.method, DiscoveryPath, got, tc.wantBody)
		}
		if tc.status == http.StatusMethodNotAllowed {
			if got := rec.Header().Get("Allow"); got != "GET, HEAD" {
				t.Errorf("%s %s: Allow = %q, want %q", tc.method, DiscoveryPath, got, "GET, HEAD")
			}
			continue
		}
		for name, want := range map[string]string{
			"Content-Type":  "application/json",
			"Cache-Control": "public, max-age=300",
		} {
			if got := rec.Header().Get(name); got != want {
				t.Errorf("%s %s: %s = %q, want %q", tc.method, DiscoveryPath, name, got, want)
			}
		}
	}
}

func TestDiscoveryDocument(t *testing.T) {
	meta := NewMetadata("https://auth.example.com")
	meta.GrantTypesSupported = []string{"client_credentials"}
	meta.IDTokenSigningAlgValuesSupported = []string{tokens.ES256}
	rec := httptest.NewRecorder()
	Discovery(meta).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, DiscoveryPath, nil))
	var doc map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]any{
		"issuer":                  "https://auth.example.com",
		"token_endpoint":          "https://auth.example.com/connect/token",
		"jwks_uri":                "https://auth.example.com/.well-known/openid-configuration/jwks",
		"introspection_endpoint":  "https://auth.example.com/connect/introspect",
		"revocation_endpoint":     "https://auth.example.com/connect/revocation",
		"grant_types_supported":   []any{"client_credentials"},
		"subject_types_supported": []any{"public"},
	} {
		if got, _ := json.Marshal(doc[name]); string(got) != mustJSON(want) {
			t.Errorf("discovery[%q] = %s, want %s", name, got, mustJSON(want))
		}
	}
	// Empty lists are left out rather than advertised as empty, and nothing unimplemented is named.
	for _, name := range []string{"scopes_supported", "claims_supported", "authorization_endpoint", "response_types_supported"} {
		if v, ok := doc[name]; ok {
			t.Errorf("discovery[%q] = %v, want absent", name, v)
		}
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestJWKSFollowsKeySet(t *testing.T) {
	first, second := testKeySet(t, tokens.ES256), testKeySet(t, tokens.EdDSA)
	current := first
	h := JWKS(func() *tokens.KeySet { return current })
	for _, ks := range []*tokens.KeySet{first, second} {
		current = ks
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, JWKSPath, nil))
		if rec.Code != http.StatusOK || rec.Body.String() != string(ks.JWKS()) {
			t.Errorf("GET %s = %d %s, want 200 %s", JWKSPath, rec.Code, rec.Body, ks.JWKS())
		}
		if got := rec.Header().Get("Content-Type"); got != "application/json" {
			t.Errorf("GET %s: Content-Type = %q, want application/json", JWKSPath, got)
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, JWKSPath, nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST %s = %d, want 405", JWKSPath, rec.Code)
	}
}
