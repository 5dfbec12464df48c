package caddymodule

import (
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"

	"github.com/tokengate/tokengate/grants"
	"github.com/tokengate/tokengate/internal/assertiontest"
)

// assertionFiles writes a client's JWK Set, a partner's PEM public key and a SAML IdP's
// certificate, and returns the client's private key with the paths.
func assertionFiles(t *testing.T) (key *ecdsa.PrivateKey, jwksFile, pemFile, certFile string) {
	t.Helper()
	dir := t.TempDir()
	key = assertiontest.ECKey(t)
	set, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Use: "sig"}}})
	der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	cert := assertiontest.Certificate(t, key, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	jwksFile, pemFile, certFile = filepath.Join(dir, "client.json"), filepath.Join(dir, "partner.pem"), filepath.Join(dir, "idp.pem")
	for path, data := range map[string][]byte{
		jwksFile: set,
		pemFile:  pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}),
		certFile: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}),
	} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return key, jwksFile, pemFile, certFile
}

// assertionConfig is an app with a private_key_jwt client, a client_secret_jwt one, a trust and a
// saml_trust.
func assertionConfig(jwksFile, pemFile, certFile string) string {
	return `{
	"issuer": "https://auth.example.com",
	"store": {"backend": "memory"},
	"clients": [
		{"id": "pk", "auth_method": "private_key_jwt", "jwks_file": ` + jsonString(jwksFile) + `,
		 "grants": ["client_credentials", "jwt_bearer"], "scopes": ["api"]},
		{"id": "hs", "auth_method": "client_secret_jwt", "secrets": ["an-hs256-secret-of-at-least-32-bytes"],
		 "grants": ["saml2_bearer"], "scopes": ["api"]}
	],
	"trusts": [{"name": "partner", "issuer": "https://partner.example.com", "key_file": ` + jsonString(pemFile) + `}],
	"saml_trusts": [{"name": "idp", "entity_id": "https://idp.example.com", "certificate_file": ` + jsonString(certFile) + `}]
}`
}

func TestClientAssertionThroughTheApp(t *testing.T) {
	key, jwksFile, pemFile, certFile := assertionFiles(t)
	app := provision(t, assertionConfig(jwksFile, pemFile, certFile))
	now := time.Now()
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"iss": "pk", "sub": "pk",
		"aud": "https://auth.example.com/connect/token", "exp": now.Add(time.Minute).Unix(), "jti": "j1"})
	tok.Header["kid"] = "k1"
	raw, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	form := url.Values{"grant_type": {"client_credentials"}, "client_assertion_type": {grants.ClientAssertionType}, "client_assertion": {raw}}
	r := httptest.NewRequest(http.MethodPost, "https://auth.example.com/connect/token", strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if rec, _ := serve(app, r); rec.Code != http.StatusOK {
		t.Fatalf("private_key_jwt through the app = %d %s, want 200", rec.Code, rec.Body)
	}
}

// Discovery lists the grants and client authentication methods that clients are registered for,
// and the algorithms their assertions may use (RFC 8414 §2).
func TestDiscoveryOfAssertions(t *testing.T) {
	_, jwksFile, pemFile, certFile := assertionFiles(t)
	app := provision(t, assertionConfig(jwksFile, pemFile, certFile))
	algs := []string{"HS256", "EdDSA", "ES256", "ES384", "ES512", "PS256", "PS384", "PS512", "RS256", "RS384", "RS512"}
	slices.Sort(algs)
	checkDiscovery(t, app, map[string][]string{
		"grant_types_supported":                            {"client_credentials", grants.GrantTypeJWTBearer, grants.GrantTypeSAML2Bearer},
		"token_endpoint_auth_methods_supported":            {"client_secret_jwt", "private_key_jwt"},
		"token_endpoint_auth_signing_alg_values_supported": algs,
	})
	// Without JWT clients the field is absent rather than empty.
	plain, _ := serve(provision(t, testConfig), httptest.NewRequest(http.MethodGet, "/.well-known/openid-configuration", nil))
	if strings.Contains(plain.Body.String(), "token_endpoint_auth_signing_alg_values_supported") {
		t.Errorf("discovery without JWT clients lists signing algs: %s", plain.Body)
	}
}

