package tests

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"

	"github.com/tokengate/tokengate/internal/assertiontest"
)

const (
	clientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
	grantJWTBearer      = "urn:ietf:params:oauth:grant-type:jwt-bearer"
	grantSAML2Bearer    = "urn:ietf:params:oauth:grant-type:saml2-bearer"
	grantTokenExchange  = "urn:ietf:params:oauth:grant-type:token-exchange"
	tokenTypeAccess     = "urn:ietf:params:oauth:token-type:access_token"
	partnerIssuer       = "https://partner.example.com"
	samlEntityID        = "https://idp.example.com/saml"
	// hmacSecret is the client_secret_jwt client's secret: HS256 needs 32 bytes.
	hmacSecret = "an-hs256-client-secret-of-32-bytes-at-least"
)

// assertionCaddyfile registers a private_key_jwt client with a jwks_file (pk, which may also sign
// its own jwt-bearer assertions), one with a jwks_uri (remote), a client_secret_jwt client (hs), a
// secret client for the assertion grants (relying), a client of the token exchange (gw, which
// speaks for api, pk's tokens' audience), a trust
// and a saml_trust. /api/* answers with
// the token's sub and client_id.
const assertionCaddyfile = `{
	tokengate {
		issuer {{BASE}}
		store memory
		client pk {
			auth_method private_key_jwt
			jwks_file {{DIR}}/pk.json
			grants client_credentials jwt_bearer
			scopes api.read
			audience api
		}
		client remote {
			auth_method private_key_jwt
			jwks_uri {{JWKS_URI}}
			grants client_credentials
			scopes api.read
		}
		client hs {
			secret ` + hmacSecret + `
			auth_method client_secret_jwt
			grants client_credentials
			scopes api.read
		}
		client relying {
			secret relying-secret
			grants jwt_bearer saml2_bearer
			scopes api.read
		}
		client gw {
			secret gw-secret
			grants ` + grantTokenExchange + `
			scopes api.read
			exchange_audiences api
		}
		grant ` + grantTokenExchange + ` token_exchange
		trust partner {
			issuer ` + partnerIssuer + `
			key_file {{DIR}}/partner.pem
		}
		saml_trust idp {
			entity_id ` + samlEntityID + `
			certificate_file {{DIR}}/idp.pem
		}
	}
}

{{BASE}} {
	tokengate
	bearer_auth /api/*
	respond /api/* "{http.auth.user.id} {http.auth.user.client_id}"
}
`

// assertionWorld is a running Caddy on assertionCaddyfile and the keys its test signs with.
type assertionWorld struct {
	caddy   *Caddy
	config  string            // the Caddyfile it runs, paths filled in
	pk      *ecdsa.PrivateKey // pk's key, kid pk1
	remote  *ecdsa.PrivateKey // remote's key, served at its jwks_uri as kid r1
	partner *rsa.PrivateKey   // the trust's key
	idp     *rsa.PrivateKey   // the SAML IdP's key
	idpCert *x509.Certificate
}

func startAssertionWorld(t *testing.T) *assertionWorld {
	t.Helper()
	w := &assertionWorld{pk: assertiontest.ECKey(t), remote: assertiontest.ECKey(t), partner: assertiontest.RSAKey(t), idp: assertiontest.RSAKey(t)}
	dir := t.TempDir()
	w.idpCert = assertiontest.Certificate(t, w.idp, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	partnerDER, _ := x509.MarshalPKIXPublicKey(&w.partner.PublicKey)
	writeFile(t, filepath.Join(dir, "pk.json"), jwkSet(t, "pk1", &w.pk.PublicKey))
	writeFile(t, filepath.Join(dir, "partner.pem"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: partnerDER}))
	writeFile(t, filepath.Join(dir, "idp.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: w.idpCert.Raw}))
	remoteSet := jwkSet(t, "r1", &w.remote.PublicKey)
	jwksServer := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, _ *http.Request) {
		rw.Header().Set("Content-Type", "application/jwk-set+json")
		rw.Write(remoteSet)
	}))
	t.Cleanup(jwksServer.Close)
	w.config = strings.NewReplacer("{{DIR}}", dir, "{{JWKS_URI}}", jwksServer.URL+"/jwks").Replace(assertionCaddyfile)
	w.caddy = startCaddy(t, w.config)
	return w
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func jwkSet(t *testing.T, kid string, pub any) []byte {
	t.Helper()
	data, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: pub, KeyID: kid, Use: "sig"}}})
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// claims are a fresh assertion's: aud the token endpoint, a minute to live, a new jti.
func (w *assertionWorld) claims(iss, sub string) jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{"iss": iss, "sub": sub, "aud": w.caddy.URL("/connect/token"),
		"iat": now.Unix(), "exp": now.Add(time.Minute).Unix(), "jti": rand.Text()}
}

