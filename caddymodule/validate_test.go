package caddymodule

import (
	"encoding/json"
	"strconv"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// TestValidateAlike feeds each mistake as a Caddyfile and as JSON: both must be refused with the
// same message, the Caddyfile's at the line of the mistake.
func TestValidateAlike(t *testing.T) {
	// Each caddyfile is the body of a tokengate option whose first line (Testfile:2) is the issuer;
	// each json holds the app's fields besides the issuer.
	for _, tc := range []struct {
		name, caddyfile, json, want string
		line                        int
	}{
		{"redis URL scheme", "store redis http://localhost", `"store": {"backend": "redis", "url": "http://localhost"}`,
			"store redis: the URL must start with redis://, rediss:// (TLS) or unix://", 3},
		{"unknown signing alg", "signing_key hs256", `"signing_key": {"alg": "hs256"}`,
			`signing_key: unknown algorithm "hs256" (want es256, rs256, ps256 or eddsa)`, 3},
		{"rotated key file", "signing_key_file es256 k.pem\n signing_key_rotation 1h",
			`"signing_key_file": {"alg": "ES256", "file": "k.pem"}, "signing_key_rotation": 3600000000000`,
			"signing_key_rotation: a signing_key_file key is never rotated", 4},
		{"short ttl", "code_ttl 10ms", `"code_ttl": 10000000`, "code_ttl: 10ms is under the minimum of 1s", 3},
		{"control character in client_id", "client \"a\tb\" {\n  public\n  grants password\n }",
			`"clients": [{"id": "a\tb", "public": true, "grants": ["password"]}]`,
			`client_id "a\tb": only printable ASCII is allowed (RFC 6749 Appendix A.1)`, 3},
		{"public client with a secret", "client web {\n  public\n  secret s3cret\n  grants password\n }",
			`"clients": [{"id": "web", "public": true, "secrets": ["s3cret"], "grants": ["password"]}]`,
			`client "web": a public client has no secret`, 3},
		{"empty client_id", "client \"\" {\n  public\n  grants password\n }",
			`"clients": [{"id": "", "public": true, "grants": ["password"]}]`,
			`empty client_id`, 3},
		{"public client with keys", "client web {\n  public\n  jwks_file web.jwks\n  grants password\n }",
			`"clients": [{"id": "web", "public": true, "jwks_file": "web.jwks", "grants": ["password"]}]`,
			`client "web": a public client has no keys`, 3},
		{"public client with an auth_method", "client web {\n  public\n  auth_method client_secret_post\n  grants password\n }",
			`"clients": [{"id": "web", "public": true, "auth_method": "client_secret_post", "grants": ["password"]}]`,
			`client "web": a public client has no auth_method`, 3},
		{"confidential client without a secret", "client web {\n  grants password\n }",
			`"clients": [{"id": "web", "grants": ["password"]}]`,
			`client "web": a confidential client needs a secret (or mark it public)`, 3},
		{"private_key_jwt without keys", "client web {\n  auth_method private_key_jwt\n  grants client_credentials\n }",
			`"clients": [{"id": "web", "auth_method": "private_key_jwt", "grants": ["client_credentials"]}]`,
			`client "web": auth_method private_key_jwt needs jwks_file or jwks_uri`, 3},
		{"private_key_jwt with a secret", "client web {\n  secret s\n  auth_method private_key_jwt\n  jwks_file web.jwks\n  grants client_credentials\n }",
			`"clients": [{"id": "web", "secrets": ["s"], "auth_method": "private_key_jwt", "jwks_file": "web.jwks", "grants": ["client_credentials"]}]`,
			`client "web": a private_key_jwt client has no secret`, 3},
		{"public client_credentials", "client web {\n  public\n  grants client_credentials\n }",
			`"clients": [{"id": "web", "public": true, "grants": ["client_credentials"]}]`,
			`client "web": a public client cannot use client_credentials (RFC 6749 §4.4)`, 3},
		{"short client_secret_jwt secret", "client web {\n  secret short\n  auth_method client_secret_jwt\n  grants client_credentials\n }",
			`"clients": [{"id": "web", "secrets": ["short"], "auth_method": "client_secret_jwt", "grants": ["client_credentials"]}]`,
			`client "web": client_secret_jwt: a secret of 5 bytes; HS256 needs at least 32 (RFC 7518 §3.2)`, 3},
		{"jwks_uri over http", "client web {\n  secret s\n  jwks_uri http://web.example/jwks\n  grants client_credentials\n }",
			`"clients": [{"id": "web", "secrets": ["s"], "jwks_uri": "http://web.example/jwks", "grants": ["client_credentials"]}]`,
			"", 5},
		{"unknown grant", "client web {\n  secret s\n  grants password implicit\n }",
			`"clients": [{"id": "web", "secrets": ["s"], "grants": ["password", "implicit"]}]`,
			`client "web": unknown grant "implicit"`, 5},
		{"bad auth_method", "client web {\n  secret s\n  auth_method magic\n  grants password\n }",
			`"clients": [{"id": "web", "secrets": ["s"], "auth_method": "magic", "grants": ["password"]}]`,
			`client "web": unknown auth_method "magic" (want client_secret_basic, client_secret_post, client_secret_jwt or private_key_jwt)`, 5},
		{"bad scope", "client web {\n  secret s\n  grants password\n  scopes api café\n }",
			`"clients": [{"id": "web", "secrets": ["s"], "grants": ["password"], "scopes": ["api", "café"]}]`,
			`client "web": scope "café": only printable ASCII without space, '"' and '\' is allowed (RFC 6749 §3.3)`, 6},
		{"empty audience", "client web {\n  secret s\n  grants password\n  audience \"\"\n }",
			`"clients": [{"id": "web", "secrets": ["s"], "grants": ["password"], "audience": [""]}]`,
			`client "web": empty audience`, 6},
		{"redirect URI with a fragment", "client web {\n  secret s\n  grants password\n  post_logout_redirect_uris https://a.example/#x\n }",
			`"clients": [{"id": "web", "secrets": ["s"], "grants": ["password"], "post_logout_redirect_uris": ["https://a.example/#x"]}]`,
			`client "web": redirect URI "https://a.example/#x": must be absolute and have no fragment (RFC 6749 §3.1.2)`, 6},
		{"client ttl", "client web {\n  secret s\n  grants password\n  access_token_ttl 1ms\n }",
			`"clients": [{"id": "web", "secrets": ["s"], "grants": ["password"], "access_token_ttl": 1000000}]`,
			`client "web": access_token_ttl: 1ms is under the minimum of 1s`, 6},
		{"registered claim", "client web {\n  secret s\n  grants password\n  claim tier gold\n  claim aud x\n }",
			`"clients": [{"id": "web", "secrets": ["s"], "grants": ["password"], "claims": {"tier": "gold", "aud": "x"}}]`,
			`client "web": claim "aud" is set by tokengate itself`, 7},
		{"client declared twice", "client web {\n  secret s\n  grants password\n }\n client web {\n  secret t\n  grants password\n }",
			`"clients": [{"id": "web", "secrets": ["s"], "grants": ["password"]}, {"id": "web", "secrets": ["t"], "grants": ["password"]}]`,
			`client "web" is declared twice`, 7},
		{"unknown identity provider", "client web {\n  secret s\n  grants password\n  identity_providers corp\n }",
			`"clients": [{"id": "web", "secrets": ["s"], "grants": ["password"], "identity_providers": ["corp"]}]`,
			`client "web": no identity provider is named "corp"`, 6},
		{"ID token alg without a key", "client web {\n  secret s\n  grants password\n  id_token_signing_alg ps256\n }",
			`"clients": [{"id": "web", "secrets": ["s"], "grants": ["password"], "id_token_signing_alg": "ps256"}]`,
			`client "web": id_token_signing_alg "ps256": ID tokens are signed with ES256 or RS256`, 6},
		{"ID token alg not the key file's", "client web {\n  secret s\n  grants password\n  id_token_signing_alg es256\n }\n signing_key_file eddsa k.pem",
			`"clients": [{"id": "web", "secrets": ["s"], "grants": ["password"], "id_token_signing_alg": "es256"}], "signing_key_file": {"alg": "EdDSA", "file": "k.pem"}`,
			`client "web": id_token_signing_alg "es256": ID tokens are signed with EdDSA or RS256`, 6},
		{"undeclared extension grant", "client web {\n  secret s\n  grants urn:example:magic\n }",
			`"clients": [{"id": "web", "secrets": ["s"], "grants": ["urn:example:magic"]}]`,
			`client "web": no grant line declares "urn:example:magic"`, 5},
		{"extension grant not a URI", "grant magic token_exchange",
			`"extension_grants": [{"grant_type": "magic", "grant": {"module": "token_exchange"}}]`,
			`grant "magic": an extension grant type is an absolute URI (RFC 6749 §4.5)`, 3},
		{"extension grant of a built-in grant type", "grant urn:ietf:params:oauth:grant-type:jwt-bearer token_exchange",
			`"extension_grants": [{"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "grant": {"module": "token_exchange"}}]`,
			`grant "urn:ietf:params:oauth:grant-type:jwt-bearer": the grant type is a built-in grant's`, 3},
		{"extension grant twice", "grant urn:x:y token_exchange\n grant urn:x:y token_exchange",
			`"extension_grants": [{"grant_type": "urn:x:y", "grant": {"module": "token_exchange"}}, {"grant_type": "urn:x:y", "grant": {"module": "token_exchange"}}]`,
			`grant "urn:x:y" is declared twice`, 4},
		{"plaintext password", "users corp {\n  user alice hunter2\n }",
			`"identity_providers": [{"name": "corp", "users": [{"username": "alice", "hash": "hunter2"}]}]`,
			`users "corp": user "alice": the password must be a bcrypt hash (caddy hash-password)`, 4},
		{"user declared twice", "users corp {\n  user alice " + testHash + "\n  user alice " + testHash + "\n }",
			`"identity_providers": [{"name": "corp", "users": [{"username": "alice", "hash": "` + testHash + `"}, {"username": "alice", "hash": "` + testHash + `"}]}]`,
			`users "corp": user "alice" is declared twice`, 5},
		{"empty tenant", "users corp {\n  user alice " + testHash + " {\n   tenant \"\"\n  }\n }",
			`"identity_providers": [{"name": "corp", "users": [{"username": "alice", "hash": "` + testHash + `", "tenants": [""]}]}]`,
			`users "corp": user "alice": empty tenant`, 5},
		{"user claim", "users corp {\n  user alice " + testHash + " {\n   claim sub root\n  }\n }",
			`"identity_providers": [{"name": "corp", "users": [{"username": "alice", "hash": "` + testHash + `", "claims": {"sub": "root"}}]}]`,
			`users "corp": user "alice": claim "sub" is set by tokengate itself`, 5},
		{"users and http_login", "users corp {\n  user alice " + testHash + "\n  http_login https://a.example/login\n }",
			`"identity_providers": [{"name": "corp", "users": [{"username": "alice", "hash": "` + testHash + `"}], "http_login": "https://a.example/login"}]`,
			`users "corp": has both users and http_login`, 3},
		{"http_login not a URL", "users corp {\n  http_login localhost/login\n }",
			`"identity_providers": [{"name": "corp", "http_login": "localhost/login"}]`,
			`users "corp": http_login: "localhost/login": want an absolute http or https URL`, 4},
		{"success_location not a URL", "users corp {\n  http_login https://a.example/login {\n   success_location /home\n  }\n }",
			`"identity_providers": [{"name": "corp", "http_login": "https://a.example/login", "http_login_success_location": "/home"}]`,
			`users "corp": success_location: "/home": want an absolute http or https URL`, 5},
		{"users declared twice", "users corp {\n  http_login https://a.example/\n }\n users corp {\n  http_login https://b.example/\n }",
			`"identity_providers": [{"name": "corp", "http_login": "https://a.example/"}, {"name": "corp", "http_login": "https://b.example/"}]`,
			`users "corp" is declared twice`, 6},
		{"username with |", "users corp {\n  user a|b " + testHash + "\n }",
			`"identity_providers": [{"name": "corp", "users": [{"username": "a|b", "hash": "` + testHash + `"}]}]`,
			`users "corp": user "a|b": a username may not hold |`, 4},
		{"oidc without issuer", "oidc corp {\n  client_id x\n }",
			`"external_providers": [{"name": "corp", "kind": "oidc", "client_id": "x"}]`,
			`oidc "corp": no issuer`, 3},
		{"oidc issuer over http", "oidc corp {\n  issuer http://idp.example\n  client_id x\n }",
			`"external_providers": [{"name": "corp", "kind": "oidc", "issuer": "http://idp.example", "client_id": "x"}]`,
			`oidc "corp": issuer: https is required (http only on a loopback host)`, 4},
		{"oidc without client_id", "oidc corp {\n  issuer https://idp.example\n }",
			`"external_providers": [{"name": "corp", "kind": "oidc", "issuer": "https://idp.example"}]`,
			`oidc "corp": no client_id`, 3},
		{"external name with |", "oidc \"a|b\" {\n  issuer https://idp.example\n  client_id x\n }",
			`"external_providers": [{"name": "a|b", "kind": "oidc", "issuer": "https://idp.example", "client_id": "x"}]`,
			`oidc "a|b": a name is 1 to 64 of A-Z a-z 0-9 . _ -`, 3},
		{"external claim reserved", "oidc corp {\n  issuer https://idp.example\n  client_id x\n  claim idp upstream\n }",
			`"external_providers": [{"name": "corp", "kind": "oidc", "issuer": "https://idp.example", "client_id": "x", "claims": {"idp": "upstream"}}]`,
			`oidc "corp": claim "idp" is set by tokengate itself`, 6},
		{"external auth_method", "github gh {\n  client_id x\n  auth_method private_key_jwt\n }",
			`"external_providers": [{"name": "gh", "kind": "github", "client_id": "x", "auth_method": "private_key_jwt"}]`,
			`github "gh": unknown auth_method "private_key_jwt" (want client_secret_basic or client_secret_post)`, 5},
		{"oauth2 without endpoints", "oauth2 corp {\n  client_id x\n  authorize_url https://idp.example/a\n }",
			`"external_providers": [{"name": "corp", "kind": "oauth2", "client_id": "x", "authorize_url": "https://idp.example/a"}]`,
			`oauth2 "corp": authorize_url, token_url and userinfo_url are required`, 3},
		{"external name shared with users", "users corp {\n  http_login https://a.example/\n }\n oidc corp {\n  issuer https://idp.example\n  client_id x\n }",
			`"identity_providers": [{"name": "corp", "http_login": "https://a.example/"}], "external_providers": [{"name": "corp", "kind": "oidc", "issuer": "https://idp.example", "client_id": "x"}]`,
			`oidc "corp" is declared twice`, 6},
		{"trust without keys", "trust partner {\n  issuer x\n }",
			`"trusts": [{"name": "partner", "issuer": "x"}]`,
			`trust "partner": want exactly one of jwks_file, jwks_uri and key_file`, 3},
		{"two trusts, one issuer", "trust a {\n  issuer x\n  key_file k.pem\n }\n trust b {\n  issuer x\n  key_file k.pem\n }",
			`"trusts": [{"name": "a", "issuer": "x", "key_file": "k.pem"}, {"name": "b", "issuer": "x", "key_file": "k.pem"}]`,
			`trust "b": issuer "x" is another trust's`, 7},
		{"two saml_trusts, one entity_id", "saml_trust a {\n  entity_id x\n  certificate_file c.pem\n }\n saml_trust b {\n  entity_id x\n  certificate_file c.pem\n }",
			`"saml_trusts": [{"name": "a", "entity_id": "x", "certificate_file": "c.pem"}, {"name": "b", "entity_id": "x", "certificate_file": "c.pem"}]`,
			`saml_trust "b": entity_id "x" is another saml_trust's`, 7},
		{"saml_trust without certificate", "saml_trust idp {\n  entity_id x\n }",
			`"saml_trusts": [{"name": "idp", "entity_id": "x"}]`,
			`saml_trust "idp": no certificate_file`, 3},
		{"client_id_metadata_documents host with a scheme", "client_id_metadata_documents {\n  allow app.example https://b.example\n }",
			`"client_id_metadata_documents": {"allow": ["app.example", "https://b.example"]}`,
			`client_id_metadata_documents: allow "https://b.example": want a host name, an IP literal, or *.<domain> for every subdomain of domain`, 4},
		{"client_id_metadata_documents bare wildcard", "client_id_metadata_documents {\n  allow *\n }",
			`"client_id_metadata_documents": {"allow": ["*"]}`,
			`client_id_metadata_documents: allow "*": want a host name, an IP literal, or *.<domain> for every subdomain of domain`, 4},
		{"client_id_metadata_documents inner wildcard", "client_id_metadata_documents {\n  allow a.*.example\n }",
			`"client_id_metadata_documents": {"allow": ["a.*.example"]}`,
			`client_id_metadata_documents: allow "a.*.example": want a host name, an IP literal, or *.<domain> for every subdomain of domain`, 4},
		{"registration negative max_clients", "registration {\n  max_clients -1\n }",
			`"registration": {"max_clients": -1}`,
			`registration: max_clients: -1 is negative`, 4},
		{"registration short rate window", "registration {\n  rate 5 10ms\n }",
			`"registration": {"rate": {"requests": 5, "window": 10000000}}`,
			`registration: rate: the window 10ms is under the minimum of 1s`, 4},
		{"registration short unused_ttl", "registration {\n  unused_ttl 1ms\n }",
			`"registration": {"unused_ttl": 1000000}`,
			`registration: unused_ttl: 1ms is under the minimum of 1s`, 4},
		{"client_id_metadata_documents bad scope", "client_id_metadata_documents {\n  allow_loopback\n  scopes openid café\n }",
			`"client_id_metadata_documents": {"allow_loopback": true, "scopes": ["openid", "café"]}`,
			`client_id_metadata_documents: scope "café": only printable ASCII without space, '"' and '\' is allowed (RFC 6749 §3.3)`, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			config := `{"issuer": "https://a.example", ` + tc.json + `}`
			var app App
			if err := json.Unmarshal([]byte(config), &app); err != nil {
				t.Fatal(err)
			}
			jsonErr := app.Validate()
			if jsonErr == nil || tc.want != "" && jsonErr.Error() != tc.want {
				t.Fatalf("Validate(%s) = %v, want %q", config, jsonErr, tc.want)
			}
			_, err := parseGlobal("tokengate {\n issuer https://a.example\n " + tc.caddyfile + "\n}")
			want := jsonErr.Error() + ", at Testfile:" + strconv.Itoa(tc.line)
			if err == nil || err.Error() != want {
				t.Errorf("parseGlobalOption(%s) error = %v, want %q", tc.name, err, want)
			}
		})
	}
}

