package grants

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"

	"github.com/tokengate/tokengate/internal/assertiontest"
	"github.com/tokengate/tokengate/internal/bcrypttest"
)

// assertionForm is a client_credentials request authenticated by the client assertion raw.
func assertionForm(raw string, extra ...string) string {
	v := vals(append([]string{"grant_type", "client_credentials", "client_assertion_type", ClientAssertionType,
		"client_assertion", raw}, extra...)...)
	return v.Encode()
}

// RFC 7523 §3, OIDC Core §9: private_key_jwt and client_secret_jwt accept exactly what they
// should, and every forgery or misuse is invalid_client (or invalid_request for a malformed call).
func TestClientAssertions(t *testing.T) {
	var k *assertionKeys
	f := newFixture(t, func(f *fixture, cfg *Config) {
		k = newAssertionKeys(t, f.Now())
		withAssertions(t, k)(f, cfg)
	})
	now := f.Now()
	pk := func(c jwt.MapClaims) string {
		return assertiontest.SignJWT(t, jwt.SigningMethodES256, k.client, kid("c1"), c)
	}
	hs := func(c jwt.MapClaims) string {
		return assertiontest.SignJWT(t, jwt.SigningMethodHS256, []byte(hmacSecret), nil, c)
	}
	good := func() jwt.MapClaims { return claimsFor("pkjwt", "pkjwt", now) }
	stranger := assertiontest.ECKey(t)
	jwk, _ := json.Marshal(jose.JSONWebKey{Key: &stranger.PublicKey})
	var jwkHeader map[string]any
	json.Unmarshal(jwk, &jwkHeader)
	none := assertiontest.SignJWT(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, nil, good())

	for _, tc := range []struct {
		name string
		body string
		// status 0 means 401 invalid_client.
		status int
		code   string
	}{
		// OIDC Core §9: both of this server's identifiers are accepted audiences.
		{"private_key_jwt, aud the issuer", assertionForm(pk(good())), 200, ""},
		{"private_key_jwt, aud the token endpoint", assertionForm(pk(assertiontest.With(good(), "aud", tokenEndpoint))), 200, ""},
		{"private_key_jwt, aud a list holding the issuer", assertionForm(pk(assertiontest.With(good(), "aud", []string{"x", issuer}))), 200, ""},
		{"private_key_jwt with a matching client_id", assertionForm(pk(good()), "client_id", "pkjwt"), 200, ""},
		{"client_secret_jwt", assertionForm(hs(claimsFor("jwtc", "jwtc", now))), 200, ""},
		// A clock 8 s ahead is tolerated, one over a minute ahead is not.
		{"nbf 8 s ahead", assertionForm(pk(assertiontest.With(good(), "nbf", now.Add(8*time.Second).Unix()))), 200, ""},
		{"nbf 61 s ahead", assertionForm(pk(assertiontest.With(good(), "nbf", now.Add(61*time.Second).Unix()))), 0, ""},
		// RFC 7523 §3, OIDC Core §9: signed by the client, unexpired, for this server, iss and sub the
		// client, with a jti.
		{"alg none", assertionForm(none), 0, ""},
		{"HS256 keyed with the client's public key", assertionForm(assertiontest.SignJWT(t, jwt.SigningMethodHS256, assertiontest.PublicKeyPEM(t, &k.client.PublicKey), kid("c1"), good())), 0, ""},
		{"a stranger's signature", assertionForm(assertiontest.SignJWT(t, jwt.SigningMethodES256, stranger, kid("c1"), good())), 0, ""},
		{"exp 5 minutes past", assertionForm(pk(assertiontest.With(good(), "exp", now.Add(-5*time.Minute).Unix()))), 0, ""},
		{"no exp", assertionForm(pk(assertiontest.With(good(), "exp", nil))), 0, ""},
		{"a wrong aud", assertionForm(pk(assertiontest.With(good(), "aud", "https://other.example.com"))), 0, ""},
		{"iss is not sub", assertionForm(pk(assertiontest.With(good(), "sub", "alice"))), 0, ""},
		{"no sub", assertionForm(pk(assertiontest.With(good(), "sub", nil))), 0, ""},
		{"no jti", assertionForm(pk(assertiontest.With(good(), "jti", nil))), 0, ""},
		// kid only ever selects among configured keys; jku and jwk are never fetched or used.
		{"an unknown kid", assertionForm(assertiontest.SignJWT(t, jwt.SigningMethodES256, k.client, kid("c2"), good())), 0, ""},
		{"kid a path", assertionForm(assertiontest.SignJWT(t, jwt.SigningMethodES256, k.client, kid("../../dev/null"), good())), 0, ""},
		{"kid SQL", assertionForm(assertiontest.SignJWT(t, jwt.SigningMethodES256, k.client, kid("' OR 1=1"), good())), 0, ""},
		{"a jku to the attacker's keys", assertionForm(assertiontest.SignJWT(t, jwt.SigningMethodES256, stranger,
			map[string]any{"kid": "c1", "jku": "https://attacker.example/jwks"}, good())), 0, ""},
		{"an embedded jwk", assertionForm(assertiontest.SignJWT(t, jwt.SigningMethodES256, stranger, map[string]any{"jwk": jwkHeader}, good())), 0, ""},
		// client_secret_jwt is HS256 keyed with the client's own secret, nothing else.
		{"client_secret_jwt with a wrong key", assertionForm(assertiontest.SignJWT(t, jwt.SigningMethodHS256, []byte(hmacSecret+"x"), nil, claimsFor("jwtc", "jwtc", now))), 0, ""},
		{"client_secret_jwt signed ES256", assertionForm(assertiontest.SignJWT(t, jwt.SigningMethodES256, k.client, nil, claimsFor("jwtc", "jwtc", now))), 0, ""},
		{"an unknown client_assertion_type", strings.Replace(assertionForm(pk(good())), "jwt-bearer", "saml2-bearer", 1), 400, CodeInvalidRequest},
		{"no client_assertion_type", vals("grant_type", "client_credentials", "client_assertion", pk(good())).Encode(), 400, CodeInvalidRequest},
		{"client_assertion_type alone", vals("grant_type", "client_credentials", "client_assertion_type", ClientAssertionType, "client_id", "pkjwt").Encode(), 400, CodeInvalidRequest},
		// Each client uses the method it registered; a secret client cannot use assertions.
		{"a secret client's assertion", assertionForm(assertiontest.SignJWT(t, jwt.SigningMethodHS256, []byte("other-secret"), nil, claimsFor("other", "other", now))), 0, ""},
		{"client_secret_jwt's secret in the body", vals("grant_type", "client_credentials", "client_id", "jwtc", "client_secret", hmacSecret).Encode(), 0, ""},
		{"private_key_jwt with its id alone", vals("grant_type", "client_credentials", "client_id", "pkjwt").Encode(), 0, ""},
		// The assertion names the client, exactly.
		{"client_id another client", assertionForm(pk(good()), "client_id", "jwtc"), 0, ""},
		{"iss with a NUL", assertionForm(pk(assertiontest.With(good(), "iss", "pkjwt\x00", "sub", "pkjwt\x00"))), 0, ""},
		{"iss in another case", assertionForm(pk(assertiontest.With(good(), "iss", "PKJWT", "sub", "PKJWT"))), 0, ""},
		{"an unknown client", assertionForm(pk(assertiontest.With(good(), "iss", "nobody", "sub", "nobody"))), 0, ""},
		{"not a JWT", assertionForm("garbage"), 0, ""},
		// RFC 6749 §2.3: one method per request.
		{"client_secret and an assertion", assertionForm(hs(claimsFor("jwtc", "jwtc", now)), "client_secret", hmacSecret), 400, CodeInvalidRequest},
	} {
		resp := f.do(request{body: tc.body})
		status, code := tc.status, tc.code
		if status == 0 {
			status, code = http.StatusUnauthorized, CodeInvalidClient
		}
		if status == 200 {
			if resp.status != 200 {
				t.Errorf("%s: %d %s, want 200", tc.name, resp.status, resp.raw)
			}
			continue
		}
		f.expectError(tc.name, resp, status, code)
		if resp.header.Get("WWW-Authenticate") != "" {
			t.Errorf("%s: WWW-Authenticate %q for a client that did not try Basic", tc.name, resp.header.Get("WWW-Authenticate"))
		}
	}

	// RFC 6749 §2.3: Basic beside an assertion.
	f.expectError("Basic and an assertion", f.do(request{body: assertionForm(pk(good())), basic: [2]string{"jwtc", hmacSecret}}),
		400, CodeInvalidRequest)

	// An assertion authenticates once (CVE-2020-15222).
	raw := pk(good())
	f.expectOK("first use", f.do(request{body: assertionForm(raw)}))
	f.expectError("replay", f.do(request{body: assertionForm(raw)}), 401, CodeInvalidClient)
}

