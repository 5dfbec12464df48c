package samlbearer

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/beevik/etree"
	dsig "github.com/russellhaering/goxmldsig"
)

// Trust is an issuer of assertions: a `saml_trust` block.
type Trust struct {
	// EntityID is the issuer's SAML entity id, which an assertion's Issuer must equal exactly.
	EntityID string
	// Certificates hold the keys its signatures may be made with (several during a rollover).
	// Only these verify its assertions; a certificate is used only within its validity period.
	Certificates []*x509.Certificate
}

// LoadCertificates reads a PEM file of one or more certificates (a certificate_file).
func LoadCertificates(path string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("samlbearer: %w", err)
	}
	certs, err := ParseCertificates(data)
	if err != nil {
		return nil, fmt.Errorf("%w in %s", err, path)
	}
	return certs, nil
}

// ParseCertificates reads PEM data made only of CERTIFICATE blocks, at least one. Anything else (a
// private key, stray text) is refused: it means the wrong file was named.
func ParseCertificates(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for rest := data; ; {
		block, next := pem.Decode(rest)
		if block == nil {
			if len(certs) == 0 || len(bytes.TrimSpace(rest)) != 0 {
				return nil, fmt.Errorf("samlbearer: want only PEM CERTIFICATE blocks")
			}
			return certs, nil
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("samlbearer: a PEM %s block, want CERTIFICATE", block.Type)
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("samlbearer: certificate %d: %w", len(certs)+1, err)
		}
		certs = append(certs, cert)
		rest = next
	}
}

// verify checks root's enveloped signature with t's certificates and returns the element
// goxmldsig verified, or every certificate's reason for refusing it. Each certificate gets its own
// context: with several roots goxmldsig insists on a KeyInfo naming one, and IdPs often send none.
// goxmldsig checks the certificate's validity period against now, and the signature against the
// whole of root, whatever the reference says.
func (t *Trust) verify(root *etree.Element, now time.Time) (*etree.Element, error) {
	reasons := make([]string, 0, len(t.Certificates))
	for _, cert := range t.Certificates {
		vc := &dsig.ValidationContext{
			CertificateStore: &dsig.MemoryX509CertificateStore{Roots: []*x509.Certificate{cert}},
			IdAttribute:      dsig.DefaultIdAttr,
			Clock:            dsig.NewFakeClockAt(now),
		}
		verified, err := vc.Validate(root)
		if err == nil {
			return verified, nil
		}
		reasons = append(reasons, err.Error())
	}
	return nil, invalid("the signature does not verify: %s", strings.Join(reasons, "; "))
}

// weakAlgorithms are the SHA-1 signature and digest methods, which goxmldsig still accepts.
// SHA-1 collisions are practical (SHAttered); no current IdP needs it.
var weakAlgorithms = map[string]bool{
	dsig.RSASHA1SignatureMethod:                   true,
	dsig.ECDSASHA1SignatureMethod:                 true,
	"http://www.w3.org/2000/09/xmldsig#sha1":      true,
	"http://www.w3.org/2000/09/xmldsig#dsa-sha1":  true,
	"http://www.w3.org/2000/09/xmldsig#hmac-sha1": true,
}

// checkSignatureShape holds the signature to SAML core §5.4 before any cryptography: one
// ds:Signature in the whole assertion, a child of it, whose SignedInfo holds one Reference, to the
// assertion's own ID (§5.4.2). goxmldsig alone would also take URI="" and the first of several
// references; here what is signed must say that it covers this assertion and nothing else.
func checkSignatureShape(root *etree.Element, signatures []*etree.Element, id string) error {
	switch {
	case len(signatures) == 0:
		return invalid("the assertion is not signed") // RFC 7522 §3 item 9
	case len(signatures) > 1:
		return invalid("the assertion holds %d signatures, want one", len(signatures))
	}
	sig := signatures[0]
	if sig.Parent() != root || sig.NamespaceURI() != dsig.Namespace {
		return invalid("the signature is not the assertion's own")
	}
	signedInfo, err := only(sig, dsig.Namespace, dsig.SignedInfoTag)
	if err != nil {
		return err
	}
	ref, err := only(signedInfo, dsig.Namespace, dsig.ReferenceTag)
	if err != nil {
		return err
	}
	if attr(ref, dsig.URIAttr) != "#"+id {
		return invalid("the signature does not reference the assertion's ID")
	}
	if usesWeakAlgorithm(signedInfo) {
		return invalid("the signature uses SHA-1")
	}
	return nil
}

func usesWeakAlgorithm(el *etree.Element) bool {
	if weakAlgorithms[attr(el, dsig.AlgorithmAttr)] {
		return true
	}
	for _, tok := range el.Child {
		if c, ok := tok.(*etree.Element); ok && usesWeakAlgorithm(c) {
			return true
		}
	}
	return false
}
