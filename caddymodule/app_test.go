package caddymodule

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/tokengate/tokengate/gate"
	"github.com/tokengate/tokengate/internal/testkeys"
	"github.com/tokengate/tokengate/store"
	"github.com/tokengate/tokengate/tokens"
)

// testConfig is a tokengate app on a memory store with one confidential client.
const testConfig = `{
	"issuer": "https://auth.example.com",
	"store": {"backend": "memory"},
	"clients": [{
		"id": "svc",
		"secrets": ["{env.TOKENGATE_TEST_SECRET}"],
		"grants": ["client_credentials"],
		"scopes": ["api.read", "api.write"],
		"audience": ["api"],
		"claims": {"tier": "gold"}
	}]
}`

const testSecret = "a-long-random-client-secret"

// provision builds an App from JSON as Caddy would, and releases it when the test ends.
func provision(t testing.TB, config string) *App {
	t.Helper()
	app, err := tryProvision(t, config)
	if err != nil {
		t.Fatalf("Provision: %v", err)
	}
	return app
}

func tryProvision(t testing.TB, config string) (*App, error) {
	t.Helper()
	app := new(App)
	if err := json.Unmarshal([]byte(config), app); err != nil {
		t.Fatal(err)
	}
	return provisionApp(t, app)
}

// provisionApp provisions an App decoded from JSON, on which a test may have set the clock or the
// logger.
func provisionApp(t testing.TB, app *App) (*App, error) {
	t.Helper()
	t.Setenv("TOKENGATE_TEST_SECRET", testSecret)
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	if err := app.Provision(ctx); err != nil {
		// Caddy cleans up a module whose provisioning failed.
		if cerr := app.Cleanup(); cerr != nil {
			t.Errorf("Cleanup after a failed Provision: %v", cerr)
		}
		return nil, err
	}
	t.Cleanup(func() {
		if err := app.Cleanup(); err != nil {
			t.Errorf("Cleanup: %v", err)
		}
	})
	return app, nil
}

// nextHandler records that a request was passed on.
type nextHandler struct{ called bool }

func (n *nextHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) error {
	n.called = true
	w.WriteHeader(http.StatusTeapot)
	return nil
}

// serve sends r through a tokengate Handler on app's endpoints.
func serve(app *App, r *http.Request) (*httptest.ResponseRecorder, bool) {
	h := &Handler{routes: app.routes}
	next := new(nextHandler)
	rec := httptest.NewRecorder()
	if err := h.ServeHTTP(rec, r, next); err != nil {
		panic(err)
	}
	return rec, next.called
}

func tokenRequest(form url.Values) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "https://auth.example.com/connect/token", strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.SetBasicAuth("svc", testSecret)
	return r
}

