package grants

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tokengate/tokengate/internal/assertiontest"
)

// jwtBearerForm is a jwt-bearer grant request for the assertion raw.
func jwtBearerForm(raw string, extra ...string) string {
	return vals(append([]string{"grant_type", GrantTypeJWTBearer, "assertion", raw}, extra...)...).Encode()
}

func newAssertionFixture(t *testing.T) (*fixture, *assertionKeys) {
	t.Helper()
	var k *assertionKeys
	f := newFixture(t, func(f *fixture, cfg *Config) {
		k = newAssertionKeys(t, f.Now())
		withAssertions(t, k)(f, cfg)
	})
	return f, k
}

// RFC 7523 §2.1 with a trusted third party's assertion: the client authenticates as usual, and the
// token speaks for the assertion's sub.
func TestJWTBearerFromTrustedIssuer(t *testing.T) {
	f, k := newAssertionFixture(t)
	relying := [2]string{"relying", "relying-secret"}
	raw := assertiontest.SignJWT(t, jwt.SigningMethodES256, k.partner, kid("t1"), claimsFor(partner, "alice@partner", f.Now()))
	resp := f.do(request{body: jwtBearerForm(raw, "scope", "api.read"), basic: relying})
	c := f.accessClaims("trusted assertion", resp)
	if c.Subject != "alice@partner" || c.ClientID != "relying" || c.Scope != "api.read" {
		t.Errorf("token sub, client_id, scope = %q, %q, %q, want alice@partner, relying, api.read", c.Subject, c.ClientID, c.Scope)
	}
	if _, ok := resp.json["refresh_token"]; ok {
		t.Error("jwt-bearer issued a refresh token; the assertion's issuer decides how long access lasts")
	}
	if _, ok := resp.json["id_token"]; ok {
		t.Error("jwt-bearer issued an ID token; nobody signed in")
	}
	// With no scope asked for: the client's API scopes, never a user scope.
	resp = f.do(request{body: jwtBearerForm(assertiontest.SignJWT(t, jwt.SigningMethodES256, k.partner, kid("t1"), claimsFor(partner, "bob", f.Now()))), basic: relying})
	if resp.str("scope") != "api.read api.write" {
		t.Errorf("default scope = %q, want api.read api.write", resp.str("scope"))
	}
}

// RFC 7523 §3: every assertion that breaks a rule of it is invalid_grant.
func TestJWTBearerAttacks(t *testing.T) {
	f, k := newAssertionFixture(t)
	relying := [2]string{"relying", "relying-secret"}
	now := f.Now()
	good := func() jwt.MapClaims { return claimsFor(partner, "alice", now) }
	sign := func(c jwt.MapClaims) string {
		return assertiontest.SignJWT(t, jwt.SigningMethodES256, k.partner, kid("t1"), c)
	}
	valid := sign(good())
	for _, tc := range []struct {
		name   string
		body   string
		basic  [2]string
		status int
		code   string
	}{
		// RFC 7521 §4.1: exactly one assertion.
		{"no assertion", vals("grant_type", GrantTypeJWTBearer).Encode(), relying, 400, CodeInvalidRequest},
		{"garbage", jwtBearerForm("garbage"), relying, 400, CodeInvalidGrant},
		{"two JWTs", jwtBearerForm(valid + " " + valid), relying, 400, CodeInvalidGrant},
		// RFC 7523 §3: signed by the trusted issuer, unexpired, for this server, with a sub.
		{"a bad signature", jwtBearerForm(assertiontest.SignJWT(t, jwt.SigningMethodES256, assertiontest.ECKey(t), kid("t1"), good())), relying, 400, CodeInvalidGrant},
		{"alg none", jwtBearerForm(assertiontest.SignJWT(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, nil, good())), relying, 400, CodeInvalidGrant},
		{"HS256 keyed with the issuer's public key", jwtBearerForm(assertiontest.SignJWT(t, jwt.SigningMethodHS256, assertiontest.PublicKeyPEM(t, &k.partner.PublicKey), kid("t1"), good())), relying, 400, CodeInvalidGrant},
		{"expired", jwtBearerForm(sign(assertiontest.With(good(), "exp", now.Add(-time.Minute).Unix()))), relying, 400, CodeInvalidGrant},
		{"no exp", jwtBearerForm(sign(assertiontest.With(good(), "exp", nil))), relying, 400, CodeInvalidGrant},
		{"a foreign aud", jwtBearerForm(sign(assertiontest.With(good(), "aud", "https://elsewhere.example.com"))), relying, 400, CodeInvalidGrant},
		{"no iss", jwtBearerForm(sign(assertiontest.With(good(), "iss", nil))), relying, 400, CodeInvalidGrant},
		{"an untrusted iss", jwtBearerForm(sign(assertiontest.With(good(), "iss", "https://evil.example.com"))), relying, 400, CodeInvalidGrant},
		{"no sub", jwtBearerForm(sign(assertiontest.With(good(), "sub", nil))), relying, 400, CodeInvalidGrant},
		{"nbf in two minutes", jwtBearerForm(sign(assertiontest.With(good(), "nbf", now.Add(2*time.Minute).Unix()))), relying, 400, CodeInvalidGrant},
		{"an unknown kid", jwtBearerForm(assertiontest.SignJWT(t, jwt.SigningMethodES256, k.partner, kid("t9"), good())), relying, 400, CodeInvalidGrant},
		// Not usable for longer than an hour.
		{"exp in three hours", jwtBearerForm(sign(assertiontest.With(good(), "exp", now.Add(3*time.Hour).Unix()))), relying, 400, CodeInvalidGrant},
		{"iat three hours ago", jwtBearerForm(sign(assertiontest.With(good(), "iat", now.Add(-3*time.Hour).Unix()))), relying, 400, CodeInvalidGrant},
		// The scope is the client's API scopes.
		{"excess scope", jwtBearerForm(valid, "scope", "api.admin"), relying, 400, CodeInvalidScope},
		{"a user scope", jwtBearerForm(valid, "scope", "openid"), relying, 400, CodeInvalidScope},
		// RFC 7521 §4.1: authentication is optional for a self-signed assertion, but bad credentials are refused.
		{"a wrong secret", jwtBearerForm(valid), [2]string{"relying", "wrong"}, 401, CodeInvalidClient},
		{"a client's own assertion with a wrong secret", jwtBearerForm(assertiontest.SignJWT(t, jwt.SigningMethodES256, k.client, kid("c1"),
			claimsFor("pkjwt", "device-1", now))), [2]string{"pkjwt", "wrong"}, 401, CodeInvalidClient},
		{"a grant the client lacks", jwtBearerForm(valid), [2]string{"app", "app-secret"}, 400, CodeUnauthorizedClient},
		{"no client at all", jwtBearerForm(valid), [2]string{}, 401, CodeInvalidClient},
	} {
		f.expectError(tc.name, f.do(request{body: tc.body, basic: tc.basic}), tc.status, tc.code)
	}
	// The refused scope did not use the assertion up.
	f.expectOK("after a refused scope", f.do(request{body: jwtBearerForm(valid), basic: relying}))
	// RFC 7523 §3 item 7: once only, until its first use has expired.
	f.expectError("replay", f.do(request{body: jwtBearerForm(valid), basic: relying}), 400, CodeInvalidGrant)
	reuse := assertiontest.With(good(), "jti", "fixed")
	first := sign(assertiontest.With(reuse, "exp", f.Now().Add(time.Minute).Unix()))
	f.expectOK("jti fixed, first use", f.do(request{body: jwtBearerForm(first), basic: relying}))
	f.Advance(2 * time.Minute)
	second := sign(assertiontest.With(reuse, "iat", f.Now().Unix(), "exp", f.Now().Add(time.Minute).Unix()))
	f.expectOK("jti fixed, after the first expired", f.do(request{body: jwtBearerForm(second), basic: relying}))
}

