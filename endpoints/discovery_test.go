package endpoints

import (
	"slices"
	"testing"

	"github.com/tokengate/tokengate/grants"
)

// MetadataOf lists exactly what the clients are registered for, openid, and the claims tokens may
// carry; a public client may revoke but not introspect.
func TestMetadataOf(t *testing.T) {
	meta := MetadataOf("https://auth.example.com/t", Offered{
		Clients: []*grants.Client{
			{ID: "tv", Public: true, Grants: []string{"device_code"}, Scopes: []string{"api.read"}, PKCEPlain: true},
			{ID: "svc", AuthMethod: grants.AuthPrivateKey, Grants: []string{"client_credentials"}, Claims: map[string]string{"tier": "gold"}},
			{ID: "web", AuthMethod: grants.AuthSecretPost, Grants: []string{"authorization_code"}, Scopes: []string{"profile"}},
		},
		UserClaims:  []string{"email", "tenant"},
		SigningAlgs: []string{"ES256"},
	})
	for _, tc := range []struct {
		field     string
		got, want []string
	}{
		{"grant_types_supported", meta.GrantTypesSupported, []string{"authorization_code", "client_credentials", grants.GrantTypeDeviceCode}},
		{"scopes_supported", meta.ScopesSupported, []string{"api.read", "openid", "profile"}},
		{"token_endpoint_auth_methods_supported", meta.TokenEndpointAuthMethodsSupported, []string{"client_secret_basic", "client_secret_post", "none", "private_key_jwt"}},
		{"revocation_endpoint_auth_methods_supported", meta.RevocationEndpointAuthMethodsSupported, []string{"client_secret_basic", "client_secret_post", "none", "private_key_jwt"}},
		{"introspection_endpoint_auth_methods_supported", meta.IntrospectionEndpointAuthMethodsSupported, []string{"client_secret_basic", "client_secret_post", "private_key_jwt"}},
		{"token_endpoint_auth_signing_alg_values_supported", meta.TokenEndpointAuthSigningAlgValuesSupported, []string{"ES256", "ES384", "ES512", "EdDSA", "PS256", "PS384", "PS512", "RS256", "RS384", "RS512"}},
		{"code_challenge_methods_supported", meta.CodeChallengeMethodsSupported, []string{grants.PKCES256, grants.PKCEPlain}},
		{"id_token_signing_alg_values_supported", meta.IDTokenSigningAlgValuesSupported, []string{"ES256"}},
		{"claims_supported", meta.ClaimsSupported, []string{"aud", "client_id", "email", "exp", "iat", "idp", "iss", "jti", "nbf", "scope", "sub", "tenant", "tier"}},
	} {
		if !slices.Equal(tc.got, tc.want) {
			t.Errorf("%s = %q, want %q", tc.field, tc.got, tc.want)
		}
	}
	if want := "https://auth.example.com/t" + DeviceAuthorizationPath; meta.DeviceAuthorizationEndpoint != want {
		t.Errorf("device_authorization_endpoint = %q, want %q", meta.DeviceAuthorizationEndpoint, want)
	}
	none := MetadataOf("https://auth.example.com", Offered{})
	if none.DeviceAuthorizationEndpoint != "" || none.TokenEndpointAuthSigningAlgValuesSupported != nil {
		t.Errorf("without clients: device endpoint %q, signing algs %q; want neither", none.DeviceAuthorizationEndpoint, none.TokenEndpointAuthSigningAlgValuesSupported)
	}
}

// With metadata documents and registration on, discovery says so (RFC 8414 §2, the metadata
// document draft's client_id_metadata_document_supported) and lists what such clients use even
// when no configured client does: the code grant with refresh, PKCE S256, public clients, their
// scopes. Without them, neither member appears.
func TestMetadataOfDynamicClients(t *testing.T) {
	svc := []*grants.Client{{ID: "svc", Grants: []string{"client_credentials"}}}
	meta := MetadataOf("https://auth.example.com", Offered{Clients: svc, MetadataDocuments: true, Registration: true,
		DynamicScopes: []string{"openid", "mcp.tools"}})
	if meta.RegistrationEndpoint != "https://auth.example.com"+RegistrationPath || !meta.ClientIDMetadataDocumentSupported {
		t.Errorf("registration_endpoint %q, client_id_metadata_document_supported %v, want both", meta.RegistrationEndpoint, meta.ClientIDMetadataDocumentSupported)
	}
	for _, tc := range []struct {
		field     string
		got, want []string
	}{
		{"grant_types_supported", meta.GrantTypesSupported, []string{"authorization_code", "client_credentials", "refresh_token"}},
		{"token_endpoint_auth_methods_supported", meta.TokenEndpointAuthMethodsSupported, []string{"client_secret_basic", "client_secret_post", "none"}},
		{"scopes_supported", meta.ScopesSupported, []string{"mcp.tools", "openid"}},
		{"code_challenge_methods_supported", meta.CodeChallengeMethodsSupported, []string{"S256"}},
	} {
		if !slices.Equal(tc.got, tc.want) {
			t.Errorf("%s = %q, want %q", tc.field, tc.got, tc.want)
		}
	}
	plain := MetadataOf("https://auth.example.com", Offered{Clients: svc})
	if plain.RegistrationEndpoint != "" || plain.ClientIDMetadataDocumentSupported {
		t.Errorf("without dynamic clients: registration_endpoint %q, client_id_metadata_document_supported %v, want neither",
			plain.RegistrationEndpoint, plain.ClientIDMetadataDocumentSupported)
	}
}
