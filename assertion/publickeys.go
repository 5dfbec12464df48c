package assertion

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"strings"

	jose "github.com/go-jose/go-jose/v4"
)

// KeySource finds the keys an assertion may have been signed with. Its error is for technical
// faults only (a key set that could not be fetched); an unknown kid is no keys and no error.
type KeySource interface {
	// Keys returns the keys that may have signed a JWS whose header names kid ("" when it names
	// none). The slice is shared: callers must not modify it.
	Keys(ctx context.Context, kid string) ([]Key, error)
}

// Key is one verification key and the algorithms it may verify, fixed when it is made: the key
// decides the algorithm, never the token (RFC 8725 §3.1).
type Key struct {
	id     string
	public any
	algs   []string
}

// Bounds on keys, chosen so that a hostile key set cannot make verification slow.
const (
	// minRSABits is RFC 7518 §3.3's minimum for RS* and PS*.
	minRSABits = 2048
	// maxRSABits bounds the cost of one RSA verification.
	maxRSABits = 8192
	// maxKeysPerSet bounds a JWK Set; issuers publish a handful of keys.
	maxKeysPerSet = 100
)

// MinHMACSecret is the fewest bytes an HS256 key may have: RFC 7518 §3.2 wants a key at least as
// long as the hash.
const MinHMACSecret = 32

var rsaAlgs = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}

// NewPublicKey returns the Key for pub (an *rsa.PublicKey of 2048 to 8192 bits, an *ecdsa.PublicKey
// on P-256, P-384 or P-521, or an ed25519.PublicKey) named kid ("" for none). The key's type decides
// its algorithms: RSA the RS and PS families, each curve its one ES algorithm (RFC 7518 §3.4),
// Ed25519 EdDSA (RFC 8037 §3.1). A non-empty alg (a JWK's "alg") narrows them to that one and must
// be among them. Symmetric keys are refused: an HMAC key never stands in for a public key.
func NewPublicKey(kid string, pub crypto.PublicKey, alg string) (Key, error) {
	algs, err := publicKeyAlgs(pub)
	if err != nil {
		return Key{}, err
	}
	if alg != "" {
		if !slices.Contains(algs, alg) {
			return Key{}, fmt.Errorf("alg %q does not fit this key, which verifies %s", alg, strings.Join(algs, " "))
		}
		algs = []string{alg}
	}
	return Key{id: kid, public: pub, algs: algs}, nil
}

func publicKeyAlgs(pub crypto.PublicKey) ([]string, error) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if k.N == nil {
			return nil, errors.New("an RSA key without a modulus")
		}
		if bits := k.N.BitLen(); bits < minRSABits || bits > maxRSABits {
			return nil, fmt.Errorf("an RSA key of %d bits; %d to %d are accepted", bits, minRSABits, maxRSABits)
		}
		return rsaAlgs, nil
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return []string{"ES256"}, nil
		case elliptic.P384():
			return []string{"ES384"}, nil
		case elliptic.P521():
			return []string{"ES512"}, nil
		}
		return nil, errors.New("an EC key on a curve other than P-256, P-384 or P-521")
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			return nil, errors.New("an Ed25519 key of the wrong length")
		}
		return []string{"EdDSA"}, nil
	case []byte:
		return nil, errors.New("a symmetric key is not a public key")
	}
	return nil, fmt.Errorf("unsupported key type %T", pub)
}

// allows reports whether k may verify a JWS with alg.
func (k *Key) allows(alg string) bool {
	return slices.Contains(k.algs, alg)
}

// matchKID returns the keys a JWS naming kid may have been signed with: those with that exact kid,
// or every key when the JWS names none (the verifier then bounds how many it tries). kid is only
// ever compared, never used as a path or a query (RFC 8725 §3.10).
func matchKID(keys []Key, kid string) []Key {
	if kid == "" {
		return keys
	}
	var out []Key
	for i := range keys {
		if keys[i].id == kid {
			out = append(out, keys[i])
		}
	}
	return out
}

// StaticKeys is a key set read once from configuration: a JWK Set (jwks_file) or PEM public keys
// and certificates (key_file). It is immutable and safe for concurrent use.
type StaticKeys struct {
	keys []Key
	// anyKID: PEM keys have no kid, so a token's kid cannot select among them and is ignored.
	anyKID bool
}

// ParseJWKS reads a JWK Set (RFC 7517 §5) of public signature keys. It is strict, since a file is
// checked once when the configuration loads: every key must be a usable public key, so a symmetric
// ("oct") or private key, an encryption key or a key too weak is an error rather than skipped.
func ParseJWKS(data []byte) (*StaticKeys, error) {
	keys, skipped, err := parseJWKS(data)
	if err != nil {
		return nil, err
	}
	if len(skipped) > 0 {
		return nil, errors.Join(skipped...)
	}
	return &StaticKeys{keys: keys}, nil
}

