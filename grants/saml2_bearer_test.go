package grants

import (
	"encoding/base64"
	"strings"
	"testing"
)

// samlForm is a saml2-bearer grant request for the encoded assertion.
func samlForm(encoded string, extra ...string) string {
	return vals(append([]string{"grant_type", GrantTypeSAML2Bearer, "assertion", encoded}, extra...)...).Encode()
}

// RFC 7522 through the token endpoint: the wiring (Audience the issuer, Recipient the token
// endpoint, sub the NameID verbatim, replay store, error mapping) and a few attacks end to end;
// samlbearer's own tests go deep.
func TestSAML2Bearer(t *testing.T) {
	f, k := newAssertionFixture(t)
	relying := [2]string{"relying", "relying-secret"}
	now := f.Now()
	nameID := "CN=Alice Smith, O=Example &amp; Co"
	valid := k.signSAML(t, samlAssertion("_ok", nameID, tokenEndpoint, now))
	resp := f.do(request{body: samlForm(valid, "scope", "api.read"), basic: relying})
	c := f.accessClaims("a signed assertion", resp)
	if c.Subject != "CN=Alice Smith, O=Example & Co" || c.ClientID != "relying" {
		t.Errorf("token sub, client_id = %q, %q, want the NameID verbatim, relying", c.Subject, c.ClientID)
	}
	if _, ok := resp.json["refresh_token"]; ok {
		t.Error("saml2-bearer issued a refresh token")
	}

	signed, _ := base64.RawURLEncoding.DecodeString(k.signSAML(t, samlAssertion("_wrap", "alice", tokenEndpoint, now)))
	for _, tc := range []struct {
		name   string
		body   string
		status int
		code   string
	}{
		{"no assertion", vals("grant_type", GrantTypeSAML2Bearer).Encode(), 400, CodeInvalidRequest},
		// An assertion's ID is used once.
		{"replay", samlForm(valid), 400, CodeInvalidGrant},
		// RFC 7522 §2.1: the assertion is base64url-encoded, on one line.
		{"not base64url", samlForm("<saml:Assertion/>"), 400, CodeInvalidGrant},
		{"line-wrapped", samlForm(valid[:64] + "\n" + valid[64:]), 400, CodeInvalidGrant},
		// RFC 7522 §3: the assertion is signed, and the signature covers what is read.
		{"unsigned", samlForm(base64.RawURLEncoding.EncodeToString([]byte(samlAssertion("_u", "alice", tokenEndpoint, now)))), 400, CodeInvalidGrant},
		{"a changed NameID", samlForm(base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(string(signed), ">alice<", ">admin<", 1)))), 400, CodeInvalidGrant},
		{"a comment in the NameID", samlForm(base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(string(signed), ">alice<", ">admin<!---->.alice<", 1)))), 400, CodeInvalidGrant},
		// RFC 7522 §3: the Recipient is this token endpoint, exactly.
		{"another Recipient", samlForm(k.signSAML(t, samlAssertion("_r", "alice", "https://other.example.com/connect/token", now))), 400, CodeInvalidGrant},
		{"a prefixed Recipient", samlForm(k.signSAML(t, samlAssertion("_p", "alice", tokenEndpoint+"/x", now))), 400, CodeInvalidGrant},
		// No DTD: its entities could fetch or expand.
		{"a DOCTYPE", samlForm(base64.RawURLEncoding.EncodeToString([]byte(`<!DOCTYPE x [<!ENTITY e SYSTEM "http://127.0.0.1:1/">]>` + string(signed)))), 400, CodeInvalidGrant},
		// The scope is the client's.
		{"excess scope", samlForm(k.signSAML(t, samlAssertion("_s", "alice", tokenEndpoint, now)), "scope", "api.admin"), 400, CodeInvalidScope},
	} {
		f.expectError(tc.name, f.do(request{body: tc.body, basic: relying}), tc.status, tc.code)
	}
	f.expectError("bad client credentials", f.do(request{body: samlForm(k.signSAML(t, samlAssertion("_c", "alice", tokenEndpoint, now))),
		basic: [2]string{"relying", "wrong"}}), 401, CodeInvalidClient)
	f.expectError("a client without the grant", f.do(request{body: samlForm(k.signSAML(t, samlAssertion("_g", "alice", tokenEndpoint, now))),
		basic: [2]string{"app", "app-secret"}}), 400, CodeUnauthorizedClient)
}
