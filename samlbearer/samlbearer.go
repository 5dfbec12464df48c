// Package samlbearer verifies the assertions of the SAML 2.0 bearer grant
// (urn:ietf:params:oauth:grant-type:saml2-bearer, RFC 7522): the parameter's encoding (§2.1), the
// issuer's XML signature over the assertion itself, and the processing rules of §3. It imports no
// Caddy package; the token endpoint answers invalid_grant for ErrInvalid and 503 for ErrStore.
//
// Signatures are checked by goxmldsig, and every claim is read from the element goxmldsig returns
// as verified (the signed bytes in canonical form, parsed anew), never from the tree received: that
// is the defence against signature wrapping (Keycloak CVE-2024-8698) and comment tricks
// (CVE-2018-0489). The assertion is read with etree, which keeps names as written; encoding/xml's
// Unmarshal, whose namespaces do not round-trip (dex CVE-2020-26290, goxmldsig CVE-2020-15216,
// crewjam/saml CVE-2020-27846, gosaml2 CVE-2020-29509), never reads it.
package samlbearer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tokengate/tokengate/store"
	"github.com/tokengate/tokengate/tokens"
)

var (
	// ErrInvalid is wrapped by every error for an assertion that is malformed, forged, foreign,
	// expired or replayed: RFC 7522 §3.1 calls all of these invalid_grant.
	ErrInvalid = errors.New("samlbearer: invalid assertion")
	// ErrStore is wrapped, beside the store's own error, when the replay store failed: a
	// technical fault (503), never the client's mistake.
	ErrStore = errors.New("samlbearer: replay store failed")
)

const (
	// DefaultMaxSize bounds a decoded assertion. A signed assertion with a certificate and a
	// few attributes is 4-8 KiB; the bound caps the memory and CPU an attacker can ask for.
	DefaultMaxSize = 64 << 10
	// DefaultMaxLifetime bounds how long from now an assertion may stay usable.
	DefaultMaxLifetime = time.Hour
)

// Config is what a Verifier checks assertions against.
type Config struct {
	// Trusts are the issuers whose assertions are accepted, one per entity id. Required.
	Trusts []Trust
	// Audience is this authorization server's identifier (its issuer URL), which an
	// AudienceRestriction must name exactly (RFC 7522 §3 item 2). Required.
	Audience string
	// Recipient is the token endpoint's URL, which a bearer SubjectConfirmationData must name
	// exactly (RFC 7522 §3 item 5). Required.
	Recipient string
	// Replay keeps the IDs of accepted assertions until they expire (RFC 7522 §3 item 6). Required.
	Replay store.OneTime
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// MaxSize bounds the decoded assertion in bytes; zero means DefaultMaxSize.
	MaxSize int
	// MaxLifetime refuses an assertion still usable further than this from now, which RFC 7522
	// §3 item 6 allows ("unreasonably far in the future"); it also bounds how long the replay
	// store keeps an ID. Zero means DefaultMaxLifetime.
	MaxLifetime time.Duration
}

// Claims is what a verified assertion says.
type Claims struct {
	// Issuer is the assertion's Issuer: the EntityID of the Trust whose certificate verified it.
	Issuer string
	// Subject is the Subject's NameID, verbatim: the token's sub.
	Subject string
	// NameIDFormat is the NameID's Format attribute; empty when it has none.
	NameIDFormat string
	// ID is the assertion's ID, used once.
	ID string
	// NotOnOrAfter is when the assertion stops being usable: the earlier of the Conditions'
	// NotOnOrAfter and the latest confirming SubjectConfirmationData's.
	NotOnOrAfter time.Time
	// Attributes holds every AttributeStatement's attributes by Name, values in document order;
	// nil when there are none.
	Attributes map[string][]string
}

// Verifier checks SAML 2.0 bearer assertions. It is safe for concurrent use.
type Verifier struct {
	trusts      map[string]*Trust
	audience    string
	recipient   string
	replay      store.OneTime
	now         func() time.Time
	maxSize     int
	maxLifetime time.Duration
}

