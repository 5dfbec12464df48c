package samlbearer

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/tokengate/tokengate/tokens"
)

const (
	nameIDPath = "./saml:Subject/saml:NameID"
	scPath     = "./saml:Subject/saml:SubjectConfirmation"
	scdPath    = scPath + "/saml:SubjectConfirmationData"
	condPath   = "./saml:Conditions"
	otherTrust = "https://other.example.com/saml"
)

// fixture is what the attack table's rows build their parameter from.
type fixture struct {
	idp      *signer // trusted for testIssuer
	expired  *signer // trusted for testIssuer, its certificate expired before testNow
	other    *signer // trusted for otherTrust only
	attacker *signer // trusted for nothing
	// farURL is a server that fails the test when anything fetches from it.
	farURL string
}

// wrap breaks s into lines of n characters, as MIME base64 does.
func wrap(s, eol string, n int) string {
	var b strings.Builder
	for len(s) > n {
		b.WriteString(s[:n] + eol)
		s = s[n:]
	}
	b.WriteString(s)
	return b.String()
}

// TestVerifyRefuses attacks Verify: every row must be refused with ErrInvalid for the reason
// named, which pins the defence that catches it (RFC 7522 §2.1 and §3).
func TestVerifyRefuses(t *testing.T) {
	far := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("the verifier fetched %s", r.URL)
	}))
	defer far.Close()
	f := &fixture{
		idp:      validSigner(t),
		expired:  newSigner(t, testNow.Add(-48*time.Hour), testNow.Add(-time.Hour)),
		other:    validSigner(t),
		attacker: validSigner(t),
		farURL:   far.URL,
	}
	tests := []struct {
		name  string
		param func(t *testing.T, f *fixture) string
		want  string
	}{
		// RFC 7522 §2.1: base64url, one assertion, not line wrapped.
		{"standard base64", func(t *testing.T, f *fixture) string {
			std := base64.StdEncoding.EncodeToString([]byte(f.idp.signXML(t)))
			if !strings.ContainsAny(std, "+/") {
				t.Fatal("the encoding holds no + or /")
			}
			return std
		}, "not base64url"},
		{"wrapped at 76 with LF", func(t *testing.T, f *fixture) string {
			return wrap(b64(f.idp.signXML(t)), "\n", 76)
		}, "line wrapped"},
		{"wrapped at 64 with CRLF", func(t *testing.T, f *fixture) string {
			return wrap(b64(f.idp.signXML(t)), "\r\n", 64)
		}, "line wrapped"},
		{"trailing newline", func(t *testing.T, f *fixture) string { return b64(f.idp.signXML(t)) + "\n" }, "line wrapped"},
		{"a space inside", func(t *testing.T, f *fixture) string {
			p := b64(f.idp.signXML(t))
			return p[:40] + " " + p[40:]
		}, "line wrapped"},
		{"a pad character inside", func(t *testing.T, f *fixture) string {
			p := b64(f.idp.signXML(t))
			return p[:40] + "=" + p[40:]
		}, "not base64url"},
		{"one pad character too many", func(t *testing.T, f *fixture) string {
			return base64.URLEncoding.EncodeToString([]byte(f.idp.signXML(t))) + "="
		}, "not base64url"},
		{"non-zero padding bits", func(*testing.T, *fixture) string { return "QR" }, "not base64url"},
		{"two assertions in one document", func(t *testing.T, f *fixture) string {
			return b64(f.idp.signXML(t) + f.idp.signXML(t, setAttr(".", "ID", "_a2")))
		}, "more than one assertion"},
		{"two encodings concatenated", func(t *testing.T, f *fixture) string {
			first := f.idp.signXML(t)
			for len(first)%3 != 0 { // so that the first encoding ends on a quantum
				first += "\n"
			}
			return b64(first) + b64(f.idp.signXML(t, setAttr(".", "ID", "_a2")))
		}, "more than one assertion"},
		{"two encodings separated by a space", func(t *testing.T, f *fixture) string {
			return b64(f.idp.signXML(t)) + " " + b64(f.idp.signXML(t, setAttr(".", "ID", "_a2")))
		}, "line wrapped"},
		{"larger than 64 KiB", func(t *testing.T, f *fixture) string {
			big := `<saml:Attribute Name="big"><saml:AttributeValue>` + strings.Repeat("x", 64<<10) + `</saml:AttributeValue></saml:Attribute>`
			return b64(f.idp.signXML(t, addXML("./saml:AttributeStatement", big)))
		}, "larger than 65536 bytes"},
		{"empty", func(*testing.T, *fixture) string { return "" }, "no assertion"},
		{"text, not XML", func(*testing.T, *fixture) string { return b64("alice@example.com") }, "text outside the assertion"},
		{"unclosed element", func(*testing.T, *fixture) string { return b64("<saml:Assertion>") }, "not well-formed"},
		{"nested deeper than the limit", func(t *testing.T, f *fixture) string {
			deep := strings.Repeat("<saml:Advice>", 40) + strings.Repeat("</saml:Advice>", 40)
			return b64(f.idp.signXML(t, addXML(".", deep)))
		}, "not well-formed"},

		// RFC 7522 §3 item 9: signed by the issuer, over the assertion itself.
		{"unsigned", func(t *testing.T, _ *fixture) string { return b64(serialize(t, assertion(t))) }, "not signed"},
		{"NameID changed after signing", func(t *testing.T, f *fixture) string {
			return b64(strings.Replace(f.idp.signXML(t), ">"+testSubject+"</saml:NameID>", ">admin@example.com</saml:NameID>", 1))
		}, "does not verify"},
		{"signed by an untrusted key", func(t *testing.T, f *fixture) string { return b64(f.attacker.signXML(t)) }, "does not verify"},
		{"untrusted key showing the trusted certificate", func(t *testing.T, f *fixture) string {
			signed := f.attacker.sign(t, assertion(t))
			find(t, signed, "./ds:Signature/ds:KeyInfo/ds:X509Data/ds:X509Certificate").SetText(base64.StdEncoding.EncodeToString(f.idp.cert.Raw))
			return b64(serialize(t, signed))
		}, "does not verify"},
		{"signed by another trusted issuer's key", func(t *testing.T, f *fixture) string { return b64(f.other.signXML(t)) }, "does not verify"},
		{"certificate expired", func(t *testing.T, f *fixture) string { return b64(f.expired.signXML(t)) }, "Cert is not valid at this time"},
		{"unknown signature method, quoted", func(t *testing.T, f *fixture) string {
			return b64(strings.Replace(f.idp.signXML(t), dsig.RSASHA256SignatureMethod, `urn:x&quot;\é`, 1))
		}, "Unknown signature method: urn:x???"},
		{"SHA-1", func(t *testing.T, f *fixture) string {
			return b64(serialize(t, f.idp.sign(t, assertion(t), func(c *dsig.SigningContext) { c.Hash = crypto.SHA1 })))
		}, "SHA-1"},
		{"reference URI empty", func(t *testing.T, f *fixture) string {
			return b64(serialize(t, f.idp.sign(t, assertion(t), func(c *dsig.SigningContext) { c.IdAttribute = "NoSuchAttribute" })))
		}, "does not reference the assertion's ID"},
		{"reference to another ID", func(t *testing.T, f *fixture) string {
			a := assertion(t, setAttr(".", "Ref", "_other"))
			return b64(serialize(t, f.idp.sign(t, a, func(c *dsig.SigningContext) { c.IdAttribute = "Ref" })))
		}, "does not reference the assertion's ID"},
		{"no ID", idpSigned(removeAttr(".", "ID")), "no ID"},
		{"prefixed twin of the ID", idpSigned(setAttr(".", "xmlns:x", "urn:x"), setAttr(".", "x:ID", "_evil")),
			"attribute appears twice"},
		{"signed assertion in the Advice of a forged one", func(t *testing.T, f *fixture) string {
			signed := f.idp.sign(t, assertion(t))
			forged := assertion(t, setAttr(".", "ID", "_evil"), setText(nameIDPath, "admin@example.com"), addXML(".", "<saml:Advice/>"))
			find(t, forged, "./saml:Advice").AddChild(signed)
			return b64(serialize(t, forged))
		}, "not the assertion's own"},
		{"forged assertion with the signed one's ID and signature, original in its Advice", func(t *testing.T, f *fixture) string {
			signed, sig := f.idp.signApart(t)
			forged := assertion(t, setText(nameIDPath, "admin@example.com"), addXML(".", "<saml:Advice/>"))
			placeSignature(forged, sig)
			find(t, forged, "./saml:Advice").AddChild(signed)
			return b64(serialize(t, forged))
		}, "does not verify"},
		{"original inside the signature's Object of a forged one (XSW8)", func(t *testing.T, f *fixture) string {
			signed, sig := f.idp.signApart(t)
			sig.CreateElement("ds:Object").AddChild(signed)
			forged := assertion(t, setText(nameIDPath, "admin@example.com"))
			placeSignature(forged, sig)
			return b64(serialize(t, forged))
		}, "does not verify"},
		{"another signed assertion inside the signature's Object", func(t *testing.T, f *fixture) string {
			signed := f.idp.sign(t, assertion(t))
			other := f.idp.sign(t, assertion(t, setAttr(".", "ID", "_a2"), setText(nameIDPath, "admin@example.com")))
			find(t, signed, "./ds:Signature").CreateElement("ds:Object").AddChild(other)
			return b64(serialize(t, signed))
		}, "holds 2 signatures"},
		{"forged assertion before the signed one", func(t *testing.T, f *fixture) string {
			forged := serialize(t, assertion(t, setText(nameIDPath, "admin@example.com")))
			return b64(forged + f.idp.signXML(t))
		}, "more than one assertion"},
		{"forged assertion after the signed one", func(t *testing.T, f *fixture) string {
			forged := serialize(t, assertion(t, setText(nameIDPath, "admin@example.com")))
			return b64(f.idp.signXML(t) + forged)
		}, "more than one assertion"},
		{"signed assertion inside a Response", func(t *testing.T, f *fixture) string {
			return b64(`<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="_r">` + f.idp.signXML(t) + `</samlp:Response>`)
		}, "not a SAML 2.0 Assertion"},
		{"Assertion in another namespace", func(t *testing.T, f *fixture) string {
			return b64(strings.Replace(f.idp.signXML(t), `xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion"`, `xmlns:saml="urn:oasis:names:tc:SAML:1.0:assertion"`, 1))
		}, "not a SAML 2.0 Assertion"},
		{"signature in another namespace", func(t *testing.T, f *fixture) string {
			return b64(strings.Replace(f.idp.signXML(t), `xmlns:ds="http://www.w3.org/2000/09/xmldsig#"`, `xmlns:ds="urn:evil"`, 1))
		}, "not the assertion's own"},
		{"a second Issuer in another namespace", idpSigned(addXML(".", `<evil:Issuer xmlns:evil="urn:evil">`+testIssuer+`</evil:Issuer>`)),
			"Issuer is in a foreign namespace"},
		{"comment in the NameID, signed with comments", func(t *testing.T, f *fixture) string {
			a := assertion(t, func(t testing.TB, a *etree.Element) {
				n := find(t, a, nameIDPath)
				n.SetText(testSubject)
				n.CreateComment("")
				n.CreateText(".evil.test")
			})
			return b64(serialize(t, f.idp.sign(t, a, func(c *dsig.SigningContext) {
				c.Canonicalizer = dsig.MakeC14N10ExclusiveWithCommentsCanonicalizerWithPrefixList("")
			})))
		}, "NameID holds markup"},
		{"element in the NameID", func(t *testing.T, f *fixture) string {
			return b64(f.idp.signXML(t, func(t testing.TB, a *etree.Element) {
				n := find(t, a, nameIDPath)
				n.CreateElement("saml:X")
				n.CreateText(".evil.test")
			}))
		}, "NameID holds markup"},
		{"comment in the Issuer after signing", func(t *testing.T, f *fixture) string {
			return b64(strings.Replace(f.idp.signXML(t), testIssuer+"<", testIssuer+"<!---->.evil<", 1))
		}, "Issuer holds markup"},

		// RFC 7522 §3 items 1 and 2: Issuer, and this authorization server as Audience.
		{"no Issuer", idpSigned(remove("./saml:Issuer")), "holds 0 Issuer"},
		{"Issuer not trusted", func(t *testing.T, f *fixture) string {
			return b64(f.attacker.signXML(t, setText("./saml:Issuer", "https://evil.example.com")))
		}, "not trusted"},
		{"Issuer with a trailing slash", idpSigned(setText("./saml:Issuer", testIssuer+"/")), "not trusted"},
		{"Issuer with a person's Format", idpSigned(setAttr("./saml:Issuer", "Format", "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress")),
			"Format is not entity"},
		{"foreign Audience", idpSigned(setText(condPath+"/saml:AudienceRestriction/saml:Audience", "https://sp.example.com")),
			"Audience is not"},
		{"Audience with a trailing slash", idpSigned(setText(condPath+"/saml:AudienceRestriction/saml:Audience", testAudience+"/")),
			"Audience is not"},
		{"a second AudienceRestriction without us", idpSigned(addXML(condPath,
			`<saml:AudienceRestriction><saml:Audience>https://sp.example.com</saml:Audience></saml:AudienceRestriction>`)),
			"Audience is not"},
		{"no AudienceRestriction", idpSigned(remove(condPath + "/saml:AudienceRestriction")), "no AudienceRestriction"},
		{"no Conditions", idpSigned(remove(condPath)), "holds 0 Conditions"},

		// RFC 7522 §3 item 5: a bearer confirmation for this token endpoint, in time.
		{"Recipient another endpoint", idpSigned(setAttr(scdPath, "Recipient", "https://sp.example.com/acs")),
			"Recipient is not this token endpoint"},
		{"Recipient with a trailing slash", idpSigned(setAttr(scdPath, "Recipient", testRecipient+"/")),
			"Recipient is not this token endpoint"},
		{"no Recipient", idpSigned(removeAttr(scdPath, "Recipient")), "Recipient is not this token endpoint"},
		{"Recipient only under a prefix", idpSigned(removeAttr(scdPath, "Recipient"), setAttr(scdPath, "xmlns:x", "urn:x"),
			setAttr(scdPath, "x:Recipient", testRecipient)),
			"Recipient is not this token endpoint"},
		{"SubjectConfirmationData expired", idpSigned(setAttr(scdPath, "NotOnOrAfter", at(-time.Minute))),
			"SubjectConfirmationData has expired"},
		{"SubjectConfirmationData expired by the leeway", idpSigned(setAttr(scdPath, "NotOnOrAfter", at(-tokens.ClockLeeway))),
			"SubjectConfirmationData has expired"},
		{"SubjectConfirmationData without NotOnOrAfter", idpSigned(removeAttr(scdPath, "NotOnOrAfter")),
			"SubjectConfirmationData has no NotOnOrAfter"},
		{"SubjectConfirmationData not valid yet", idpSigned(setAttr(scdPath, "NotBefore", at(time.Minute))),
			"SubjectConfirmationData is not valid yet"},
		{"holder-of-key", idpSigned(setAttr(scPath, "Method", "urn:oasis:names:tc:SAML:2.0:cm:holder-of-key")),
			"no bearer SubjectConfirmation"},
		{"no SubjectConfirmation", idpSigned(remove(scPath)), "no bearer SubjectConfirmation"},
		{"no SubjectConfirmationData", idpSigned(remove(scdPath)), "holds 0 SubjectConfirmationData"},

		// RFC 7522 §3 items 6 and 11: Conditions in time and understood (replay: TestVerifyReplay).
		{"Conditions expired", idpSigned(setAttr(condPath, "NotOnOrAfter", at(-time.Minute))), "Conditions has expired"},
		{"Conditions not valid yet", idpSigned(setAttr(condPath, "NotBefore", at(time.Minute))), "Conditions is not valid yet"},
		{"Conditions instant not a dateTime", idpSigned(setAttr(condPath, "NotOnOrAfter", "tomorrow")), "not a dateTime"},
		{"unknown condition", idpSigned(addXML(condPath, `<saml:Condition/>`)), "unknown condition"},
		{"condition in another namespace", idpSigned(addXML(condPath, `<x:OneTimeUse xmlns:x="urn:x"/>`)), "unknown condition"},
		{"usable for longer than MaxLifetime", idpSigned(setAttr(scdPath, "NotOnOrAfter", at(2*time.Hour)),
			setAttr(condPath, "NotOnOrAfter", at(3*time.Hour))),
			"longer than 1h0m0s"},

		// No DOCTYPE, entity or processing instruction, and nothing fetched: external entities and
		// entity expansion never reach the parser.
		{"DOCTYPE declaring an external entity", func(t *testing.T, f *fixture) string {
			return b64(`<!DOCTYPE saml:Assertion [<!ENTITY xxe SYSTEM "` + f.farURL + `/xxe">]>` + f.idp.signXML(t))
		}, "DOCTYPE"},
		{"external entity used in the NameID", func(t *testing.T, f *fixture) string {
			signed := strings.Replace(f.idp.signXML(t), ">"+testSubject+"<", ">&xxe;<", 1)
			return b64(`<!DOCTYPE saml:Assertion [<!ENTITY xxe SYSTEM "` + f.farURL + `/xxe">]>` + signed)
		}, "not well-formed"},
		{"external DTD", func(t *testing.T, f *fixture) string {
			return b64(`<!DOCTYPE saml:Assertion SYSTEM "` + f.farURL + `/dtd">` + f.idp.signXML(t))
		}, "DOCTYPE"},
		{"parameter entity", func(t *testing.T, f *fixture) string {
			return b64(`<!DOCTYPE saml:Assertion [<!ENTITY % p SYSTEM "` + f.farURL + `/p"> %p;]>` + f.idp.signXML(t))
		}, "DOCTYPE"},
		{"billion laughs", func(t *testing.T, f *fixture) string {
			dtd := `<!DOCTYPE saml:Assertion [<!ENTITY a "aaaaaaaaaa">` +
				`<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>`
			return b64(dtd + strings.Replace(f.idp.signXML(t), ">"+testSubject+"<", ">&c;<", 1))
		}, "not well-formed"},
		{"DOCTYPE inside the assertion", func(t *testing.T, f *fixture) string {
			signed := f.idp.signXML(t)
			i := strings.Index(signed, "<saml:Issuer>")
			return b64(signed[:i] + `<!DOCTYPE x SYSTEM "` + f.farURL + `/dtd">` + signed[i:])
		}, "DOCTYPE"},
		{"stylesheet processing instruction", func(t *testing.T, f *fixture) string {
			return b64(`<?xml-stylesheet href="` + f.farURL + `/xsl"?>` + f.idp.signXML(t))
		}, "processing instruction"},
		{"processing instruction inside the assertion", func(t *testing.T, f *fixture) string {
			return b64(strings.Replace(f.idp.signXML(t), "<saml:Issuer>", `<?pi data?><saml:Issuer>`, 1))
		}, "processing instruction"},

		// SAML core §2.3.3, which RFC 7522 §3 item 11 requires in all other respects.
		{"Version 1.1", idpSigned(setAttr(".", "Version", "1.1")), "Version is not 2.0"},
		{"no IssueInstant", idpSigned(removeAttr(".", "IssueInstant")), "no IssueInstant"},
		{"unknown element with a non-ASCII name", idpSigned(addXML(".", `<saml:Évidence/>`)), "unexpected ??vidence"},
		{"unknown element in the assertion", idpSigned(addXML(".", `<saml:EncryptedAssertion/>`)),
			"unexpected EncryptedAssertion"},
		{"EncryptedID instead of NameID", idpSigned(remove(nameIDPath), addXML("./saml:Subject", `<saml:EncryptedID/>`)),
			"holds 0 NameID"},
		{"a second NameID", idpSigned(addXML("./saml:Subject", `<saml:NameID>admin@example.com</saml:NameID>`)),
			"holds 2 NameID"},
		{"empty NameID", idpSigned(setText(nameIDPath, "")), "NameID is empty"},
		{"line feed in the NameID", idpSigned(setText(nameIDPath, testSubject+"\nX-Admin: 1")), "control character"},
		{"AttributeValue holding an element", idpSigned(addXML("./saml:AttributeStatement/saml:Attribute",
			`<saml:AttributeValue><saml:NameID>x</saml:NameID></saml:AttributeValue>`)),
			"AttributeValue holds markup"},
		{"Attribute without a Name", idpSigned(removeAttr("./saml:AttributeStatement/saml:Attribute", "Name")), "no Name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newVerifierWith(t, memoryStore(),
				Trust{EntityID: testIssuer, Certificates: []*x509.Certificate{f.idp.cert, f.expired.cert}},
				Trust{EntityID: otherTrust, Certificates: []*x509.Certificate{f.other.cert}})
			claims, err := v.Verify(context.Background(), tt.param(t, f))
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Verify(%s) = %+v, %v; want an error containing %q", tt.name, claims, err, tt.want)
			}
			// RFC 6749 §5.2: the reason may become error_description.
			if err != nil && strings.IndexFunc(err.Error(), func(r rune) bool { return r < 0x20 || r > 0x7e || r == '"' || r == '\\' }) >= 0 {
				t.Errorf("Verify(%s) = %q, want only RFC 6749 §5.2 characters", tt.name, err)
			}
		})
	}
}

