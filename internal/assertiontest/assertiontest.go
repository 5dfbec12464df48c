// Package assertiontest makes what tests present as assertions: JWTs with chosen headers and claims,
// and signed SAML 2.0 bearer assertions. It is for tests only; the unit tests of assertion and
// grants and the end-to-end tests share it so that they attack the same shapes.
package assertiontest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"maps"
	"math/big"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/golang-jwt/jwt/v5"
	dsig "github.com/russellhaering/goxmldsig"
)

// With returns a copy of c with the claims kv (name, value, ...) set, a nil value deleting one.
func With(c jwt.MapClaims, kv ...any) jwt.MapClaims {
	out := maps.Clone(c)
	if out == nil {
		out = jwt.MapClaims{}
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
		} else {
			out[kv[i].(string)] = kv[i+1]
		}
	}
	return out
}

// SignJWT makes a JWS of claims with method and key; header entries are added, or removed when nil.
func SignJWT(t testing.TB, method jwt.SigningMethod, key any, header map[string]any, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	for k, v := range header {
		if v == nil {
			delete(tok.Header, k)
		} else {
			tok.Header[k] = v
		}
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("signing a JWT: %v", err)
	}
	return s
}

// ECKey generates a P-256 key.
func ECKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// RSAKey generates a 2048-bit RSA key.
func RSAKey(t testing.TB) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// Certificate is a self-signed certificate for key, valid from notBefore to notAfter: what an
// identity provider publishes for its SAML signatures.
func Certificate(t testing.TB, key crypto.Signer, notBefore, notAfter time.Time) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "idp"},
		NotBefore: notBefore, NotAfter: notAfter, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// PublicKeyPEM is pub as a PEM PUBLIC KEY: what an algorithm-confusion attacker keys HMAC with.
func PublicKeyPEM(t testing.TB, pub any) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// SAML is a bearer assertion as RFC 7522 §3 wants it: Issuer, a NameID confirmed for Recipient,
// and Conditions for Audience, valid from a minute before Now until TTL after it.
type SAML struct {
	ID, Issuer, NameID, Recipient, Audience string
	Now                                     time.Time
	TTL                                     time.Duration
}

// XML is the assertion, unsigned.
func (a SAML) XML() string {
	at := func(d time.Duration) string { return a.Now.Add(d).UTC().Format(time.RFC3339) }
	return fmt.Sprintf(`<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="%s" Version="2.0" IssueInstant="%s">
  <saml:Issuer>%s</saml:Issuer>
  <saml:Subject>
    <saml:NameID>%s</saml:NameID>
    <saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer">
      <saml:SubjectConfirmationData Recipient="%s" NotOnOrAfter="%s"/>
    </saml:SubjectConfirmation>
  </saml:Subject>
  <saml:Conditions NotBefore="%s" NotOnOrAfter="%s">
    <saml:AudienceRestriction><saml:Audience>%s</saml:Audience></saml:AudienceRestriction>
  </saml:Conditions>
</saml:Assertion>`, a.ID, at(0), a.Issuer, a.NameID, a.Recipient, at(a.TTL), at(-time.Minute), at(a.TTL), a.Audience)
}

// SignSAML signs the assertion xml enveloped with key (its certificate cert), the signature right
// after the Issuer as SAML core §5.4.2 places it, and returns the signed XML.
func SignSAML(t testing.TB, xml string, key crypto.Signer, cert *x509.Certificate) string {
	t.Helper()
	doc := etree.NewDocument()
	if err := doc.ReadFromString(xml); err != nil {
		t.Fatal(err)
	}
	ctx, err := dsig.NewSigningContext(key, [][]byte{cert.Raw})
	if err != nil {
		t.Fatal(err)
	}
	ctx.Canonicalizer = dsig.MakeC14N10ExclusiveCanonicalizerWithPrefixList("")
	root := doc.Root()
	sig, err := ctx.ConstructSignature(root, true)
	if err != nil {
		t.Fatal(err)
	}
	root.InsertChildAt(root.SelectElement("saml:Issuer").Index()+1, sig)
	out, err := doc.WriteToString()
	if err != nil {
		t.Fatal(err)
	}
	return out
}
