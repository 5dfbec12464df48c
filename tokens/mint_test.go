package tokens

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

const testIssuer = "https://auth.example.com"

var t0 = time.Unix(1_700_000_000, 0)

func fixedClock(at time.Time) func() time.Time { return func() time.Time { return at } }

func keySetOf(t testing.TB, keys ...Key) func() *KeySet {
	t.Helper()
	ks, err := NewKeySet(keys...)
	if err != nil {
		t.Fatal(err)
	}
	return func() *KeySet { return ks }
}

// segment decodes the JSON of one part of a compact JWS.
func segment(t *testing.T, raw string, i int) map[string]any {
	t.Helper()
	b, err := b64.DecodeString(strings.Split(raw, ".")[i])
	if err != nil {
		t.Fatalf("segment %d of %q: %v", i, raw, err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("segment %d of %q: %v", i, raw, err)
	}
	return m
}

func TestAccessTokenRoundTrip(t *testing.T) {
	for _, alg := range allAlgs {
		k := testKey(t, alg)
		keys := keySetOf(t, k)
		m := NewMinter(testIssuer, keys, fixedClock(t0))
		raw, jti, exp, err := m.AccessToken(AccessToken{
			Subject: "alice", ClientID: "app", Scope: "read write", GrantID: "g1", DerivedFrom: []string{"j0"},
			Audience: []string{"api"}, TTL: time.Hour,
			Claims: map[string]any{"tenant": "acme", "sub": "mallory", "iss": "evil", "exp": 1e12, "gid": "other"},
		})
		if err != nil {
			t.Fatalf("AccessToken(%s) = %v", alg, err)
		}
		wantHeader := map[string]any{"alg": alg, "kid": k.ID, "typ": "at+jwt"}
		if h := segment(t, raw, 0); !reflect.DeepEqual(h, wantHeader) {
			t.Errorf("AccessToken(%s) header = %v, want %v", alg, h, wantHeader)
		}
		want := map[string]any{
			"iss": testIssuer, "sub": "alice", "aud": "api", "client_id": "app", "scope": "read write",
			"gid": "g1", "derived_from": []any{"j0"}, "jti": jti, "tenant": "acme",
			"iat": float64(t0.Unix()), "nbf": float64(t0.Unix()), "exp": float64(t0.Add(time.Hour).Unix()),
		}
		if p := segment(t, raw, 1); !reflect.DeepEqual(p, want) {
			t.Errorf("AccessToken(%s) claims = %v, want %v", alg, p, want)
		}
		if !exp.Equal(t0.Add(time.Hour)) {
			t.Errorf("AccessToken(%s) exp = %v, want %v", alg, exp, t0.Add(time.Hour))
		}
		c, err := NewVerifier(testIssuer, keys, fixedClock(t0)).VerifyAccessToken(raw)
		if err != nil {
			t.Fatalf("VerifyAccessToken(AccessToken(%s)) = %v", alg, err)
		}
		wantClaims := &Claims{
			Subject: "alice", ClientID: "app", Scope: "read write", JTI: jti, GrantID: "g1", DerivedFrom: []string{"j0"},
			Issuer: testIssuer, Audience: []string{"api"}, IssuedAt: t0, ExpiresAt: t0.Add(time.Hour),
			NotBefore: t0, All: want, kid: k.ID, keyThumbprint: k.ID,
		}
		if !reflect.DeepEqual(c, wantClaims) {
			t.Errorf("VerifyAccessToken(%s) = %+v, want %+v", alg, c, wantClaims)
		}
	}
}

func TestAccessTokenShape(t *testing.T) {
	m := NewMinter(testIssuer, keySetOf(t, testKey(t, ES256)), fixedClock(t0))
	raw, jti, _, err := m.AccessToken(AccessToken{Subject: "svc", ClientID: "svc", Audience: []string{"a", "b"}, TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	p := segment(t, raw, 1)
	if got, want := p["aud"], []any{"a", "b"}; !reflect.DeepEqual(got, want) {
		t.Errorf("aud = %v, want %v", got, want)
	}
	for _, absent := range []string{"gid", "scope", "derived_from"} {
		if v, ok := p[absent]; ok {
			t.Errorf("%s = %v, want it omitted when empty", absent, v)
		}
	}
	// 128 random bits at least (RFC 9068 §2.2 via RFC 7519 §4.1.7: unique).
	if b, err := b64.DecodeString(jti); err != nil || len(b) < 16 {
		t.Errorf("jti = %q, want 16+ random bytes base64url", jti)
	}
	_, jti2, _, err := m.AccessToken(AccessToken{Subject: "svc", ClientID: "svc", Audience: []string{"a"}, TTL: time.Minute})
	if err != nil || jti2 == jti {
		t.Errorf("two mints gave jti %q and %q (%v), want distinct", jti, jti2, err)
	}
}

// A grant close to its end may leave less than a second: the token still outlives its iat.
func TestAccessTokenShortTTL(t *testing.T) {
	m := NewMinter(testIssuer, keySetOf(t, testKey(t, ES256)), fixedClock(t0.Add(900*time.Millisecond)))
	raw, _, exp, err := m.AccessToken(AccessToken{Subject: "s", ClientID: "c", Audience: []string{"a"}, TTL: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if p := segment(t, raw, 1); p["exp"] != float64(t0.Unix()+1) || !exp.Equal(t0.Add(time.Second)) {
		t.Errorf("AccessToken(TTL 50ms at t0+0.9s) exp = %v (%v), want %v", p["exp"], exp, t0.Unix()+1)
	}
}

// Access tokens and default ID tokens follow the primary key's rotation, ID tokens of another
// algorithm that algorithm's own.
func TestMinterFollowsRotation(t *testing.T) {
	cur, next := freshKey(t, ES256, t0), freshKey(t, ES256, t0.Add(time.Hour))
	rsCur, rsNext := freshKey(t, RS256, t0.Add(-time.Minute)), freshKey(t, RS256, t0.Add(30*time.Minute))
	now := t0
	m := NewMinter(testIssuer, keySetOf(t, cur, rsNext, next, rsCur), func() time.Time { return now })
	for _, c := range []struct {
		at         time.Time
		want, rsID string
	}{{t0, cur.ID, rsCur.ID}, {t0.Add(30 * time.Minute), cur.ID, rsNext.ID}, {t0.Add(time.Hour), next.ID, rsNext.ID}} {
		now = c.at
		raw, _, _, err := m.AccessToken(AccessToken{Subject: "s", ClientID: "c", Audience: []string{"a"}, TTL: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		if got := segment(t, raw, 0)["kid"]; got != c.want {
			t.Errorf("access token kid at %v = %q, want %q", c.at, got, c.want)
		}
		for alg, want := range map[string]string{"": c.want, ES256: c.want, RS256: c.rsID} {
			raw, err := m.IDToken(IDToken{Subject: "s", ClientID: "c", TTL: time.Minute, Alg: alg})
			if err != nil {
				t.Fatal(err)
			}
			if h := segment(t, raw, 0); h["kid"] != want {
				t.Errorf("ID token of alg %q at %v: kid %q, want %q", alg, c.at, h["kid"], want)
			}
		}
	}
	if raw, err := m.IDToken(IDToken{Subject: "s", ClientID: "c", TTL: time.Minute, Alg: PS256}); err == nil {
		t.Errorf("IDToken(alg PS256) with no PS256 key = %q, want an error", raw)
	}
}

func TestAccessTokenErrors(t *testing.T) {
	m := NewMinter(testIssuer, keySetOf(t, testKey(t, ES256)), fixedClock(t0))
	ok := AccessToken{Subject: "s", ClientID: "c", Audience: []string{"a"}, TTL: time.Minute}
	cases := []struct {
		name   string
		modify func(*AccessToken)
	}{
		{"no subject", func(a *AccessToken) { a.Subject = "" }},
		{"no client_id", func(a *AccessToken) { a.ClientID = "" }},
		{"no audience", func(a *AccessToken) { a.Audience = nil }},
		{"empty audience value", func(a *AccessToken) { a.Audience = []string{"a", ""} }},
		{"zero TTL", func(a *AccessToken) { a.TTL = 0 }},
		{"negative TTL", func(a *AccessToken) { a.TTL = -time.Second }},
		{"claim JSON cannot encode", func(a *AccessToken) { a.Claims = map[string]any{"x": math.NaN()} }},
	}
	for _, c := range cases {
		a := ok
		c.modify(&a)
		if raw, _, _, err := m.AccessToken(a); err == nil {
			t.Errorf("AccessToken(%s) = %q, want an error", c.name, raw)
		}
	}
}

func TestIDToken(t *testing.T) {
	for _, alg := range allAlgs {
		k := testKey(t, alg)
		m := NewMinter(testIssuer, keySetOf(t, k), fixedClock(t0))
		const at = "an.access.token"
		raw, err := m.IDToken(IDToken{
			Subject: "alice", ClientID: "app", Nonce: "n-0S6", AccessToken: at, AuthTime: t0.Add(-time.Minute),
			Claims: map[string]any{"email": "a@example.com", "aud": "evil", "nonce": "evil"}, TTL: time.Hour,
		})
		if err != nil {
			t.Fatalf("IDToken(%s) = %v", alg, err)
		}
		if h := segment(t, raw, 0); h["typ"] != "JWT" || h["kid"] != k.ID || h["alg"] != alg {
			t.Errorf("IDToken(%s) header = %v, want typ JWT, kid %q, alg %s", alg, h, k.ID, alg)
		}
		// OIDC Core §3.1.3.6: the left half of the hash the alg uses; Ed25519 uses SHA-512.
		var half []byte
		if alg == EdDSA {
			sum := sha512.Sum512([]byte(at))
			half = sum[:32]
		} else {
			sum := sha256.Sum256([]byte(at))
			half = sum[:16]
		}
		want := map[string]any{
			"iss": testIssuer, "sub": "alice", "aud": "app", "azp": "app", "nonce": "n-0S6",
			"at_hash": b64.EncodeToString(half), "email": "a@example.com",
			"iat": float64(t0.Unix()), "exp": float64(t0.Add(time.Hour).Unix()),
			"auth_time": float64(t0.Add(-time.Minute).Unix()),
		}
		if p := segment(t, raw, 1); !reflect.DeepEqual(p, want) {
			t.Errorf("IDToken(%s) claims = %v, want %v", alg, p, want)
		}
	}
}

func TestIDTokenOmitsUnsetOptionalClaims(t *testing.T) {
	m := NewMinter(testIssuer, keySetOf(t, testKey(t, ES256)), fixedClock(t0))
	raw, err := m.IDToken(IDToken{Subject: "alice", ClientID: "app", TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	p := segment(t, raw, 1)
	for _, absent := range []string{"nonce", "at_hash", "auth_time"} {
		if v, ok := p[absent]; ok {
			t.Errorf("IDToken() %s = %v, want it omitted", absent, v)
		}
	}
	for _, bad := range []IDToken{
		{ClientID: "app", TTL: time.Minute},
		{Subject: "alice", TTL: time.Minute},
		{Subject: "alice", ClientID: "app"},
		{Subject: "alice", ClientID: "app", TTL: time.Minute, Claims: map[string]any{"c": make(chan int)}},
	} {
		if raw, err := m.IDToken(bad); err == nil {
			t.Errorf("IDToken(%+v) = %q, want an error", bad, raw)
		}
	}
}

func BenchmarkMintES256(b *testing.B) {
	m := NewMinter(testIssuer, keySetOf(b, testKey(b, ES256)), time.Now)
	t := AccessToken{
		Subject: "alice", ClientID: "app", Scope: "openid api.read", GrantID: "g-123",
		Audience: []string{"api"}, Claims: map[string]any{"tenant": "acme"}, TTL: time.Hour,
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, _, err := m.AccessToken(t); err != nil {
			b.Fatal(err)
		}
	}
}