func signed(t *testing.T, method jwt.SigningMethod, key any, kid string, claims jwt.MapClaims) string {
	t.Helper()
	var header map[string]any
	if kid != "" {
		header = map[string]any{"kid": kid}
	}
	return assertiontest.SignJWT(t, method, key, header, claims)
}

// withClientAssertion is a client_credentials request authenticated by raw.
func withClientAssertion(raw string, pairs ...string) string {
	return formBody(append([]string{"grant_type", "client_credentials", "client_assertion_type", clientAssertionType, "client_assertion", raw}, pairs...)...)
}

// wantAPI checks the token reaches /api/ as sub and client.
func wantAPI(t *testing.T, c *Caddy, what, token, sub, client string) {
	t.Helper()
	r := send(t, c, request{method: http.MethodGet, path: "/api/x", header: bearer(token, nil)})
	if want := sub + " " + client; r.status != http.StatusOK || string(r.body) != want {
		t.Errorf("%s: GET /api/x = %d %q, want 200 %q", what, r.status, r.body, want)
	}
}

// RFC 7523 §2.2, OIDC Core §9 through Caddy: each client assertion method, a replay, and algorithm
// confusion.
func TestClientAssertionMethods(t *testing.T) {
	w := startAssertionWorld(t)
	c := w.caddy
	for _, tc := range []struct {
		name, client, raw string
	}{
		{"private_key_jwt with a jwks_file", "pk", signed(t, jwt.SigningMethodES256, w.pk, "pk1", w.claims("pk", "pk"))},
		{"private_key_jwt with a jwks_uri", "remote", signed(t, jwt.SigningMethodES256, w.remote, "r1", w.claims("remote", "remote"))},
		{"client_secret_jwt", "hs", signed(t, jwt.SigningMethodHS256, []byte(hmacSecret), "", w.claims("hs", "hs"))},
	} {
		tok := wantToken(t, tc.name, postToken(t, c, nil, withClientAssertion(tc.raw)))
		wantAPI(t, c, tc.name, tok.AccessToken, tc.client, tc.client)
		// RFC 7523 §3 item 7: an assertion authenticates once.
		wantInvalidClient(t, tc.name+", replayed", postToken(t, c, nil, withClientAssertion(tc.raw)), false)
	}
	// RFC 8725 §3.1: HS256 keyed with the client's public key (which its JWKS publishes).
	confused := signed(t, jwt.SigningMethodHS256, assertiontest.PublicKeyPEM(t, &w.pk.PublicKey), "pk1", w.claims("pk", "pk"))
	wantInvalidClient(t, "HS256 with pk's public key", postToken(t, c, nil, withClientAssertion(confused)), false)
	// OIDC Core §9: client_secret_jwt's client cannot be reached with another algorithm.
	wantInvalidClient(t, "hs signed ES256", postToken(t, c, nil, withClientAssertion(signed(t, jwt.SigningMethodES256, w.pk, "pk1", w.claims("hs", "hs")))), false)
	wantError(t, "an unknown client_assertion_type", postToken(t, c, nil, formBody("grant_type", "client_credentials",
		"client_assertion_type", "urn:example:other", "client_assertion", signed(t, jwt.SigningMethodES256, w.pk, "pk1", w.claims("pk", "pk")))), "invalid_request")
	// RFC 6749 §2.3: Basic beside an assertion is two methods.
	wantError(t, "Basic and an assertion", postToken(t, c, basicAuth("hs", hmacSecret),
		withClientAssertion(signed(t, jwt.SigningMethodHS256, []byte(hmacSecret), "", w.claims("hs", "hs")))), "invalid_request")
	// A client registered for client_secret_jwt cannot send its secret instead.
	wantInvalidClient(t, "hs with Basic", postToken(t, c, basicAuth("hs", hmacSecret), formBody("grant_type", "client_credentials")), true)

	// Introspection authenticates the same way.
	tok := wantToken(t, "pk", postToken(t, c, nil, withClientAssertion(signed(t, jwt.SigningMethodES256, w.pk, "pk1", w.claims("pk", "pk")))))
	r := send(t, c, request{path: "/connect/introspect", body: formBody("token", tok.AccessToken,
		"client_assertion_type", clientAssertionType, "client_assertion", signed(t, jwt.SigningMethodES256, w.pk, "pk1", w.claims("pk", "pk")))})
	if r.status != http.StatusOK || !strings.Contains(string(r.body), `"active":true`) {
		t.Errorf("introspection with private_key_jwt = %d %s, want an active token", r.status, r.body)
	}
}

