package samlbearer

import (
	"encoding/base64"
	"strings"

	"github.com/beevik/etree"
)

// maxDepth bounds element nesting. An assertion's deepest legitimate path (Subject /
// SubjectConfirmation / SubjectConfirmationData / KeyInfo / X509Data / X509Certificate, or an
// Advice holding an assertion) is about ten deep.
const maxDepth = 32

// decode undoes the parameter's encoding. RFC 7522 §2.1: base64url (RFC 4648 §5) with padding
// bits set to zero, not line wrapped; pad characters SHOULD NOT be included, which leaves a
// correctly padded value valid, so one is accepted, and a misplaced or miscounted "=" is not.
// Go's decoders skip CR and LF, so the alphabet is checked here first.
func decode(param string, maxSize int) ([]byte, error) {
	body := strings.TrimRight(param, "=")
	if base64.RawURLEncoding.DecodedLen(len(body)) > maxSize {
		return nil, invalid("the assertion is larger than %d bytes", maxSize)
	}
	enc := base64.RawURLEncoding
	if len(body) < len(param) {
		enc = base64.URLEncoding
	}
	for _, c := range []byte(body) {
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return nil, invalid("the assertion is not base64url, or is line wrapped")
		}
	}
	raw, err := enc.Strict().DecodeString(param)
	if err != nil {
		return nil, invalid("the assertion is not base64url")
	}
	return raw, nil
}

// parse reads raw as one XML element and returns it with every element named Signature in it.
// Besides that element the document may hold only an XML declaration first, whitespace and
// comments: RFC 7522 §2.1 allows a single assertion, and a DOCTYPE has no role in SAML. etree
// (through encoding/xml) neither fetches nor expands a DTD, but other parsers do, and a DTD's
// default attributes would make the signed bytes mean something else to them.
func parse(raw []byte) (*etree.Element, []*etree.Element, error) {
	doc := etree.NewDocument()
	doc.ReadSettings.MaxDepth = maxDepth
	if err := doc.ReadFromBytes(raw); err != nil {
		return nil, nil, invalid("the assertion is not well-formed XML")
	}
	var root *etree.Element
	for i, tok := range doc.Child {
		switch tok := tok.(type) {
		case *etree.Element:
			if root != nil {
				return nil, nil, invalid("more than one assertion")
			}
			root = tok
		case *etree.CharData:
			if !tok.IsWhitespace() {
				return nil, nil, invalid("text outside the assertion")
			}
		case *etree.ProcInst:
			if i != 0 || tok.Target != "xml" {
				return nil, nil, invalid("a processing instruction")
			}
		case *etree.Directive:
			return nil, nil, invalid("a DOCTYPE or other directive")
		}
	}
	if root == nil {
		return nil, nil, invalid("no assertion")
	}
	var signatures []*etree.Element
	if err := scan(root, &signatures); err != nil {
		return nil, nil, err
	}
	return root, signatures, nil
}

// scan refuses, anywhere under el, directives and processing instructions, and two attributes of
// one local name on an element: etree's SelectAttr, goxmldsig's and encoding/xml's readers match
// attributes by local name and would each pick a different one of ID and x:ID. It collects the
// elements named Signature, whatever their namespace, into signatures.
func scan(el *etree.Element, signatures *[]*etree.Element) error {
	if len(el.Attr) > 1 {
		seen := make(map[string]bool, len(el.Attr))
		for _, a := range el.Attr {
			if a.Space == "xmlns" || a.Space == "" && a.Key == "xmlns" {
				continue
			}
			if seen[a.Key] {
				return invalid("an attribute appears twice on %s", el.Tag)
			}
			seen[a.Key] = true
		}
	}
	for _, tok := range el.Child {
		switch tok := tok.(type) {
		case *etree.Element:
			if tok.Tag == "Signature" {
				*signatures = append(*signatures, tok)
			}
			if err := scan(tok, signatures); err != nil {
				return err
			}
		case *etree.Directive:
			return invalid("a DOCTYPE or other directive")
		case *etree.ProcInst:
			return invalid("a processing instruction")
		}
	}
	return nil
}

// children returns el's child elements named local. One of that name in another namespace is
// refused rather than passed over, so no reader can take it for the real one.
func children(el *etree.Element, ns, local string) ([]*etree.Element, error) {
	var found []*etree.Element
	for _, tok := range el.Child {
		c, ok := tok.(*etree.Element)
		if !ok || c.Tag != local {
			continue
		}
		if c.NamespaceURI() != ns {
			return nil, invalid("%s is in a foreign namespace", local)
		}
		found = append(found, c)
	}
	return found, nil
}

// only returns el's single child element named local.
func only(el *etree.Element, ns, local string) (*etree.Element, error) {
	found, err := children(el, ns, local)
	if err != nil {
		return nil, err
	}
	if len(found) != 1 {
		return nil, invalid("%s holds %d %s, want one", el.Tag, len(found), local)
	}
	return found[0], nil
}

// attr returns el's unprefixed attribute key, "" when absent. scan made local names unique per
// element; a prefixed attribute of that local name is not the SAML attribute and counts as absent.
func attr(el *etree.Element, key string) string {
	if a := el.SelectAttr(key); a != nil && a.Space == "" {
		return a.Value
	}
	return ""
}

// text returns el's whole character content. Markup inside is refused, not skipped: a comment
// that splits a NameID (CVE-2018-0489), or an element, would leave readers that stop at the first
// piece with a shorter name than the one signed.
func text(el *etree.Element) (string, error) {
	var b strings.Builder
	for _, tok := range el.Child {
		cd, ok := tok.(*etree.CharData)
		if !ok {
			return "", invalid("%s holds markup, not just text", el.Tag)
		}
		b.WriteString(cd.Data)
	}
	return b.String(), nil
}
