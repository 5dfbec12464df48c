package tokens

import (
	"cmp"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"
)

// Minter signs access tokens and ID tokens with the current key of a KeySet.
type Minter struct {
	issuer string
	keys   func() *KeySet
	now    func() time.Time
}

// NewMinter returns a Minter for issuer. keys is called on every mint, so a rotation takes effect
// without a new Minter; now is the clock.
func NewMinter(issuer string, keys func() *KeySet, now func() time.Time) *Minter {
	return &Minter{issuer: issuer, keys: keys, now: now}
}

// AccessToken describes an access token to mint.
type AccessToken struct {
	// Subject is sub: the user, or the client itself for client_credentials (RFC 9068 §2.2). Required.
	Subject string
	// ClientID is client_id. Required.
	ClientID string
	// Scope is the granted scope, space-separated; empty omits the claim.
	Scope string
	// GrantID is gid, the grant (refresh family) the token came from; empty omits the claim.
	// Revoking the grant revokes every access token that carries it.
	GrantID string
	// DerivedFrom are the jtis of the access tokens this one was made from (a token exchange's
	// subject token, then what that was made from), as the claim derived_from; empty omits it.
	// Revoking any of them revokes this one too.
	DerivedFrom []string
	// Audience is aud: at least one non-empty value (RFC 9068 §2.2 requires aud, and the gate refuses
	// a token without one).
	Audience []string
	// Claims are added to the registered ones; a name RegisteredClaim reports is skipped.
	Claims map[string]any
	// TTL is the token's lifetime; positive.
	TTL time.Duration
}

// accessPayload holds the registered claims of an access token in the order RFC 9068 §2.2 lists
// them. A struct rather than a map keeps encoding cheap: encoding/json sorts a map's keys and
// boxes its values on every token.
type accessPayload struct {
	Iss      string `json:"iss"`
	Sub      string `json:"sub"`
	Aud      any    `json:"aud"`
	Exp      int64  `json:"exp"`
	Iat      int64  `json:"iat"`
	Nbf      int64  `json:"nbf"`
	Jti      string `json:"jti"`
	ClientID string `json:"client_id"`
	Scope    string `json:"scope,omitempty"`
	Gid      string `json:"gid,omitempty"`
	// DerivedFrom is tokengate's own claim: no registered one says what a token was exchanged from.
	DerivedFrom []string `json:"derived_from,omitempty"`
}

// AccessToken mints an RFC 9068 JWT access token signed by the current primary key and returns it with its
// jti and expiry.
func (m *Minter) AccessToken(t AccessToken) (raw string, jti string, exp time.Time, err error) {
	if t.Subject == "" || t.ClientID == "" {
		return "", "", time.Time{}, errors.New("tokens: an access token needs a subject and a client_id")
	}
	if t.TTL <= 0 {
		return "", "", time.Time{}, fmt.Errorf("tokens: access token TTL %v is not positive", t.TTL)
	}
	aud, err := audienceClaim(t.Audience)
	if err != nil {
		return "", "", time.Time{}, err
	}
	now := m.now()
	p := accessPayload{
		Iss:         m.issuer,
		Sub:         t.Subject,
		Aud:         aud,
		Exp:         expiry(now, t.TTL),
		Iat:         now.Unix(),
		Nbf:         now.Unix(),
		Jti:         newJTI(),
		ClientID:    t.ClientID,
		Scope:       t.Scope,
		Gid:         t.GrantID,
		DerivedFrom: t.DerivedFrom,
	}
	keys := m.keys()
	e := keys.signing(keys.primary, now)
	raw, err = sign(e, e.accessHeader, p, t.Claims)
	if err != nil {
		return "", "", time.Time{}, err
	}
	return raw, p.Jti, time.Unix(p.Exp, 0), nil
}

// expiry is exp for a token issued at now that lives ttl, in whole seconds (RFC 7519 §2
// NumericDate), and at least one second after iat: a grant near its end may ask for less.
func expiry(now time.Time, ttl time.Duration) int64 {
	return max(now.Add(ttl).Unix(), now.Unix()+1)
}

// audienceClaim encodes aud as a string when there is one value and an array otherwise (RFC 7519
// §4.1.3).
func audienceClaim(aud []string) (any, error) {
	if len(aud) == 0 || slices.Contains(aud, "") {
		return nil, errors.New("tokens: an access token needs at least one audience, none empty (RFC 9068 §2.2)")
	}
	if len(aud) == 1 {
		return aud[0], nil
	}
	return aud, nil
}

// newJTI returns 128 random bits, base64url: unguessable and unique without coordination.
func newJTI() string {
	var b [16]byte
	rand.Read(b[:])
	return b64.EncodeToString(b[:])
}

