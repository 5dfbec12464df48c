package grants

import (
	"cmp"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"slices"
	"time"

	"github.com/tokengate/tokengate/assertion"
	"github.com/tokengate/tokengate/credential"
	"golang.org/x/crypto/bcrypt"
)

// Client is a registered client, as a `client` block of the Caddyfile declares it, or as a
// ClientSource resolves it.
type Client struct {
	// ID is the client_id, matched byte for byte.
	ID string
	// Dynamic marks a client the configuration does not declare, resolved by a ClientSource (its
	// metadata document, a registration): it speaks for itself, so its name is its own unverified
	// claim, a person consents to each of its authorization requests, and it may get tokens for
	// any known resource (Settings.Resources) instead of its Audience, and must name one at the
	// authorization endpoint (RFC 8707). False for a configured client.
	Dynamic bool
	// DisplayName is what the pages a person sees call it; empty means its ID (see Name).
	DisplayName string
	// Secrets are the accepted secrets; empty for a public client.
	Secrets []*Secret
	// Public clients (native apps, SPAs) have no secret.
	Public bool
	// AuthMethod is how a confidential client authenticates; "" means client_secret_basic, which
	// is interchangeable with client_secret_post. client_secret_jwt signs its assertions with its
	// plaintext secrets (HS256), private_key_jwt with a key of Keys.
	AuthMethod string
	// Keys are the client's public keys (jwks_file, jwks_uri): required by private_key_jwt, and
	// with the jwt_bearer grant they verify the assertions the client signs for itself. Nil means
	// none.
	Keys assertion.KeySource
	// Grants are the grant names it may use (see KnownGrant).
	Grants []string
	// Scopes are what it may ask for; asking for none means all of them.
	Scopes []string
	// Audience is the aud of its access tokens; empty means the issuer.
	Audience []string
	// ExchangeAudiences are the audiences, besides its own ID, of the subject tokens it may
	// exchange (RFC 8693): the resource servers it speaks for. Empty means its ID only.
	ExchangeAudiences []string
	// RedirectURIs are matched exactly.
	RedirectURIs           []string
	PostLogoutRedirectURIs []string
	// AccessTokenTTL overrides the server's when not zero.
	AccessTokenTTL time.Duration
	// Claims are static claims added to every token issued to it.
	Claims map[string]string
	// IdentityProviders names the `users` blocks it may use; empty means only the default one.
	IdentityProviders []string
	// PKCEPlain allows code_challenge_method plain.
	PKCEPlain bool
	// IntrospectAny lets it introspect every token, not only its own.
	IntrospectAny bool
	// IDTokenAlg is the algorithm its ID tokens are signed with; empty means the primary key's.
	IDTokenAlg string
}

// Name is what the pages a person sees call the client: its display name, or else its client_id.
func (c *Client) Name() string { return cmp.Or(c.DisplayName, c.ID) }

// RequiresPKCE reports whether the client's codes need PKCE: a public client's, which anyone who
// intercepts one could redeem otherwise (dex CVE-2022-39222), and a dynamic client's, whose
// registration anyone could have made (RFC 9700 §2.1.1 asks it of every client).
func (c *Client) RequiresPKCE() bool { return c.Public || c.Dynamic }

// allows reports whether the client registered the grant.
func (c *Client) allows(grant string) bool { return slices.Contains(c.Grants, grant) }

// Secret is one accepted client secret: a bcrypt hash or, for secrets injected from the
// environment, plaintext.
type Secret struct {
	hash []byte
	// plain is kept as a SHA-256 digest so the comparison is constant-time whatever the lengths.
	plain [sha256.Size]byte
	// plainText is the secret itself, the HMAC key of client_secret_jwt (OIDC Core §9); nil for a
	// hash.
	plainText []byte
}

// NewSecret parses a configured secret: a bcrypt hash as `caddy hash-password` prints it, or
// plaintext.
func NewSecret(configured string) (*Secret, error) {
	if configured == "" {
		return nil, errors.New("empty client secret")
	}
	if credential.IsBcryptHash(configured) {
		return &Secret{hash: []byte(configured)}, nil
	}
	return &Secret{plain: sha256.Sum256([]byte(configured)), plainText: []byte(configured)}, nil
}

// cost is what checking this secret costs in bcrypt terms (0 for plaintext).
func (s *Secret) cost() int {
	if s.hash == nil {
		return 0
	}
	c, _ := bcrypt.Cost(s.hash)
	return c
}

// plainMatches compares presented with a plaintext secret in constant time; false for a hash.
func (s *Secret) plainMatches(presented string) bool {
	if s.hash != nil {
		return false
	}
	digest := sha256.Sum256([]byte(presented))
	return subtle.ConstantTimeCompare(digest[:], s.plain[:]) == 1
}

// The grant names a `grants` line takes, and the grant_type each stands for on the wire.
var wireGrantTypes = map[string]string{
	"authorization_code": "authorization_code",
	"client_credentials": "client_credentials",
	"device_code":        GrantTypeDeviceCode,
	"password":           "password",
	"refresh_token":      "refresh_token",
	"jwt_bearer":         GrantTypeJWTBearer,
	"saml2_bearer":       GrantTypeSAML2Bearer,
}

// KnownGrant reports whether name is a grant this release implements.
func KnownGrant(name string) bool {
	_, ok := wireGrantTypes[name]
	return ok
}

// BuiltInGrantType reports whether grantType is the grant_type of a grant this release
// implements: an extension grant cannot take it.
func BuiltInGrantType(grantType string) bool {
	for _, wire := range wireGrantTypes {
		if wire == grantType {
			return true
		}
	}
	return false
}

// WireGrantType returns the grant_type value that stands for the grant name. An extension grant
// is named by its URI, which is its grant_type.
func WireGrantType(name string) string {
	if wire, ok := wireGrantTypes[name]; ok {
		return wire
	}
	return name
}
