package registration

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"

	"github.com/tokengate/tokengate/grants"
)

// The error codes of RFC 7591 §3.2.2.
const (
	codeInvalidRedirectURI = "invalid_redirect_uri"
	codeInvalidMetadata    = "invalid_client_metadata"
)

// metadata is a registered client as stored and as answered (RFC 7591 §3.2.1), less its secret,
// which is stored as a bcrypt hash only.
type metadata struct {
	ClientID        string   `json:"client_id"`
	IssuedAt        int64    `json:"client_id_issued_at"`
	RedirectURIs    []string `json:"redirect_uris"`
	GrantTypes      []string `json:"grant_types"`
	ResponseTypes   []string `json:"response_types"`
	AuthMethod      string   `json:"token_endpoint_auth_method"`
	ClientName      string   `json:"client_name,omitempty"`
	Scope           string   `json:"scope,omitempty"`
	ApplicationType string   `json:"application_type,omitempty"`
	SecretHash      string   `json:"secret_hash,omitempty"`
}

// registeredAuthMethods are the ways a registered client may authenticate (RFC 7591 §2); its grant
// and response types are those grants.CheckDynamicFlows accepts.
var registeredAuthMethods = []string{grants.AuthNone, grants.AuthSecretBasic, grants.AuthSecretPost}

// parse validates a registration request's members (RFC 7591 §2): the error's code is
// invalid_redirect_uri or invalid_client_metadata. Members it does not know are ignored.
func (g *Registry) parse(body map[string]json.RawMessage) (*metadata, string, error) {
	m := &metadata{GrantTypes: []string{"authorization_code"}, ResponseTypes: []string{"code"},
		AuthMethod: grants.AuthSecretBasic}
	if raw, ok := body["redirect_uris"]; !ok || json.Unmarshal(raw, &m.RedirectURIs) != nil || len(m.RedirectURIs) == 0 {
		return nil, codeInvalidRedirectURI, errors.New("redirect_uris must be a non-empty array of strings")
	}
	for _, uri := range m.RedirectURIs {
		if err := grants.CheckDynamicRedirectURI(uri); err != nil {
			return nil, codeInvalidRedirectURI, err
		}
	}
	for name, dst := range map[string]*string{"token_endpoint_auth_method": &m.AuthMethod, "client_name": &m.ClientName,
		"scope": &m.Scope, "application_type": &m.ApplicationType} {
		if raw, ok := body[name]; ok && json.Unmarshal(raw, dst) != nil {
			return nil, codeInvalidMetadata, errors.New(name + " must be a string")
		}
	}
	for name, dst := range map[string]*[]string{"grant_types": &m.GrantTypes, "response_types": &m.ResponseTypes} {
		if raw, ok := body[name]; ok && json.Unmarshal(raw, dst) != nil {
			return nil, codeInvalidMetadata, errors.New(name + " must be an array of strings")
		}
	}
	switch {
	case !slices.Contains(registeredAuthMethods, m.AuthMethod):
		return nil, codeInvalidMetadata, errors.New("token_endpoint_auth_method must be none, client_secret_basic or client_secret_post")
	}
	if err := grants.CheckDynamicFlows(m.GrantTypes, m.ResponseTypes); err != nil {
		return nil, codeInvalidMetadata, err
	}
	if _, err := grants.GrantedScope(m.Scope, g.cfg.Scopes()); err != nil {
		return nil, codeInvalidMetadata, errors.New("scope names a scope registered clients may not ask for")
	}
	return m, "", nil
}

// response is the registration's answer: the metadata, and the secret (never expiring) for a
// client that authenticates with one.
func (m *metadata) response(secret string) any {
	type answer struct {
		*metadata
		// SecretHash hides the stored hash: it is never answered.
		SecretHash   string `json:"secret_hash,omitempty"`
		ClientSecret string `json:"client_secret,omitempty"`
		// SecretExpiresAt is required with a secret (RFC 7591 §3.2.1); 0 means never.
		SecretExpiresAt *int64 `json:"client_secret_expires_at,omitempty"`
	}
	a := answer{metadata: m}
	if secret != "" {
		never := int64(0)
		a.ClientSecret, a.SecretExpiresAt = secret, &never
	}
	return a
}

// client is the grants.Client m registered, asking at most for allowed, or for what its scope
// names.
func (m *metadata) client(allowed []string) (*grants.Client, error) {
	c := &grants.Client{ID: m.ClientID, Dynamic: true, Public: m.AuthMethod == grants.AuthNone, DisplayName: m.ClientName,
		Grants: grants.DynamicClientGrants(m.GrantTypes), Scopes: allowed, RedirectURIs: m.RedirectURIs}
	if m.Scope != "" {
		c.Scopes = strings.Fields(m.Scope)
	}
	if !c.Public {
		secret, err := grants.NewSecret(m.SecretHash)
		if err != nil {
			return nil, errors.New("the registered client's record is damaged")
		}
		c.Secrets, c.AuthMethod = []*grants.Secret{secret}, m.AuthMethod
	}
	return c, nil
}
