package assertion

import (
	"context"
	"crypto/elliptic"
	"encoding/base64"
	"errors"
	"math/big"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"

	"github.com/tokengate/tokengate/internal/assertiontest"
	"github.com/tokengate/tokengate/store"
)

// TestClientAssertionAttacks attacks private_key_jwt (RFC 7523 §3, OIDC Core §9; RFC 8725 §3.1 for
// algorithms, §3.10 for kid, §3.11 for typ), whose checks guard jwt-bearer grants too: each
// assertion must be refused by the check named in want.
func TestClientAssertionAttacks(t *testing.T) {
	rsa := func(t *testing.T, c jwt.MapClaims) string {
		return sign(t, jwt.SigningMethodRS256, rsaKey, kid("rsa-1"), c)
	}
	good := func(t *testing.T) string { return rsa(t, clientClaims()) }
	// rsaWith and rsaKid make a well-signed assertion that differs from a good one in its claims kv
	// or its kid alone.
	rsaWith := func(kv ...any) func(t *testing.T) string {
		return func(t *testing.T) string { return rsa(t, assertiontest.With(clientClaims(), kv...)) }
	}
	rsaKid := func(k string) func(t *testing.T) string {
		return func(t *testing.T) string { return sign(t, jwt.SigningMethodRS256, rsaKey, kid(k), clientClaims()) }
	}
	segments := func(t *testing.T) []string { return strings.Split(good(t), ".") }
	tests := []struct {
		name  string
		token func(t *testing.T) string
		want  string
	}{
		{"alg none, no signature", func(t *testing.T) string {
			return sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, kid("rsa-1"), clientClaims())
		}, "segments"},
		{"alg none with a signature", func(t *testing.T) string {
			s := segments(t)
			return b64([]byte(`{"alg":"none","kid":"rsa-1"}`)) + "." + s[1] + "." + s[2]
		}, "no none key"},
		{"HS256 keyed with the RSA public key's PEM", func(t *testing.T) string {
			return sign(t, jwt.SigningMethodHS256, rsaPublicPEM(t, &rsaKey.PublicKey), kid("rsa-1"), clientClaims())
		}, "no HS256 key with this kid"},
		{"HS256 keyed with the RSA public key's DER, no kid", func(t *testing.T) string {
			return sign(t, jwt.SigningMethodHS256, rsaPublicDER(t, &rsaKey.PublicKey), nil, clientClaims())
		}, "no HS256 key"},
		{"bad signature (another RSA key)", func(t *testing.T) string {
			return sign(t, jwt.SigningMethodRS256, attackerRSA, kid("rsa-1"), clientClaims())
		}, "signature is invalid"},
		{"tampered payload", func(t *testing.T) string {
			s := segments(t)
			return s[0] + "." + b64([]byte(`{"iss":"client-1","sub":"admin","aud":"`+tokenEndpoint+`","exp":1800000300,"jti":"x"}`)) + "." + s[2]
		}, "signature is invalid"},
		{"all-zero ES256 signature", func(t *testing.T) string {
			s := strings.Split(sign(t, jwt.SigningMethodES256, ecKey, kid("ec-1"), clientClaims()), ".")
			return s[0] + "." + s[1] + "." + b64(make([]byte, 64))
		}, "signature is invalid"},
		{"signature with stray base64 bits", func(t *testing.T) string {
			s := good(t)
			return s[:len(s)-1] + "B" // 256 bytes end in 2 padding bits; B sets one
		}, "base64"},
		{"exp 5 minutes past", rsaWith("iat", t0.Add(-10*time.Minute).Unix(), "exp", t0.Add(-5*time.Minute).Unix()), "exp is past"},
		{"exp 6 s past, beyond the leeway", rsaWith("exp", t0.Add(-6*time.Second).Unix()), "exp is past"},
		{"no exp", rsaWith("exp", nil), "no exp"},
		{"exp a string", rsaWith("exp", "1800000300"), "exp is not a NumericDate"},
		{"exp beyond year 9999", rsaWith("exp", 1e300), "exp is not a NumericDate"},
		{"wrong aud", rsaWith("aud", "https://other.example.com/connect/token"), "aud does not name"},
		{"aud the issuer with a trailing slash", rsaWith("aud", issuer+"/"), "aud does not name"},
		{"no aud", rsaWith("aud", nil), "no aud"},
		{"aud an empty list", rsaWith("aud", []string{}), "aud does not name"},
		{"aud a number", rsaWith("aud", 7), "aud is not"},
		{"iss is not sub", rsaWith("sub", "admin"), "sub is not iss"},
		{"no sub", rsaWith("sub", nil), "no sub"},
		{"no jti", rsaWith("jti", nil), "no jti"},
		{"an empty jti", rsaWith("jti", ""), "jti is not"},
		{"iss another client", rsaWith("iss", "client-2", "sub", "client-2"), "iss is not"},
		{"no iss", rsaWith("iss", nil), "no iss"},
		{"nbf 61 s ahead", rsaWith("nbf", t0.Add(61*time.Second).Unix()), "nbf is more than"},
		{"exp 2 h ahead", rsaWith("exp", t0.Add(2*time.Hour).Unix()), "exp is more than"},
		{"iat 2 h ago, exp still ahead", rsaWith("iat", t0.Add(-2*time.Hour).Unix()), "iat is more than 1h0m0s ago"},
		{"iat 2 minutes ahead", rsaWith("iat", t0.Add(2*time.Minute).Unix()), "iat is more than 1m0s ahead"},
		{"unknown kid", rsaKid("rsa-2"), "no RS256 key with this kid"},
		{"kid ../../dev/null", rsaKid("../../dev/null"), "no RS256 key with this kid"},
		{"kid ' OR 1=1", rsaKid("' OR 1=1 --"), "no RS256 key with this kid"},
		{"kid with a NUL", rsaKid("rsa-1\x00"), "no RS256 key with this kid"},
		{"kid a number", func(t *testing.T) string {
			return sign(t, jwt.SigningMethodRS256, rsaKey, map[string]any{"kid": 1}, clientClaims())
		}, "kid is not"},
		{"an ES256 assertion naming the RSA kid", func(t *testing.T) string {
			return sign(t, jwt.SigningMethodES256, ecKey, kid("rsa-1"), clientClaims())
		}, "no ES256 key with this kid"},
		{"jku and kid pointing at the attacker's key set", func(t *testing.T) string {
			return sign(t, jwt.SigningMethodES256, attackerEC, map[string]any{
				"kid": "attacker", "jku": "https://attacker.example/jwks.json", "x5u": "https://attacker.example/cert.pem",
			}, clientClaims())
		}, "no ES256 key with this kid"},
		{"jwk header carrying the attacker's key", func(t *testing.T) string {
			jwk := jose.JSONWebKey{Key: &attackerEC.PublicKey}
			return sign(t, jwt.SigningMethodES256, attackerEC, map[string]any{"jwk": jwk}, clientClaims())
		}, "signature is invalid"},
		{"an unknown crit extension", func(t *testing.T) string {
			return sign(t, jwt.SigningMethodRS256, rsaKey, map[string]any{"kid": "rsa-1", "crit": []string{"exp"}, "exp": 1}, clientClaims())
		}, "crit"},
		{"typ at+jwt", func(t *testing.T) string {
			return sign(t, jwt.SigningMethodRS256, rsaKey, map[string]any{"kid": "rsa-1", "typ": "at+jwt"}, clientClaims())
		}, "typ"},
		{"garbage", func(*testing.T) string { return "not a jwt" }, "outside base64url"},
		{"two JWTs joined by a dot", func(t *testing.T) string { return good(t) + "." + good(t) }, "segments"},
		{"two JWTs joined by a space", func(t *testing.T) string { return good(t) + " " + good(t) }, "outside base64url"},
		{"two JWTs joined by a comma", func(t *testing.T) string { return good(t) + "," + good(t) }, "outside base64url"},
		{"a leading space", func(t *testing.T) string { return " " + good(t) }, "outside base64url"},
		{"a trailing newline", func(t *testing.T) string { return good(t) + "\n" }, "outside base64url"},
		{"a line break inside", func(t *testing.T) string {
			s := segments(t)
			return s[0] + ".\r\n" + s[1] + "." + s[2]
		}, "outside base64url"},
		{"five segments (JWE)", func(*testing.T) string { return "a.b.c.d.e" }, "segments"},
		{"an empty segment", func(t *testing.T) string {
			s := segments(t)
			return s[0] + ".." + s[2]
		}, "segments"},
		{"longer than MaxLen", rsaWith("pad", strings.Repeat("a", MaxLen)), "longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newVerifier(t, clientConfig(t, newClock()))
			_, err := v.Verify(context.Background(), tt.token(t))
			wantInvalid(t, "Verify("+tt.name+")", err, tt.want)
		})
	}
}

