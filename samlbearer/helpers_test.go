package samlbearer

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"testing"
	"time"

	"github.com/beevik/etree"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/tokengate/tokengate/internal/assertiontest"
	"github.com/tokengate/tokengate/store"
)

const (
	testIssuer    = "https://idp.example.com/saml"
	testAudience  = "https://auth.example.com"
	testRecipient = "https://auth.example.com/connect/token"
	testSubject   = "alice@example.com"
)

// testNow is the verifiers' clock in every test.
var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// at formats testNow+d as SAML writes instants.
func at(d time.Duration) string {
	return testNow.Add(d).Format(time.RFC3339)
}

// assertionXML is the assertion every test starts from: bearer-confirmed for testRecipient until
// +5m, with Conditions for testAudience until +10m.
func assertionXML() string {
	return fmt.Sprintf(`<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_a1" Version="2.0" IssueInstant="%[1]s">
  <saml:Issuer>%[2]s</saml:Issuer>
  <saml:Subject>
    <saml:NameID Format="urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress">%[3]s</saml:NameID>
    <saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer">
      <saml:SubjectConfirmationData Recipient="%[4]s" NotOnOrAfter="%[5]s"/>
    </saml:SubjectConfirmation>
  </saml:Subject>
  <saml:Conditions NotBefore="%[6]s" NotOnOrAfter="%[7]s">
    <saml:AudienceRestriction><saml:Audience>%[8]s</saml:Audience></saml:AudienceRestriction>
  </saml:Conditions>
  <saml:AuthnStatement AuthnInstant="%[1]s"><saml:AuthnContext><saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:Password</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement>
  <saml:AttributeStatement>
    <saml:Attribute Name="email"><saml:AttributeValue>alice@example.com</saml:AttributeValue></saml:Attribute>
    <saml:Attribute Name="groups"><saml:AttributeValue>admins</saml:AttributeValue><saml:AttributeValue>staff</saml:AttributeValue></saml:Attribute>
  </saml:AttributeStatement>
</saml:Assertion>`, at(-time.Second), testIssuer, testSubject, testRecipient, at(5*time.Minute),
		at(-time.Minute), at(10*time.Minute), testAudience)
}

// edit changes an assertion before it is signed.
type edit func(t testing.TB, a *etree.Element)

// assertion returns the default assertion after edits.
func assertion(t testing.TB, edits ...edit) *etree.Element {
	t.Helper()
	doc := etree.NewDocument()
	if err := doc.ReadFromString(assertionXML()); err != nil {
		t.Fatal(err)
	}
	a := doc.Root()
	for _, e := range edits {
		e(t, a)
	}
	return a
}

func find(t testing.TB, a *etree.Element, path string) *etree.Element {
	t.Helper()
	el := a.FindElement(path)
	if el == nil {
		t.Fatalf("no %s in the assertion", path)
	}
	return el
}

func setText(path, text string) edit {
	return func(t testing.TB, a *etree.Element) { find(t, a, path).SetText(text) }
}

func setAttr(path, key, value string) edit {
	return func(t testing.TB, a *etree.Element) { find(t, a, path).CreateAttr(key, value) }
}

func remove(path string) edit {
	return func(t testing.TB, a *etree.Element) {
		el := find(t, a, path)
		el.Parent().RemoveChild(el)
	}
}

func removeAttr(path, key string) edit {
	return func(t testing.TB, a *etree.Element) { find(t, a, path).RemoveAttr(key) }
}

// addXML appends snippet's elements to the element at path; saml: and ds: prefixes resolve
// through the assertion's own declarations.
func addXML(path, snippet string) edit {
	return func(t testing.TB, a *etree.Element) {
		parent := find(t, a, path)
		for _, el := range fragment(t, snippet) {
			parent.AddChild(el)
		}
	}
}

func fragment(t testing.TB, snippet string) []*etree.Element {
	t.Helper()
	doc := etree.NewDocument()
	wrapped := `<w xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" xmlns:ds="http://www.w3.org/2000/09/xmldsig#">` + snippet + `</w>`
	if err := doc.ReadFromString(wrapped); err != nil {
		t.Fatalf("fragment %q: %v", snippet, err)
	}
	els := doc.Root().ChildElements()
	for _, el := range els {
		doc.Root().RemoveChild(el)
	}
	return els
}