// TestVerifyAccepts checks what a valid assertion yields, and the variants that are valid too.
func TestVerifyAccepts(t *testing.T) {
	idp := validSigner(t)
	want := Claims{
		Issuer:       testIssuer,
		Subject:      testSubject,
		NameIDFormat: "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress",
		ID:           "_a1",
		NotOnOrAfter: testNow.Add(5 * time.Minute),
		Attributes:   map[string][]string{"email": {testSubject}, "groups": {"admins", "staff"}},
	}
	tests := []struct {
		name  string
		param func(t *testing.T) string
		// change turns the default claims into the ones wanted.
		change func(c *Claims)
	}{
		{"as issued, after an XML declaration", func(t *testing.T) string {
			return b64(`<?xml version="1.0" encoding="UTF-8"?>` + "\n" + idp.signXML(t))
		}, func(*Claims) {}},
		{"padded base64url (RFC 7522 §2.1: pad characters SHOULD NOT be sent)", func(t *testing.T) string {
			xml := idp.signXML(t)
			if len(xml)%3 == 0 {
				xml += "\n"
			}
			p := base64.URLEncoding.EncodeToString([]byte(xml))
			if !strings.HasSuffix(p, "=") {
				t.Fatal("no padding")
			}
			return p
		}, func(*Claims) {}},
		{"comment splitting the NameID after signing is read past, never truncated", func(t *testing.T) string {
			signed := idp.signXML(t, setText(nameIDPath, testSubject+".evil.test"))
			return b64(strings.Replace(signed, testSubject+".evil.test", testSubject+"<!---->.evil.test", 1))
		}, func(c *Claims) { c.Subject = testSubject + ".evil.test" }},
		{"comments outside the assertion", func(t *testing.T) string {
			return b64("<!-- issued by the IdP -->\n" + idp.signXML(t) + "\n<!-- end -->\n")
		}, func(*Claims) {}},
		{"within the leeway of SubjectConfirmationData NotOnOrAfter", func(t *testing.T) string {
			return b64(idp.signXML(t, setAttr(scdPath, "NotOnOrAfter", at(-tokens.ClockLeeway+time.Second))))
		}, func(c *Claims) { c.NotOnOrAfter = testNow.Add(-tokens.ClockLeeway + time.Second) }},
		{"within the leeway of Conditions NotBefore", func(t *testing.T) string {
			return b64(idp.signXML(t, setAttr(condPath, "NotBefore", at(tokens.ClockLeeway))))
		}, func(*Claims) {}},
		{"Conditions ending first", func(t *testing.T) string {
			return b64(idp.signXML(t, setAttr(condPath, "NotOnOrAfter", at(3*time.Minute))))
		}, func(c *Claims) { c.NotOnOrAfter = testNow.Add(3 * time.Minute) }},
		{"Conditions without NotOnOrAfter", func(t *testing.T) string {
			return b64(idp.signXML(t, removeAttr(condPath, "NotOnOrAfter")))
		}, func(*Claims) {}},
		{"holder-of-key beside bearer", func(t *testing.T) string {
			return b64(idp.signXML(t, addXML("./saml:Subject", `<saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:holder-of-key"/>`)))
		}, func(*Claims) {}},
		{"a bearer confirmation for elsewhere, later, beside ours", func(t *testing.T) string {
			return b64(idp.signXML(t, addXML("./saml:Subject", `<saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer">`+
				`<saml:SubjectConfirmationData Recipient="https://sp.example.com/acs" NotOnOrAfter="`+at(8*time.Minute)+`"/></saml:SubjectConfirmation>`)))
		}, func(*Claims) {}},
		{"the latest of two bearer confirmations", func(t *testing.T) string {
			return b64(idp.signXML(t, addXML("./saml:Subject", `<saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer">`+
				`<saml:SubjectConfirmationData Recipient="`+testRecipient+`" NotOnOrAfter="`+at(8*time.Minute)+`"/></saml:SubjectConfirmation>`)))
		}, func(c *Claims) { c.NotOnOrAfter = testNow.Add(8 * time.Minute) }},
		{"OneTimeUse and ProxyRestriction", func(t *testing.T) string {
			return b64(idp.signXML(t, addXML(condPath, `<saml:OneTimeUse/><saml:ProxyRestriction Count="0"/>`)))
		}, func(*Claims) {}},
		{"no attributes", func(t *testing.T) string { return b64(idp.signXML(t, remove("./saml:AttributeStatement"))) },
			func(c *Claims) { c.Attributes = nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := want
			tt.change(&w)
			got, err := newVerifier(t, memoryStore(), idp.cert).Verify(context.Background(), tt.param(t))
			if err != nil || !reflect.DeepEqual(got, w) {
				t.Errorf("Verify(%s) = %+v, %v; want %+v", tt.name, got, err, w)
			}
		})
	}
}