// TestClientAssertionAccepted covers what must pass (RFC 7523 §3: aud the issuer or the token
// endpoint, clocks a little apart), so that the defences above are not bought by refusing honest
// clients.
func TestClientAssertionAccepted(t *testing.T) {
	tests := []struct {
		name   string
		method jwt.SigningMethod
		key    any
		header map[string]any
		claims jwt.MapClaims
	}{
		{"aud the issuer", jwt.SigningMethodRS256, rsaKey, kid("rsa-1"), assertiontest.With(clientClaims(), "aud", issuer)},
		{"aud the token endpoint", jwt.SigningMethodRS256, rsaKey, kid("rsa-1"), assertiontest.With(clientClaims(), "aud", tokenEndpoint)},
		{"aud a list naming the token endpoint", jwt.SigningMethodRS256, rsaKey, kid("rsa-1"),
			assertiontest.With(clientClaims(), "aud", []string{"https://other.example.com", tokenEndpoint})},
		{"nbf 8 s ahead", jwt.SigningMethodRS256, rsaKey, kid("rsa-1"), assertiontest.With(clientClaims(), "nbf", t0.Add(8*time.Second).Unix())},
		{"nbf 60 s ahead", jwt.SigningMethodRS256, rsaKey, kid("rsa-1"), assertiontest.With(clientClaims(), "nbf", t0.Add(60*time.Second).Unix())},
		{"exp 4 s past, within the leeway", jwt.SigningMethodRS256, rsaKey, kid("rsa-1"), assertiontest.With(clientClaims(), "exp", t0.Add(-4*time.Second).Unix())},
		{"exp 1 h ahead", jwt.SigningMethodRS256, rsaKey, kid("rsa-1"), assertiontest.With(clientClaims(), "exp", t0.Add(time.Hour).Unix())},
		{"iat 59 minutes ago", jwt.SigningMethodRS256, rsaKey, kid("rsa-1"), assertiontest.With(clientClaims(), "iat", t0.Add(-59*time.Minute).Unix())},
		{"no iat", jwt.SigningMethodRS256, rsaKey, kid("rsa-1"), assertiontest.With(clientClaims(), "iat", nil)},
		{"a fractional exp", jwt.SigningMethodRS256, rsaKey, kid("rsa-1"), assertiontest.With(clientClaims(), "exp", float64(t0.Unix())+60.5)},
		{"PS256", jwt.SigningMethodPS256, rsaKey, kid("rsa-1"), clientClaims()},
		{"ES256", jwt.SigningMethodES256, ecKey, kid("ec-1"), clientClaims()},
		{"EdDSA", jwt.SigningMethodEdDSA, edKey, kid("ed-1"), clientClaims()},
		{"ES256 without kid", jwt.SigningMethodES256, ecKey, nil, clientClaims()},
		{"no typ", jwt.SigningMethodRS256, rsaKey, map[string]any{"kid": "rsa-1", "typ": nil}, clientClaims()},
		{"typ application/JWT", jwt.SigningMethodRS256, rsaKey, map[string]any{"kid": "rsa-1", "typ": "application/JWT"}, clientClaims()},
		{"typ client-authentication+jwt", jwt.SigningMethodRS256, rsaKey,
			map[string]any{"kid": "rsa-1", "typ": "client-authentication+jwt"}, clientClaims()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newVerifier(t, clientConfig(t, newClock()))
			if _, err := v.Verify(context.Background(), sign(t, tt.method, tt.key, tt.header, tt.claims)); err != nil {
				t.Errorf("Verify(%q) = %v, want nil", tt.name, err)
			}
		})
	}
}

