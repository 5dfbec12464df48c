package tokens

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// fixture is a key set with one key per algorithm and a Verifier at t0.
type fixture struct {
	keys map[string]Key
	set  func() *KeySet
	v    *Verifier
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	f := &fixture{keys: map[string]Key{}}
	var all []Key
	for _, alg := range allAlgs {
		f.keys[alg] = testKey(t, alg)
		all = append(all, f.keys[alg])
	}
	f.set = keySetOf(t, all...)
	f.v = NewVerifier(testIssuer, f.set, fixedClock(t0))
	return f
}

func validClaims() jwt.MapClaims {
	return jwt.MapClaims{
		"iss": testIssuer, "sub": "alice", "aud": "api", "client_id": "app", "scope": "read",
		"jti": "j1", "gid": "g1", "iat": t0.Unix(), "nbf": t0.Unix(), "exp": t0.Add(time.Hour).Unix(),
	}
}

func validHeader(k Key) map[string]any {
	return map[string]any{"alg": k.Alg, "kid": k.ID, "typ": "at+jwt"}
}

// craft signs claims under header with method and key, whatever they say: the attacker's tool.
func craft(t testing.TB, method jwt.SigningMethod, key any, header map[string]any, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	tok.Header = header
	raw, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("craft(%s): %v", method.Alg(), err)
	}
	return raw
}

// signed is a token signed by k (a key of the set) after edit changes its header and claims.
func (f *fixture) signed(t testing.TB, alg string, edit func(h map[string]any, c jwt.MapClaims)) string {
	t.Helper()
	k := f.keys[alg]
	h, c := validHeader(k), validClaims()
	if edit != nil {
		edit(h, c)
	}
	e := f.set().byID[k.ID]
	return craft(t, e.method, k.Signer, h, c)
}

// set, drop and setHeader are edits for fixture.signed.
func set(name string, v any) func(map[string]any, jwt.MapClaims) {
	return func(_ map[string]any, c jwt.MapClaims) { c[name] = v }
}

func drop(name string) func(map[string]any, jwt.MapClaims) {
	return func(_ map[string]any, c jwt.MapClaims) { delete(c, name) }
}

func setHeader(name string, v any) func(map[string]any, jwt.MapClaims) {
	return func(h map[string]any, _ jwt.MapClaims) { h[name] = v }
}

// strayBits flips the lowest bit of a base64url character. The 86th character of a 64-byte ES256
// signature carries two unused bits, so a lax decoder reads the same signature.
func strayBits(c byte) byte {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	return alphabet[strings.IndexByte(alphabet, c)^1]
}

// replaceSegment swaps part i of a compact JWS for the base64url of s.
func replaceSegment(raw string, i int, s string) string {
	parts := strings.Split(raw, ".")
	parts[i] = b64.EncodeToString([]byte(s))
	return strings.Join(parts, ".")
}

