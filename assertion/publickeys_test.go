package assertion

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
)

func TestNewPublicKey(t *testing.T) {
	p224, err := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		pub     crypto.PublicKey
		alg     string
		want    string // the key's algorithms, or words of the error
		wantErr bool
	}{
		{"RSA 2048", &rsaKey.PublicKey, "", "RS256 RS384 RS512 PS256 PS384 PS512", false},
		{"RSA 2048 alg PS256", &rsaKey.PublicKey, "PS256", "PS256", false},
		{"RSA 1024", &mustRSA(1024).PublicKey, "", "1024 bits", true},
		{"RSA alg ES256", &rsaKey.PublicKey, "ES256", "does not fit", true},
		{"RSA alg HS256", &rsaKey.PublicKey, "HS256", "does not fit", true},
		{"RSA alg none", &rsaKey.PublicKey, "none", "does not fit", true},
		{"P-256", &ecKey.PublicKey, "", "ES256", false},
		{"P-384", &mustEC(elliptic.P384()).PublicKey, "", "ES384", false},
		{"P-521", &mustEC(elliptic.P521()).PublicKey, "", "ES512", false},
		{"P-256 alg ES384", &ecKey.PublicKey, "ES384", "does not fit", true},
		{"P-224", &p224.PublicKey, "", "curve", true},
		{"Ed25519", edPub, "", "EdDSA", false},
		{"Ed25519 truncated", edPub[:16], "", "wrong length", true},
		{"a symmetric key", hmacSecret, "", "symmetric", true},
		{"a private key", rsaKey, "", "unsupported key type", true},
	}
	for _, tt := range tests {
		k, err := NewPublicKey("k", tt.pub, tt.alg)
		got := strings.Join(k.algs, " ")
		if err != nil {
			got = err.Error()
		}
		if (err != nil) != tt.wantErr || !strings.Contains(got, tt.want) {
			t.Errorf("NewPublicKey(%s, %q) = %q, want %q", tt.name, tt.alg, got, tt.want)
		}
	}
}

// TestParseJWKS: a jwks_file is strict. Above all, a symmetric "oct" key in a public key set is
// refused, so it can never verify an HS256 assertion for a public-key client or issuer.
func TestParseJWKS(t *testing.T) {
	good := `{"kty":"EC","crv":"P-256","kid":"ec","x":"` + b64int(ecKey.X) + `","y":"` + b64int(ecKey.Y) + `"}`
	priv, err := json.Marshal(jose.JSONWebKey{Key: ecKey, KeyID: "priv"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, jwks, want string
	}{
		{"an oct key", `{"keys":[` + good + `,{"kty":"oct","kid":"s","k":"` + b64(hmacSecret) + `"}]}`, "not a public key"},
		{"a private key", `{"keys":[` + good + `,` + string(priv) + `]}`, "not a public key"},
		{"an encryption key", `{"keys":[` + strings.Replace(good, `"kid"`, `"use":"enc","kid"`, 1) + `]}`, `use is "enc"`},
		{"an unknown kty", `{"keys":[` + good + `,{"kty":"AKP","kid":"pq"}]}`, "key 1"},
		{"a weak RSA key", string(jwksJSON(t, jose.JSONWebKey{Key: &mustRSA(1024).PublicKey})), "1024 bits"},
		{"no keys", `{"keys":[]}`, "no usable"},
		{"not JSON", `keys`, "not a JWK Set"},
		{"too many keys", `{"keys":[` + strings.Repeat(good+",", maxKeysPerSet) + good + `]}`, "at most"},
	}
	for _, tt := range tests {
		if _, err := ParseJWKS([]byte(tt.jwks)); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseJWKS(%s) = %v, want an error naming %q", tt.name, err, tt.want)
		}
	}
	s, err := ParseJWKS([]byte(`{"keys":[` + good + `]}`))
	if err != nil {
		t.Fatalf("ParseJWKS(good) = %v", err)
	}
	keys, _ := s.Keys(context.Background(), "ec")
	if len(keys) != 1 {
		t.Errorf("Keys(ec) = %d keys, want 1", len(keys))
	}
	if keys, _ := s.Keys(context.Background(), "other"); len(keys) != 0 {
		t.Errorf("Keys(other) = %d keys, want 0", len(keys))
	}
}

