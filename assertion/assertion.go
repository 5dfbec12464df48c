// Package assertion verifies the JWTs presented to the token endpoint as proof: RFC 7523 §2.1
// authorization grants (jwt-bearer, from a trusted issuer or a client's own key) and §2.2 client
// assertions (private_key_jwt and client_secret_jwt, OIDC Core §9). Keys come only from configured
// key sources, never from the token's headers (RFC 8725 §3.10); the key decides the algorithm
// (RFC 8725 §3.1); and each assertion is recorded, by its jti or else by its SHA-256, so it is
// used once (RFC 7523 §3).
package assertion

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tokengate/tokengate/store"
	"github.com/tokengate/tokengate/tokens"
)

var (
	// ErrInvalid is wrapped by every error about the assertion itself: malformed, forged, foreign,
	// expired, replayed. A grant answers invalid_grant, client authentication invalid_client.
	ErrInvalid = errors.New("assertion: invalid")
	// ErrUnavailable is wrapped when the assertion could not be checked: the replay store failed,
	// or a remote key set could not be fetched. The assertion may be good, so the answer is a 503
	// and a logged fault, never invalid_grant.
	ErrUnavailable = errors.New("assertion: unavailable")
)

const (
	// MaxLen is the longest assertion Verify considers, checked before anything is decoded. It
	// bounds the work an attacker can ask for; real assertions take well under 4 KiB.
	MaxLen = 16 << 10
	// DefaultMaxLifetime bounds how far ahead exp may be and how long ago iat may be.
	DefaultMaxLifetime = time.Hour
	// maxAhead is how far a client's clock may run ahead of ours: nbf and iat may be this far in
	// the future (FAPI 2 accepts nbf 8 s ahead and refuses more than 60 s), and exp this much past
	// the maximum lifetime.
	maxAhead = 60 * time.Second
	// maxCandidates bounds the keys tried for a token that names no kid: each try costs a
	// signature verification.
	maxCandidates = 4
	// maxNumericDate is 9999-12-31T23:59:59Z. Beyond it a NumericDate cannot be converted to a
	// time.Time exactly, and no honest assertion goes there.
	maxNumericDate = 253402300799
)

// errTooLong is made once: refusing an oversized input must not allocate (CVE-2025-30204).
var errTooLong = fmt.Errorf("%w: longer than %d bytes", ErrInvalid, MaxLen)

// Config says which assertions a Verifier accepts.
type Config struct {
	// Issuer is the iss an assertion must carry, compared byte for byte: a trust block's issuer,
	// or the client_id of the client whose assertions these are. Required.
	Issuer string
	// ClientAuth makes assertions authenticate a client (RFC 7523 §3 item 2, OIDC Core §9): sub
	// must equal iss, and jti is required (CVE-2020-15222). Default false: a jwt-bearer grant,
	// whose sub is whoever the issuer names and whose jti is optional (RFC 7523 §3 item 7).
	ClientAuth bool
	// Audiences are the aud values naming this server: its issuer identifier and its token
	// endpoint URL, both accepted (OIDC Core §9, RFC 7523 §3 item 3). An assertion must list at
	// least one, exactly. Required.
	Audiences []string
	// Keys finds the signing keys. Required.
	Keys KeySource
	// Replay records each assertion's one-time id until the assertion expires (RFC 7523 §3
	// item 7). Required.
	Replay store.OneTime
	// MaxLifetime bounds how far ahead exp and how old iat may be (RFC 7523 §3 items 4 and 6).
	// Zero means DefaultMaxLifetime.
	MaxLifetime time.Duration
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
}

// Claims is what a verified assertion says.
type Claims struct {
	Issuer   string
	Subject  string
	Audience []string
	// JTI is empty when the assertion has none (only a grant assertion).
	JTI       string
	ExpiresAt time.Time
	// IssuedAt and NotBefore are zero when the assertion omits them.
	IssuedAt  time.Time
	NotBefore time.Time
	// All is every claim as decoded from JSON (numbers are float64). Do not modify.
	All map[string]any
}

// Verifier checks assertions against one Config. Safe for concurrent use.
type Verifier struct {
	cfg       Config
	audiences map[string]bool
	parser    *jwt.Parser
}