// RFC 7523 §2.1 through Caddy: a trusted issuer's assertion for an authenticated client, a
// client's own assertion as its only authentication, a replay, and algorithm confusion.
func TestJWTBearerGrant(t *testing.T) {
	w := startAssertionWorld(t)
	c := w.caddy
	relying := basicAuth("relying", "relying-secret")
	grant := func(raw string) string { return formBody("grant_type", grantJWTBearer, "assertion", raw) }

	raw := signed(t, jwt.SigningMethodRS256, w.partner, "", w.claims(partnerIssuer, "alice@partner"))
	tok := wantToken(t, "a partner's assertion", postToken(t, c, relying, grant(raw)))
	if tok.RefreshToken != "" || tok.IDToken != "" {
		t.Errorf("jwt-bearer answered a refresh token %q or an ID token %q, want neither", tok.RefreshToken, tok.IDToken)
	}
	wantAPI(t, c, "a partner's assertion", tok.AccessToken, "alice@partner", "relying")
	wantError(t, "a replayed assertion", postToken(t, c, relying, grant(raw)), "invalid_grant")
	wantInvalidClient(t, "a partner's assertion without client authentication",
		postToken(t, c, nil, grant(signed(t, jwt.SigningMethodRS256, w.partner, "", w.claims(partnerIssuer, "alice")))), false)
	wantInvalidClient(t, "a partner's assertion with a wrong secret",
		postToken(t, c, basicAuth("relying", "wrong"), grant(signed(t, jwt.SigningMethodRS256, w.partner, "", w.claims(partnerIssuer, "alice")))), true)
	// RFC 8725 §3.1: HS256 keyed with the issuer's public key (Keycloak CVE-2026-11800), and none.
	wantError(t, "HS256 with the partner's public key", postToken(t, c, relying,
		grant(signed(t, jwt.SigningMethodHS256, assertiontest.PublicKeyPEM(t, &w.partner.PublicKey), "", w.claims(partnerIssuer, "admin")))), "invalid_grant")
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, w.claims(partnerIssuer, "admin")).SignedString(jwt.UnsafeAllowNoneSignatureType)
	wantError(t, "alg none", postToken(t, c, relying, grant(none)), "invalid_grant")
	wantError(t, "an untrusted issuer", postToken(t, c, relying,
		grant(signed(t, jwt.SigningMethodRS256, w.partner, "", w.claims("https://evil.example.com", "admin")))), "invalid_grant")

	// A client with keys and the jwt_bearer grant signs its own assertion, about any subject, and
	// needs no other authentication.
	own := signed(t, jwt.SigningMethodES256, w.pk, "pk1", w.claims("pk", "device-7"))
	tok = wantToken(t, "pk's own assertion", postToken(t, c, nil, grant(own)))
	wantAPI(t, c, "pk's own assertion", tok.AccessToken, "device-7", "pk")
	wantError(t, "pk's own assertion, replayed", postToken(t, c, nil, grant(own)), "invalid_grant")
	// Google's service accounts send no jti (RFC 7523 §3 makes it optional): such an assertion is
	// accepted once, and is the same assertion however it is signed again.
	noJTI := w.claims("pk", "device-8")
	delete(noJTI, "jti")
	tok = wantToken(t, "pk's own assertion without jti", postToken(t, c, nil, grant(signed(t, jwt.SigningMethodES256, w.pk, "pk1", noJTI))))
	wantAPI(t, c, "pk's own assertion without jti", tok.AccessToken, "device-8", "pk")
	wantError(t, "pk's own assertion without jti, signed again", postToken(t, c, nil, grant(signed(t, jwt.SigningMethodES256, w.pk, "pk1", noJTI))), "invalid_grant")
	wantError(t, "pk's assertion in the partner's key", postToken(t, c, nil,
		grant(signed(t, jwt.SigningMethodRS256, w.partner, "", w.claims("pk", "device-7")))), "invalid_grant")
	wantError(t, "HS256 with pk's public key", postToken(t, c, nil,
		grant(signed(t, jwt.SigningMethodHS256, assertiontest.PublicKeyPEM(t, &w.pk.PublicKey), "pk1", w.claims("pk", "device-7")))), "invalid_grant")

	// An issuer a reload no longer trusts is refused from then on. (A reload that
	// leaves a jwt_bearer client with nobody to trust is refused, so the partner is replaced.)
	c.Reload(t, strings.Replace(w.config, "issuer "+partnerIssuer, "issuer https://successor.example.com", 1))
	wantError(t, "a partner's assertion after its trust was removed", postToken(t, c, relying,
		grant(signed(t, jwt.SigningMethodRS256, w.partner, "", w.claims(partnerIssuer, "alice@partner")))), "invalid_grant")
}

