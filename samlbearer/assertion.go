package samlbearer

import (
	"time"

	"github.com/beevik/etree"

	"github.com/tokengate/tokengate/tokens"
)

const (
	samlNS = "urn:oasis:names:tc:SAML:2.0:assertion"
	// bearerMethod is the only SubjectConfirmation method RFC 7522 §3 item 5 accepts.
	bearerMethod = "urn:oasis:names:tc:SAML:2.0:cm:bearer"
	// entityFormat is the only Format an assertion's Issuer may carry (SAML core §2.3.3).
	entityFormat = "urn:oasis:names:tc:SAML:2.0:nameid-format:entity"
)

// assertionChildren are the elements SAML core §2.3.3 allows in an Assertion once the enveloped
// signature is taken out. Anything else is refused (RFC 7522 §3 item 11); so is a Signature left in
// the verified element, as it could only be one that does not cover it.
var assertionChildren = map[string]bool{
	"Issuer": true, "Subject": true, "Conditions": true, "Advice": true, "Statement": true,
	"AuthnStatement": true, "AuthzDecisionStatement": true, "AttributeStatement": true,
}

// assertionID checks that el is a saml:Assertion and returns its ID.
func assertionID(el *etree.Element) (string, error) {
	if el.Tag != "Assertion" || el.NamespaceURI() != samlNS {
		return "", invalid("not a SAML 2.0 Assertion")
	}
	id := attr(el, "ID")
	if id == "" {
		return "", invalid("the assertion has no ID")
	}
	return id, nil
}

// issuerOf returns the entity id in el's Issuer (RFC 7522 §3 item 1).
func issuerOf(el *etree.Element) (string, error) {
	is, err := only(el, samlNS, "Issuer")
	if err != nil {
		return "", err
	}
	if f := attr(is, "Format"); f != "" && f != entityFormat {
		return "", invalid("the Issuer's Format is not entity")
	}
	// An empty one is no trusted entity id: New refuses those.
	return text(is)
}

// read returns the claims of the verified assertion el once it passes RFC 7522 §3 at now.
func (v *Verifier) read(el *etree.Element, now time.Time) (Claims, error) {
	var c Claims
	var err error
	if c.ID, err = assertionID(el); err != nil {
		return Claims{}, err
	}
	if attr(el, "Version") != "2.0" {
		return Claims{}, invalid("the assertion's Version is not 2.0")
	}
	if _, err := instant(el, "IssueInstant", true); err != nil {
		return Claims{}, err
	}
	for _, tok := range el.Child {
		if child, ok := tok.(*etree.Element); ok && (!assertionChildren[child.Tag] || child.NamespaceURI() != samlNS) {
			return Claims{}, invalid("unexpected %s in the assertion", child.Tag)
		}
	}
	if c.Issuer, err = issuerOf(el); err != nil {
		return Claims{}, err
	}
	conditionsEnd, err := v.checkConditions(el, now)
	if err != nil {
		return Claims{}, err
	}
	confirmedEnd, err := v.readSubject(el, now, &c)
	if err != nil {
		return Claims{}, err
	}
	// RFC 7522 §3 item 4: the assertion expires at the first of the two.
	c.NotOnOrAfter = confirmedEnd
	if !conditionsEnd.IsZero() && conditionsEnd.Before(confirmedEnd) {
		c.NotOnOrAfter = conditionsEnd
	}
	if c.NotOnOrAfter.After(now.Add(v.maxLifetime)) {
		return Claims{}, invalid("the assertion is valid for longer than %s", v.maxLifetime)
	}
	if c.Attributes, err = readAttributes(el); err != nil {
		return Claims{}, err
	}
	return c, nil
}

// checkConditions checks the Conditions RFC 7522 §3 items 2, 6 and 11 require, and returns their
// NotOnOrAfter, zero when absent.
func (v *Verifier) checkConditions(el *etree.Element, now time.Time) (time.Time, error) {
	cond, err := only(el, samlNS, "Conditions")
	if err != nil {
		return time.Time{}, err
	}
	end, err := v.checkWindow(cond, now, false)
	if err != nil {
		return time.Time{}, err
	}
	restrictions := 0
	for _, tok := range cond.Child {
		c, ok := tok.(*etree.Element)
		if !ok {
			continue
		}
		if c.NamespaceURI() != samlNS {
			return time.Time{}, invalid("an unknown condition")
		}
		switch c.Tag {
		case "AudienceRestriction":
			// SAML core §2.5.1.4: each restriction must name us; within one, any Audience may.
			restrictions++
			if err := v.checkAudience(c); err != nil {
				return time.Time{}, err
			}
		case "OneTimeUse", "ProxyRestriction":
			// Every assertion is used once here anyway, and none is passed on.
		default:
			return time.Time{}, invalid("an unknown condition")
		}
	}
	if restrictions == 0 {
		return time.Time{}, invalid("no AudienceRestriction") // RFC 7522 §3 item 2
	}
	return end, nil
}