// issueToken runs a client_credentials grant through the Handler and returns the access token.
func issueToken(t *testing.T, app *App) string {
	t.Helper()
	rec, passed := serve(app, tokenRequest(url.Values{"grant_type": {"client_credentials"}}))
	if passed || rec.Code != http.StatusOK {
		t.Fatalf("POST /connect/token = %d %s (passed on: %v), want 200", rec.Code, rec.Body, passed)
	}
	var resp struct {
		AccessToken string `json:"access_token"`
		Scope       string `json:"scope"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
		t.Fatal(err)
	}
	return resp.AccessToken
}

// issueVerifiedToken is issueToken, with the token's claims as app's verifier reads them.
func issueVerifiedToken(t *testing.T, app *App) (string, *tokens.Claims) {
	t.Helper()
	raw := issueToken(t, app)
	claims, err := app.verifier.VerifyAccessToken(raw)
	if err != nil {
		t.Fatalf("the issued token does not verify: %v", err)
	}
	return raw, claims
}

func TestTokenEndpointEndToEnd(t *testing.T) {
	app := provision(t, testConfig)
	_, claims := issueVerifiedToken(t, app)
	if claims.Subject != "svc" || claims.Issuer != "https://auth.example.com" || !slices.Equal(claims.Audience, []string{"api"}) || claims.All["tier"] != "gold" {
		t.Errorf("token claims sub %q iss %q aud %q tier %v, want svc, the issuer, [api], gold", claims.Subject, claims.Issuer, claims.Audience, claims.All["tier"])
	}

	// The secret came from {env.X}: the placeholder itself is not a secret.
	r := tokenRequest(url.Values{"grant_type": {"client_credentials"}})
	r.SetBasicAuth("svc", "{env.TOKENGATE_TEST_SECRET}")
	if rec, _ := serve(app, r); rec.Code != http.StatusUnauthorized {
		t.Errorf("POST /connect/token with the placeholder as secret = %d, want 401", rec.Code)
	}
}

func TestHandlerRoutes(t *testing.T) {
	app := provision(t, testConfig)
	for _, tc := range []struct {
		method, path string
		status       int
		passed       bool
	}{
		{http.MethodGet, "/.well-known/openid-configuration", http.StatusOK, false},
		{http.MethodGet, "/.well-known/openid-configuration/jwks", http.StatusOK, false},
		{http.MethodGet, "/connect/token", http.StatusMethodNotAllowed, false},
		{http.MethodGet, "/connect/introspect", http.StatusMethodNotAllowed, false},
		{http.MethodGet, "/connect/revocation", http.StatusMethodNotAllowed, false},
		// An authorization request without a client is the error page's, never the next handler's.
		{http.MethodGet, "/connect/authorize", http.StatusBadRequest, false},
		{http.MethodGet, "/connect/userinfo", http.StatusUnauthorized, false},
		// Everything else is the next handler's: a flat site block keeps working.
		{http.MethodGet, "/", http.StatusTeapot, true},
		{http.MethodGet, "/api/things", http.StatusTeapot, true},
		{http.MethodPost, "/connect/token/", http.StatusTeapot, true},
		{http.MethodGet, "/.well-known/openid-configuration/", http.StatusTeapot, true},
		{http.MethodGet, "/connect/deviceauthorization", http.StatusMethodNotAllowed, false},
		{http.MethodGet, "/connect/device", http.StatusOK, false},
	} {
		rec, passed := serve(app, httptest.NewRequest(tc.method, tc.path, nil))
		if rec.Code != tc.status || passed != tc.passed {
			t.Errorf("%s %s = %d (passed on: %v), want %d (%v)", tc.method, tc.path, rec.Code, passed, tc.status, tc.passed)
		}
	}
}

func TestHandlerRoutesUnderIssuerPath(t *testing.T) {
	app := provision(t, strings.Replace(testConfig, `"https://auth.example.com"`, `"https://example.com/auth/"`, 1))
	for path, wantPassed := range map[string]bool{
		"/auth/.well-known/openid-configuration": false,
		"/.well-known/openid-configuration":      true,
	} {
		if _, passed := serve(app, httptest.NewRequest(http.MethodGet, path, nil)); passed != wantPassed {
			t.Errorf("GET %s passed on: %v, want %v", path, passed, wantPassed)
		}
	}
}

func TestDiscoveryOfConfiguration(t *testing.T) {
	app := provision(t, strings.Replace(testConfig, `"clients": [{`, `"clients": [{"id": "spa", "public": true, "grants": ["password"]}, {`, 1))
	doc := checkDiscovery(t, app, map[string][]string{
		"issuer":                {"https://auth.example.com"},
		"token_endpoint":        {"https://auth.example.com/connect/token"},
		"grant_types_supported": {"client_credentials", "password"},
		"scopes_supported":      {"api.read", "api.write", "openid"},
		// client_secret_basic and client_secret_post are interchangeable: both are listed.
		"token_endpoint_auth_methods_supported":         {"client_secret_basic", "client_secret_post", "none"},
		"introspection_endpoint_auth_methods_supported": {"client_secret_basic", "client_secret_post"},
		"revocation_endpoint_auth_methods_supported":    {"client_secret_basic", "client_secret_post", "none"},
		// OIDC Discovery §3: RS256 is required.
		"id_token_signing_alg_values_supported": {"ES256", "RS256"},
	})
	if claims := doc["claims_supported"]; !slices.Contains(claims, "tier") {
		t.Errorf("discovery claims_supported = %q, want it to list the static claim tier", claims)
	}
}

// checkDiscovery fetches the app's discovery document, checks each field of want (a string as a
// list of one), and returns the document's fields so read.
func checkDiscovery(t *testing.T, app *App, want map[string][]string) map[string][]string {
	t.Helper()
	rec, _ := serve(app, httptest.NewRequest(http.MethodGet, "/.well-known/openid-configuration", nil))
	var raw map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &raw); err != nil {
		t.Fatal(err)
	}
	doc := make(map[string][]string, len(raw))
	for field, v := range raw {
		switch v := v.(type) {
		case string:
			doc[field] = []string{v}
		case []any:
			for _, s := range v {
				str, _ := s.(string)
				doc[field] = append(doc[field], str)
			}
		}
	}
	for field, w := range want {
		if !slices.Equal(doc[field], w) {
			t.Errorf("discovery %s = %q, want %q", field, doc[field], w)
		}
	}
	return doc
}

func TestProvisionRefuses(t *testing.T) {
	for _, tc := range []struct {
		name, config, want string
	}{
		{"no issuer", `{"store": {"backend": "memory"}}`, "issuer is required"},
		{"relative issuer", `{"issuer": "auth.example.com", "store": {"backend": "memory"}}`, "absolute"},
		{"issuer with query", `{"issuer": "https://a.example?x=1", "store": {"backend": "memory"}}`, "no query"},
		{"unknown store", `{"issuer": "https://a.example", "store": {"backend": "etcd"}}`, "unknown backend"},
		{"redis without url", `{"issuer": "https://a.example", "store": {"backend": "redis"}}`, "no URL"},
		{"redis url scheme", `{"issuer": "https://a.example", "store": {"backend": "redis", "url": "http://:secret@h:6379"}}`, "must start with redis://"},
		{"redis url variable unset", `{"issuer": "https://a.example", "store": {"backend": "redis", "url": "{env.TOKENGATE_UNSET_VARIABLE}"}}`, "store redis"},
		{"short rotation", `{"issuer": "https://a.example", "store": {"backend": "memory"}, "signing_key_rotation": 999000000}`, "signing_key_rotation"},
		{"rotated key file", `{"issuer": "https://a.example", "store": {"backend": "memory"}, "signing_key_file": {"alg": "ES256", "file": "k.pem"}, "signing_key_rotation": 3600000000000}`, "never rotated"},
		{"short ttl", `{"issuer": "https://a.example", "store": {"backend": "memory"}, "access_token_ttl": 500000000}`, "access_token_ttl"},
		{"both keys", `{"issuer": "https://a.example", "store": {"backend": "memory"}, "signing_key": {}, "signing_key_file": {"alg": "ES256", "file": "k.pem"}}`, "exclusive"},
		{"bad alg", `{"issuer": "https://a.example", "store": {"backend": "memory"}, "signing_key": {"alg": "HS256"}}`, "unknown algorithm"},
		{"missing key file", `{"issuer": "https://a.example", "store": {"backend": "memory"}, "signing_key_file": {"alg": "ES256", "file": "/nonexistent/k.pem"}}`, "no such file"},
		{"duplicate client", `{"issuer": "https://a.example", "store": {"backend": "memory"}, "clients": [
			{"id": "a", "secrets": ["s"], "grants": ["client_credentials"]},
			{"id": "a", "secrets": ["t"], "grants": ["client_credentials"]}]}`, "declared twice"},
		{"public with secret", `{"issuer": "https://a.example", "store": {"backend": "memory"}, "clients": [
			{"id": "a", "public": true, "secrets": ["s"], "grants": ["password"]}]}`, "public client has no secret"},
		{"unset secret variable", `{"issuer": "https://a.example", "store": {"backend": "memory"}, "clients": [
			{"id": "a", "secrets": ["{env.TOKENGATE_UNSET_VARIABLE}"], "grants": ["client_credentials"]}]}`, "secret 0"},
		{"unknown identity provider", `{"issuer": "https://a.example", "store": {"backend": "memory"}, "clients": [
			{"id": "a", "secrets": ["s"], "grants": ["password"], "identity_providers": ["corp"]}]}`, `no identity provider is named "corp"`},
		{"registered claim", `{"issuer": "https://a.example", "store": {"backend": "memory"}, "clients": [
			{"id": "a", "secrets": ["s"], "grants": ["client_credentials"], "claims": {"sub": "root"}}]}`, `claim "sub" is set by tokengate`},
		{"empty exchange audience", `{"issuer": "https://a.example", "store": {"backend": "memory"}, "clients": [
			{"id": "a", "secrets": ["s"], "grants": ["client_credentials"], "exchange_audiences": ["api", ""]}]}`, "empty audience"},
		{"success_location without http_login", `{"issuer": "https://a.example", "store": {"backend": "memory"}, "identity_providers": [
			{"name": "corp", "users": [{"username": "a", "hash": "` + testHash + `"}], "http_login_success_location": "https://a.example/home"}]}`, "success_location without http_login"},
		{"relative success_location", `{"issuer": "https://a.example", "store": {"backend": "memory"}, "identity_providers": [
			{"name": "corp", "http_login": "https://a.example/login", "http_login_success_location": "/home"}]}`, "success_location"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tryProvision(t, tc.config)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Provision(%s) = %v, want an error containing %q", tc.name, err, tc.want)
			}
		})
	}
}

// TestGeneratedKeyIsKept checks that the generated key lives in the store: a second configuration
// on the same store (a reload, a restart on bolt, another instance) signs with the same key.
func TestGeneratedKeyIsKept(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokengate.db")
	config := `{"issuer": "https://auth.example.com", "store": {"backend": "bolt", "path": ` + jsonString(path) + `}}`
	first := provision(t, config)
	kid := first.keySet.Load().Signing(first.now()).ID
	// A reload: the old configuration still holds the store while the new one provisions.
	second := provision(t, config)
	if got := second.keySet.Load().Signing(second.now()).ID; got != kid {
		t.Errorf("after a reload the signing kid = %q, want %q", got, kid)
	}
	if first.shared != second.shared {
		t.Error("a reload opened the store again instead of sharing it")
	}
	// A restart: every configuration released the store, which was closed, then reopened.
	if err := first.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if err := second.Cleanup(); err != nil {
		t.Fatal(err)
	}
	third := provision(t, config)
	if got := third.keySet.Load().Signing(third.now()).ID; got != kid {
		t.Errorf("after a restart the signing kid = %q, want %q", got, kid)
	}
}

// TestDefaultStoreMigratesBolt: a configuration without a store line, started where an earlier
// version kept its state in the default bolt file, finds all of it in the pebble store that is now
// the default: refresh tokens, revocations, signing keys and device codes.
func TestDefaultStoreMigratesBolt(t *testing.T) {
	t.Setenv("XDG_DATA_HOME", t.TempDir())
	dir := filepath.Join(caddy.AppDataDir(), "tokengate")
	// The earlier version: its default store, bolt, generates the signing key.
	before := provision(t, `{"issuer": "https://auth.example.com", "store": {"backend": "bolt"}}`)
	kid := before.keySet.Load().Signing(before.now()).ID
	if err := before.Cleanup(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	old, err := store.OpenBolt(filepath.Join(dir, "tokengate.db"), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	exp := time.Now().Add(time.Hour)
	rt := store.RefreshToken{FamilyID: "fam", ClientID: "svc", ExpiresAt: exp, Grant: []byte("{}")}
	revoked := store.Revocation{Kind: store.RevokedToken, ID: "jti-1", Until: exp}
	device := store.DeviceCode{ClientID: "tv", UserCode: "BCDFGHJK", ExpiresAt: exp, Interval: time.Second}
	for _, err := range []error{
		old.CreateRefreshToken(ctx, "rt-hash", rt),
		old.Revoke(ctx, revoked),
		second(old.CreateDeviceCode(ctx, "device-hash", device)),
		old.Close(),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}

	app := provision(t, `{"issuer": "https://auth.example.com"}`)
	if app.Store.Backend != "pebble" || app.Store.Path != filepath.Join(dir, "pebble") {
		t.Errorf("default store = %s %s, want pebble in %s", app.Store.Backend, app.Store.Path, dir)
	}
	if got := app.keySet.Load().Signing(app.now()).ID; got != kid {
		t.Errorf("signing kid after the migration = %q, want %q", got, kid)
	}
	st := app.shared.store
	if got, err := st.RefreshToken(ctx, "rt-hash"); err != nil || got.FamilyID != "fam" {
		t.Errorf("RefreshToken after the migration = %+v, %v, want family fam", got, err)
	}
	if rs, _, err := st.RevocationsSince(ctx, 0); err != nil || !slices.ContainsFunc(rs, func(r store.Revocation) bool { return r.ID == "jti-1" }) {
		t.Errorf("RevocationsSince(0) after the migration = %+v, %v, want jti-1 among them", rs, err)
	}
	if d, err := st.PendingDeviceCode(ctx, "BCDFGHJK"); err != nil || d.ClientID != "tv" {
		t.Errorf("PendingDeviceCode after the migration = %+v, %v, want tv's", d, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "tokengate.db.migrated")); err != nil {
		t.Errorf("the bolt file is not kept aside: %v", err)
	}
}

// second is the error of a call that returns a value beside it.
func second[V any](_ V, err error) error { return err }

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func TestSigningKeyFile(t *testing.T) {
	path := testkeys.WriteFile(t, t.TempDir(), tokens.RS256, "key.pem")
	app := provision(t, `{"issuer": "https://file.example", "store": {"backend": "memory"},
		"signing_key_file": {"alg": "RS256", "file": `+jsonString(path)+`, "kid": "k1"}}`)
	key := app.keySet.Load().Signing(app.now())
	if key.ID != "k1" || key.Alg != tokens.RS256 {
		t.Errorf("signing key = %q %q, want k1 RS256", key.ID, key.Alg)
	}
	keys, err := app.shared.store.SigningKeys(context.Background())
	delete(keys, sessionKeySlot)
	if err != nil || len(keys) != 0 {
		t.Errorf("store keys = %v, %v; want none but the session key: a key file is never stored", keys, err)
	}
	// Nor rotated: nothing runs, and it signs whenever asked, alone in the JWKS.
	if err := app.Start(); err != nil {
		t.Fatal(err)
	}
	defer app.Stop()
	if app.rotation != nil || app.stopRotation != nil {
		t.Error("a key file has a rotation")
	}
	for _, later := range []time.Duration{0, 720 * time.Hour, 10 * 365 * 24 * time.Hour} {
		if got := app.keySet.Load().Signing(app.now().Add(later)).ID; got != "k1" {
			t.Errorf("Signing(now+%v) = %q, want the file's key k1", later, got)
		}
	}
	if kids := jwksKids(t, app); len(kids) != 1 {
		t.Errorf("JWKS kids = %q, want only the file's key", kids)
	}
}

// Beside a key file of another algorithm, an RS256 key is generated for ID tokens (OIDC Discovery
// §3) and kept in the store; the file's key still signs access tokens.
func TestSigningKeyFileBesideRS256(t *testing.T) {
	path := testkeys.WriteFile(t, t.TempDir(), tokens.ES256, "key.pem")
	app := provision(t, `{"issuer": "https://file.example", "store": {"backend": "memory"},
		"signing_key_file": {"alg": "ES256", "file": `+jsonString(path)+`, "kid": "k1"}}`)
	if key := app.keySet.Load().Signing(app.now()); key.ID != "k1" {
		t.Errorf("signing key = %q, want the file's k1", key.ID)
	}
	keys, err := app.shared.store.SigningKeys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var stored []string
	for slot, k := range keys {
		if slot != sessionKeySlot {
			if k.Alg != tokens.RS256 {
				t.Errorf("the store holds a %s key in %s, want only RS256 keys beside a key file", k.Alg, slot)
			}
			stored = append(stored, k.ID)
		}
	}
	kids := jwksKids(t, app)
	if len(stored) == 0 || !slices.Contains(kids, "k1") || !slices.Contains(kids, stored[0]) {
		t.Errorf("JWKS kids = %q, want the file's k1 and the stored RS256 key %q", kids, stored)
	}
}

// Of several signing_key_file keys the first signs and the others are published to verify only.
func TestSigningKeyFiles(t *testing.T) {
	dir := t.TempDir()
	paths := []string{testkeys.WriteFile(t, dir, tokens.ES256, "new.pem"), testkeys.WriteFile(t, dir, tokens.ES256, "old.pem")}
	app := provision(t, `{"issuer": "https://file.example", "store": {"backend": "memory"},
		"signing_key_file": [{"alg": "ES256", "file": `+jsonString(paths[0])+`, "kid": "new"},
			{"alg": "ES256", "file": `+jsonString(paths[1])+`, "kid": "old"}]}`)
	if got := app.keySet.Load().Signing(app.now()).ID; got != "new" {
		t.Errorf("signing key = %q, want the first file's, new", got)
	}
	// Beside them, the generated RS256 key for ID tokens.
	if kids := jwksKids(t, app); len(kids) != 3 || !slices.Equal(kids[:2], []string{"new", "old"}) {
		t.Errorf("JWKS kids = %q, want both files' keys and an RS256 key", kids)
	}
	if _, err := tryProvision(t, `{"issuer": "https://file.example", "store": {"backend": "memory"},
		"signing_key_file": [{"alg": "ES256", "file": `+jsonString(paths[0])+`, "kid": "k"},
			{"alg": "ES256", "file": `+jsonString(paths[1])+`, "kid": "k"}]}`); err == nil || !strings.Contains(err.Error(), "kid") {
		t.Errorf("Provision(two key files with one kid) = %v, want an error naming the kid", err)
	}
}

// jwksKids returns the kids that app's JWKS endpoint publishes.
func jwksKids(t *testing.T, app *App) []string {
	t.Helper()
	rec, _ := serve(app, httptest.NewRequest(http.MethodGet, "/.well-known/openid-configuration/jwks", nil))
	var doc struct {
		Keys []struct {
			Kid string `json:"kid"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil || rec.Code != http.StatusOK {
		t.Fatalf("GET jwks = %d %s", rec.Code, rec.Body)
	}
	kids := make([]string, 0, len(doc.Keys))
	for _, k := range doc.Keys {
		kids = append(kids, k.Kid)
	}
	return kids
}

// TestRemovedClientIsRefused checks that after a reload that removes a
// client, bearer_auth refuses the access tokens it still holds.
func TestRemovedClientIsRefused(t *testing.T) {
	before := provision(t, testConfig)
	raw := issueToken(t, before)
	if got := gateStatus(t, before, raw); got != http.StatusTeapot {
		t.Fatalf("bearer_auth before the reload = %d, want %d", got, http.StatusTeapot)
	}
	after := provision(t, strings.Replace(testConfig, `"id": "svc"`, `"id": "other"`, 1))
	// The removal is a revocation on the shared deny-list: the configuration still finishing its
	// requests refuses the token too.
	for name, app := range map[string]*App{"the new configuration": after, "the old one": before} {
		if got := gateStatus(t, app, raw); got != http.StatusUnauthorized {
			t.Errorf("bearer_auth of %s after the reload = %d, want 401", name, got)
		}
	}
}

// gateStatus sends a request with the token through a bearer_auth with no requirements.
func gateStatus(t *testing.T, app *App, raw string) int {
	t.Helper()
	b := &BearerAuth{audit: app.audit}
	var err error
	if b.gate, err = app.Gate(gate.Requirements{}); err != nil {
		t.Fatal(err)
	}
	rec, err := serveBearerAuth(b, "Bearer "+raw, func(w http.ResponseWriter, r *http.Request) error {
		w.WriteHeader(http.StatusTeapot)
		return nil
	})
	// A refusal is a Caddy HTTP error, which Caddy's error handling answers with its status.
	if herr := (caddyhttp.HandlerError{}); errors.As(err, &herr) {
		return herr.StatusCode
	}
	if err != nil {
		t.Fatal(err)
	}
	return rec.Code
}

// TestRevocationReachesGate checks that a revocation recorded in the store is refused by the gate
// of a configuration sharing that store within its next sync.
func TestRevocationReachesGate(t *testing.T) {
	app := provision(t, testConfig)
	raw, claims := issueVerifiedToken(t, app)
	if got := gateStatus(t, app, raw); got != http.StatusTeapot {
		t.Fatalf("bearer_auth before revocation = %d, want 418", got)
	}
	ctx := context.Background()
	if err := app.shared.store.Revoke(ctx, store.Revocation{Kind: store.RevokedToken, ID: claims.JTI, Until: claims.ExpiresAt}); err != nil {
		t.Fatal(err)
	}
	_ = app.shared.deny.Sync(ctx)
	if got := gateStatus(t, app, raw); got != http.StatusUnauthorized {
		t.Errorf("bearer_auth after revocation = %d, want 401", got)
	}
}

// TestRevocationEndpointReachesGate checks the wiring between the revocation endpoint and the gate:
// a token revoked at /connect/revocation is refused from the next request on, without waiting for
// the deny-list's periodic sync.
func TestRevocationEndpointReachesGate(t *testing.T) {
	app := provision(t, testConfig)
	raw := issueToken(t, app)

	introspect := tokenRequest(url.Values{"token": {raw}})
	introspect.URL.Path = "/connect/introspect"
	if rec, _ := serve(app, introspect); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"active":true`) {
		t.Fatalf("POST /connect/introspect = %d %s, want 200 and an active token", rec.Code, rec.Body)
	}

	revoke := tokenRequest(url.Values{"token": {raw}})
	revoke.URL.Path = "/connect/revocation"
	if rec, passed := serve(app, revoke); rec.Code != http.StatusOK || passed {
		t.Fatalf("POST /connect/revocation = %d %s (passed on: %v), want 200", rec.Code, rec.Body, passed)
	}
	if got := gateStatus(t, app, raw); got != http.StatusUnauthorized {
		t.Errorf("bearer_auth right after revocation = %d, want 401", got)
	}
}

func TestGateAudienceMustBeIssued(t *testing.T) {
	app := provision(t, testConfig)
	for _, tc := range []struct {
		audience string
		ok       bool
	}{
		{"api", true},
		{"https://auth.example.com", true},
		{"", true},
		{"elsewhere", false},
	} {
		if _, err := app.Gate(gate.Requirements{Audience: tc.audience}); (err == nil) != tc.ok {
			t.Errorf("Gate(audience %q) error = %v, want ok %v", tc.audience, err, tc.ok)
		}
	}
}

// The session key is made once and read back, so a restart (or another instance) keeps everybody
// signed in, and the authorize endpoint is served.
func TestSessionKeyIsKeptInTheStore(t *testing.T) {
	app := provision(t, `{"issuer": "https://auth.example", "store": {"backend": "memory"}}`)
	first, err := app.sessionKey(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	again, err := app.sessionKey(context.Background())
	if err != nil || !bytes.Equal(first, again) || len(first) < 32 {
		t.Fatalf("session key = %x then %x, %v; want the same 32+ bytes twice", first, again, err)
	}
}

// One login_template file replaces the sign-in page and, through its "device" template, the device
// page too.
func TestLoginTemplateReplacesBothPages(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pages.html")
	page := `<p>our sign-in {{.Title}}</p>{{define "device"}}<p>our device page {{.Step}}</p>{{end}}`
	if err := os.WriteFile(path, []byte(page), 0o600); err != nil {
		t.Fatal(err)
	}
	app := provision(t, `{"issuer": "https://auth.example.com", "store": {"backend": "memory"},
		"login_template": `+jsonString(path)+`,
		"identity_providers": [{"name": "local", "users": [{"username": "alice", "hash": "$2a$04$0ocRRKdJ4Wu6Cb5c2Q3s5.3ZbG8lIsY6lyLi9HWv5Pyt2iwj7Xw4C"}]}],
		"clients": [{"id": "web", "secrets": ["s3cret-s3cret"], "grants": ["authorization_code"],
			"scopes": ["openid"], "redirect_uris": ["https://web.example.com/cb"]}]}`)
	for path, want := range map[string]string{
		"/connect/device": "our device page code",
		"/connect/authorize?client_id=web&redirect_uri=https://web.example.com/cb&response_type=code&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256": "our sign-in",
	} {
		rec, _ := serve(app, httptest.NewRequest(http.MethodGet, path, nil))
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("GET %s = %d %q (Location %q), want it to hold %q", path, rec.Code, rec.Body.String(), rec.Header().Get("Location"), want)
		}
	}
}
