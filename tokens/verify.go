package tokens

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// ErrInvalidToken is wrapped by every error VerifyAccessToken returns: the token is malformed, forged,
// foreign, expired or of the wrong type. RFC 6750 §3.1 calls all of these invalid_token.
var ErrInvalidToken = errors.New("tokens: invalid token")

// MaxTokenLen is the longest access token VerifyAccessToken considers. It bounds the work an
// attacker can ask for (CVE-2025-30204); tokengate's access tokens are well under 2 KiB even with
// many claims.
const MaxTokenLen = 8 << 10

// ClockLeeway is the clock skew tokengate allows on every time it checks in what others issued:
// an access token's exp and nbf, a JWT assertion's exp, a SAML assertion's NotBefore and
// NotOnOrAfter. RFC 7519 §4.1.4 allows "some small leeway"; a few seconds absorb the skew between
// synchronized clocks without stretching a token's life noticeably.
const ClockLeeway = 5 * time.Second

// Claims is what a verified access token says.
type Claims struct {
	Subject  string
	ClientID string
	// Scope is space-separated; empty when the token carries none.
	Scope string
	JTI   string
	// GrantID is gid, the grant the token came from; empty when it has none.
	GrantID string
	// DerivedFrom are the jtis of the access tokens it was made from (derived_from); nil when
	// none.
	DerivedFrom []string
	Issuer      string
	Audience    []string
	IssuedAt    time.Time
	ExpiresAt   time.Time
	// NotBefore is zero when the token has no nbf.
	NotBefore time.Time
	// All is every claim as decoded from JSON (numbers are float64). Shared: do not modify.
	All map[string]any

	// kid and keyThumbprint name the key that verified the token, for Verifier.Trusts.
	kid, keyThumbprint string
}

// Verifier checks access tokens that this tokengate issued.
type Verifier struct {
	issuer string
	keys   func() *KeySet
	parser *jwt.Parser
}

// NewVerifier returns a Verifier that accepts tokens from issuer signed by a key of keys() (called
// on every verification, so a rotation takes effect at once); now is the clock.
func NewVerifier(issuer string, keys func() *KeySet, now func() time.Time) *Verifier {
	return &Verifier{
		issuer: issuer,
		keys:   keys,
		parser: jwt.NewParser(
			// RFC 9068 §4: exp is required; golang-jwt only checks it when present unless told.
			jwt.WithExpirationRequired(),
			jwt.WithLeeway(ClockLeeway),
			jwt.WithTimeFunc(now),
			// RFC 7515 §2 base64url has no padding and no stray bits: one token, one encoding.
			jwt.WithStrictDecoding(),
		),
	}
}

