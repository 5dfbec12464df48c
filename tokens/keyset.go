package tokens

import (
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// KeySet is the keys tokengate publishes and signs with: for each algorithm it signs with, the
// current key, the next (published before it signs, because clients cache the JWKS) and the retired
// ones whose tokens have not all expired. One algorithm is the primary: its keys sign access tokens,
// and ID tokens unless another algorithm is asked for. It is immutable and safe for concurrent use;
// a rotation builds a new KeySet.
type KeySet struct {
	// primary is the algorithm of the first key given to NewKeySet.
	primary string
	// keys is ordered by SignsFrom, earliest first.
	keys []*keyEntry
	byID map[string]*keyEntry
	jwks []byte
	algs []string
}

// keyEntry is a Key with everything signing and verifying need that does not depend on the request,
// computed once: parsing a key and choosing its method on every signature would add to each
// token's cost.
type keyEntry struct {
	Key
	method jwt.SigningMethod
	public crypto.PublicKey
	// accessHeader and idHeader are the encoded JWS headers of access and ID tokens followed by
	// the "." that separates them from the payload (RFC 7515 §7.1).
	accessHeader string
	idHeader     string
	// atHash is the hash OIDC Core §3.1.3.6 uses for at_hash with this key's alg.
	atHash crypto.Hash
	// thumbprint is the public key's RFC 7638 thumbprint: what tells two keys apart when a
	// configuration gives a new key the old one's kid.
	thumbprint string
}

// NewKeySet checks every key (alg fits the key, a non-empty kid unique in the set, at least one
// that may sign) and precomputes the JWKS and the JWS headers. The first key that may sign gives the
// set's primary algorithm.
func NewKeySet(keys ...Key) (*KeySet, error) {
	if len(keys) == 0 {
		return nil, errors.New("tokens: a key set needs at least one key")
	}
	i := slices.IndexFunc(keys, func(k Key) bool { return !k.VerifyOnly })
	if i < 0 {
		return nil, errors.New("tokens: a key set needs a key that signs")
	}
	s := &KeySet{primary: keys[i].Alg, byID: make(map[string]*keyEntry, len(keys))}
	published := make([]publishedJWK, 0, len(keys))
	for _, k := range keys {
		if k.ID == "" {
			return nil, errors.New("tokens: a key has no kid")
		}
		if _, dup := s.byID[k.ID]; dup {
			return nil, fmt.Errorf("tokens: kid %q is used by two keys", k.ID)
		}
		pub, err := publicJWK(k.Alg, k.Signer)
		if err != nil {
			return nil, fmt.Errorf("key %q: %w", k.ID, err)
		}
		e, err := newKeyEntry(k)
		if err != nil {
			return nil, fmt.Errorf("key %q: %w", k.ID, err)
		}
		e.thumbprint = pub.thumbprint()
		s.keys = append(s.keys, e)
		s.byID[k.ID] = e
		if !slices.Contains(s.algs, k.Alg) {
			s.algs = append(s.algs, k.Alg)
		}
		published = append(published, publishedJWK{Kid: k.ID, Alg: k.Alg, Use: "sig", jwk: pub})
	}
	slices.SortStableFunc(s.keys, func(a, b *keyEntry) int { return a.SignsFrom.Compare(b.SignsFrom) })
	slices.Sort(s.algs)
	jwks, err := json.Marshal(struct {
		Keys []publishedJWK `json:"keys"`
	}{published})
	if err != nil {
		return nil, fmt.Errorf("tokens: encode JWKS: %w", err)
	}
	s.jwks = jwks
	return s, nil
}

// publishedJWK is one member of the JWKS: public parts only (RFC 7517 §4, §5).
type publishedJWK struct {
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
	jwk
}

func newKeyEntry(k Key) (*keyEntry, error) {
	e := &keyEntry{Key: k, public: k.Signer.Public(), atHash: crypto.SHA256}
	switch k.Alg {
	case ES256:
		e.method = jwt.SigningMethodES256
	case RS256:
		e.method = jwt.SigningMethodRS256
	case PS256:
		e.method = jwt.SigningMethodPS256
	case EdDSA:
		e.method = jwt.SigningMethodEdDSA
		// OIDC Core 1.0 errata set 2, §3.1.3.6: Ed25519 hashes with SHA-512.
		e.atHash = crypto.SHA512
	}
	var err error
	if e.accessHeader, err = encodeHeader(k, "at+jwt"); err != nil {
		return nil, err
	}
	if e.idHeader, err = encodeHeader(k, "JWT"); err != nil {
		return nil, err
	}
	return e, nil
}

// encodeHeader encodes the JWS protected header and appends the "." that follows it.
func encodeHeader(k Key, typ string) (string, error) {
	h, err := json.Marshal(struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
		Typ string `json:"typ"`
	}{k.Alg, k.ID, typ})
	if err != nil {
		return "", fmt.Errorf("tokens: encode header: %w", err)
	}
	return b64.EncodeToString(h) + ".", nil
}

// Signing returns the primary key that signs at now (see signing).
func (s *KeySet) Signing(now time.Time) Key {
	return s.signing(s.primary, now).Key
}

// Primary is the algorithm of the keys that sign access tokens.
func (s *KeySet) Primary() string {
	return s.primary
}

// signing returns the key of alg that signs at now: of its keys that may sign (not VerifyOnly), the
// one with the latest SignsFrom not after now, or the earliest when none has started yet (a fresh
// install whose first key was dated ahead); nil when the set has no such key.
func (s *KeySet) signing(alg string, now time.Time) *keyEntry {
	var cur *keyEntry
	for _, e := range s.keys {
		if e.Alg != alg || e.VerifyOnly {
			continue
		}
		if cur != nil && e.SignsFrom.After(now) {
			break
		}
		cur = e
	}
	return cur
}

// Lookup returns the key named kid.
func (s *KeySet) Lookup(kid string) (Key, bool) {
	e, ok := s.byID[kid]
	if !ok {
		return Key{}, false
	}
	return e.Key, true
}

// JWKS returns the RFC 7517 JWK Set document {"keys":[...]}: for each key its kid, kty, alg,
// use "sig" and public members only. It is encoded once; each call returns a fresh copy.
func (s *KeySet) JWKS() []byte {
	return slices.Clone(s.jwks)
}

// Algs returns the distinct algorithms of the set's keys, sorted (for discovery's
// *_signing_alg_values_supported).
func (s *KeySet) Algs() []string {
	return slices.Clone(s.algs)
}

// Census counts the published keys at now: those that sign (one per algorithm), the next ones
// (published before they sign), and the retired ones (kept until the tokens they signed expire).
func (s *KeySet) Census(now time.Time) (current, next, retired int) {
	for _, e := range s.keys {
		switch {
		case e == s.signing(e.Alg, now):
			current++
		case e.SignsFrom.After(now):
			next++
		default:
			retired++
		}
	}
	return current, next, retired
}