// NewVerifier checks cfg and returns its Verifier.
func NewVerifier(cfg Config) (*Verifier, error) {
	switch {
	case cfg.Issuer == "":
		return nil, errors.New("assertion: no issuer")
	case len(cfg.Audiences) == 0:
		return nil, errors.New("assertion: no audience")
	case cfg.Keys == nil:
		return nil, errors.New("assertion: no key source")
	case cfg.Replay == nil:
		return nil, errors.New("assertion: no replay store")
	case cfg.MaxLifetime < 0:
		return nil, errors.New("assertion: a negative maximum lifetime")
	}
	if cfg.MaxLifetime == 0 {
		cfg.MaxLifetime = DefaultMaxLifetime
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	auds := make(map[string]bool, len(cfg.Audiences))
	for i, a := range cfg.Audiences {
		if a == "" {
			return nil, fmt.Errorf("assertion: audience %d is empty", i)
		}
		auds[a] = true
	}
	return &Verifier{
		cfg:       cfg,
		audiences: auds,
		parser: jwt.NewParser(
			// The time claims are checked below with their own bounds: nbf and exp take different
			// skews, which golang-jwt's single leeway cannot express.
			jwt.WithoutClaimsValidation(),
			// RFC 7515 §2 base64url has no padding and no stray bits: one assertion, one encoding.
			jwt.WithStrictDecoding(),
		),
	}, nil
}

// Verify checks raw, a JWS compact serialization, as an RFC 7523 assertion and returns its claims.
// Each error names the check that failed and wraps ErrInvalid, or ErrUnavailable for a fault in
// the key source or the replay store. The signature is verified before any claim is believed, and
// the assertion is recorded last, so a forged or otherwise refused one cannot use up a jti.
func (v *Verifier) Verify(ctx context.Context, raw string) (*Claims, error) {
	if err := checkCompact(raw); err != nil {
		return nil, err
	}
	var keyErr error
	mc := jwt.MapClaims{}
	_, err := v.parser.ParseWithClaims(raw, mc, func(t *jwt.Token) (any, error) {
		set, err := v.keysFor(ctx, t.Header)
		keyErr = err
		return set, err
	})
	if keyErr != nil {
		return nil, keyErr
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	now := v.cfg.Now()
	c, err := v.claims(mc, now)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if err := v.useOnce(ctx, c, raw); err != nil {
		return nil, err
	}
	return c, nil
}

// keysFor returns the keys a JWS with header h may verify with, from the configured source only:
// jku, x5u, jwk and x5c are never read (RFC 8725 §3.10).
func (v *Verifier) keysFor(ctx context.Context, h map[string]any) (jwt.VerificationKeySet, error) {
	var set jwt.VerificationKeySet
	// RFC 7515 §4.1.11: a crit extension the recipient does not understand makes the JWS invalid;
	// tokengate understands none.
	if _, ok := h["crit"]; ok {
		return set, fmt.Errorf("%w: a crit header", ErrInvalid)
	}
	if err := v.checkTyp(h); err != nil {
		return set, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	kid := ""
	if k, ok := h["kid"]; ok {
		s, isString := k.(string)
		if !isString || s == "" {
			return set, fmt.Errorf("%w: kid is not a non-empty string", ErrInvalid)
		}
		kid = s
	}
	keys, err := v.cfg.Keys.Keys(ctx, kid)
	if err != nil {
		return set, fmt.Errorf("%w: keys: %w", ErrUnavailable, err)
	}
	// The parser has checked that alg is a string naming an algorithm it knows. RFC 8725 §3.1: only
	// keys whose type admits that alg are tried, which refuses none, HMAC keyed with a public key
	// (CVE-2026-11800), and a public-key alg for a client that has only a secret.
	alg, _ := h["alg"].(string)
	for i := range keys {
		if keys[i].allows(alg) {
			set.Keys = append(set.Keys, keys[i].public)
		}
	}
	switch {
	case len(set.Keys) == 0 && kid != "":
		return set, fmt.Errorf("%w: no %s key with this kid", ErrInvalid, alg)
	case len(set.Keys) == 0:
		return set, fmt.Errorf("%w: no %s key", ErrInvalid, alg)
	case len(set.Keys) > maxCandidates:
		return set, fmt.Errorf("%w: %d keys fit %s; the assertion must name its kid", ErrInvalid, len(set.Keys), alg)
	}
	return set, nil
}

// checkTyp refuses a JWT that says it is something else (RFC 8725 §3.11): an access token (at+jwt),
// a logout token, or, where a grant is expected, a client assertion (draft-ietf-oauth-rfc7523bis
// types these client-authentication+jwt). Media types compare case-insensitively and may omit
// "application/" (RFC 7515 §4.1.9).
func (v *Verifier) checkTyp(h map[string]any) error {
	raw, ok := h["typ"]
	if !ok {
		return nil
	}
	s, isString := raw.(string)
	if !isString {
		return errors.New("typ is not a string")
	}
	typ := strings.ToLower(s)
	typ = strings.TrimPrefix(typ, "application/")
	if typ == "jwt" || (v.cfg.ClientAuth && typ == "client-authentication+jwt") {
		return nil
	}
	return errors.New("typ is not JWT")
}

// claims checks the claims RFC 7523 §3 requires of an authentic assertion and returns them.
func (v *Verifier) claims(mc jwt.MapClaims, now time.Time) (*Claims, error) {
	c := &Claims{All: mc}
	var err error
	// Item 1: iss identifies the issuer, exactly.
	if c.Issuer, err = stringClaim(mc, "iss", true); err != nil {
		return nil, err
	}
	if c.Issuer != v.cfg.Issuer {
		return nil, errors.New("iss is not the expected issuer")
	}
	// Item 2: sub is required; a client authenticates as itself (iss = sub = client_id).
	if c.Subject, err = stringClaim(mc, "sub", true); err != nil {
		return nil, err
	}
	if v.cfg.ClientAuth && c.Subject != c.Issuer {
		return nil, errors.New("sub is not iss, as client authentication requires")
	}
	// Item 3: aud names this server. Only exact values count (CVE-2020-26160: a list is searched,
	// not its first element compared).
	aud, err := audience(mc)
	if err != nil {
		return nil, err
	}
	if !v.acceptsAudience(aud) {
		return nil, errors.New("aud does not name this server")
	}
	c.Audience = aud
	if err := v.checkTimes(c, mc, now); err != nil {
		return nil, err
	}
	// Item 7: jti, required to authenticate a client (OIDC Core §9), optional in a grant.
	if c.JTI, err = stringClaim(mc, "jti", v.cfg.ClientAuth); err != nil {
		return nil, err
	}
	return c, nil
}

func (v *Verifier) acceptsAudience(aud []string) bool {
	for _, a := range aud {
		if v.audiences[a] {
			return true
		}
	}
	return false
}

var errAudienceType = errors.New("aud is not a string or a list of strings")

// audience reads aud: one string, or a list of strings (RFC 7519 §4.1.3).
func audience(mc jwt.MapClaims) ([]string, error) {
	raw, present := mc["aud"]
	if !present {
		return nil, errors.New("no aud")
	}
	switch a := raw.(type) {
	case string:
		return []string{a}, nil
	case []any:
		out := make([]string, 0, len(a))
		for _, e := range a {
			s, isString := e.(string)
			if !isString {
				return nil, errAudienceType
			}
			out = append(out, s)
		}
		return out, nil
	}
	return nil, errAudienceType
}

// checkTimes checks and records exp, nbf and iat (RFC 7523 §3 items 4 to 6, RFC 7519 §4.1.4-6).
func (v *Verifier) checkTimes(c *Claims, mc jwt.MapClaims, now time.Time) error {
	exp, ok, err := numericDate(mc, "exp")
	switch {
	case err != nil:
		return err
	case !ok:
		return errors.New("no exp")
	case !now.Before(exp.Add(tokens.ClockLeeway)):
		return errors.New("exp is past")
	case exp.After(now.Add(v.cfg.MaxLifetime + maxAhead)):
		return fmt.Errorf("exp is more than %v ahead", v.cfg.MaxLifetime)
	}
	c.ExpiresAt = exp
	nbf, _, err := notAhead(mc, "nbf", now)
	if err != nil {
		return err
	}
	c.NotBefore = nbf
	iat, ok, err := notAhead(mc, "iat", now)
	switch {
	case err != nil:
		return err
	case ok && iat.Before(now.Add(-v.cfg.MaxLifetime)):
		return fmt.Errorf("iat is more than %v ago", v.cfg.MaxLifetime)
	}
	c.IssuedAt = iat
	return nil
}

// notAhead reads the optional date claim name (nbf or iat), refusing one more than maxAhead after
// now: neither may lie in the future beyond the clock skew (RFC 7519 §4.1.5-6).
func notAhead(mc jwt.MapClaims, name string, now time.Time) (date time.Time, ok bool, err error) {
	date, ok, err = numericDate(mc, name)
	if err == nil && ok && date.After(now.Add(maxAhead)) {
		err = fmt.Errorf("%s is more than %v ahead", name, maxAhead)
	}
	return date, ok, err
}

// useOnce records the assertion raw, with claims c, until it can no longer be accepted (exp plus
// tokens.ClockLeeway), refusing one already recorded (RFC 7523 §3 item 7; CVE-2020-15222). Once the
// first use has expired, its one-time id is free again.
func (v *Verifier) useOnce(ctx context.Context, c *Claims, raw string) error {
	key, what := onceKey(c, raw)
	fresh, err := v.cfg.Replay.PutOnce(ctx, key, nil, c.ExpiresAt.Add(tokens.ClockLeeway))
	if err != nil {
		return fmt.Errorf("%w: replay store: %w", ErrUnavailable, err)
	}
	if !fresh {
		return fmt.Errorf("%w: %s was used before", ErrInvalid, what)
	}
	return nil
}

// onceKey is the one-time id of the assertion raw with claims c, and what it is: its jti, within
// its issuer, or for a grant assertion without one (Google's service accounts send none) the
// SHA-256 of what its signature covers. The signature itself is left out: an ECDSA signature has a
// second valid form (s and n-s), and the same assertion under it is still a replay.
func onceKey(c *Claims, raw string) (key, what string) {
	if c.JTI != "" {
		// The issuer's length delimits it, so no (iss, jti) pair can spell another's key even when
		// either contains the separator.
		return "jti:" + strconv.Itoa(len(c.Issuer)) + ":" + c.Issuer + ":" + c.JTI, "jti"
	}
	signed := raw[:strings.LastIndexByte(raw, '.')]
	sum := sha256.Sum256([]byte(signed))
	return "sha256:" + hex.EncodeToString(sum[:]), "assertion"
}

// numericDate reads the RFC 7519 §2 NumericDate claim name: ok is false when it is absent.
func numericDate(mc jwt.MapClaims, name string) (t time.Time, ok bool, err error) {
	raw, present := mc[name]
	if !present {
		return time.Time{}, false, nil
	}
	f, isNumber := raw.(float64)
	if !isNumber || f < 0 || f > maxNumericDate {
		return time.Time{}, false, fmt.Errorf("%s is not a NumericDate", name)
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), true, nil
}

// stringClaim reads claim name: a string when present, non-empty when required.
func stringClaim(mc jwt.MapClaims, name string, required bool) (string, error) {
	raw, present := mc[name]
	if !present {
		if required {
			return "", fmt.Errorf("no %s", name)
		}
		return "", nil
	}
	s, isString := raw.(string)
	if !isString || (required && s == "") {
		return "", fmt.Errorf("%s is not a non-empty string", name)
	}
	return s, nil
}

// UnverifiedIssuer returns raw's iss without verifying anything, so that the caller can pick the
// client or trust block whose Verifier then checks raw in full. Nothing else may rest on it. Its
// errors wrap ErrInvalid.
func UnverifiedIssuer(raw string) (string, error) {
	if err := checkCompact(raw); err != nil {
		return "", err
	}
	payload := raw[strings.IndexByte(raw, '.')+1 : strings.LastIndexByte(raw, '.')]
	b, err := base64.RawURLEncoding.Strict().DecodeString(payload)
	if err != nil {
		return "", fmt.Errorf("%w: payload is not base64url", ErrInvalid)
	}
	var c struct {
		Issuer string `json:"iss"`
	}
	if err := json.Unmarshal(b, &c); err != nil || c.Issuer == "" {
		return "", fmt.Errorf("%w: no iss", ErrInvalid)
	}
	return c.Issuer, nil
}

// checkCompact refuses what tokens.CheckCompact refuses, with errors that wrap ErrInvalid. An
// oversized input is refused first, with an error made once, so that it costs no allocation.
func checkCompact(raw string) error {
	if len(raw) > MaxLen {
		return errTooLong
	}
	if err := tokens.CheckCompact(raw, MaxLen); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return nil
}
