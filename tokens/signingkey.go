// Package tokens mints and verifies tokengate's JWTs: RFC 9068 access tokens and OpenID Connect ID
// tokens. It owns the signing key type (generation, PEM, RFC 7638 key ids) and the RFC 7517 JWKS that
// publishes them. It imports no Caddy package.
package tokens

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"time"
)

// The JWS algorithms tokengate signs with (RFC 7518 §3, RFC 8037 §3.1). ES256 is the default: it
// signs about thirty times faster than RS256, whose support RFC 9068 §2.1 nevertheless requires.
const (
	ES256 = "ES256"
	RS256 = "RS256"
	PS256 = "PS256"
	EdDSA = "EdDSA"
)

// minRSABits is the smallest RSA modulus accepted (RFC 7518 §3.3 and §3.5: 2048 bits or larger).
const minRSABits = 2048

// GenerateKey makes a new private key for alg: P-256 for ES256, RSA 2048 for RS256 and PS256,
// Ed25519 for EdDSA.
func GenerateKey(alg string) (crypto.Signer, error) {
	switch alg {
	case ES256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case RS256, PS256:
		return rsa.GenerateKey(rand.Reader, minRSABits)
	case EdDSA:
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return k, err
	}
	return nil, fmt.Errorf("tokens: unsupported signing algorithm %q (want ES256, RS256, PS256 or EdDSA)", alg)
}

// ParsePrivateKeyPEM reads the first private key in data: PKCS#8 ("PRIVATE KEY"), PKCS#1
// ("RSA PRIVATE KEY") or SEC 1 ("EC PRIVATE KEY"). The "EC PARAMETERS" block that `openssl ecparam`
// writes before the key is skipped. Encrypted keys, certificates and public keys are refused with an
// error that says what was found.
func ParsePrivateKeyPEM(data []byte) (crypto.Signer, error) {
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, errors.New("tokens: no PEM private key found")
		}
		if block.Type == "EC PARAMETERS" {
			continue
		}
		if _, encrypted := block.Headers["Proc-Type"]; encrypted || block.Type == "ENCRYPTED PRIVATE KEY" {
			return nil, errors.New("tokens: encrypted PEM keys are not supported; decrypt it first (openssl pkey)")
		}
		k, err := parsePrivateKeyBlock(block)
		if err != nil {
			return nil, fmt.Errorf("tokens: PEM block %q: %w", block.Type, err)
		}
		return k, nil
	}
}

func parsePrivateKeyBlock(block *pem.Block) (crypto.Signer, error) {
	switch block.Type {
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, err
		}
		s, ok := k.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("a %T cannot sign", k)
		}
		return s, nil
	case "RSA PRIVATE KEY":
		return x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		return x509.ParseECPrivateKey(block.Bytes)
	}
	return nil, errors.New("not a private key (want PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY)")
}