// TestValidateBearerAuthAlike does the same for bearer_auth.
func TestValidateBearerAuthAlike(t *testing.T) {
	for _, tc := range []struct {
		name, caddyfile, json, want string
		line                        int
	}{
		{"bad scope", "scope api \"a b\"", `"scopes": [["api", "a b"]]`,
			`scope "a b": only printable ASCII without space, '"' and '\' is allowed (RFC 6749 §3.3)`, 2},
		{"empty claim name", "claim \"\" x", `"claims": {"": "x"}`, "claim: empty name", 2},
		{"bad header name", "header sub \"X User\"", `"headers": [{"claim": "sub", "header": "X User"}]`,
			`header "X User": not a valid header name`, 2},
		{"header without claim", "header \"\" X-User", `"headers": [{"claim": "", "header": "X-User"}]`,
			`header "X-User": empty claim name`, 2},
		{"header twice", "header sub X-User\n header email x-user", `"headers": [{"claim": "sub", "header": "X-User"}, {"claim": "email", "header": "x-user"}]`,
			`header "x-user" is declared twice`, 3},
		{"resource with audience", "resource https://mcp.example/mcp\n audience api", `"resource": "https://mcp.example/mcp", "audience": "api"`,
			"resource and audience are exclusive: a resource is the audience its tokens carry", 3},
		{"resource not a URL", "resource mcp", `"resource": "mcp"`,
			`resource "mcp": an absolute URL without user or fragment is required`, 2},
		{"resource over http", "scope a\n resource http://mcp.example/mcp", `"scopes": [["a"]], "resource": "http://mcp.example/mcp"`,
			`resource "http://mcp.example/mcp": https is required (http only on a loopback host)`, 3},
		{"resource of another scheme", "resource wss://mcp.example/mcp", `"resource": "wss://mcp.example/mcp"`,
			`resource "wss://mcp.example/mcp": https is required (http only on a loopback host)`, 2},
		{"resource with a query", "resource https://mcp.example/mcp?x=1", `"resource": "https://mcp.example/mcp?x=1"`,
			`resource "https://mcp.example/mcp?x=1": a resource has no query or fragment`, 2},
		{"resource with an empty query", "resource https://mcp.example/mcp?", `"resource": "https://mcp.example/mcp?"`,
			`resource "https://mcp.example/mcp?": a resource has no query or fragment`, 2},
		{"resource with a fragment", "resource https://mcp.example/mcp#", `"resource": "https://mcp.example/mcp#"`,
			`resource "https://mcp.example/mcp#": a resource has no query or fragment`, 2},
		{"resource with userinfo", "resource https://u:p@mcp.example/mcp", `"resource": "https://u:p@mcp.example/mcp"`,
			`resource "https://u:p@mcp.example/mcp": an absolute URL without user or fragment is required`, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b BearerAuth
			if err := json.Unmarshal([]byte(`{`+tc.json+`}`), &b); err != nil {
				t.Fatal(err)
			}
			if err := b.Validate(); err == nil || err.Error() != tc.want {
				t.Fatalf("Validate(%s) = %v, want %q", tc.json, err, tc.want)
			}
			err := new(BearerAuth).UnmarshalCaddyfile(caddyfile.NewTestDispenser("bearer_auth {\n " + tc.caddyfile + "\n}"))
			want := tc.want + ", at Testfile:" + strconv.Itoa(tc.line)
			if err == nil || err.Error() != want {
				t.Errorf("UnmarshalCaddyfile(%s) error = %v, want %q", tc.name, err, want)
			}
		})
	}
}