func TestVerifyReturnsClaims(t *testing.T) {
	v := newVerifier(t, clientConfig(t, newClock()))
	c := assertiontest.With(clientClaims(), "nbf", t0.Unix(), "jti", "abc", "aud", []string{issuer, "x"}, "scope", "read")
	got, err := v.Verify(context.Background(), sign(t, jwt.SigningMethodES256, ecKey, kid("ec-1"), c))
	if err != nil {
		t.Fatalf("Verify = %v, want nil", err)
	}
	if got.Issuer != clientID || got.Subject != clientID || got.JTI != "abc" ||
		strings.Join(got.Audience, " ") != issuer+" x" || !got.ExpiresAt.Equal(t0.Add(5*time.Minute)) ||
		!got.IssuedAt.Equal(t0) || !got.NotBefore.Equal(t0) || got.All["scope"] != "read" {
		t.Errorf("Verify = %+v, want the assertion's claims", got)
	}
}

// TestReplay attacks jti single use (RFC 7523 §3 item 7; CVE-2020-15222, CVE-2020-5300).
func TestReplay(t *testing.T) {
	ctx := context.Background()
	t.Run("a replayed assertion", func(t *testing.T) {
		v := newVerifier(t, clientConfig(t, newClock()))
		raw := sign(t, jwt.SigningMethodES256, ecKey, kid("ec-1"), clientClaims())
		wantUsedOnce(t, v, raw, "jti was used before")
	})
	t.Run("a replay within the exp leeway", func(t *testing.T) {
		clk := newClock()
		v := newVerifier(t, clientConfig(t, clk))
		raw := sign(t, jwt.SigningMethodES256, ecKey, kid("ec-1"), assertiontest.With(clientClaims(), "exp", t0.Add(time.Minute).Unix()))
		wantAccepted(t, v, raw)
		clk.Advance(time.Minute + 3*time.Second) // past exp, within the leeway: still acceptable, so still recorded
		_, err := v.Verify(ctx, raw)
		wantInvalid(t, "Verify after exp, within the leeway", err, "jti was used before")
	})
	t.Run("the same jti after the first expired", func(t *testing.T) {
		clk := newClock()
		v := newVerifier(t, clientConfig(t, clk))
		first := assertiontest.With(clientClaims(), "jti", "again", "exp", t0.Add(time.Minute).Unix())
		wantAccepted(t, v, sign(t, jwt.SigningMethodES256, ecKey, kid("ec-1"), first))
		clk.Advance(2 * time.Minute)
		second := assertiontest.With(first, "iat", clk.Now().Unix(), "exp", clk.Now().Add(time.Minute).Unix())
		if _, err := v.Verify(ctx, sign(t, jwt.SigningMethodES256, ecKey, kid("ec-1"), second)); err != nil {
			t.Errorf("Verify(a new assertion reusing an expired jti) = %v, want nil", err)
		}
	})
	t.Run("concurrent replays: exactly one wins", func(t *testing.T) {
		v := newVerifier(t, clientConfig(t, newClock()))
		raw := sign(t, jwt.SigningMethodES256, ecKey, kid("ec-1"), clientClaims())
		var ok atomic.Int32
		var wg sync.WaitGroup
		for range 16 {
			wg.Go(func() {
				if _, err := v.Verify(ctx, raw); err == nil {
					ok.Add(1)
				}
			})
		}
		wg.Wait()
		if n := ok.Load(); n != 1 {
			t.Errorf("concurrent Verify succeeded %d times, want 1", n)
		}
	})
	t.Run("a forged assertion does not use up its jti", func(t *testing.T) {
		v := newVerifier(t, clientConfig(t, newClock()))
		c := assertiontest.With(clientClaims(), "jti", "victim")
		_, err := v.Verify(ctx, sign(t, jwt.SigningMethodES256, attackerEC, kid("ec-1"), c))
		wantInvalid(t, "Verify(forged)", err, "signature is invalid")
		if _, err := v.Verify(ctx, sign(t, jwt.SigningMethodES256, ecKey, kid("ec-1"), c)); err != nil {
			t.Errorf("Verify(genuine, after a forgery with its jti) = %v, want nil", err)
		}
	})
	t.Run("a refused assertion does not use up its jti", func(t *testing.T) {
		v := newVerifier(t, clientConfig(t, newClock()))
		c := assertiontest.With(clientClaims(), "jti", "victim")
		_, err := v.Verify(ctx, sign(t, jwt.SigningMethodES256, ecKey, kid("ec-1"), assertiontest.With(c, "aud", "https://elsewhere")))
		wantInvalid(t, "Verify(wrong aud)", err, "aud")
		if _, err := v.Verify(ctx, sign(t, jwt.SigningMethodES256, ecKey, kid("ec-1"), c)); err != nil {
			t.Errorf("Verify(good, after a refused one with its jti) = %v, want nil", err)
		}
	})
	t.Run("jtis are per issuer, and the key cannot be spelled by another issuer", func(t *testing.T) {
		clk := newClock()
		replay := store.NewMemory(clk.Now)
		keys := staticJWKS(t, clientJWKS(t))
		for _, p := range []struct{ iss, jti string }{{"a:b", "c"}, {"a", "b:c"}, {"b", "b:c"}} {
			v := newVerifier(t, Config{Issuer: p.iss, ClientAuth: true, Audiences: []string{issuer}, Keys: keys, Replay: replay, Now: clk.Now})
			c := assertiontest.With(clientClaims(), "iss", p.iss, "sub", p.iss, "jti", p.jti, "aud", issuer)
			if _, err := v.Verify(ctx, sign(t, jwt.SigningMethodES256, ecKey, kid("ec-1"), c)); err != nil {
				t.Errorf("Verify(iss %q, jti %q) = %v, want nil", p.iss, p.jti, err)
			}
		}
	})
}