// samlXML is an assertion from the IdP about nameID, bearer-confirmed for recipient.
func samlXML(id, nameID, recipient, audience string) string {
	return assertiontest.SAML{ID: id, Issuer: samlEntityID, NameID: nameID, Recipient: recipient, Audience: audience,
		Now: time.Now(), TTL: 2 * time.Minute}.XML()
}

// signSAML signs xml enveloped with the IdP's key (goxmldsig) and returns the signed XML.
func (w *assertionWorld) signSAML(t *testing.T, xml string) string {
	t.Helper()
	return assertiontest.SignSAML(t, xml, w.idp, w.idpCert)
}

// RFC 7522 through Caddy: a signed assertion, a replay, and a NameID changed after signing.
func TestSAML2BearerGrant(t *testing.T) {
	w := startAssertionWorld(t)
	c := w.caddy
	relying := basicAuth("relying", "relying-secret")
	grant := func(xml string) string {
		return formBody("grant_type", grantSAML2Bearer, "assertion", base64.RawURLEncoding.EncodeToString([]byte(xml)))
	}
	xml := w.signSAML(t, samlXML("_a1", "alice@corp", c.URL("/connect/token"), c.Base))
	tok := wantToken(t, "a signed assertion", postToken(t, c, relying, grant(xml)))
	wantAPI(t, c, "a signed assertion", tok.AccessToken, "alice@corp", "relying")
	wantError(t, "a replayed assertion", postToken(t, c, relying, grant(xml)), "invalid_grant")
	tampered := strings.Replace(w.signSAML(t, samlXML("_a2", "alice@corp", c.URL("/connect/token"), c.Base)), "alice@corp", "admin@corp", 1)
	wantError(t, "a NameID changed after signing", postToken(t, c, relying, grant(tampered)), "invalid_grant")
	wantError(t, "another Recipient", postToken(t, c, relying,
		grant(w.signSAML(t, samlXML("_a3", "alice@corp", "https://other.example.com/connect/token", c.Base)))), "invalid_grant")
	wantError(t, "another Audience", postToken(t, c, relying,
		grant(w.signSAML(t, samlXML("_a4", "alice@corp", c.URL("/connect/token"), "https://other.example.com")))), "invalid_grant")
	wantError(t, "no assertion", postToken(t, c, relying, formBody("grant_type", grantSAML2Bearer)), "invalid_request")
}

