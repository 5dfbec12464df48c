package assertion

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tokengate/tokengate/internal/assertiontest"
)

// FuzzVerifyAssertion: whatever the input, Verify never panics, refuses with exactly one of its
// sentinels, and accepts nothing but an assertion one of our keys signed, at most once per jti.
func FuzzVerifyAssertion(f *testing.F) {
	clk := newClock()
	v := newVerifier(f, clientConfig(f, clk))
	minted := map[string]bool{}
	seed := func(method jwt.SigningMethod, key any, header map[string]any, c jwt.MapClaims) {
		minted[c["jti"].(string)] = true
		f.Add(sign(f, method, key, header, c))
	}
	seed(jwt.SigningMethodES256, ecKey, kid("ec-1"), clientClaims())
	seed(jwt.SigningMethodRS256, rsaKey, kid("rsa-1"), assertiontest.With(clientClaims(), "aud", []string{issuer, "x"}))
	seed(jwt.SigningMethodEdDSA, edKey, nil, assertiontest.With(clientClaims(), "nbf", t0.Unix()))
	f.Add(sign(f, jwt.SigningMethodHS256, rsaPublicPEM(f, &rsaKey.PublicKey), kid("rsa-1"), clientClaims()))
	f.Add(sign(f, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, nil, clientClaims()) + "AAAA")
	f.Add(sign(f, jwt.SigningMethodES256, attackerEC, map[string]any{"kid": "../../dev/null", "crit": []string{"b64"}}, clientClaims()))
	f.Add("e30.e30.e30")
	f.Add("a.b.c.d.e")
	f.Add(strings.Repeat(".", 64))
	f.Add("")

	f.Fuzz(func(t *testing.T, raw string) {
		c, err := v.Verify(context.Background(), raw)
		if err != nil {
			if c != nil || errors.Is(err, ErrInvalid) == errors.Is(err, ErrUnavailable) {
				t.Fatalf("Verify(%.60q) = %v, %v, want nil claims and exactly one sentinel", raw, c, err)
			}
			// A memory store and static keys never fail: every refusal is the assertion's fault.
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Verify(%.60q) = %v, want ErrInvalid", raw, err)
			}
			return
		}
		if len(raw) > MaxLen || !minted[c.JTI] || c.Issuer != clientID || c.Subject != clientID {
			t.Fatalf("Verify(%.60q) accepted %+v, which no key of ours signed", raw, c)
		}
		if _, err := UnverifiedIssuer(raw); err != nil {
			t.Fatalf("UnverifiedIssuer(%.60q) = %v after Verify accepted it", raw, err)
		}
	})
}