func TestVerifyAccessTokenAttacks(t *testing.T) {
	f := newFixture(t)
	es, rs := f.keys[ES256], f.keys[RS256]
	attackerKey := freshKey(t, ES256, t0)
	attacker := attackerKey.Signer
	attackerJWK, err := publicJWK(ES256, attacker)
	if err != nil {
		t.Fatal(err)
	}
	rsaPubDER, err := x509.MarshalPKIXPublicKey(rs.Signer.Public())
	if err != nil {
		t.Fatal(err)
	}
	rsaPubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: rsaPubDER})
	valid := f.signed(t, ES256, nil)
	header, payload, _ := strings.Cut(valid, ".")
	payload, _, _ = strings.Cut(payload, ".")
	idToken, err := NewMinter(testIssuer, f.set, fixedClock(t0)).IDToken(IDToken{Subject: "alice", ClientID: "api", TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	headerWith := func(k Key, name string, v any) map[string]any {
		h := validHeader(k)
		h[name] = v
		return h
	}
	cases := []struct {
		name string
		raw  string
		ok   bool
	}{
		// Controls: what each attack below starts from passes.
		{"valid ES256", valid, true},
		{"valid RS256", f.signed(t, RS256, nil), true},
		{"valid PS256", f.signed(t, PS256, nil), true},
		{"valid EdDSA", f.signed(t, EdDSA, nil), true},
		{"typ AT+JWT", f.signed(t, ES256, setHeader("typ", "AT+JWT")), true},
		{"typ application/at+jwt", f.signed(t, ES256, setHeader("typ", "application/at+jwt")), true},
		{"aud array", f.signed(t, ES256, set("aud", []string{"api", "other"})), true},
		{"no scope, no gid, no nbf", f.signed(t, ES256, func(_ map[string]any, c jwt.MapClaims) {
			delete(c, "scope")
			delete(c, "gid")
			delete(c, "nbf")
		}), true},

		// RFC 8725 §3.1: algorithm confusion and forged signatures.
		{"alg none, empty signature", craft(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, headerWith(es, "alg", "none"), validClaims()), false},
		{"alg none with a signature", craft(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, headerWith(es, "alg", "none"), validClaims()) + "AAAA", false},
		{"HS256 keyed with the RSA public key PEM", craft(t, jwt.SigningMethodHS256, rsaPubPEM, headerWith(rs, "alg", "HS256"), validClaims()), false},
		{"HS256 keyed with the RSA public key DER", craft(t, jwt.SigningMethodHS256, rsaPubDER, headerWith(rs, "alg", "HS256"), validClaims()), false},
		{"PS256 signature by the RS256 key", craft(t, jwt.SigningMethodPS256, rs.Signer, headerWith(rs, "alg", "PS256"), validClaims()), false},
		{"EdDSA signature under the ES256 kid", craft(t, jwt.SigningMethodEdDSA, f.keys[EdDSA].Signer, headerWith(es, "alg", "EdDSA"), validClaims()), false},
		{"stripped signature", header + "." + payload + ".", false},
		{"no signature segment", header + "." + payload, false},
		{"tampered payload", replaceSegment(valid, 1, `{"iss":"`+testIssuer+`","sub":"admin","aud":"api","client_id":"app","jti":"j1","iat":1700000000,"exp":1700003600}`), false},
		{"all-zero ES256 signature", header + "." + payload + "." + b64.EncodeToString(make([]byte, 64)), false},
		{"signed by a key not in the set", craft(t, jwt.SigningMethodES256, attacker, validHeader(attackerKey), validClaims()), false},

		// RFC 8725 §3.10: the kid only names a key of the set; embedded keys are ignored.
		{"no kid", f.signed(t, ES256, func(h map[string]any, _ jwt.MapClaims) { delete(h, "kid") }), false},
		{"empty kid", f.signed(t, ES256, setHeader("kid", "")), false},
		{"numeric kid", f.signed(t, ES256, setHeader("kid", 1)), false},
		{"path kid", f.signed(t, ES256, setHeader("kid", "../../dev/null")), false},
		{"SQL kid", f.signed(t, ES256, setHeader("kid", "' OR 1=1 --")), false},
		{"embedded jwk, no kid", craft(t, jwt.SigningMethodES256, attacker, map[string]any{"alg": ES256, "typ": "at+jwt", "jwk": attackerJWK}, validClaims()), false},
		{"embedded jwk under our kid", craft(t, jwt.SigningMethodES256, attacker, headerWith(es, "jwk", attackerJWK), validClaims()), false},
		{"jku under our kid", craft(t, jwt.SigningMethodES256, attacker, headerWith(es, "jku", "https://evil.example/jwks"), validClaims()), false},
		{"x5u under our kid", craft(t, jwt.SigningMethodES256, attacker, headerWith(es, "x5u", "https://evil.example/cert"), validClaims()), false},
		{"jku beside our own signature is ignored", f.signed(t, ES256, setHeader("jku", "https://evil.example/jwks")), true},

		// RFC 7515 §4.1.11: crit lists extensions the recipient must understand.
		{"unknown crit", f.signed(t, ES256, func(h map[string]any, _ jwt.MapClaims) { h["crit"] = []string{"b64"}; h["b64"] = false }), false},
		{"empty crit", f.signed(t, ES256, setHeader("crit", []string{})), false},

		// RFC 9068 §4, RFC 8725 §3.11: only access tokens.
		{"typ JWT", f.signed(t, ES256, setHeader("typ", "JWT")), false},
		{"no typ", f.signed(t, ES256, func(h map[string]any, _ jwt.MapClaims) { delete(h, "typ") }), false},
		{"typ at+jwt with a space", f.signed(t, ES256, setHeader("typ", "at+jwt ")), false},
		{"typ a number", f.signed(t, ES256, setHeader("typ", 1)), false},
		{"an ID token of ours, aud the resource", idToken, false},

		// RFC 9068 §4, RFC 7519 §4.1.4: time, with ClockLeeway (5 s).
		{"exp 4 s past", f.signed(t, ES256, set("exp", t0.Add(-4*time.Second).Unix())), true},
		{"exp 6 s past", f.signed(t, ES256, set("exp", t0.Add(-6*time.Second).Unix())), false},
		{"no exp", f.signed(t, ES256, drop("exp")), false},
		{"exp a string", f.signed(t, ES256, set("exp", "tomorrow")), false},
		{"nbf 4 s ahead", f.signed(t, ES256, set("nbf", t0.Add(4*time.Second).Unix())), true},
		{"nbf 6 s ahead", f.signed(t, ES256, set("nbf", t0.Add(6*time.Second).Unix())), false},
		{"expired and signed by another key", craft(t, jwt.SigningMethodES256, attacker, validHeader(es), jwt.MapClaims{"exp": t0.Add(-time.Hour).Unix()}), false},

		// RFC 9068 §4: iss exactly.
		{"iss with a trailing slash", f.signed(t, ES256, set("iss", testIssuer+"/")), false},
		{"iss in upper case", f.signed(t, ES256, set("iss", strings.ToUpper(testIssuer))), false},
		{"no iss", f.signed(t, ES256, drop("iss")), false},
		{"iss an array", f.signed(t, ES256, set("iss", []string{testIssuer})), false},

		// RFC 9068 §4, CVE-2020-26160: aud present and naming someone.
		{"no aud", f.signed(t, ES256, drop("aud")), false},
		{"aud []", f.signed(t, ES256, set("aud", []string{})), false},
		{`aud ""`, f.signed(t, ES256, set("aud", "")), false},
		{`aud [""]`, f.signed(t, ES256, set("aud", []string{""})), false},
		{"aud a number", f.signed(t, ES256, set("aud", 7)), false},
		{"aud array with a number", f.signed(t, ES256, set("aud", []any{"api", 7})), false},

		// RFC 9068 §2.2: the other required claims.
		{"no sub", f.signed(t, ES256, drop("sub")), false},
		{"no client_id", f.signed(t, ES256, drop("client_id")), false},
		{"no jti", f.signed(t, ES256, drop("jti")), false},
		{"no iat", f.signed(t, ES256, drop("iat")), false},
		{"sub a number", f.signed(t, ES256, set("sub", 1)), false},
		{"sub empty", f.signed(t, ES256, set("sub", "")), false},
		{"jti empty", f.signed(t, ES256, set("jti", "")), false},
		{"scope an array", f.signed(t, ES256, set("scope", []string{"admin"})), false},
		{"gid a number", f.signed(t, ES256, set("gid", 1)), false},
		{"derived_from a string", f.signed(t, ES256, set("derived_from", "j0")), false},
		{"derived_from with a number", f.signed(t, ES256, set("derived_from", []any{"j0", 1})), false},
		{"derived_from with an empty jti", f.signed(t, ES256, set("derived_from", []string{""})), false},
		{"derived_from", f.signed(t, ES256, set("derived_from", []string{"j0", "j1"})), true},

		// Bounded input (CVE-2025-30204).
		{"a 7 KiB token", f.signed(t, ES256, set("pad", strings.Repeat("x", 5<<10))), true},
		{"a 9.5 KiB token", f.signed(t, ES256, set("pad", strings.Repeat("x", 7<<10))), false},
		{"padding characters", valid + "==", false},
		// RFC 7515 §2: one token has one encoding; stray low bits make another string of it.
		{"signature with stray low bits", valid[:len(valid)-1] + string(strayBits(valid[len(valid)-1])), false},
	}
	for _, c := range cases {
		claims, err := f.v.VerifyAccessToken(c.raw)
		if c.ok && err != nil {
			t.Errorf("VerifyAccessToken(%s) = %v, want success", c.name, err)
		}
		if !c.ok && (err == nil || claims != nil) {
			t.Errorf("VerifyAccessToken(%s) = %+v, nil; want an error", c.name, claims)
		}
		if err != nil && !errors.Is(err, ErrInvalidToken) {
			t.Errorf("VerifyAccessToken(%s) = %v, want it to wrap ErrInvalidToken", c.name, err)
		}
		if err != nil && strings.Contains(err.Error(), c.raw) {
			t.Errorf("VerifyAccessToken(%s) error %q echoes the token", c.name, err)
		}
	}
}

// CVE-2024-51744: an expired token with a bad signature is a bad signature, not merely expired.
func TestVerifyChecksSignatureBeforeClaims(t *testing.T) {
	f := newFixture(t)
	other, err := GenerateKey(ES256)
	if err != nil {
		t.Fatal(err)
	}
	raw := craft(t, jwt.SigningMethodES256, other, validHeader(f.keys[ES256]), jwt.MapClaims{"exp": t0.Add(-time.Hour).Unix()})
	_, err = f.v.VerifyAccessToken(raw)
	if !errors.Is(err, jwt.ErrTokenSignatureInvalid) || errors.Is(err, jwt.ErrTokenExpired) {
		t.Errorf("VerifyAccessToken(expired, forged) = %v, want a signature error only", err)
	}
}

// Malformed input is refused before any decoding: the key set is never even asked for.
func TestVerifyRefusesMalformedBeforeDecoding(t *testing.T) {
	f := newFixture(t)
	valid := f.signed(t, ES256, nil)
	v := NewVerifier(testIssuer, func() *KeySet {
		t.Errorf("keys() called for malformed input")
		return f.set()
	}, fixedClock(t0))
	cases := []string{
		"", ".", "..", "a", "a.b", "a.b.c.d", "a..c", ".b.c", "a.b.", valid + ".", "." + valid,
		strings.Repeat(".", 1<<20),
		strings.Repeat("a", MaxTokenLen-3) + ".b.c",
		"a.b.c=", "a.b.c d", "a.b.c\n", "a.b+/.c", "a.b.c\x00", "é.b.c", " " + valid, valid + " ",
		// Three base64url segments whose header is no JSON object (RFC 7515 §4).
		"not.a.token", replaceSegment(valid, 0, "null"), replaceSegment(valid, 0, " \n[{}]"), replaceSegment(valid, 0, `"{}"`),
		replaceSegment(valid, 0, "      \t"), "e.b.c",
	}
	for _, raw := range cases {
		if c, err := v.VerifyAccessToken(raw); err == nil || !errors.Is(err, ErrInvalidToken) {
			t.Errorf("VerifyAccessToken(%.40q) = %v, %v; want ErrInvalidToken", raw, c, err)
		}
	}
}

// The cheap look at the header refuses only what cannot be a JSON object: JSON may begin with
// whitespace (RFC 8259 §2), and a token so signed still passes.
func TestVerifyAcceptsWhitespaceBeforeTheHeader(t *testing.T) {
	f := newFixture(t)
	k := f.keys[ES256]
	header, err := json.Marshal(validHeader(k))
	if err != nil {
		t.Fatal(err)
	}
	claims, err := json.Marshal(validClaims())
	if err != nil {
		t.Fatal(err)
	}
	signingInput := b64.EncodeToString(append([]byte(" \r\n\t  "), header...)) + "." + b64.EncodeToString(claims)
	sig, err := f.set().byID[k.ID].method.Sign(signingInput, k.Signer)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.v.VerifyAccessToken(signingInput + "." + b64.EncodeToString(sig)); err != nil {
		t.Errorf("VerifyAccessToken(header after whitespace) = %v, want it valid", err)
	}
}

func TestHeaderIsObject(t *testing.T) {
	for header, want := range map[string]bool{
		`{"alg":"ES256"}`: true,
		"{":               true,
		"\t\r\n {":        true,
		"       {":        true, // whitespace across three decoded blocks
		"    ":            false,
		"[{}]":            false,
		"null":            false,
		"x{":              false,
	} {
		raw := b64.EncodeToString([]byte(header)) + ".b.c"
		if got := headerIsObject(raw); got != want {
			t.Errorf("headerIsObject(%q) = %t, want %t", header, got, want)
		}
	}
	// Stray bits after the last byte: the parser's strict decoding refuses them, so it may too.
	if headerIsObject("e1.b.c") {
		t.Errorf(`headerIsObject("e1.b.c") = true, want false: "e1" has stray bits`)
	}
}

func TestNewVerifierWithoutIssuerRefusesAll(t *testing.T) {
	f := newFixture(t)
	raw := f.signed(t, ES256, set("iss", ""))
	if c, err := NewVerifier("", f.set, fixedClock(t0)).VerifyAccessToken(raw); err == nil {
		t.Errorf(`VerifyAccessToken(iss "") with issuer "" = %+v, want an error`, c)
	}
}

func BenchmarkVerifyES256(b *testing.B) {
	f := newFixture(b)
	raw, _, _, err := NewMinter(testIssuer, keySetOf(b, f.keys[ES256]), fixedClock(t0)).AccessToken(AccessToken{
		Subject: "alice", ClientID: "app", Scope: "openid api.read", GrantID: "g-123",
		Audience: []string{"api"}, Claims: map[string]any{"tenant": "acme"}, TTL: time.Hour,
	})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.v.VerifyAccessToken(raw); err != nil {
			b.Fatal(err)
		}
	}
}