// ParsePEM reads every PEM block of data: "PUBLIC KEY" (PKIX), "RSA PUBLIC KEY" (PKCS #1) or
// "CERTIFICATE". A certificate only carries its key here: its dates and issuer are not checked,
// since the operator vouches for the file. Any other block, a private key included, is an error.
func ParsePEM(data []byte) (*StaticKeys, error) {
	var keys []Key
	for n := 1; ; n++ {
		block, rest := pem.Decode(data)
		if block == nil {
			break
		}
		data = rest
		pub, err := parsePEMBlock(block)
		if err != nil {
			return nil, fmt.Errorf("PEM block %d: %w", n, err)
		}
		k, err := NewPublicKey("", pub, "")
		if err != nil {
			return nil, fmt.Errorf("PEM block %d: %w", n, err)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, errors.New("no PEM public key or certificate")
	}
	return &StaticKeys{keys: keys, anyKID: true}, nil
}

func parsePEMBlock(block *pem.Block) (crypto.PublicKey, error) {
	switch block.Type {
	case "PUBLIC KEY":
		return x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		return x509.ParsePKCS1PublicKey(block.Bytes)
	case "CERTIFICATE":
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, err
		}
		return cert.PublicKey, nil
	}
	return nil, fmt.Errorf("a %q block is not a public key or certificate", block.Type)
}

// Keys implements KeySource.
func (s *StaticKeys) Keys(_ context.Context, kid string) ([]Key, error) {
	if s.anyKID {
		return s.keys, nil
	}
	return matchKID(s.keys, kid), nil
}

// parseJWKS returns the usable public signature keys of a JWK Set and, for each other key, why it
// was skipped. Keys are decoded one at a time, so one key of a type go-jose does not know (a new
// kty) does not hide the rest.
func parseJWKS(data []byte) (keys []Key, skipped []error, err error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, nil, fmt.Errorf("not a JWK Set: %w", err)
	}
	if len(set.Keys) > maxKeysPerSet {
		return nil, nil, fmt.Errorf("a JWK Set of %d keys; at most %d are accepted", len(set.Keys), maxKeysPerSet)
	}
	for i, raw := range set.Keys {
		k, err := jwkKey(raw)
		if err != nil {
			skipped = append(skipped, fmt.Errorf("key %d: %w", i, err))
			continue
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, skipped, errors.Join(append([]error{errors.New("no usable public signature key")}, skipped...)...)
	}
	return keys, skipped, nil
}

func jwkKey(raw []byte) (Key, error) {
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON(raw); err != nil {
		return Key{}, err
	}
	// RFC 7517 §4.2: a key published for encryption does not verify signatures.
	if jwk.Use != "" && jwk.Use != "sig" {
		return Key{}, fmt.Errorf("use is %q, not sig", jwk.Use)
	}
	// A public key set holds public keys only: a symmetric key there would let anyone who reads
	// the set sign, and a private key means the set was published by mistake.
	if !jwk.IsPublic() {
		return Key{}, errors.New("not a public key (a symmetric or private key)")
	}
	return NewPublicKey(jwk.KeyID, jwk.Key, jwk.Algorithm)
}

// HMACSecrets are a client's plaintext secrets, the keys of client_secret_jwt (OIDC Core §9).
type HMACSecrets struct {
	keys []Key
}

// NewHMACSecrets returns the HS256 keys for a client's secrets (several while one is rotated out).
// Each must be at least 32 bytes: RFC 7518 §3.2 requires a key as long as the hash.
func NewHMACSecrets(secrets ...[]byte) (*HMACSecrets, error) {
	if len(secrets) == 0 {
		return nil, errors.New("no secret")
	}
	h := &HMACSecrets{}
	for i, s := range secrets {
		if len(s) < MinHMACSecret {
			return nil, fmt.Errorf("secret %d: %d bytes; HS256 needs at least %d", i, len(s), MinHMACSecret)
		}
		h.keys = append(h.keys, Key{public: slices.Clone(s), algs: []string{"HS256"}})
	}
	return h, nil
}

// Keys implements KeySource. A client's secrets carry no kid, so a token's kid is ignored.
func (h *HMACSecrets) Keys(context.Context, string) ([]Key, error) {
	return h.keys, nil
}

// Interface guards
var (
	_ KeySource = (*StaticKeys)(nil)
	_ KeySource = (*HMACSecrets)(nil)
)