// New checks c and returns its Verifier.
func New(c Config) (*Verifier, error) {
	v := &Verifier{
		trusts:      make(map[string]*Trust, len(c.Trusts)),
		audience:    c.Audience,
		recipient:   c.Recipient,
		replay:      c.Replay,
		now:         c.Now,
		maxSize:     c.MaxSize,
		maxLifetime: c.MaxLifetime,
	}
	switch {
	case len(c.Trusts) == 0:
		return nil, errors.New("samlbearer: no trusted issuer")
	case c.Audience == "":
		return nil, errors.New("samlbearer: no audience")
	case c.Recipient == "":
		return nil, errors.New("samlbearer: no recipient")
	case c.Replay == nil:
		return nil, errors.New("samlbearer: no replay store")
	case c.MaxSize < 0 || c.MaxLifetime < 0:
		return nil, errors.New("samlbearer: negative size or lifetime")
	}
	for i := range c.Trusts {
		t := &c.Trusts[i]
		switch {
		case t.EntityID == "":
			return nil, fmt.Errorf("samlbearer: trust %d: no entity id", i)
		case len(t.Certificates) == 0:
			return nil, fmt.Errorf("samlbearer: trust %q: no certificate", t.EntityID)
		case v.trusts[t.EntityID] != nil:
			return nil, fmt.Errorf("samlbearer: trust %q: entity id is not unique", t.EntityID)
		}
		v.trusts[t.EntityID] = t
	}
	if v.now == nil {
		v.now = time.Now
	}
	if v.maxSize == 0 {
		v.maxSize = DefaultMaxSize
	}
	if v.maxLifetime == 0 {
		v.maxLifetime = DefaultMaxLifetime
	}
	return v, nil
}

// Verify checks the grant's assertion parameter and returns what the assertion says. Every error
// wraps ErrInvalid, except a replay store failure, which wraps ErrStore. A missing parameter is the
// caller's invalid_request (RFC 7522 §2.1); an empty one reaching Verify is invalid.
func (v *Verifier) Verify(ctx context.Context, param string) (Claims, error) {
	raw, err := decode(param, v.maxSize)
	if err != nil {
		return Claims{}, err
	}
	root, signatures, err := parse(raw)
	if err != nil {
		return Claims{}, err
	}
	// Before any cryptography, from the tree as received: which issuer's certificates to use,
	// and whether the signature is shaped to cover this assertion and nothing else.
	id, err := assertionID(root)
	if err != nil {
		return Claims{}, err
	}
	issuer, err := issuerOf(root)
	if err != nil {
		return Claims{}, err
	}
	trust := v.trusts[issuer]
	if trust == nil {
		return Claims{}, invalid("the issuer is not trusted") // RFC 7522 §3 item 1
	}
	if err := checkSignatureShape(root, signatures, id); err != nil {
		return Claims{}, err
	}
	now := v.now()
	verified, err := trust.verify(root, now)
	if err != nil {
		return Claims{}, err
	}
	// From here on only the verified element is read.
	claims, err := v.read(verified, now)
	if err != nil {
		return Claims{}, err
	}
	if claims.Issuer != trust.EntityID {
		return Claims{}, invalid("the signed issuer is not the one whose key verified it")
	}
	// RFC 7522 §3 item 6: each ID once, remembered for as long as the assertion could be accepted.
	fresh, err := v.replay.PutOnce(ctx, "saml:"+claims.Issuer+":"+claims.ID, nil, claims.NotOnOrAfter.Add(tokens.ClockLeeway))
	if err != nil {
		return Claims{}, fmt.Errorf("%w: %w", ErrStore, err)
	}
	if !fresh {
		return Claims{}, invalid("the assertion ID was used already")
	}
	return claims, nil
}

// maxReason bounds the reason an error gives.
const maxReason = 200

// invalid returns an error wrapping ErrInvalid. Callers may pass the reason on as
// error_description, and parts of it come from the assertion (an element's name, goxmldsig's
// words on an algorithm URI), so it is bounded and cut to RFC 6749 §5.2's characters: a quote,
// a backslash, a control or non-ASCII byte becomes "?".
func invalid(format string, args ...any) error {
	reason := []byte(fmt.Sprintf(format, args...))
	if len(reason) > maxReason {
		reason = reason[:maxReason]
	}
	for i, c := range reason {
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			reason[i] = '?'
		}
	}
	return fmt.Errorf("%w: %s", ErrInvalid, reason)
}