// VerifyAccessToken checks raw as an RFC 9068 access token (§4) and returns its claims. Every error
// wraps ErrInvalidToken. It never panics, and refuses oversized or malformed input before decoding it.
func (v *Verifier) VerifyAccessToken(raw string) (*Claims, error) {
	if err := CheckCompact(raw, MaxTokenLen); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	if !headerIsObject(raw) {
		return nil, errHeaderNotObject
	}
	keys := v.keys()
	mc := jwt.MapClaims{}
	var key *keyEntry
	_, err := v.parser.ParseWithClaims(raw, mc, func(t *jwt.Token) (any, error) {
		// RFC 9068 §4 / RFC 8725 §3.11: only an access token passes, not an ID token or another
		// JWT signed by the same key.
		var err error
		if key, err = keys.verificationKey(t.Header, "at+jwt", "application/at+jwt"); err != nil {
			return nil, err
		}
		return key.public, nil
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	c, err := v.claims(mc)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	c.kid, c.keyThumbprint = key.ID, key.thumbprint
	return c, nil
}

// Trusts reports whether c, verified earlier, still comes from this verifier's issuer and from a
// key of its current set: the same kid and the same public key. A cache of verified tokens asks it
// on every hit, so that a key withdrawn or an issuer changed by a reload refuses the tokens
// verified before as promptly as the ones it has not seen. It costs a map lookup.
func (v *Verifier) Trusts(c *Claims) bool {
	key, ok := v.keys().byID[c.kid]
	return ok && key.thumbprint == c.keyThumbprint && c.Issuer == v.issuer
}

// CheckCompact refuses, without decoding anything, what cannot be one JWS compact serialization
// (RFC 7515 §7.1): longer than maxLen, not three non-empty segments, or a character outside
// base64url. Whitespace, a second token or a JWE (five segments) are all refused here. Every JWT
// tokengate reads passes it first, so an oversized or malformed input costs no decoding
// (CVE-2025-30204).
func CheckCompact(raw string, maxLen int) error {
	if len(raw) > maxLen {
		return fmt.Errorf("longer than %d bytes", maxLen)
	}
	dots, segLen := 0, 0
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch {
		case c == '.':
			if segLen == 0 || dots == 2 {
				return errors.New("not three non-empty segments")
			}
			dots++
			segLen = 0
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '_':
			segLen++
		default:
			return errors.New("a character outside base64url")
		}
	}
	if dots != 2 || segLen == 0 {
		return errors.New("not three non-empty segments")
	}
	return nil
}

// errHeaderNotObject is made once: garbage that looks like a JWS is what a flood of bad tokens
// sends, and its refusal should cost no formatting.
var errHeaderNotObject = fmt.Errorf("%w: the header is not a JSON object", ErrInvalidToken)

// strictB64 decodes base64url as the parser does (RFC 7515 §2: no padding, no stray bits).
var strictB64 = b64.Strict()

// headerIsObject reports whether the first segment of raw, which CheckCompact passed, could be a
// JOSE header: a JSON object (RFC 7515 §4), so its first byte after JSON whitespace is '{'. It
// decodes no more than it must, three bytes at a time, and allocates nothing. What it refuses the
// parser would refuse too, at the cost of building its errors; what it passes the parser checks
// in full.
func headerIsObject(raw string) bool {
	seg, _, _ := strings.Cut(raw, ".")
	var quad [4]byte
	var out [3]byte
	for len(seg) > 0 {
		n := copy(quad[:], seg)
		seg = seg[n:]
		m, err := strictB64.Decode(out[:], quad[:n])
		if err != nil {
			return false
		}
		for _, c := range out[:m] {
			switch c {
			case ' ', '\t', '\n', '\r': // RFC 8259 §2: insignificant whitespace
				continue
			}
			return c == '{'
		}
	}
	return false
}

// VerifyIDTokenHint checks raw as an ID token signed by a key of this set for issuer, and returns
// the client it was issued to: azp, which tokengate sets beside a single aud (OIDC Core §2). The
// header is checked as for an access token, but for typ JWT; the claims other than iss, aud and azp
// are not: RP-Initiated Logout §2 accepts an expired id_token_hint, since the session it names may
// well have outlived it. Every error wraps ErrInvalidToken.
func (s *KeySet) VerifyIDTokenHint(raw, issuer string) (clientID string, err error) {
	if err := CheckCompact(raw, MaxTokenLen); err != nil {
		return "", fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	parser := jwt.NewParser(jwt.WithoutClaimsValidation(), jwt.WithStrictDecoding())
	mc := jwt.MapClaims{}
	_, err = parser.ParseWithClaims(raw, mc, func(t *jwt.Token) (any, error) {
		// RFC 8725 §3.11: an access token (at+jwt) is not an ID token.
		key, err := s.verificationKey(t.Header, "JWT")
		if err != nil {
			return nil, err
		}
		return key.public, nil
	})
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	if iss, _ := mc.GetIssuer(); issuer == "" || iss != issuer {
		return "", fmt.Errorf("%w: iss does not match", ErrInvalidToken)
	}
	azp, _ := mc["azp"].(string)
	aud, _ := mc.GetAudience()
	if azp == "" || !slices.Contains(aud, azp) {
		return "", fmt.Errorf("%w: names no client", ErrInvalidToken)
	}
	return azp, nil
}

// verificationKey returns the key a token with header h must verify with, found by kid in
// this set only: jku, x5u and jwk headers are never used to find a key (RFC 8725 §3.10). The
// header's typ must be one of typs, so that a token of one kind does not pass for another (RFC 8725
// §3.11); media types compare case-insensitively (RFC 2045 §5.1).
func (s *KeySet) verificationKey(h map[string]any, typs ...string) (*keyEntry, error) {
	kid, _ := h["kid"].(string)
	e, ok := s.byID[kid]
	if !ok {
		return nil, errors.New("no kid, or an unknown one")
	}
	// RFC 8725 §3.1: the key decides the algorithm. This refuses none, HS256 keyed with the public
	// key, and any algorithm of another key type.
	if alg, _ := h["alg"].(string); alg != e.Alg {
		return nil, fmt.Errorf("alg does not match key %q (%s)", e.ID, e.Alg)
	}
	// RFC 7515 §4.1.11: a crit extension the recipient does not understand makes the JWS invalid;
	// tokengate understands none.
	if _, ok := h["crit"]; ok {
		return nil, errors.New("unsupported crit header")
	}
	typ, _ := h["typ"].(string)
	if !slices.ContainsFunc(typs, func(want string) bool { return strings.EqualFold(typ, want) }) {
		return nil, fmt.Errorf("typ is not %s", typs[0])
	}
	return e, nil
}

// claims checks the registered claims RFC 9068 §2.2 requires (exp and nbf were checked by the
// parser) and returns them.
func (v *Verifier) claims(mc jwt.MapClaims) (*Claims, error) {
	c := &Claims{All: mc}
	var err error
	// RFC 9068 §4: iss must match exactly; a trailing-slash variant is another issuer.
	if c.Issuer, err = mc.GetIssuer(); err != nil || v.issuer == "" || c.Issuer != v.issuer {
		return nil, errors.New("iss does not match")
	}
	// RFC 9068 §4: aud is required. An empty list or an empty value names no one (CVE-2020-26160).
	aud, err := mc.GetAudience()
	if err != nil || len(aud) == 0 {
		return nil, errors.New("no aud")
	}
	for _, a := range aud {
		if a == "" {
			return nil, errors.New("an empty aud")
		}
	}
	c.Audience = aud
	exp, err := mc.GetExpirationTime()
	if err != nil || exp == nil {
		return nil, errors.New("no exp")
	}
	c.ExpiresAt = exp.Time
	iat, err := mc.GetIssuedAt()
	if err != nil || iat == nil {
		return nil, errors.New("no iat")
	}
	c.IssuedAt = iat.Time
	if nbf, err := mc.GetNotBefore(); err != nil {
		return nil, err
	} else if nbf != nil {
		c.NotBefore = nbf.Time
	}
	for _, f := range []struct {
		name     string
		dst      *string
		required bool
	}{
		{"sub", &c.Subject, true},
		{"client_id", &c.ClientID, true},
		{"jti", &c.JTI, true},
		{"scope", &c.Scope, false},
		{"gid", &c.GrantID, false},
	} {
		if err := stringClaim(mc, f.name, f.dst, f.required); err != nil {
			return nil, err
		}
	}
	if c.DerivedFrom, err = stringsClaim(mc, "derived_from"); err != nil {
		return nil, err
	}
	return c, nil
}

// stringsClaim reads claim name, when present, as an array of non-empty strings.
func stringsClaim(mc jwt.MapClaims, name string) ([]string, error) {
	v, ok := mc[name]
	if !ok {
		return nil, nil
	}
	list, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("%s is not an array", name)
	}
	out := make([]string, len(list))
	for i, item := range list {
		if out[i], ok = item.(string); !ok || out[i] == "" {
			return nil, fmt.Errorf("%s holds something other than a non-empty string", name)
		}
	}
	return out, nil
}

// stringClaim reads claim name into dst: a string when present, non-empty when required.
func stringClaim(mc jwt.MapClaims, name string, dst *string, required bool) error {
	v, ok := mc[name]
	if !ok {
		if required {
			return fmt.Errorf("no %s", name)
		}
		return nil
	}
	s, ok := v.(string)
	if !ok || (required && s == "") {
		return fmt.Errorf("%s is not a non-empty string", name)
	}
	*dst = s
	return nil
}
