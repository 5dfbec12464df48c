package registration

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tokengate/tokengate/grants"
	"github.com/tokengate/tokengate/internal/testclock"
	"github.com/tokengate/tokengate/store"
	"github.com/tokengate/tokengate/throttle"
)

type fixture struct {
	t     *testing.T
	reg   *Registry
	clock *testclock.Clock
	store *store.Memory
}

func newFixture(t *testing.T, edit func(*Config)) *fixture {
	clock := testclock.New(time.Unix(1_800_000_000, 0))
	f := &fixture{t: t, clock: clock, store: store.NewMemory(clock.Now)}
	cfg := Config{Store: f.store, Scopes: func() []string { return []string{"openid", "offline_access", "mcp.tools"} }, Now: clock.Now,
		ClientIP: func(r *http.Request) string { return r.Header.Get("X-Test-Address") }}
	if edit != nil {
		edit(&cfg)
	}
	f.reg = New(cfg)
	return f
}

// register POSTs body from address and decodes the answer.
func (f *fixture) register(address, body string) (*httptest.ResponseRecorder, map[string]any) {
	r := httptest.NewRequest(http.MethodPost, "/connect/register", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("X-Test-Address", address)
	w := httptest.NewRecorder()
	f.reg.ServeHTTP(w, r)
	var answer map[string]any
	json.Unmarshal(w.Body.Bytes(), &answer)
	if w.Header().Get("Cache-Control") != "no-store" {
		f.t.Errorf("register(%s): Cache-Control %q, want no-store", body, w.Header().Get("Cache-Control"))
	}
	return w, answer
}

func TestRegisterPublicClient(t *testing.T) {
	f := newFixture(t, nil)
	w, answer := f.register("a", `{"redirect_uris":["http://127.0.0.1/callback"],"token_endpoint_auth_method":"none",
		"grant_types":["authorization_code","refresh_token"],"client_name":"Inspector","application_type":"native","x-extra":{"a":1}}`)
	id, _ := answer["client_id"].(string)
	if w.Code != http.StatusCreated || !strings.HasPrefix(id, idPrefix) || answer["client_secret"] != nil ||
		answer["client_id_issued_at"] != float64(1_800_000_000) || answer["application_type"] != "native" ||
		answer["token_endpoint_auth_method"] != "none" || answer["secret_hash"] != nil {
		t.Fatalf("registration: %d %v", w.Code, answer)
	}
	c, err := f.reg.LookupClient(t.Context(), id)
	if err != nil || !c.Dynamic || !c.Public || c.DisplayName != "Inspector" || strings.Join(c.Grants, " ") != "authorization_code refresh_token" ||
		!c.RedirectsTo("http://127.0.0.1:5555/callback") || strings.Join(c.Scopes, " ") != "openid offline_access mcp.tools" {
		t.Fatalf("LookupClient = %+v, %v", c, err)
	}
	if _, err := f.reg.LookupClient(t.Context(), "web"); err != grants.ErrNotOwned {
		t.Errorf("LookupClient(web) = %v, want ErrNotOwned", err)
	}
	if _, err := f.reg.LookupClient(t.Context(), idPrefix+"unknown"); err == nil {
		t.Error("an unknown registered id resolved")
	}
}

// RFC 7591 §2: token_endpoint_auth_method defaults to client_secret_basic, which gets a secret
// that never expires and authenticates the client; only its hash is stored.
func TestRegisterConfidentialClient(t *testing.T) {
	f := newFixture(t, nil)
	w, answer := f.register("a", `{"redirect_uris":["https://app.example/cb"],"scope":"openid mcp.tools"}`)
	secret, _ := answer["client_secret"].(string)
	if w.Code != http.StatusCreated || len(secret) < 43 || answer["client_secret_expires_at"] != float64(0) ||
		answer["token_endpoint_auth_method"] != grants.AuthSecretBasic {
		t.Fatalf("registration: %d %v", w.Code, answer)
	}
	id := answer["client_id"].(string)
	rec, err := f.store.RegisteredClient(t.Context(), id)
	if err != nil || strings.Contains(string(rec.Metadata), secret) {
		t.Fatalf("stored %s, %v: the secret itself must not be stored", rec.Metadata, err)
	}
	c, err := f.reg.LookupClient(t.Context(), id)
	if err != nil || c.Public || len(c.Secrets) != 1 || strings.Join(c.Scopes, " ") != "openid mcp.tools" || !c.RequiresPKCE() {
		t.Fatalf("LookupClient = %+v, %v", c, err)
	}
}

func TestRegisterRefusals(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Rate = throttle.New(1000, time.Hour, 100) })
	for body, code := range map[string]string{
		`[]`:                   codeInvalidMetadata,
		`"x"`:                  codeInvalidMetadata,
		`{`:                    codeInvalidMetadata,
		`{}`:                   codeInvalidRedirectURI,
		`{"redirect_uris":[]}`: codeInvalidRedirectURI,
		`{"redirect_uris":"https://a.example/cb"}`:                                                  codeInvalidRedirectURI,
		`{"redirect_uris":["http://a.example/cb"]}`:                                                 codeInvalidRedirectURI,
		`{"redirect_uris":["https://a.example/cb#f"]}`:                                              codeInvalidRedirectURI,
		`{"redirect_uris":["javascript:alert(1)"]}`:                                                 codeInvalidRedirectURI,
		`{"redirect_uris":["https://a.example/cb"],"grant_types":["client_credentials"]}`:           codeInvalidMetadata,
		`{"redirect_uris":["https://a.example/cb"],"grant_types":["implicit"]}`:                     codeInvalidMetadata,
		`{"redirect_uris":["https://a.example/cb"],"response_types":["token"]}`:                     codeInvalidMetadata,
		`{"redirect_uris":["https://a.example/cb"],"token_endpoint_auth_method":"private_key_jwt"}`: codeInvalidMetadata,
		`{"redirect_uris":["https://a.example/cb"],"scope":"admin"}`:                                codeInvalidMetadata,
		`{"redirect_uris":["https://a.example/cb"],"client_name":7}`:                                codeInvalidMetadata,
	} {
		w, answer := f.register("a", body)
		if w.Code != http.StatusBadRequest || answer["error"] != code {
			t.Errorf("register(%s) = %d %v, want 400 %s", body, w.Code, answer, code)
		}
	}
}

