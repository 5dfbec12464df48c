package tokens

import (
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"strings"
	"sync"
	"testing"
	"time"
)

var allAlgs = []string{ES256, RS256, PS256, EdDSA}

// testSigners generates one key per algorithm once per test binary: RSA generation is slow.
var testSigners = sync.OnceValue(func() map[string]crypto.Signer {
	m := map[string]crypto.Signer{}
	for _, alg := range allAlgs {
		k, err := GenerateKey(alg)
		if err != nil {
			panic(err)
		}
		m[alg] = k
	}
	return m
})

func testKey(t testing.TB, alg string) Key {
	t.Helper()
	k, err := NewKey(alg, testSigners()[alg], time.Unix(0, 0))
	if err != nil {
		t.Fatalf("NewKey(%q) = %v", alg, err)
	}
	return k
}

func TestGenerateKey(t *testing.T) {
	for _, alg := range allAlgs {
		s, err := GenerateKey(alg)
		if err != nil {
			t.Fatalf("GenerateKey(%q) = %v", alg, err)
		}
		if _, err := NewKey(alg, s, time.Time{}); err != nil {
			t.Errorf("NewKey(%q, GenerateKey(%q)) = %v, want nil", alg, alg, err)
		}
	}
	for _, alg := range []string{"", "HS256", "none", "es256", "RS512"} {
		if _, err := GenerateKey(alg); err == nil {
			t.Errorf("GenerateKey(%q) = nil error, want one", alg)
		}
	}
}

func TestParsePrivateKeyPEM(t *testing.T) {
	enc := func(typ string, der []byte) []byte {
		return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
	}
	ec := testSigners()[ES256].(*ecdsa.PrivateKey)
	rsaKey := testSigners()[RS256].(*rsa.PrivateKey)
	sec1, err := x509.MarshalECPrivateKey(ec)
	if err != nil {
		t.Fatal(err)
	}
	// What `openssl ecparam -name prime256v1 -genkey` writes: the curve's OID, then the key.
	ecParams := enc("EC PARAMETERS", []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07})
	cases := []struct {
		name string
		pem  []byte
		want crypto.Signer
	}{
		{"PKCS#1 RSA", enc("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaKey)), rsaKey},
		{"SEC 1 EC", enc("EC PRIVATE KEY", sec1), ec},
		{"SEC 1 EC after EC PARAMETERS", append(ecParams, enc("EC PRIVATE KEY", sec1)...), ec},
	}
	for _, alg := range allAlgs {
		p, err := MarshalPrivateKeyPEM(testSigners()[alg])
		if err != nil {
			t.Fatalf("MarshalPrivateKeyPEM(%s) = %v", alg, err)
		}
		if !strings.HasPrefix(string(p), "-----BEGIN PRIVATE KEY-----") {
			t.Errorf("MarshalPrivateKeyPEM(%s) = %q, want a PKCS#8 PRIVATE KEY block", alg, p)
		}
		cases = append(cases, struct {
			name string
			pem  []byte
			want crypto.Signer
		}{"PKCS#8 " + alg, p, testSigners()[alg]})
	}
	for _, c := range cases {
		got, err := ParsePrivateKeyPEM(c.pem)
		if err != nil {
			t.Errorf("ParsePrivateKeyPEM(%s) = %v", c.name, err)
			continue
		}
		if !got.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(c.want.Public()) {
			t.Errorf("ParsePrivateKeyPEM(%s) returned another key", c.name)
		}
	}
}

func TestParsePrivateKeyPEMErrors(t *testing.T) {
	x25519, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	xDER, err := x509.MarshalPKCS8PrivateKey(x25519)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(testSigners()[ES256].Public())
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, pem, wantErr string
	}{
		{"empty", "", "no PEM"},
		{"not PEM", "hello", "no PEM"},
		{"only EC PARAMETERS", "-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n", "no PEM"},
		{"public key", string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})), "not a private key"},
		{"certificate", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "not a private key"},
		{"PKCS#8 encrypted", "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n", "encrypted"},
		{"legacy encrypted", "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00000000000000000000000000000000\n\nAAAA\n-----END RSA PRIVATE KEY-----\n", "encrypted"},
		{"bad PKCS#8", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "PRIVATE KEY"},
		{"bad PKCS#1", "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n", "RSA PRIVATE KEY"},
		{"bad SEC 1", "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n", "EC PRIVATE KEY"},
		{"X25519 cannot sign", string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: xDER})), "cannot sign"},
	}
	for _, c := range cases {
		k, err := ParsePrivateKeyPEM([]byte(c.pem))
		if err == nil || !strings.Contains(err.Error(), c.wantErr) {
			t.Errorf("ParsePrivateKeyPEM(%s) = %T, %v; want an error containing %q", c.name, k, err, c.wantErr)
		}
	}
}

func TestNewKeyRefusesKeysThatDoNotFit(t *testing.T) {
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsa1024, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		alg    string
		signer crypto.Signer
	}{
		{ES256, p384},
		{ES256, testSigners()[RS256]},
		{ES256, testSigners()[EdDSA]},
		{ES256, (*ecdsa.PrivateKey)(nil)},
		{ES256, &ecdsa.PrivateKey{}},
		{RS256, rsa1024},
		{PS256, rsa1024},
		{RS256, testSigners()[ES256]},
		{RS256, (*rsa.PrivateKey)(nil)},
		{RS256, &rsa.PrivateKey{}},
		{EdDSA, testSigners()[ES256]},
		{EdDSA, ed25519.PrivateKey{1, 2, 3}},
		{EdDSA, nil},
		{"HS256", testSigners()[ES256]},
		{"none", testSigners()[ES256]},
	}
	for _, c := range cases {
		if _, err := NewKey(c.alg, c.signer, time.Time{}); err == nil {
			t.Errorf("NewKey(%q, %T) = nil error, want one", c.alg, c.signer)
		}
	}
}

// RFC 7638 §3.1 and RFC 8037 §A.3 give keys and their thumbprints.
func TestThumbprintRFCExamples(t *testing.T) {
	cases := []struct {
		key  jwk
		want string
	}{
		{jwk{Kty: "RSA", E: "AQAB", N: "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"}, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"},
		{jwk{Kty: "OKP", Crv: "Ed25519", X: "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}, "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"},
	}
	for _, c := range cases {
		if got := c.key.thumbprint(); got != c.want {
			t.Errorf("thumbprint(%s) = %q, want %q", c.key.Kty, got, c.want)
		}
	}
}

// The kid NewKey assigns is the thumbprint of exactly the members the JWKS publishes.
func TestNewKeyIDIsThumbprintOfPublishedJWK(t *testing.T) {
	for _, alg := range allAlgs {
		k := testKey(t, alg)
		ks, err := NewKeySet(k)
		if err != nil {
			t.Fatal(err)
		}
		var set struct{ Keys []jwk }
		if err := json.Unmarshal(ks.JWKS(), &set); err != nil || len(set.Keys) != 1 {
			t.Fatalf("JWKS(%s) = %s, %v", alg, ks.JWKS(), err)
		}
		if got := set.Keys[0].thumbprint(); got != k.ID {
			t.Errorf("thumbprint(JWKS(%s)) = %q, want kid %q", alg, got, k.ID)
		}
	}
}