func TestProvisionRefusesAssertionConfig(t *testing.T) {
	_, jwksFile, pemFile, certFile := assertionFiles(t)
	good := assertionConfig(jwksFile, pemFile, certFile)
	for _, tc := range []struct {
		name, config, want string
	}{
		{"a missing jwks_file", strings.Replace(good, jsonString(jwksFile), `"/nonexistent/k.json"`, 1), `client "pk": jwks_file`},
		{"a jwks_file that is no JWK Set", strings.Replace(good, jsonString(jwksFile), jsonString(pemFile), 1), "not a JWK Set"},
		{"a key_file with no key", strings.Replace(good, jsonString(pemFile), jsonString(jwksFile), 1), `trust "partner": key_file`},
		{"a certificate_file with no certificate", strings.Replace(good, jsonString(certFile), jsonString(pemFile), 1), `saml_trust "idp"`},
		{"saml2_bearer without saml_trust", strings.Replace(good, `"saml_trusts": [`, `"unused": [`, 1), "saml2_bearer grant needs a saml_trust"},
		{"a short client_secret_jwt secret", strings.Replace(good, "an-hs256-secret-of-at-least-32-bytes", "short", 1), "HS256 needs at least 32"},
		{"two trusts with one issuer", strings.Replace(good, `"trusts": [`, `"trusts": [{"name": "b", "issuer": "https://partner.example.com", "key_file": `+jsonString(pemFile)+`}, `, 1), "another trust's"},
		{"a trust without keys", strings.Replace(good, `"key_file": `+jsonString(pemFile), `"issuer2": "x"`, 1), "want exactly one of"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tryProvision(t, tc.config)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Provision(%s) = %v, want an error containing %q", tc.name, err, tc.want)
			}
		})
	}
}

// A jwks_uri's key set lives in a pool: a reload shares it, with its cache, and the last
// configuration to let go releases it.
func TestRemoteKeySetSurvivesReload(t *testing.T) {
	config := `{"issuer": "https://auth.example.com", "store": {"backend": "memory"}, "clients": [
		{"id": "pk", "auth_method": "private_key_jwt", "jwks_uri": "https://pk.example.com/jwks", "grants": ["client_credentials"]}]}`
	first := provision(t, config)
	second := provision(t, config)
	a, _ := first.server.Client("pk")
	b, _ := second.server.Client("pk")
	if a.Keys != b.Keys {
		t.Error("a reload made a new remote key set instead of sharing the pooled one")
	}
	if err := first.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if err := second.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if _, loaded := jwksPool.References("https://pk.example.com/jwks"); loaded {
		t.Error("the key set stayed in the pool after every configuration released it")
	}
}

// exchangeConfig is an app with the token exchange, a client svc to get a subject token from (its
// aud the issuer), and a client gw that may exchange it.
const exchangeConfig = `{
	"issuer": "https://auth.example.com",
	"store": {"backend": "memory"},
	"clients": [
		{"id": "svc", "secrets": ["{env.TOKENGATE_TEST_SECRET}"], "grants": ["client_credentials"], "scopes": ["api.read"]},
		{"id": "gw", "secrets": ["gw-secret"], "grants": ["urn:ietf:params:oauth:grant-type:token-exchange"], "scopes": ["api.read"],
			"exchange_audiences": ["https://auth.example.com"]}
	],
	"extension_grants": [{"grant_type": "urn:ietf:params:oauth:grant-type:token-exchange", "grant": {"module": "token_exchange"}}]
}`

func TestTokenExchangeModule(t *testing.T) {
	app := provision(t, exchangeConfig)
	subject := issueToken(t, app)
	form := url.Values{"grant_type": {grants.GrantTypeTokenExchange}, "subject_token": {subject}, "subject_token_type": {grants.TokenTypeAccessToken}}
	r := httptest.NewRequest(http.MethodPost, "https://auth.example.com/connect/token", strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.SetBasicAuth("gw", "gw-secret")
	rec, _ := serve(app, r)
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"issued_token_type":"`+grants.TokenTypeAccessToken) {
		t.Fatalf("token exchange through the app = %d %s, want 200 and an issued_token_type", rec.Code, rec.Body)
	}
	disc, _ := serve(app, httptest.NewRequest(http.MethodGet, "/.well-known/openid-configuration", nil))
	if !strings.Contains(disc.Body.String(), grants.GrantTypeTokenExchange) {
		t.Errorf("discovery = %s, want it to list the token exchange", disc.Body)
	}
	for _, tc := range []struct{ name, config, want string }{
		{"a grant line naming another URI", strings.ReplaceAll(exchangeConfig, "urn:ietf:params:oauth:grant-type:token-exchange", "urn:example:exchange"), "the module serves"},
		{"a client's undeclared extension", strings.Replace(exchangeConfig, `"extension_grants"`, `"unused"`, 1), `no grant line declares`},
		{"an unknown module", strings.Replace(exchangeConfig, `"module": "token_exchange"`, `"module": "magic"`, 1), "tokengate.grants.magic"},
	} {
		if _, err := tryProvision(t, tc.config); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Provision(%s) = %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
}