// TestFaultsAreNotInvalid: a store or key source fault must reach the caller as ErrUnavailable
// (a 503), never as ErrInvalid (invalid_grant), or an outage would look like an attack (and fosite
// CVE-2020-15223 shows the opposite mistake).
func TestFaultsAreNotInvalid(t *testing.T) {
	ctx := context.Background()
	raw := sign(t, jwt.SigningMethodES256, ecKey, kid("ec-1"), clientClaims())
	for _, tt := range []struct {
		name string
		cfg  func(Config) Config
		want string
	}{
		{"replay store down", func(c Config) Config { c.Replay = &failingStore{}; return c }, "replay store"},
		{"key source down", func(c Config) Config { c.Keys = &failingKeys{}; return c }, "keys"},
	} {
		v := newVerifier(t, tt.cfg(clientConfig(t, newClock())))
		_, err := v.Verify(ctx, raw)
		if !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Verify(%s) = %v, want an ErrUnavailable naming %q", tt.name, err, tt.want)
		}
	}
}

// TestTooManyKeysWithoutKid: a token without kid tries only a handful of keys, so it cannot make
// us verify a signature once per key of a large set.
func TestTooManyKeysWithoutKid(t *testing.T) {
	var keys []jose.JSONWebKey
	for i := range maxCandidates + 1 {
		k := &attackerEC.PublicKey
		if i == 0 {
			k = &ecKey.PublicKey
		}
		keys = append(keys, jose.JSONWebKey{Key: k, KeyID: "ec-" + string(rune('a'+i))})
	}
	cfg := clientConfig(t, newClock())
	cfg.Keys = staticJWKS(t, jwksJSON(t, keys...))
	v := newVerifier(t, cfg)
	_, err := v.Verify(context.Background(), sign(t, jwt.SigningMethodES256, ecKey, nil, clientClaims()))
	wantInvalid(t, "Verify(no kid, 5 keys)", err, "must name its kid")
	if _, err := v.Verify(context.Background(), sign(t, jwt.SigningMethodES256, ecKey, kid("ec-a"), clientClaims())); err != nil {
		t.Errorf("Verify(kid ec-a) = %v, want nil", err)
	}
}