// TestVerifyRollover: an issuer with two certificates, and signatures without KeyInfo, as many
// IdPs send them; goxmldsig alone refuses that combination.
func TestVerifyRollover(t *testing.T) {
	old, idp := validSigner(t), validSigner(t)
	signed := idp.sign(t, assertion(t))
	sig := find(t, signed, "./ds:Signature")
	sig.RemoveChild(find(t, sig, "./ds:KeyInfo"))
	v := newVerifier(t, memoryStore(), old.cert, idp.cert)
	if got, err := v.Verify(context.Background(), b64(serialize(t, signed))); err != nil || got.Subject != testSubject {
		t.Errorf("Verify(no KeyInfo) = %+v, %v; want subject %q", got, err, testSubject)
	}
}

// TestVerifyReplay: RFC 7522 §3 item 6, each ID once, remembered as long as the
// assertion could be accepted; a store fault is ErrStore, never the client's fault.
func TestVerifyReplay(t *testing.T) {
	idp := validSigner(t)
	param := b64(idp.signXML(t))
	ctx := context.Background()

	v := newVerifier(t, memoryStore(), idp.cert)
	if _, err := v.Verify(ctx, param); err != nil {
		t.Fatalf("Verify(first) = %v, want nil", err)
	}
	if _, err := v.Verify(ctx, param); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "used already") {
		t.Errorf("Verify(replay) = %v, want the ID used already", err)
	}

	rec := &recordingStore{fresh: true}
	claims, err := newVerifier(t, rec, idp.cert).Verify(ctx, param)
	if err != nil {
		t.Fatal(err)
	}
	if want := "saml:" + testIssuer + ":_a1"; rec.key != want {
		t.Errorf("PutOnce key = %q, want %q", rec.key, want)
	}
	if want := claims.NotOnOrAfter.Add(tokens.ClockLeeway); !rec.exp.Equal(want) {
		t.Errorf("PutOnce exp = %v, want %v", rec.exp, want)
	}

	down := errors.New("store down")
	_, err = newVerifier(t, &recordingStore{err: down}, idp.cert).Verify(ctx, param)
	if !errors.Is(err, ErrStore) || !errors.Is(err, down) || errors.Is(err, ErrInvalid) {
		t.Errorf("Verify(store down) = %v, want ErrStore wrapping %v", err, down)
	}
}