// Discovery names the assertion grants and client authentication methods the Caddyfile enabled.
func TestDiscoveryOfAssertionFeatures(t *testing.T) {
	w := startAssertionWorld(t)
	r := send(t, w.caddy, request{method: http.MethodGet, path: "/.well-known/openid-configuration"})
	var doc struct {
		GrantTypes  []string `json:"grant_types_supported"`
		AuthMethods []string `json:"token_endpoint_auth_methods_supported"`
		SigningAlgs []string `json:"token_endpoint_auth_signing_alg_values_supported"`
	}
	if err := json.Unmarshal(r.body, &doc); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{grantJWTBearer, grantSAML2Bearer, "client_credentials"} {
		if !slices.Contains(doc.GrantTypes, want) {
			t.Errorf("grant_types_supported = %q, want it to hold %q", doc.GrantTypes, want)
		}
	}
	for _, want := range []string{"client_secret_jwt", "private_key_jwt", "client_secret_basic"} {
		if !slices.Contains(doc.AuthMethods, want) {
			t.Errorf("token_endpoint_auth_methods_supported = %q, want it to hold %q", doc.AuthMethods, want)
		}
	}
	for _, want := range []string{"HS256", "ES256", "RS256"} {
		if !slices.Contains(doc.SigningAlgs, want) {
			t.Errorf("token_endpoint_auth_signing_alg_values_supported = %q, want it to hold %q", doc.SigningAlgs, want)
		}
	}
}

// RFC 8693 through Caddy: the token exchange declared by a grant line, with delegation.
func TestTokenExchangeGrant(t *testing.T) {
	w := startAssertionWorld(t)
	c := w.caddy
	gw := basicAuth("gw", "gw-secret")
	subject := wantToken(t, "pk's own assertion", postToken(t, c, nil,
		formBody("grant_type", grantJWTBearer, "assertion", signed(t, jwt.SigningMethodES256, w.pk, "pk1", w.claims("pk", "device-7")))))
	actor := wantToken(t, "hs", postToken(t, c, nil, withClientAssertion(signed(t, jwt.SigningMethodHS256, []byte(hmacSecret), "", w.claims("hs", "hs")))))
	r := postToken(t, c, gw, formBody("grant_type", grantTokenExchange, "subject_token", subject.AccessToken, "subject_token_type", tokenTypeAccess,
		"actor_token", actor.AccessToken, "actor_token_type", tokenTypeAccess))
	tok := wantToken(t, "exchange", r)
	wantAPI(t, c, "the exchanged token", tok.AccessToken, "device-7", "gw")
	var issued struct {
		IssuedTokenType string `json:"issued_token_type"`
	}
	json.Unmarshal(r.body, &issued)
	if issued.IssuedTokenType != tokenTypeAccess {
		t.Errorf("issued_token_type = %q, want %q", issued.IssuedTokenType, tokenTypeAccess)
	}
	payload, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok.AccessToken, ".")[1])
	if !strings.Contains(string(payload), `"act":{"client_id":"hs","sub":"hs"}`) {
		t.Errorf("exchanged token claims %s, want act naming hs", payload)
	}
	wantError(t, "a wider scope", postToken(t, c, gw, formBody("grant_type", grantTokenExchange, "subject_token", subject.AccessToken,
		"subject_token_type", tokenTypeAccess, "scope", "api.write")), "invalid_scope")
	wantError(t, "a forged subject token", postToken(t, c, gw, formBody("grant_type", grantTokenExchange,
		"subject_token", subject.AccessToken[:len(subject.AccessToken)-4]+"AAAA", "subject_token_type", tokenTypeAccess)), "invalid_request")
	wantError(t, "a client without the grant", postToken(t, c, basicAuth("relying", "relying-secret"), formBody("grant_type", grantTokenExchange,
		"subject_token", subject.AccessToken, "subject_token_type", tokenTypeAccess)), "unauthorized_client")
}
