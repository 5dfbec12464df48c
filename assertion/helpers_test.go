package assertion

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"github.com/tokengate/tokengate/internal/testclock"
	"math/big"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"

	"github.com/tokengate/tokengate/internal/assertiontest"
	"github.com/tokengate/tokengate/store"
)

const (
	issuer        = "https://auth.example.com"
	tokenEndpoint = "https://auth.example.com/connect/token"
	clientID      = "client-1"
	trustIssuer   = "https://idp.example.com"
)

// t0 is the tests' "now".
var t0 = time.Unix(1_800_000_000, 0)

// Keys made once per test binary: RSA generation is slow.
var (
	rsaKey          = mustRSA(2048)
	ecKey           = mustEC(elliptic.P256())
	edPub, edKey, _ = ed25519.GenerateKey(rand.Reader)
	attackerRSA     = mustRSA(2048)
	attackerEC      = mustEC(elliptic.P256())
	// hmacSecret is a client secret for client_secret_jwt.
	hmacSecret = []byte("0123456789abcdef0123456789abcdef-client-secret")
)

func mustRSA(bits int) *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		panic(err)
	}
	return k
}

func mustEC(c elliptic.Curve) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		panic(err)
	}
	return k
}

type clock = testclock.Clock

func newClock() *clock { return testclock.New(t0) }

// jwksJSON is a JWK Set of the given keys, as a client or an issuer would publish it.
func jwksJSON(t testing.TB, keys ...jose.JSONWebKey) []byte {
	t.Helper()
	b, err := json.Marshal(jose.JSONWebKeySet{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// clientJWKS is client-1's key set: one key of each kind, each with a kid.
func clientJWKS(t testing.TB) []byte {
	return jwksJSON(t,
		jose.JSONWebKey{Key: &rsaKey.PublicKey, KeyID: "rsa-1", Use: "sig"},
		jose.JSONWebKey{Key: &ecKey.PublicKey, KeyID: "ec-1", Use: "sig"},
		jose.JSONWebKey{Key: edPub, KeyID: "ed-1"},
	)
}

func staticJWKS(t testing.TB, data []byte) *StaticKeys {
	t.Helper()
	s, err := ParseJWKS(data)
	if err != nil {
		t.Fatalf("ParseJWKS: %v", err)
	}
	return s
}

func newVerifier(t testing.TB, cfg Config) *Verifier {
	t.Helper()
	v, err := NewVerifier(cfg)
	if err != nil {
		t.Fatalf("NewVerifier: %v", err)
	}
	return v
}

// clientConfig is private_key_jwt for client-1, with a fresh memory store on clk.
func clientConfig(t testing.TB, clk *clock) Config {
	return Config{
		Issuer:     clientID,
		ClientAuth: true,
		Audiences:  []string{issuer, tokenEndpoint},
		Keys:       staticJWKS(t, clientJWKS(t)),
		Replay:     store.NewMemory(clk.Now),
		Now:        clk.Now,
	}
}

var jtiCounter atomic.Int64

// clientClaims are the claims of a good client assertion from client-1 at t0, with a fresh jti.
func clientClaims() jwt.MapClaims {
	return jwt.MapClaims{
		"iss": clientID,
		"sub": clientID,
		"aud": tokenEndpoint,
		"iat": t0.Unix(),
		"exp": t0.Add(5 * time.Minute).Unix(),
		"jti": "jti-" + strconv.FormatInt(jtiCounter.Add(1), 10),
	}
}

// grantClaims are the claims of a good jwt-bearer assertion from the trusted issuer, without jti.
func grantClaims() jwt.MapClaims {
	return jwt.MapClaims{
		"iss": trustIssuer,
		"sub": "alice",
		"aud": issuer,
		"iat": t0.Unix(),
		"exp": t0.Add(5 * time.Minute).Unix(),
	}
}

// sign makes a JWS with method and key; header entries are added, or removed when nil.
func sign(t testing.TB, method jwt.SigningMethod, key any, header map[string]any, claims jwt.MapClaims) string {
	t.Helper()
	return assertiontest.SignJWT(t, method, key, header, claims)
}

func kid(k string) map[string]any { return map[string]any{"kid": k} }

// rsaPublicPEM and rsaPublicDER are the encodings an attacker would use as an HMAC key.
func rsaPublicDER(t testing.TB, k *rsa.PublicKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func rsaPublicPEM(t testing.TB, k *rsa.PublicKey) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: rsaPublicDER(t, k)})
}

// wantInvalid fails unless err is an ErrInvalid (and not an ErrUnavailable) naming want.
func wantInvalid(t testing.TB, call string, err error, want string) {
	t.Helper()
	if !errors.Is(err, ErrInvalid) || errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), want) {
		t.Errorf("%s = %v, want an ErrInvalid naming %q", call, err, want)
	}
}

// refusal is an assertion a Verifier must refuse as invalid, with an error naming want.
type refusal struct{ name, raw, want string }

// wantRefused checks that v refuses each of refusals.
func wantRefused(t testing.TB, v *Verifier, refusals []refusal) {
	t.Helper()
	for _, r := range refusals {
		_, err := v.Verify(context.Background(), r.raw)
		wantInvalid(t, "Verify("+r.name+")", err, r.want)
	}
}

// wantAccepted fails t unless v accepts raw.
func wantAccepted(t testing.TB, v *Verifier, raw string) {
	t.Helper()
	if _, err := v.Verify(context.Background(), raw); err != nil {
		t.Fatalf("first Verify = %v, want nil", err)
	}
}

// wantUsedOnce checks that v accepts raw once, then refuses it as a replay naming want.
func wantUsedOnce(t testing.TB, v *Verifier, raw, want string) {
	t.Helper()
	wantAccepted(t, v, raw)
	_, err := v.Verify(context.Background(), raw)
	wantInvalid(t, "second Verify", err, want)
}

// failingStore is a replay store whose backend is down.
type failingStore struct{}

func (*failingStore) PutOnce(context.Context, string, []byte, time.Time) (bool, error) {
	return false, errors.New("connection refused")
}

func (*failingStore) Take(context.Context, string) ([]byte, error) {
	return nil, errors.New("connection refused")
}

// failingKeys is a key source whose issuer is unreachable.
type failingKeys struct{}

func (*failingKeys) Keys(context.Context, string) ([]Key, error) {
	return nil, errors.New("jwks_uri unreachable")
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// b64int is a P-256 coordinate as a JWK carries it.
func b64int(x *big.Int) string { return b64(x.FillBytes(make([]byte, 32))) }