// A client with keys and the grant may present an assertion it signed itself as
// its only authentication (the service-account pattern).
func TestJWTBearerSelfSigned(t *testing.T) {
	f, k := newAssertionFixture(t)
	now := f.Now()
	own := func(c jwt.MapClaims) string {
		return assertiontest.SignJWT(t, jwt.SigningMethodES256, k.client, kid("c1"), c)
	}
	resp := f.do(request{body: jwtBearerForm(own(claimsFor("pkjwt", "device-42", now)))})
	c := f.accessClaims("self-signed, no other authentication", resp)
	if c.Subject != "device-42" || c.ClientID != "pkjwt" {
		t.Errorf("token sub, client_id = %q, %q, want device-42, pkjwt", c.Subject, c.ClientID)
	}
	f.expectOK("self-signed with its client_id", f.do(request{body: jwtBearerForm(own(claimsFor("pkjwt", "device-42", now)), "client_id", "pkjwt")}))
	// RFC 7523 §3 makes jti optional (Google's service accounts send none); the assertion is the
	// client's authentication all the same, so it is single use.
	noJTI := jwtBearerForm(own(assertiontest.With(claimsFor("pkjwt", "d", now), "jti", nil)))
	f.expectOK("self-signed without jti", f.do(request{body: noJTI}))
	f.expectError("self-signed without jti, replayed", f.do(request{body: noJTI}), 400, CodeInvalidGrant)
	for _, tc := range []struct {
		name   string
		req    request
		status int
		code   string
	}{
		{"signed by a trusted issuer's key", request{body: jwtBearerForm(assertiontest.SignJWT(t, jwt.SigningMethodES256, k.partner, kid("c1"), claimsFor("pkjwt", "d", now)))}, 400, CodeInvalidGrant},
		{"another client_id", request{body: jwtBearerForm(own(claimsFor("pkjwt", "d", now)), "client_id", "jwtc")}, 401, CodeInvalidClient},
		// A client without keys has nothing to sign with: its client_id alone proves nothing.
		{"a secret client's self-signed assertion", request{body: jwtBearerForm(assertiontest.SignJWT(t, jwt.SigningMethodHS256, []byte("relying-secret"), nil, claimsFor("relying", "d", now)))}, 401, CodeInvalidClient},
		// Another client's key never vouches for assertions about someone else's client.
		{"another client's assertion", request{body: jwtBearerForm(own(claimsFor("pkjwt", "d", now))), basic: [2]string{"relying", "relying-secret"}}, 400, CodeInvalidGrant},
		{"a client assertion as the grant", request{body: jwtBearerForm(assertiontest.SignJWT(t, jwt.SigningMethodES256, k.client,
			map[string]any{"kid": "c1", "typ": "client-authentication+jwt"}, claimsFor("pkjwt", "pkjwt", now)))}, 400, CodeInvalidGrant},
	} {
		f.expectError(tc.name, f.do(tc.req), tc.status, tc.code)
	}
	// An assertion used as a client assertion cannot then be a grant, nor the other way round:
	// they share the client's jti space.
	raw := own(claimsFor("pkjwt", "pkjwt", now))
	f.expectOK("as a client assertion", f.do(request{body: assertionForm(raw)}))
	if resp := f.do(request{body: jwtBearerForm(raw)}); resp.status != http.StatusBadRequest || !strings.Contains(resp.str("error_description"), "jti") {
		t.Errorf("the same assertion as a grant: %d %s, want invalid_grant for its jti", resp.status, resp.raw)
	}
}
