package grants

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"testing"
	"time"

	"github.com/beevik/etree"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/tokengate/tokengate/assertion"
	"github.com/tokengate/tokengate/samlbearer"
)

const (
	tokenEndpoint = issuer + "/connect/token"
	partner       = "https://partner.example.com"
	samlIdP       = "https://idp.example.com/saml"
	// hmacSecret is the jwtc client's plaintext secret, long enough for HS256 (RFC 7518 §3.2).
	hmacSecret = "client-secret-jwt-0123456789abcdef"
)

// assertionKeys are the keys the assertion fixture trusts: the pkjwt client's (kid c1), the
// partner trust's (kid t1), and the SAML IdP's certificate.
type assertionKeys struct {
	client  *ecdsa.PrivateKey
	partner *ecdsa.PrivateKey
	saml    *rsa.PrivateKey
	cert    *x509.Certificate
}

func newAssertionKeys(t *testing.T, now time.Time) *assertionKeys {
	t.Helper()
	k := &assertionKeys{client: mustEC(t), partner: mustEC(t)}
	var err error
	if k.saml, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "idp"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.saml.PublicKey, k.saml)
	if err != nil {
		t.Fatal(err)
	}
	if k.cert, err = x509.ParseCertificate(der); err != nil {
		t.Fatal(err)
	}
	return k
}

func mustEC(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// jwks is the key set of pub under kid, as jwks_file holds it.
func jwks(t *testing.T, kid string, pub any) *assertion.StaticKeys {
	t.Helper()
	data, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: pub, KeyID: kid, Use: "sig"}}})
	if err != nil {
		t.Fatal(err)
	}
	keys, err := assertion.ParseJWKS(data)
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// withAssertions registers, beside newFixture's clients:
//   - jwtc: client_secret_jwt (hmacSecret), client_credentials
//   - pkjwt: private_key_jwt (k.client, kid c1), client_credentials and jwt_bearer
//   - relying: secret "relying-secret", jwt_bearer and saml2_bearer
//
// and trusts partner (k.partner, kid t1) and the SAML IdP samlIdP (k.cert).
func withAssertions(t *testing.T, k *assertionKeys) func(*fixture, *Config) {
	return func(_ *fixture, cfg *Config) {
		scopes := []string{"openid", "offline_access", "api.read", "api.write"}
		cfg.Clients = append(cfg.Clients,
			&Client{ID: "jwtc", AuthMethod: AuthSecretJWT, Secrets: secrets(t, hmacSecret), Grants: []string{"client_credentials"}, Scopes: scopes},
			&Client{ID: "pkjwt", AuthMethod: AuthPrivateKey, Keys: jwks(t, "c1", &k.client.PublicKey),
				Grants: []string{"client_credentials", "jwt_bearer"}, Scopes: scopes},
			&Client{ID: "relying", Secrets: secrets(t, "relying-secret"), Grants: []string{"jwt_bearer", "saml2_bearer", "refresh_token"},
				Scopes: scopes, Audience: []string{"api"}},
		)
		cfg.Trusts = []Trust{{Name: "partner", Issuer: partner, Keys: jwks(t, "t1", &k.partner.PublicKey)}}
		cfg.SAMLTrusts = []samlbearer.Trust{{EntityID: samlIdP, Certificates: []*x509.Certificate{k.cert}}}
	}
}

// claimsFor is a valid assertion's claims from iss about sub at now: aud the issuer, five minutes
// to live, a fresh jti.
func claimsFor(iss, sub string, now time.Time) jwt.MapClaims {
	return jwt.MapClaims{"iss": iss, "sub": sub, "aud": issuer, "iat": now.Unix(),
		"exp": now.Add(5 * time.Minute).Unix(), "jti": randomToken()}
}

// with returns a copy of c with kv set, a nil value deleting the claim.
func with(c jwt.MapClaims, kv ...any) jwt.MapClaims {
	out := jwt.MapClaims{}
	for k, v := range c {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
		} else {
			out[kv[i].(string)] = kv[i+1]
		}
	}
	return out
}

// signJWT signs claims with method and key, adding header fields.
func signJWT(t *testing.T, method jwt.SigningMethod, key any, header map[string]any, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	for k, v := range header {
		tok.Header[k] = v
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// publicPEM is pub as a PEM PUBLIC KEY: what an algorithm-confusion attacker keys HMAC with.
func publicPEM(t *testing.T, pub any) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// samlAssertion is a SAML assertion from samlIdP about nameID, bearer-confirmed for the token
// endpoint, valid from now for five minutes, with the given ID and Recipient.
func samlAssertion(id, nameID, recipient string, now time.Time) string {
	at := func(d time.Duration) string { return now.Add(d).UTC().Format(time.RFC3339) }
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
</saml:Assertion>`, id, at(0), samlIdP, nameID, recipient, at(5*time.Minute), at(-time.Minute), at(5*time.Minute), issuer)
}

// signSAML signs the assertion XML enveloped, the signature after the Issuer (SAML core §5.4.2),
// and returns it base64url-encoded as RFC 7522 §2.1 sends it.
func (k *assertionKeys) signSAML(t *testing.T, xml string) string {
	t.Helper()
	doc := etree.NewDocument()
	if err := doc.ReadFromString(xml); err != nil {
		t.Fatal(err)
	}
	ctx, err := dsig.NewSigningContext(k.saml, [][]byte{k.cert.Raw})
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
	return base64.RawURLEncoding.EncodeToString([]byte(out))
}