func TestNew(t *testing.T) {
	cert := validSigner(t).cert
	good := func() Config {
		return Config{
			Trusts:    []Trust{{EntityID: testIssuer, Certificates: []*x509.Certificate{cert}}},
			Audience:  testAudience,
			Recipient: testRecipient,
			Replay:    memoryStore(),
		}
	}
	tests := []struct {
		name   string
		change func(c *Config)
		want   string
	}{
		{"no trust", func(c *Config) { c.Trusts = nil }, "no trusted issuer"},
		{"no audience", func(c *Config) { c.Audience = "" }, "no audience"},
		{"no recipient", func(c *Config) { c.Recipient = "" }, "no recipient"},
		{"no store", func(c *Config) { c.Replay = nil }, "no replay store"},
		{"no entity id", func(c *Config) { c.Trusts[0].EntityID = "" }, "trust 0: no entity id"},
		{"no certificate", func(c *Config) { c.Trusts[0].Certificates = nil }, "no certificate"},
		{"entity id twice", func(c *Config) { c.Trusts = append(c.Trusts, c.Trusts[0]) }, "not unique"},
	}
	for _, tt := range tests {
		c := good()
		tt.change(&c)
		if _, err := New(c); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("New(%s) = %v, want an error containing %q", tt.name, err, tt.want)
		}
	}
	if _, err := New(good()); err != nil {
		t.Errorf("New(good) = %v, want nil", err)
	}
}