// CVE-2025-30204: a megabyte of dots costs a length check.
func BenchmarkVerifyMegabyteOfDots(b *testing.B) {
	v := NewVerifier(testIssuer, func() *KeySet { panic("keys() called") }, fixedClock(t0))
	raw := strings.Repeat(".", 1<<20)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.VerifyAccessToken(raw); err == nil {
			b.Fatal("accepted")
		}
	}
}

func FuzzVerifyAccessToken(f *testing.F) {
	fx := newFixture(f)
	valid := fx.signed(f, ES256, nil)
	header, rest, _ := strings.Cut(valid, ".")
	payload, _, _ := strings.Cut(rest, ".")
	for _, seed := range []string{
		valid,
		fx.signed(f, RS256, nil),
		fx.signed(f, EdDSA, nil),
		header + "." + payload + ".",
		header + "." + payload + "." + b64.EncodeToString(make([]byte, 64)),
		replaceSegment(valid, 0, `{"alg":"none","kid":"`+fx.keys[ES256].ID+`","typ":"at+jwt"}`),
		replaceSegment(valid, 0, `{"alg":"ES256","kid":"`+fx.keys[ES256].ID+`","typ":"at+jwt","crit":["x"]}`),
		replaceSegment(valid, 1, `{"exp":1e400,"aud":[[]],"iss":{}}`),
		replaceSegment(valid, 1, `[]`),
		"..", "a.b.c", strings.Repeat(".", 100),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		c, err := fx.v.VerifyAccessToken(raw)
		if err != nil {
			if c != nil || !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("VerifyAccessToken(%q) = %v, %v; want nil claims and ErrInvalidToken", raw, c, err)
			}
			return
		}
		if c.Issuer != testIssuer || len(c.Audience) == 0 || c.Subject == "" || c.JTI == "" || c.ExpiresAt.Before(t0.Add(-ClockLeeway)) {
			t.Fatalf("VerifyAccessToken(%q) accepted %+v", raw, c)
		}
	})
}