// signer is an IdP's key and self-signed certificate.
type signer struct {
	key  *rsa.PrivateKey
	cert *x509.Certificate
}

// newSigner returns a signer whose certificate is valid from notBefore to notAfter.
func newSigner(t testing.TB, notBefore, notAfter time.Time) *signer {
	t.Helper()
	key := assertiontest.RSAKey(t)
	return &signer{key: key, cert: assertiontest.Certificate(t, key, notBefore, notAfter)}
}

func validSigner(t testing.TB) *signer {
	return newSigner(t, testNow.Add(-time.Hour), testNow.Add(24*time.Hour))
}

// sign returns an enveloped-signed copy of a, the signature placed after the Issuer as SAML core
// §5.4.2 has it, made with exclusive canonicalization unless opts say otherwise.
func (s *signer) sign(t testing.TB, a *etree.Element, opts ...func(*dsig.SigningContext)) *etree.Element {
	t.Helper()
	ctx, err := dsig.NewSigningContext(s.key, [][]byte{s.cert.Raw})
	if err != nil {
		t.Fatal(err)
	}
	ctx.Canonicalizer = dsig.MakeC14N10ExclusiveCanonicalizerWithPrefixList("")
	for _, o := range opts {
		o(ctx)
	}
	sig, err := ctx.ConstructSignature(a, true)
	if err != nil {
		t.Fatal(err)
	}
	signed := a.Copy()
	placeSignature(signed, sig)
	return signed
}

// placeSignature puts sig into a where SAML core §5.4.2 has an assertion's signature: right after
// its Issuer, or last when it has none.
func placeSignature(a, sig *etree.Element) {
	if is := a.SelectElement("saml:Issuer"); is != nil {
		a.InsertChildAt(is.Index()+1, sig)
	} else {
		a.AddChild(sig)
	}
}

// signXML returns the serialized, signed default assertion after edits.
func (s *signer) signXML(t testing.TB, edits ...edit) string {
	t.Helper()
	return serialize(t, s.sign(t, assertion(t, edits...)))
}

// idpSigned is an attack table row's assertion: the default one after edits, signed by the
// fixture's trusted IdP, encoded.
func idpSigned(edits ...edit) func(*testing.T, *fixture) string {
	return func(t *testing.T, f *fixture) string { return b64(f.idp.signXML(t, edits...)) }
}

func serialize(t testing.TB, el *etree.Element) string {
	t.Helper()
	doc := etree.NewDocument()
	doc.SetRoot(el)
	s, err := doc.WriteToString()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func b64(xml string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(xml))
}

// signApart signs the default assertion and takes its ds:Signature back out, for the wrapping
// attacks that move a genuine signature elsewhere.
func (s *signer) signApart(t testing.TB) (signed, sig *etree.Element) {
	t.Helper()
	signed = s.sign(t, assertion(t))
	sig = find(t, signed, "./ds:Signature")
	signed.RemoveChild(sig)
	return signed, sig
}

// newVerifier returns a verifier at testNow trusting testIssuer's certs, replaying into replay.
func newVerifier(t testing.TB, replay store.OneTime, certs ...*x509.Certificate) *Verifier {
	t.Helper()
	return newVerifierWith(t, replay, Trust{EntityID: testIssuer, Certificates: certs})
}

func newVerifierWith(t testing.TB, replay store.OneTime, trusts ...Trust) *Verifier {
	t.Helper()
	v, err := New(Config{
		Trusts:    trusts,
		Audience:  testAudience,
		Recipient: testRecipient,
		Replay:    replay,
		Now:       func() time.Time { return testNow },
	})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func memoryStore() *store.Memory {
	return store.NewMemory(func() time.Time { return testNow })
}

// recordingStore is a OneTime that remembers what it was asked and answers fresh and err.
type recordingStore struct {
	key   string
	exp   time.Time
	fresh bool
	err   error
}

func (r *recordingStore) PutOnce(_ context.Context, key string, _ []byte, exp time.Time) (bool, error) {
	r.key, r.exp = key, exp
	return r.fresh, r.err
}

func (r *recordingStore) Take(context.Context, string) ([]byte, error) {
	return nil, store.ErrNotFound
}