// TestClientSecretJWT attacks client_secret_jwt (OIDC Core §9: an HMAC keyed with the client's
// secret, and no other algorithm reaches that key).
func TestClientSecretJWT(t *testing.T) {
	secrets, err := NewHMACSecrets([]byte("an-older-secret-of-at-least-32-bytes"), hmacSecret)
	if err != nil {
		t.Fatal(err)
	}
	cfg := clientConfig(t, newClock())
	cfg.Keys = secrets
	v := newVerifier(t, cfg)
	ctx := context.Background()
	if _, err := v.Verify(ctx, sign(t, jwt.SigningMethodHS256, hmacSecret, nil, clientClaims())); err != nil {
		t.Errorf("Verify(HS256 with the second secret) = %v, want nil", err)
	}
	if _, err := v.Verify(ctx, sign(t, jwt.SigningMethodHS256, hmacSecret, kid("any"), clientClaims())); err != nil {
		t.Errorf("Verify(HS256 naming a kid) = %v, want nil", err)
	}
	wantRefused(t, v, []refusal{
		{"the wrong secret", sign(t, jwt.SigningMethodHS256, []byte("wrong-secret-wrong-secret-wrong-secret"), nil, clientClaims()), "signature is invalid"},
		{"an RS256 assertion", sign(t, jwt.SigningMethodRS256, rsaKey, nil, clientClaims()), "no RS256 key"},
		{"HS512 with the right secret", sign(t, jwt.SigningMethodHS512, hmacSecret, nil, clientClaims()), "no HS512 key"},
		{"alg none", sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, nil, clientClaims()) + "AAAA", "no none key"},
	})
}