// A token issued to a private_key_jwt client is its own: it authenticates the same way at
// introspection and revocation, which share client authentication with the token endpoint.
func TestClientAssertionAtIntrospectionAndRevocation(t *testing.T) {
	var k *assertionKeys
	f := newFixture(t, func(f *fixture, cfg *Config) {
		k = newAssertionKeys(t, f.Now())
		withAssertions(t, k)(f, cfg)
	})
	pk := func() string {
		return assertiontest.SignJWT(t, jwt.SigningMethodES256, k.client, kid("c1"), claimsFor("pkjwt", "pkjwt", f.Now()))
	}
	token := f.do(request{body: assertionForm(pk())})
	f.expectOK("token", token)
	auth := func(extra ...string) string {
		return vals(append([]string{"client_assertion_type", ClientAssertionType, "client_assertion", pk()}, extra...)...).Encode()
	}
	in := f.do(request{target: "/connect/introspect", body: auth("token", token.str("access_token"))})
	if in.status != 200 || in.json["active"] != true || in.str("client_id") != "pkjwt" {
		t.Fatalf("introspect with private_key_jwt: %d %s, want an active token of pkjwt", in.status, in.raw)
	}
	forged := assertiontest.SignJWT(t, jwt.SigningMethodES256, assertiontest.ECKey(t), kid("c1"), claimsFor("pkjwt", "pkjwt", f.Now()))
	bad := f.do(request{target: "/connect/revocation", body: vals("client_assertion_type", ClientAssertionType,
		"client_assertion", forged, "token", token.str("access_token")).Encode()})
	f.expectError("revoke with a forged assertion", bad, 401, CodeInvalidClient)
	if r := f.do(request{target: "/connect/revocation", body: auth("token", token.str("access_token"))}); r.status != 200 {
		t.Fatalf("revoke with private_key_jwt: %d %s", r.status, r.raw)
	}
	in = f.do(request{target: "/connect/introspect", body: auth("token", token.str("access_token"))})
	if in.raw != `{"active":false}`+"\n" {
		t.Errorf("introspect after revocation = %s, want inactive", in.raw)
	}
}