// A resource is https, or http on a loopback host, and is kept as written: no slash is added.
func TestValidateResourceAccepts(t *testing.T) {
	for _, uri := range []string{"https://mcp.example.com/mcp", "https://mcp.example.com", "https://mcp.example.com/mcp/",
		"http://127.0.0.1:9000/mcp", "http://127.8.9.1/mcp", "http://[::1]:8080", "http://localhost:3000/mcp"} {
		b := BearerAuth{Resource: uri, Scopes: [][]string{{"mcp.tools"}}}
		if err := b.Validate(); err != nil {
			t.Errorf("Validate(resource %q) = %v, want nil", uri, err)
		}
		if b.Resource != uri {
			t.Errorf("Validate changed resource %q to %q", uri, b.Resource)
		}
	}
}

// An ID token may be signed with the primary key's algorithm or RS256, named in any case.
func TestValidateIDTokenAlg(t *testing.T) {
	for _, tc := range []struct{ signingKey, alg string }{
		{"", "rs256"}, {"", "ES256"}, {"ps256", "PS256"}, {"ps256", "Rs256"}, {"rs256", "RS256"},
	} {
		app := App{Issuer: "https://a.example", Clients: []*ClientConfig{{ID: "web", Secrets: []string{"s"},
			Grants: []string{"password"}, IDTokenSigningAlg: tc.alg}}}
		if tc.signingKey != "" {
			app.SigningKey = &SigningKeyConfig{Alg: tc.signingKey}
		}
		if err := app.Validate(); err != nil {
			t.Errorf("signing_key %q, id_token_signing_alg %q: Validate = %v, want nil", tc.signingKey, tc.alg, err)
		}
	}
}

// TestValidateAcceptsDefaults checks that Validate holds before and after Provision fills in the
// defaults, since Caddy calls it after Provision and Provision calls it first.
func TestValidateAcceptsDefaults(t *testing.T) {
	app := App{Issuer: "https://a.example"}
	if err := app.Validate(); err != nil {
		t.Fatalf("Validate of the minimal config = %v", err)
	}
	app.setDefaults()
	if err := app.Validate(); err != nil {
		t.Errorf("Validate after setDefaults = %v", err)
	}
}