// Registrations are bounded per address (429 with Retry-After) and in number (429).
func TestRegisterLimits(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Rate, c.MaxClients = throttle.New(3, time.Hour, 100), 4 })
	body := `{"redirect_uris":["https://a.example/cb"],"token_endpoint_auth_method":"none"}`
	for i := range 3 {
		if w, _ := f.register("flood", body); w.Code != http.StatusCreated {
			t.Fatalf("registration %d: %d", i, w.Code)
		}
	}
	w, answer := f.register("flood", body)
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") == "" || answer["error"] == nil {
		t.Errorf("the 4th registration from one address: %d %v, Retry-After %q", w.Code, answer, w.Header().Get("Retry-After"))
	}
	if w, _ := f.register("other", body); w.Code != http.StatusCreated {
		t.Errorf("another address: %d", w.Code)
	}
	if w, answer := f.register("third", body); w.Code != http.StatusTooManyRequests || answer["error"] == nil {
		t.Errorf("beyond max_clients: %d %v", w.Code, answer)
	}
}

// A registered client unused for UnusedTTL is gone; one in use is kept.
func TestRegisteredClientsExpireUnused(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.UnusedTTL = 72 * time.Hour })
	body := `{"redirect_uris":["https://a.example/cb"],"token_endpoint_auth_method":"none"}`
	_, used := f.register("a", body)
	_, unused := f.register("a", body)
	for range 5 {
		f.clock.Advance(24 * time.Hour)
		if _, err := f.reg.LookupClient(t.Context(), used["client_id"].(string)); err != nil {
			t.Fatalf("a client in use: %v", err)
		}
	}
	if _, err := f.reg.LookupClient(t.Context(), unused["client_id"].(string)); err == nil {
		t.Error("a client unused for 120 h of a 72 h unused_ttl still resolves")
	}
}

// failingStore is a store whose registered clients cannot be read.
type failingStore struct{ *store.Memory }

func (failingStore) RegisteredClient(context.Context, string) (store.RegisteredClient, error) {
	return store.RegisteredClient{}, errors.New("connection refused")
}

// A store that does not answer is a fault, not an unknown client.
func TestLookupClientStoreDown(t *testing.T) {
	f := newFixture(t, nil)
	down := New(Config{Store: failingStore{f.store}, Scopes: func() []string { return []string{"openid"} }})
	if _, err := down.LookupClient(t.Context(), idPrefix+"x"); !errors.Is(err, grants.ErrSourceUnavailable) {
		t.Errorf("LookupClient with the store down = %v, want ErrSourceUnavailable", err)
	}
}