// Construction refusals: a client registered for a JWT method or an assertion grant must have
// what verifies its assertions.
func TestAssertionClientConfig(t *testing.T) {
	base := newFixture(t)
	for _, tc := range []struct {
		name   string
		client *Client
		want   string
	}{
		{"client_secret_jwt with a bcrypt secret", &Client{ID: "c", AuthMethod: AuthSecretJWT, Secrets: secrets(t, bcrypttest.Hash(t, hmacSecret))}, "bcrypt"},
		{"client_secret_jwt with a short secret", &Client{ID: "c", AuthMethod: AuthSecretJWT, Secrets: secrets(t, "short")}, "HS256"},
		{"jwt_bearer with nobody to trust", &Client{ID: "c", Secrets: secrets(t, "s"), Grants: []string{"jwt_bearer"}}, "trust"},
		{"saml2_bearer without saml_trust", &Client{ID: "c", Secrets: secrets(t, "s"), Grants: []string{"saml2_bearer"}}, "saml_trust"},
	} {
		_, err := New(Config{
			Settings: Settings{Issuer: issuer, TokenEndpoint: tokenEndpoint, VerificationURI: verificationURI,
				Clients: []*Client{tc.client}},
			Dependencies: Dependencies{Store: base.store, Minter: base.srv.cfg.Minter, Verifier: base.verifier},
		})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%s) = %v, want an error about %q", tc.name, err, tc.want)
		}
	}
}

func kid(k string) map[string]any { return map[string]any{"kid": k} }
