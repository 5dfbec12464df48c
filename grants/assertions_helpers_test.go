package grants

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"

	"github.com/tokengate/tokengate/assertion"
	"github.com/tokengate/tokengate/internal/assertiontest"
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
	k := &assertionKeys{client: assertiontest.ECKey(t), partner: assertiontest.ECKey(t), saml: assertiontest.RSAKey(t)}
	k.cert = assertiontest.Certificate(t, k.saml, now.Add(-time.Hour), now.Add(24*time.Hour))
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

// samlAssertion is a SAML assertion from samlIdP about nameID, bearer-confirmed for the token
// endpoint, valid from now for five minutes, with the given ID and Recipient.
func samlAssertion(id, nameID, recipient string, now time.Time) string {
	return assertiontest.SAML{ID: id, Issuer: samlIdP, NameID: nameID, Recipient: recipient, Audience: issuer,
		Now: now, TTL: 5 * time.Minute}.XML()
}

// signSAML signs the assertion XML with the IdP's key and returns it base64url-encoded, as RFC 7522
// §2.1 sends it.
func (k *assertionKeys) signSAML(t *testing.T, xml string) string {
	t.Helper()
	return base64.RawURLEncoding.EncodeToString([]byte(assertiontest.SignSAML(t, xml, k.saml, k.cert)))
}