func TestParsePEM(t *testing.T) {
	ecDER, err := x509.MarshalPKIXPublicKey(&ecKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	privDER, err := x509.MarshalPKCS8PrivateKey(ecKey)
	if err != nil {
		t.Fatal(err)
	}
	block := func(typ string, der []byte) string {
		return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
	}
	tests := []struct {
		name, pem string
		keys      int
		want      string
	}{
		{"PKIX RSA", string(rsaPublicPEM(t, &rsaKey.PublicKey)), 1, ""},
		{"PKIX EC and PKCS #1 RSA", block("PUBLIC KEY", ecDER) + block("RSA PUBLIC KEY", x509.MarshalPKCS1PublicKey(&rsaKey.PublicKey)), 2, ""},
		{"a certificate", block("CERTIFICATE", selfSigned(t)), 1, ""},
		{"a private key", block("PRIVATE KEY", privDER), 0, `"PRIVATE KEY" block`},
		{"a weak RSA key", block("RSA PUBLIC KEY", x509.MarshalPKCS1PublicKey(&mustRSA(1024).PublicKey)), 0, "1024 bits"},
		{"no PEM", "hello", 0, "no PEM"},
		{"a broken certificate", block("CERTIFICATE", []byte("junk")), 0, "PEM block 1"},
	}
	for _, tt := range tests {
		s, err := ParsePEM([]byte(tt.pem))
		if tt.want != "" {
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParsePEM(%s) = %v, want an error naming %q", tt.name, err, tt.want)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParsePEM(%s) = %v, want nil", tt.name, err)
			continue
		}
		if keys, _ := s.Keys(context.Background(), "whatever"); len(keys) != tt.keys {
			t.Errorf("ParsePEM(%s).Keys = %d keys, want %d", tt.name, len(keys), tt.keys)
		}
	}
}

// TestJWKAlgNarrowsTheKey: a JWK's alg limits its key to that algorithm.
func TestJWKAlgNarrowsTheKey(t *testing.T) {
	cfg := clientConfig(t, newClock())
	cfg.Keys = staticJWKS(t, jwksJSON(t, jose.JSONWebKey{Key: &rsaKey.PublicKey, KeyID: "r", Algorithm: "PS256"}))
	v := newVerifier(t, cfg)
	_, err := v.Verify(context.Background(), sign(t, jwt.SigningMethodRS256, rsaKey, kid("r"), clientClaims()))
	wantInvalid(t, "Verify(RS256 with a PS256 key)", err, "no RS256 key")
	if _, err := v.Verify(context.Background(), sign(t, jwt.SigningMethodPS256, rsaKey, kid("r"), clientClaims())); err != nil {
		t.Errorf("Verify(PS256) = %v, want nil", err)
	}
}

func TestNewHMACSecrets(t *testing.T) {
	for _, tt := range []struct {
		name    string
		secrets [][]byte
	}{
		{"none", nil},
		{"31 bytes", [][]byte{[]byte(strings.Repeat("s", 31))}},
		{"one good, one short", [][]byte{hmacSecret, []byte("short")}},
	} {
		if _, err := NewHMACSecrets(tt.secrets...); err == nil {
			t.Errorf("NewHMACSecrets(%s) = nil error, want one (RFC 7518 §3.2)", tt.name)
		}
	}
}

func selfSigned(t *testing.T) []byte {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "idp"},
		NotBefore:    t0.Add(-time.Hour),
		NotAfter:     t0.Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &ecKey.PublicKey, ecKey)
	if err != nil {
		t.Fatal(err)
	}
	return der
}