func (v *Verifier) checkAudience(restriction *etree.Element) error {
	audiences, err := children(restriction, samlNS, "Audience")
	if err != nil {
		return err
	}
	for _, a := range audiences {
		aud, err := text(a)
		if err != nil {
			return err
		}
		if aud == v.audience {
			return nil
		}
	}
	return invalid("the Audience is not this authorization server")
}

// readSubject sets c's Subject and NameIDFormat, and returns when the latest bearer confirmation
// of el's Subject ends.
func (v *Verifier) readSubject(el *etree.Element, now time.Time, c *Claims) (time.Time, error) {
	subject, err := only(el, samlNS, "Subject")
	if err != nil {
		return time.Time{}, err
	}
	// RFC 7522 §3 item 3. A BaseID or an EncryptedID in its place is not supported.
	nameID, err := only(subject, samlNS, "NameID")
	if err != nil {
		return time.Time{}, err
	}
	if c.Subject, err = text(nameID); err != nil {
		return time.Time{}, err
	}
	if c.Subject == "" {
		return time.Time{}, invalid("the NameID is empty")
	}
	// Verbatim means no trimming; a control character (a CR or LF that would split a header or a
	// log line downstream) is refused instead.
	for _, r := range c.Subject {
		if r < 0x20 || r == 0x7f {
			return time.Time{}, invalid("the NameID holds a control character")
		}
	}
	c.NameIDFormat = attr(nameID, "Format")
	return v.confirm(subject, now)
}

// confirm returns when the latest bearer SubjectConfirmation of subject that passes RFC 7522 §3
// item 5 ends. Other methods (holder-of-key, sender-vouches) are passed over; when no bearer one
// passes, the last one's reason is the error.
func (v *Verifier) confirm(subject *etree.Element, now time.Time) (time.Time, error) {
	confirmations, err := children(subject, samlNS, "SubjectConfirmation")
	if err != nil {
		return time.Time{}, err
	}
	var latest time.Time
	err = invalid("no bearer SubjectConfirmation")
	for _, sc := range confirmations {
		if attr(sc, "Method") != bearerMethod {
			continue
		}
		end, reason := v.confirmBearer(sc, now)
		if reason != nil {
			err = reason
			continue
		}
		if end.After(latest) {
			latest = end
		}
	}
	if latest.IsZero() {
		return time.Time{}, err
	}
	return latest, nil
}

func (v *Verifier) confirmBearer(sc *etree.Element, now time.Time) (time.Time, error) {
	data, err := only(sc, samlNS, "SubjectConfirmationData")
	if err != nil {
		return time.Time{}, err
	}
	if attr(data, "Recipient") != v.recipient {
		return time.Time{}, invalid("the Recipient is not this token endpoint")
	}
	return v.checkWindow(data, now, true)
}

// checkWindow checks el's NotBefore and NotOnOrAfter against now, give or take tokens.ClockLeeway, and
// returns NotOnOrAfter, zero when absent and not required.
func (v *Verifier) checkWindow(el *etree.Element, now time.Time, endRequired bool) (time.Time, error) {
	start, err := instant(el, "NotBefore", false)
	if err != nil {
		return time.Time{}, err
	}
	end, err := instant(el, "NotOnOrAfter", endRequired)
	if err != nil {
		return time.Time{}, err
	}
	if !start.IsZero() && now.Add(tokens.ClockLeeway).Before(start) {
		return time.Time{}, invalid("%s is not valid yet", el.Tag)
	}
	if !end.IsZero() && !now.Before(end.Add(tokens.ClockLeeway)) {
		return time.Time{}, invalid("%s has expired", el.Tag)
	}
	return end, nil
}

// instant parses el's attribute name, an xs:dateTime that SAML core §1.3.3 wants in UTC.
func instant(el *etree.Element, name string, required bool) (time.Time, error) {
	value := attr(el, name)
	if value == "" {
		if required {
			return time.Time{}, invalid("%s has no %s", el.Tag, name)
		}
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, value)
	if err != nil {
		return time.Time{}, invalid("%s's %s is not a dateTime", el.Tag, name)
	}
	return t, nil
}

// readAttributes collects the AttributeStatements' attributes (RFC 7522 §3 item 8). A value that
// is not plain text (a nested NameID, say) is refused rather than dropped or flattened.
func readAttributes(el *etree.Element) (map[string][]string, error) {
	statements, err := children(el, samlNS, "AttributeStatement")
	if err != nil {
		return nil, err
	}
	var attrs map[string][]string
	for _, st := range statements {
		list, err := children(st, samlNS, "Attribute")
		if err != nil {
			return nil, err
		}
		for _, a := range list {
			name := attr(a, "Name")
			if name == "" {
				return nil, invalid("an Attribute has no Name")
			}
			values, err := children(a, samlNS, "AttributeValue")
			if err != nil {
				return nil, err
			}
			if attrs == nil {
				attrs = make(map[string][]string)
			}
			for _, val := range values {
				s, err := text(val)
				if err != nil {
					return nil, err
				}
				attrs[name] = append(attrs[name], s)
			}
		}
	}
	return attrs, nil
}