// MarshalPrivateKeyPEM encodes k as a PKCS#8 "PRIVATE KEY" PEM block, the form the store keeps.
func MarshalPrivateKeyPEM(k crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("tokens: marshal private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// Key is one signing key.
type Key struct {
	// ID is the key's kid: by default its RFC 7638 thumbprint, or a name the configuration gave it.
	ID string
	// Alg is the JWS algorithm it signs with: ES256, RS256, PS256 or EdDSA.
	Alg string
	// Signer is the private key: an *ecdsa.PrivateKey, *rsa.PrivateKey or ed25519.PrivateKey, as
	// GenerateKey and ParsePrivateKeyPEM return them (the signing code needs the concrete type).
	Signer crypto.Signer
	// SignsFrom is when the key starts signing; it is published in the JWKS before then.
	SignsFrom time.Time
	// VerifyOnly keeps the key from ever signing: it is published and verifies what it signed
	// before, while its tokens run out (a key file being handed over from).
	VerifyOnly bool
}

// NewKey checks that signer suits alg and returns the Key whose ID is the key's RFC 7638 thumbprint.
func NewKey(alg string, signer crypto.Signer, signsFrom time.Time) (Key, error) {
	jwk, err := publicJWK(alg, signer)
	if err != nil {
		return Key{}, err
	}
	return Key{ID: jwk.thumbprint(), Alg: alg, Signer: signer, SignsFrom: signsFrom}, nil
}

// b64 is the JOSE base64url encoding without padding (RFC 7515 §2).
var b64 = base64.RawURLEncoding

// jwk holds the public members of a JWK (RFC 7517 §4, RFC 7518 §6, RFC 8037 §2), already encoded.
type jwk struct {
	Kty string `json:"kty"`
	Crv string `json:"crv,omitempty"`
	X   string `json:"x,omitempty"`
	Y   string `json:"y,omitempty"`
	N   string `json:"n,omitempty"`
	E   string `json:"e,omitempty"`
}

// publicJWK checks that signer is a key alg can sign with and returns its public JWK members.
func publicJWK(alg string, signer crypto.Signer) (jwk, error) {
	switch alg {
	case ES256:
		k, ok := signer.(*ecdsa.PrivateKey)
		if !ok || k == nil || k.Curve != elliptic.P256() {
			return jwk{}, fmt.Errorf("tokens: ES256 needs a P-256 key, got %s", describeKey(signer))
		}
		p, err := k.PublicKey.Bytes()
		if err != nil {
			return jwk{}, fmt.Errorf("tokens: ES256 key: %w", err)
		}
		// p is 0x04 || X || Y, each coordinate 32 bytes (RFC 7518 §6.2.1.2: full length).
		return jwk{Kty: "EC", Crv: "P-256", X: b64.EncodeToString(p[1:33]), Y: b64.EncodeToString(p[33:])}, nil
	case RS256, PS256:
		k, ok := signer.(*rsa.PrivateKey)
		if !ok || k == nil || k.N == nil || k.N.BitLen() < minRSABits {
			return jwk{}, fmt.Errorf("tokens: %s needs an RSA key of at least %d bits, got %s", alg, minRSABits, describeKey(signer))
		}
		return jwk{Kty: "RSA", N: b64.EncodeToString(k.N.Bytes()), E: b64.EncodeToString(exponentBytes(k.E))}, nil
	case EdDSA:
		k, ok := signer.(ed25519.PrivateKey)
		if !ok || len(k) != ed25519.PrivateKeySize {
			return jwk{}, fmt.Errorf("tokens: EdDSA needs an Ed25519 key, got %s", describeKey(signer))
		}
		return jwk{Kty: "OKP", Crv: "Ed25519", X: b64.EncodeToString(k.Public().(ed25519.PublicKey))}, nil
	}
	return jwk{}, fmt.Errorf("tokens: unsupported signing algorithm %q (want ES256, RS256, PS256 or EdDSA)", alg)
}

// exponentBytes encodes an RSA public exponent as the minimal big-endian octets RFC 7518 §6.3.1.2
// asks for.
func exponentBytes(e int) []byte {
	var out []byte
	for ; e > 0; e >>= 8 {
		out = append([]byte{byte(e)}, out...)
	}
	return out
}

// describeKey names the kind of key for an error message; it must not fail on a malformed key.
func describeKey(signer crypto.Signer) string {
	switch k := signer.(type) {
	case *ecdsa.PrivateKey:
		if k != nil && k.Curve != nil {
			return "an EC " + k.Curve.Params().Name + " key"
		}
	case *rsa.PrivateKey:
		if k != nil && k.N != nil {
			return fmt.Sprintf("an RSA %d key", k.N.BitLen())
		}
	case ed25519.PrivateKey:
		return "an Ed25519 key"
	case nil:
		return "no key"
	}
	return fmt.Sprintf("a %T", signer)
}

// thumbprint is the RFC 7638 JWK thumbprint: SHA-256 over the required members in lexicographic
// order with no whitespace (§3.2), base64url-encoded. The values are base64url text, which needs no
// JSON escaping.
func (j jwk) thumbprint() string {
	var members string
	switch j.Kty {
	case "EC":
		members = `{"crv":"` + j.Crv + `","kty":"EC","x":"` + j.X + `","y":"` + j.Y + `"}`
	case "RSA":
		members = `{"e":"` + j.E + `","kty":"RSA","n":"` + j.N + `"}`
	case "OKP":
		members = `{"crv":"` + j.Crv + `","kty":"OKP","x":"` + j.X + `"}`
	}
	sum := sha256.Sum256([]byte(members))
	return b64.EncodeToString(sum[:])
}