// TestVerifyIDTokenHint: an ID token this set signed for the issuer names its client, expired or
// not (RP-Initiated Logout §2); a token of another kind, key, algorithm or issuer names no one.
func TestVerifyIDTokenHint(t *testing.T) {
	f := newFixture(t)
	minted, err := NewMinter(testIssuer, f.set, fixedClock(t0)).IDToken(IDToken{Subject: "alice", ClientID: "web", TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	attacker, err := GenerateKey(ES256)
	if err != nil {
		t.Fatal(err)
	}
	// hint is an expired ID token for web signed by a key of the set, after edit.
	hint := func(alg string, edit func(h map[string]any, c jwt.MapClaims)) string {
		return f.signed(t, alg, func(h map[string]any, c jwt.MapClaims) {
			h["typ"] = "JWT"
			clear(c)
			c["iss"], c["sub"], c["aud"], c["azp"], c["exp"] = testIssuer, "alice", "web", "web", t0.Add(-time.Hour).Unix()
			if edit != nil {
				edit(h, c)
			}
		})
	}
	rs := f.keys[RS256]
	for _, tc := range []struct {
		name, raw, want string
	}{
		{"minted", minted, "web"},
		{"expired", hint(ES256, nil), "web"},
		{"RS256", hint(RS256, nil), "web"},
		{"typ in lower case", hint(EdDSA, setHeader("typ", "jwt")), "web"},
		// RFC 8725 §3.11: an access token is not an ID token.
		{"typ at+jwt", hint(ES256, setHeader("typ", "at+jwt")), ""},
		{"no typ", hint(ES256, func(h map[string]any, _ jwt.MapClaims) { delete(h, "typ") }), ""},
		{"crit", hint(ES256, setHeader("crit", []string{"exp"})), ""},
		{"another issuer", hint(ES256, set("iss", "https://other.example")), ""},
		{"issuer with a trailing slash", hint(ES256, set("iss", testIssuer+"/")), ""},
		{"no azp", hint(ES256, drop("azp")), ""},
		{"azp not an audience", hint(ES256, set("aud", "api")), ""},
		// RFC 8725 §3.1: the key decides the algorithm.
		{"PS256 by the RS256 key", craft(t, jwt.SigningMethodPS256, rs.Signer, map[string]any{"alg": PS256, "kid": rs.ID, "typ": "JWT"},
			jwt.MapClaims{"iss": testIssuer, "aud": "web", "azp": "web"}), ""},
		{"alg none", replaceSegment(hint(ES256, nil), 0, `{"alg":"none","kid":"`+f.keys[ES256].ID+`","typ":"JWT"}`), ""},
		{"another key, a known kid", craft(t, jwt.SigningMethodES256, attacker, map[string]any{"alg": ES256, "kid": f.keys[ES256].ID, "typ": "JWT"},
			jwt.MapClaims{"iss": testIssuer, "aud": "web", "azp": "web"}), ""},
		{"too long", minted + strings.Repeat("A", MaxTokenLen), ""},
		{"garbage", "x.y.z", ""},
	} {
		got, err := f.set().VerifyIDTokenHint(tc.raw, testIssuer)
		if got != tc.want || (tc.want == "") != errors.Is(err, ErrInvalidToken) {
			t.Errorf("VerifyIDTokenHint(%s) = %q, %v, want %q", tc.name, got, err, tc.want)
		}
	}
	if got, err := f.set().VerifyIDTokenHint(minted, ""); got != "" || !errors.Is(err, ErrInvalidToken) {
		t.Errorf("VerifyIDTokenHint(minted, no issuer) = %q, %v, want a refusal", got, err)
	}
}

// CheckCompact admits three non-empty base64url segments within maxLen, and nothing else.
func TestCheckCompact(t *testing.T) {
	for _, tc := range []struct {
		raw    string
		maxLen int
		ok     bool
	}{
		{"a.b.c", 5, true},
		{"eyJhbGciOiJFUzI1NiJ9.e30.c2ln-_", 64, true},
		{"a.b.c", 4, false},
		{"a.b", 64, false},
		{"a.b.c.d.e", 64, false},
		{".b.c", 64, false},
		{"a..c", 64, false},
		{"a.b.", 64, false},
		{"a.b.c ", 64, false},
		{"a.b.c=", 64, false},
		{"a.b+/.c", 64, false},
		{"", 64, false},
	} {
		if err := CheckCompact(tc.raw, tc.maxLen); (err == nil) != tc.ok {
			t.Errorf("CheckCompact(%q, %d) = %v, want ok %t", tc.raw, tc.maxLen, err, tc.ok)
		}
	}
}

// A verified token stays trusted only while its issuer and the key that verified it (kid and public
// key alike) are the verifier's: what a cache of verified tokens relies on across reloads.
func TestTrusts(t *testing.T) {
	key := testKey(t, ES256)
	current, _ := NewKeySet(key)
	keys := func() *KeySet { return current }
	raw, _, _, err := NewMinter(testIssuer, keys, fixedClock(t0)).AccessToken(AccessToken{
		Subject: "alice", ClientID: "app", Audience: []string{"api"}, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewVerifier(testIssuer, keys, fixedClock(t0)).VerifyAccessToken(raw)
	if err != nil {
		t.Fatal(err)
	}
	other := freshKey(t, ES256, t0)
	impostor := other
	impostor.ID = key.ID
	cases := []struct {
		name   string
		issuer string
		keys   []Key
		want   bool
	}{
		{"the same key, in a rebuilt set", testIssuer, []Key{key}, true},
		{"the key kept beside a new one", testIssuer, []Key{other, key}, true},
		{"the key withdrawn", testIssuer, []Key{other}, false},
		{"another key under its kid", testIssuer, []Key{impostor}, false},
		{"another issuer", testIssuer + "/", []Key{key}, false},
	}
	for _, tc := range cases {
		current, err = NewKeySet(tc.keys...)
		if err != nil {
			t.Fatal(err)
		}
		if got := NewVerifier(tc.issuer, keys, fixedClock(t0)).Trusts(c); got != tc.want {
			t.Errorf("Trusts(token of the first key) with %s = %v, want %v", tc.name, got, tc.want)
		}
	}
}