// IDToken describes an OpenID Connect ID token to mint (OIDC Core §2).
type IDToken struct {
	// Subject is sub, the user. Required.
	Subject string
	// ClientID is aud and azp. Required.
	ClientID string
	// Nonce is echoed from the authentication request; empty omits it.
	Nonce string
	// AccessToken, when set, is hashed into at_hash (OIDC Core §3.1.3.6).
	AccessToken string
	// AuthTime is when the user authenticated; zero omits auth_time.
	AuthTime time.Time
	// Claims are added to the registered ones; a name RegisteredClaim reports is skipped.
	Claims map[string]any
	// TTL is the token's lifetime; positive.
	TTL time.Duration
	// Alg is the algorithm to sign with (the client's id_token_signed_response_alg, OIDC
	// Registration §2); empty means the key set's primary.
	Alg string
}

type idPayload struct {
	Iss      string `json:"iss"`
	Sub      string `json:"sub"`
	Aud      string `json:"aud"`
	Exp      int64  `json:"exp"`
	Iat      int64  `json:"iat"`
	AuthTime int64  `json:"auth_time,omitempty"`
	Nonce    string `json:"nonce,omitempty"`
	Azp      string `json:"azp"`
	AtHash   string `json:"at_hash,omitempty"`
}

// IDToken mints an ID token (typ "JWT") signed by the current key of t.Alg.
func (m *Minter) IDToken(t IDToken) (string, error) {
	if t.Subject == "" || t.ClientID == "" {
		return "", errors.New("tokens: an ID token needs a subject and a client_id")
	}
	if t.TTL <= 0 {
		return "", fmt.Errorf("tokens: ID token TTL %v is not positive", t.TTL)
	}
	now := m.now()
	keys := m.keys()
	alg := cmp.Or(t.Alg, keys.primary)
	e := keys.signing(alg, now)
	if e == nil {
		return "", fmt.Errorf("tokens: no %s key to sign an ID token with", alg)
	}
	p := idPayload{
		Iss: m.issuer,
		Sub: t.Subject,
		Aud: t.ClientID,
		Exp: expiry(now, t.TTL),
		Iat: now.Unix(),
		// OIDC Core §2: azp is the party the token was issued to.
		Azp:   t.ClientID,
		Nonce: t.Nonce,
	}
	if !t.AuthTime.IsZero() {
		p.AuthTime = t.AuthTime.Unix()
	}
	if t.AccessToken != "" {
		p.AtHash = e.leftHalfHash(t.AccessToken)
	}
	return sign(e, e.idHeader, p, t.Claims)
}

// leftHalfHash is OIDC Core §3.1.3.6's at_hash: the left-most half of the hash of the ASCII token,
// with the hash the key's alg uses, base64url-encoded.
func (e *keyEntry) leftHalfHash(token string) string {
	h := e.atHash.New()
	h.Write([]byte(token))
	sum := h.Sum(nil)
	return b64.EncodeToString(sum[:len(sum)/2])
}

// registeredClaims are the claims tokengate sets itself; extra claims never replace them.
var registeredClaims = map[string]bool{
	"iss": true, "sub": true, "aud": true, "exp": true, "iat": true, "nbf": true, "jti": true,
	"client_id": true, "scope": true, "gid": true, "derived_from": true,
	"auth_time": true, "nonce": true, "azp": true, "at_hash": true,
}

// RegisteredClaim reports whether name is a claim tokengate sets itself in access or ID tokens, so
// that a configured extra claim of that name would be ignored (configuration should refuse it).
func RegisteredClaim(name string) bool {
	return registeredClaims[name]
}

// sign encodes payload, appends the extra claims that are not registered ones (in name order, so
// equal input gives equal tokens) and signs header.payload with e.
func sign(e *keyEntry, header string, payload any, extra map[string]any) (string, error) {
	body, err := json.Marshal(payload)
	if err != nil {
		return "", fmt.Errorf("tokens: encode claims: %w", err)
	}
	for _, name := range slices.Sorted(maps.Keys(extra)) {
		if registeredClaims[name] {
			continue
		}
		k, _ := json.Marshal(name) // a string always encodes
		v, err := json.Marshal(extra[name])
		if err != nil {
			return "", fmt.Errorf("tokens: encode claim %q: %w", name, err)
		}
		// Replace the closing brace with ,"name":value}.
		body = append(append(append(append(body[:len(body)-1], ','), k...), ':'), v...)
		body = append(body, '}')
	}
	signing := header + b64.EncodeToString(body)
	sig, err := e.method.Sign(signing, e.Signer)
	if err != nil {
		return "", fmt.Errorf("tokens: sign with key %q: %w", e.ID, err)
	}
	return signing + "." + b64.EncodeToString(sig), nil
}