// TestGrantAssertion attacks jwt-bearer assertions from a trust block (RFC 7523 §3),
// here with a key_file holding the issuer's RSA public key.
func TestGrantAssertion(t *testing.T) {
	ctx := context.Background()
	keys, err := ParsePEM(rsaPublicPEM(t, &rsaKey.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	cfg := func(clk *clock) Config {
		return Config{
			Issuer:    trustIssuer,
			Audiences: []string{issuer, tokenEndpoint},
			Keys:      keys,
			Replay:    store.NewMemory(clk.Now),
			Now:       clk.Now,
		}
	}
	rs := func(c jwt.MapClaims) string { return sign(t, jwt.SigningMethodRS256, rsaKey, nil, c) }

	v := newVerifier(t, cfg(newClock()))
	got, err := v.Verify(ctx, rs(grantClaims()))
	if err != nil || got.Subject != "alice" || got.Issuer != trustIssuer || got.JTI != "" {
		t.Errorf("Verify(good grant) = %+v, %v, want sub alice from %s", got, err, trustIssuer)
	}
	// A PEM key has no kid, so the token's kid cannot select and is ignored, never looked up.
	if _, err := v.Verify(ctx, sign(t, jwt.SigningMethodRS256, rsaKey, kid("../../etc/passwd"), grantClaims())); err != nil {
		t.Errorf("Verify(key_file, any kid) = %v, want nil", err)
	}

	wantRefused(t, v, []refusal{
		{"HS256 keyed with the issuer's public key PEM (CVE-2026-11800)",
			sign(t, jwt.SigningMethodHS256, rsaPublicPEM(t, &rsaKey.PublicKey), nil, grantClaims()), "no HS256 key"},
		{"a bad signature", sign(t, jwt.SigningMethodRS256, attackerRSA, nil, grantClaims()), "signature is invalid"},
		{"no iss", rs(assertiontest.With(grantClaims(), "iss", nil)), "no iss"},
		{"an untrusted iss", rs(assertiontest.With(grantClaims(), "iss", "https://idp.example.com.evil")), "iss is not"},
		{"no sub", rs(assertiontest.With(grantClaims(), "sub", nil)), "no sub"},
		{"a foreign aud", rs(assertiontest.With(grantClaims(), "aud", "https://other-as.example.com")), "aud does not name"},
		{"expired", rs(assertiontest.With(grantClaims(), "exp", t0.Add(-time.Minute).Unix())), "exp is past"},
		{"no exp", rs(assertiontest.With(grantClaims(), "exp", nil)), "no exp"},
		{"nbf 2 minutes ahead", rs(assertiontest.With(grantClaims(), "nbf", t0.Add(2*time.Minute).Unix())), "nbf"},
		{"exp 2 h ahead", rs(assertiontest.With(grantClaims(), "exp", t0.Add(2*time.Hour).Unix())), "exp is more than"},
		{"iat 2 h ago", rs(assertiontest.With(grantClaims(), "iat", t0.Add(-2*time.Hour).Unix())), "iat is more than"},
		{"a client assertion replayed as a grant", sign(t, jwt.SigningMethodRS256, rsaKey,
			map[string]any{"typ": "client-authentication+jwt"}, grantClaims()), "typ"},
		{"two JWTs", rs(grantClaims()) + "." + rs(grantClaims()), "segments"},
	})

	t.Run("a replayed jti", func(t *testing.T) {
		v := newVerifier(t, cfg(newClock()))
		raw := rs(assertiontest.With(grantClaims(), "jti", "g-1"))
		wantUsedOnce(t, v, raw, "jti was used before")
	})
	t.Run("without jti: once, by its SHA-256", func(t *testing.T) {
		clk := newClock()
		ecConfig := Config{Issuer: trustIssuer, Audiences: []string{issuer}, Keys: staticJWKS(t, clientJWKS(t)), Now: clk.Now}
		ecConfig.Replay = store.NewMemory(clk.Now)
		v := newVerifier(t, ecConfig)
		raw := sign(t, jwt.SigningMethodES256, ecKey, kid("ec-1"), grantClaims())
		wantUsedOnce(t, v, raw, "assertion was used before")
		// The same claims under the other valid ECDSA signature (s replaced by n-s) are the same
		// assertion, though not the same bytes.
		malleated := otherECDSASignature(t, raw)
		ecConfig.Replay = store.NewMemory(clk.Now)
		if _, err := newVerifier(t, ecConfig).Verify(ctx, malleated); err != nil {
			t.Fatalf("Verify(the other signature form) on a fresh store = %v, want nil", err)
		}
		_, err = v.Verify(ctx, malleated)
		wantInvalid(t, "Verify(the other signature form) after the first", err, "assertion was used before")
		another := sign(t, jwt.SigningMethodES256, ecKey, kid("ec-1"), assertiontest.With(grantClaims(), "sub", "bob"))
		if _, err := v.Verify(ctx, another); err != nil {
			t.Errorf("Verify(another assertion without jti) = %v, want nil", err)
		}
	})
}

// otherECDSASignature returns the ES256 JWS raw with its signature (r, s) replaced by (r, n-s),
// which verifies as well (ECDSA signatures are malleable).
func otherECDSASignature(t *testing.T, raw string) string {
	t.Helper()
	dot := strings.LastIndexByte(raw, '.')
	sig, err := base64.RawURLEncoding.DecodeString(raw[dot+1:])
	if err != nil || len(sig) != 64 {
		t.Fatalf("an ES256 signature of %d bytes: %v", len(sig), err)
	}
	s := new(big.Int).SetBytes(sig[32:])
	s.Sub(elliptic.P256().Params().N, s)
	return raw[:dot+1] + b64(append(sig[:32:32], s.FillBytes(make([]byte, 32))...))
}

// TestHugeInputIsCheap: an oversized or dot-stuffed assertion is refused before any decoding and
// without allocating (CVE-2025-30204).
func TestHugeInputIsCheap(t *testing.T) {
	v := newVerifier(t, clientConfig(t, newClock()))
	ctx := context.Background()
	for _, raw := range []string{strings.Repeat(".", 1<<20), strings.Repeat("A", 1<<20)} {
		allocs := testing.AllocsPerRun(10, func() {
			if _, err := v.Verify(ctx, raw); !errors.Is(err, ErrInvalid) {
				t.Fatalf("Verify(1 MiB) = %v, want ErrInvalid", err)
			}
		})
		if allocs != 0 {
			t.Errorf("Verify(1 MiB of %q) allocated %v times, want 0", raw[:1], allocs)
		}
	}
}

func TestUnverifiedIssuer(t *testing.T) {
	good := sign(t, jwt.SigningMethodES256, ecKey, nil, clientClaims())
	if got, err := UnverifiedIssuer(good); err != nil || got != clientID {
		t.Errorf("UnverifiedIssuer(good) = %q, %v, want %q", got, err, clientID)
	}
	for _, raw := range []string{
		"",
		"a.b",
		good + " ",
		"e30." + b64([]byte(`{"sub":"x"}`)) + ".c2ln",
		"e30." + b64([]byte(`{"iss":7}`)) + ".c2ln",
		"e30." + b64([]byte(`{"iss":""}`)) + ".c2ln",
		"e30." + b64([]byte(`not json`)) + ".c2ln",
		"e30.eyJpc3MiOiJ4In1.c2ln" + strings.Repeat("A", MaxLen),
		"e30.eyJpc3MiOiJ4In0x.c2ln", // stray bits after the JSON
	} {
		if got, err := UnverifiedIssuer(raw); !errors.Is(err, ErrInvalid) {
			t.Errorf("UnverifiedIssuer(%.40q) = %q, %v, want ErrInvalid", raw, got, err)
		}
	}
}

func TestNewVerifierConfig(t *testing.T) {
	base := clientConfig(t, newClock())
	for _, tt := range []struct {
		name string
		edit func(*Config)
	}{
		{"no issuer", func(c *Config) { c.Issuer = "" }},
		{"no audience", func(c *Config) { c.Audiences = nil }},
		{"an empty audience", func(c *Config) { c.Audiences = []string{issuer, ""} }},
		{"no keys", func(c *Config) { c.Keys = nil }},
		{"no replay store", func(c *Config) { c.Replay = nil }},
		{"a negative lifetime", func(c *Config) { c.MaxLifetime = -time.Second }},
	} {
		c := base
		tt.edit(&c)
		if _, err := NewVerifier(c); err == nil {
			t.Errorf("NewVerifier(%s) = nil error, want one", tt.name)
		}
	}
	c := base
	c.MaxLifetime = 10 * time.Minute
	v := newVerifier(t, c)
	_, err := v.Verify(context.Background(), sign(t, jwt.SigningMethodES256, ecKey, nil,
		assertiontest.With(clientClaims(), "exp", t0.Add(15*time.Minute).Unix())))
	wantInvalid(t, "Verify(exp 15 minutes ahead, MaxLifetime 10m)", err, "exp is more than 10m0s ahead")
}
