package caddymodule

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
)

// testHash is a bcrypt hash (cost 10) of "demo-password".
const testHash = "$2a$10$6YnSK8R/WvjpxEMZDpXS8.o44eglnSkTequV1Isq2vq89f0Y8r0t."

// parseGlobal parses input as the tokengate global option and returns the app's JSON.
func parseGlobal(input string) (string, error) {
	v, err := parseGlobalOption(caddyfile.NewTestDispenser(input), nil)
	if err != nil {
		return "", err
	}
	return string(v.(httpcaddyfile.App).Value), nil
}

func TestParseGlobalOption(t *testing.T) {
	for _, tc := range []struct {
		name, input, want string
	}{
		{"minimal", `tokengate {
			issuer https://auth.example.com
		}`, `{"issuer":"https://auth.example.com"}`},
		{"store and keys", `tokengate {
			issuer https://auth.example.com/
			store bolt /var/lib/tokengate.db
			signing_key_file rs256 /etc/key.pem main
			signing_key_file es256 /etc/old.pem
			access_token_ttl 5m
			refresh_token_ttl 30d
			code_ttl 1s
			device_code_ttl 10m
		}`, `{"issuer":"https://auth.example.com/","store":{"backend":"bolt","path":"/var/lib/tokengate.db"},` +
			`"signing_key_file":[{"alg":"RS256","file":"/etc/key.pem","kid":"main"},{"alg":"ES256","file":"/etc/old.pem"}],"access_token_ttl":300000000000,` +
			`"refresh_token_ttl":2592000000000000,"code_ttl":1000000000,"device_code_ttl":600000000000}`},
		{"pebble store", `tokengate {
			issuer https://auth.example.com
			store pebble /var/lib/tokengate
		}`, `{"issuer":"https://auth.example.com","store":{"backend":"pebble","path":"/var/lib/tokengate"}}`},
		{"memory store and generated key", `tokengate {
			issuer http://localhost:8080
			store memory
			signing_key EdDSA
		}`, `{"issuer":"http://localhost:8080","store":{"backend":"memory"},"signing_key":{"alg":"EdDSA"}}`},
		{"redis store and rotation", `tokengate {
			issuer https://auth.example.com
			store redis rediss://:s3cret@redis.internal:6380/2
			signing_key_rotation 24h
		}`, `{"issuer":"https://auth.example.com","store":{"backend":"redis","url":"rediss://:s3cret@redis.internal:6380/2"},` +
			`"signing_key_rotation":86400000000000}`},
		{"redis url from the environment", `tokengate {
			issuer https://auth.example.com
			store redis {env.REDIS_URL}
		}`, `{"issuer":"https://auth.example.com","store":{"backend":"redis","url":"{env.REDIS_URL}"}}`},
		{"external providers", `tokengate {
			issuer https://auth.example.com
			oidc entra {
				issuer https://login.microsoftonline.com/t/v2.0
				client_id c1
				client_secret {env.ENTRA_SECRET}
				auth_method client_secret_post
				scopes openid email
				claim groups_ids groups
				display_name "Microsoft"
				userinfo off
				subject_claim oid
				allowed_domains example.com example.org
				hosted_domain example.com
				tenant acme
			}
			oauth2 corp {
				authorize_url https://sso.corp.example/authorize
				token_url https://sso.corp.example/token
				userinfo_url https://sso.corp.example/me
				client_id c2
				subject_field uid
			}
			github gh {
				client_id c3
				base_url https://github.corp.example
			}
		}`, `{"issuer":"https://auth.example.com","external_providers":[` +
			`{"name":"entra","kind":"oidc","issuer":"https://login.microsoftonline.com/t/v2.0","client_id":"c1","client_secret":"{env.ENTRA_SECRET}",` +
			`"auth_method":"client_secret_post","scopes":["openid","email"],"claims":{"groups_ids":"groups"},"display_name":"Microsoft",` +
			`"userinfo_off":true,"subject_claim":"oid","allowed_domains":["example.com","example.org"],"hosted_domain":"example.com","tenants":["acme"]},` +
			`{"name":"corp","kind":"oauth2","authorize_url":"https://sso.corp.example/authorize","token_url":"https://sso.corp.example/token",` +
			`"userinfo_url":"https://sso.corp.example/me","client_id":"c2","subject_field":"uid"},` +
			`{"name":"gh","kind":"github","base_url":"https://github.corp.example","client_id":"c3"}]}`},
		{"clients and users", `tokengate {
			issuer https://auth.example.com
			client web {
				display_name "Web App"
				public
				grants password refresh_token
				scopes openid offline_access
				redirect_uris https://app.example.com/cb
				post_logout_redirect_uris https://app.example.com/
				identity_providers corp
				pkce_plain
			}
			client svc {
				secret {env.SVC_SECRET}
				secret ` + testHash + `
				auth_method client_secret_post
				grants client_credentials
				scopes api.read
				scopes api.write
				audience api https://api.example.com
				access_token_ttl 10m
				claim tier gold
				introspect_any
				id_token_signing_alg rs256
			}
			users corp {
				user alice ` + testHash + ` {
					claim email alice@example.com
					tenant acme globex
				}
				user bob ` + testHash + `
			}
			users legacy {
				http_login http://127.0.0.1:9090/login
			}
			users portal {
				http_login https://portal.example.com/login {
					success_location https://portal.example.com/home
				}
			}
		}`, `{"issuer":"https://auth.example.com","clients":[` +
			`{"id":"web","display_name":"Web App","public":true,"grants":["password","refresh_token"],"scopes":["openid","offline_access"],` +
			`"redirect_uris":["https://app.example.com/cb"],"post_logout_redirect_uris":["https://app.example.com/"],` +
			`"identity_providers":["corp"],"pkce_plain":true},` +
			`{"id":"svc","secrets":["{env.SVC_SECRET}","` + testHash + `"],"auth_method":"client_secret_post",` +
			`"grants":["client_credentials"],"scopes":["api.read","api.write"],"audience":["api","https://api.example.com"],` +
			`"access_token_ttl":600000000000,"claims":{"tier":"gold"},"introspect_any":true,"id_token_signing_alg":"rs256"}],` +
			`"identity_providers":[{"name":"corp","users":[` +
			`{"username":"alice","hash":"` + testHash + `","claims":{"email":"alice@example.com"},"tenants":["acme","globex"]},` +
			`{"username":"bob","hash":"` + testHash + `"}]},` +
			`{"name":"legacy","http_login":"http://127.0.0.1:9090/login"},` +
			`{"name":"portal","http_login":"https://portal.example.com/login","http_login_success_location":"https://portal.example.com/home"}]}`},
		{"assertions", `tokengate {
			issuer https://auth.example.com
			client svc {
				auth_method private_key_jwt
				jwks_uri https://svc.example.com/jwks
				grants client_credentials jwt_bearer
			}
			client relying {
				secret {env.RELYING_SECRET}
				auth_method client_secret_jwt
				jwks_file /etc/relying.json
				grants jwt_bearer saml2_bearer
			}
			trust partner {
				issuer https://partner.example.com
				jwks_file /etc/partner.json
			}
			trust legacy {
				issuer legacy-idp
				key_file /etc/legacy.pem
			}
			saml_trust adfs {
				entity_id http://adfs.example.com/adfs/services/trust
				certificate_file /etc/adfs.pem
			}
		}`, `{"issuer":"https://auth.example.com","clients":[` +
			`{"id":"svc","auth_method":"private_key_jwt","jwks_uri":"https://svc.example.com/jwks","grants":["client_credentials","jwt_bearer"]},` +
			`{"id":"relying","secrets":["{env.RELYING_SECRET}"],"auth_method":"client_secret_jwt","jwks_file":"/etc/relying.json",` +
			`"grants":["jwt_bearer","saml2_bearer"]}],` +
			`"trusts":[{"name":"partner","issuer":"https://partner.example.com","jwks_file":"/etc/partner.json"},` +
			`{"name":"legacy","issuer":"legacy-idp","key_file":"/etc/legacy.pem"}],` +
			`"saml_trusts":[{"name":"adfs","entity_id":"http://adfs.example.com/adfs/services/trust","certificate_file":"/etc/adfs.pem"}]}`},
		{"an extension grant", `tokengate {
			issuer https://auth.example.com
			client gateway {
				secret s3cret
				grants urn:ietf:params:oauth:grant-type:token-exchange
			}
			grant urn:ietf:params:oauth:grant-type:token-exchange token_exchange
		}`, `{"issuer":"https://auth.example.com","clients":[` +
			`{"id":"gateway","secrets":["s3cret"],"grants":["urn:ietf:params:oauth:grant-type:token-exchange"]}],` +
			`"extension_grants":[{"grant_type":"urn:ietf:params:oauth:grant-type:token-exchange","grant":{"module":"token_exchange"}}]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseGlobal(tc.input)
			if err != nil {
				t.Fatalf("parseGlobalOption(%s): %v", tc.name, err)
			}
			if got != tc.want {
				t.Errorf("parseGlobalOption(%s) =\n%s\nwant\n%s", tc.name, got, tc.want)
			}
			// What the parser accepts, Provision's checks accept too.
			var app App
			if err := json.Unmarshal([]byte(got), &app); err != nil {
				t.Fatal(err)
			}
			app.setDefaults()
			if err := app.Validate(); err != nil {
				t.Errorf("App.Validate after parseGlobalOption(%s): %v", tc.name, err)
			}
		})
	}
}

// clientBlock is a valid confidential client; tests change one line of it.
const clientBlock = `tokengate {
	issuer https://auth.example.com
	client svc {
		secret s3cret
		grants client_credentials
	}
}`

func TestParseGlobalOptionErrors(t *testing.T) {
	for _, tc := range []struct {
		name, input string
		want, line  string // both must be in the message
	}{
		{"no issuer", "tokengate {\n}", "issuer is required", ""},
		{"client_id_metadata_documents twice", "tokengate {\n issuer https://a.example\n client_id_metadata_documents\n client_id_metadata_documents\n}", "client_id_metadata_documents is declared twice, at Testfile:4", ""},
		{"client_id_metadata_documents with an argument", "tokengate {\n issuer https://a.example\n client_id_metadata_documents on\n}", "wrong argument count", "at Testfile:3"},
		{"client_id_metadata_documents unknown option", "tokengate {\n issuer https://a.example\n client_id_metadata_documents {\n  fetch_timeout 9s\n }\n}", `unrecognized subdirective "fetch_timeout", at Testfile:4`, ""},
		{"registration twice", "tokengate {\n issuer https://a.example\n registration\n registration\n}", "registration is declared twice, at Testfile:4", ""},
		{"registration rate without window", "tokengate {\n issuer https://a.example\n registration {\n  rate 5\n }\n}", "wrong argument count", "at Testfile:4"},
		{"registration max_clients not a number", "tokengate {\n issuer https://a.example\n registration {\n  max_clients many\n }\n}", `"many" is not a whole number, at Testfile:4`, ""},
		{"allow_loopback with an argument", "tokengate {\n issuer https://a.example\n client_id_metadata_documents {\n  allow_loopback yes\n }\n}", "wrong argument count", "at Testfile:4"},
		{"issuer twice", "tokengate {\n issuer https://a.example\n issuer https://b.example\n}", "issuer is declared twice, at Testfile:3", ""},
		{"relative issuer", "tokengate {\n issuer /auth\n}", "absolute http or https URL, at Testfile:2", ""},
		{"issuer with fragment", "tokengate {\n issuer https://a.example#x\n}", "no query or fragment, at Testfile:2", ""},
		{"argument on the option", "tokengate foo {\n}", "wrong argument count", ""},
		{"unknown option", "tokengate {\n issuer https://a.example\n colour blue\n}", `unrecognized subdirective "colour", at Testfile:3`, ""},
		{"grant of an unknown module", "tokengate {\n issuer https://a.example\n grant urn:x:y magic {\n }\n}", "tokengate.grants.magic", ""},
		{"grant without module", "tokengate {\n issuer https://a.example\n grant urn:x:y\n}", "wrong argument count", "at Testfile:3"},
		{"grant not a URI", "tokengate {\n grant exchange token_exchange\n}", "absolute URI", "at Testfile:2"},
		{"grant of a built-in name", "tokengate {\n grant refresh_token token_exchange\n}", "absolute URI", "at Testfile:2"},
		{"grant declared twice", "tokengate {\n grant urn:ietf:params:oauth:grant-type:token-exchange token_exchange\n grant urn:ietf:params:oauth:grant-type:token-exchange token_exchange\n}", "declared twice, at Testfile:3", ""},
		{"token_exchange with an option", "tokengate {\n grant urn:ietf:params:oauth:grant-type:token-exchange token_exchange {\n  actors any\n }\n}", `unrecognized subdirective "actors", at Testfile:3`, ""},
		{"exchange_audiences without value", strings.Replace(clientBlock, "grants client_credentials", "grants client_credentials\n exchange_audiences", 1), "wrong argument count", "at Testfile:6"},
		{"a client's undeclared extension grant", strings.Replace(clientBlock, "grants client_credentials", "grants client_credentials urn:example:magic", 1), `client "svc": no grant line declares "urn:example:magic", at Testfile:5`, ""},
		{"trust without keys", "tokengate {\n issuer https://a.example\n trust partner {\n  issuer x\n }\n}", `trust "partner": want exactly one of jwks_file, jwks_uri and key_file, at Testfile:3`, ""},
		{"trust with two key sources", "tokengate {\n trust partner {\n  issuer x\n  key_file k.pem\n  jwks_file k.json\n }\n}", "want exactly one", "at Testfile:2"},
		{"trust without issuer", "tokengate {\n trust partner {\n  key_file k.pem\n }\n}", `trust "partner": no issuer, at Testfile:2`, ""},
		{"trust issuer twice", "tokengate {\n trust partner {\n  issuer x\n  issuer y\n }\n}", "issuer is declared twice, at Testfile:4", ""},
		{"trust over plain http", "tokengate {\n trust partner {\n  issuer x\n  jwks_uri http://partner.example/jwks\n }\n}", "use https, at Testfile:4", ""},
		{"trust option unknown", "tokengate {\n trust partner {\n  audience x\n }\n}", `unrecognized subdirective "audience", at Testfile:3`, ""},
		{"two trusts, one issuer", "tokengate {\n trust a {\n  issuer x\n  key_file k.pem\n }\n trust b {\n  issuer x\n  key_file k.pem\n }\n}", `issuer "x" is another trust's, at Testfile:6`, ""},
		{"trust declared twice", "tokengate {\n trust a {\n  issuer x\n  key_file k.pem\n }\n trust a {\n  issuer y\n  key_file k.pem\n }\n}", `trust "a" is declared twice, at Testfile:6`, ""},
		{"saml_trust without certificate", "tokengate {\n saml_trust idp {\n  entity_id https://idp.example\n }\n}", `saml_trust "idp": no certificate_file, at Testfile:2`, ""},
		{"saml_trust without entity_id", "tokengate {\n saml_trust idp {\n  certificate_file c.pem\n }\n}", `no entity_id, at Testfile:2`, ""},
		{"saml_trust option unknown", "tokengate {\n saml_trust idp {\n  key_file c.pem\n }\n}", `unrecognized subdirective "key_file", at Testfile:3`, ""},
		{"store redis without url", "tokengate {\n store redis\n}", "wrong argument count", "at Testfile:2"},
		{"store redis with two urls", "tokengate {\n store redis redis://a redis://b\n}", "wrong argument count", "at Testfile:2"},
		{"store redis http url", "tokengate {\n store redis http://:s3cret@localhost\n}", "the URL must start with redis://, rediss:// (TLS) or unix://, at Testfile:2", ""},
		{"store redis host only", "tokengate {\n store redis :s3cret@localhost:6379\n}", "the URL must start with redis://", "at Testfile:2"},
		{"rotation twice", "tokengate {\n signing_key_rotation 1h\n signing_key_rotation 2h\n}", "signing_key_rotation is declared twice, at Testfile:3", ""},
		{"rotation under a second", "tokengate {\n signing_key_rotation 999ms\n}", "signing_key_rotation: 999ms is under the minimum of 1s, at Testfile:2", ""},
		{"rotation without value", "tokengate {\n signing_key_rotation\n}", "wrong argument count", "at Testfile:2"},
		{"rotation of a key file", "tokengate {\n issuer https://a.example\n signing_key_rotation 1h\n signing_key_file es256 k.pem\n}", "a signing_key_file key is never rotated, at Testfile:3", ""},
		{"key file, then rotation", "tokengate {\n issuer https://a.example\n signing_key_file es256 k.pem\n signing_key_rotation 1h\n}", "never rotated, at Testfile:4", ""},
		{"store unknown", "tokengate {\n store etcd\n}", `unknown store "etcd"`, "at Testfile:2"},
		{"store memory with a path", "tokengate {\n store memory /tmp/x\n}", "wrong argument count", ""},
		{"store pebble with two paths", "tokengate {\n store pebble /a /b\n}", "wrong argument count", ""},
		{"two signing keys", "tokengate {\n signing_key es256\n signing_key_file es256 k.pem\n}", "signing_key is given once, and not with signing_key_file, at Testfile:3", ""},
		{"key file, then signing_key", "tokengate {\n signing_key_file es256 k.pem\n signing_key es256\n}", "not with signing_key_file, at Testfile:3", ""},
		{"bad second key file", "tokengate {\n signing_key_file es256 k.pem\n signing_key_file hs256 o.pem\n}", "signing_key_file", "Testfile:3"},
		{"bad alg", "tokengate {\n signing_key hs256\n}", `unknown algorithm "hs256"`, "at Testfile:2"},
		{"key file without file", "tokengate {\n signing_key_file es256\n}", "wrong argument count", ""},
		{"bad duration", "tokengate {\n access_token_ttl soon\n}", "access_token_ttl: ", "at Testfile:2"},
		{"duration under a second", "tokengate {\n code_ttl 500ms\n}", "code_ttl: 500ms is under the minimum of 1s, at Testfile:2", ""},
		{"zero duration", "tokengate {\n refresh_token_ttl 0s\n}", "under the minimum", "at Testfile:2"},
		{"unknown client option", strings.Replace(clientBlock, "grants client_credentials", "grants client_credentials\n\t\tcolour blue", 1), `unrecognized subdirective "colour", at Testfile:6`, ""},
		{"unknown grant", strings.Replace(clientBlock, "grants client_credentials", "grants client_credentials implicit", 1), `unknown grant "implicit", at Testfile:5`, ""},
		{"public with a secret", strings.Replace(clientBlock, "secret s3cret", "secret s3cret\n\t\tpublic", 1), `client "svc": a public client has no secret, at Testfile:3`, ""},
		{"confidential without a secret", strings.Replace(clientBlock, "secret s3cret", "", 1), `client "svc": a confidential client needs a secret (or mark it public), at Testfile:3`, ""},
		{"public client_credentials", strings.Replace(clientBlock, "secret s3cret", "public", 1), "cannot use client_credentials", "at Testfile:3"},
		{"no grants", strings.Replace(clientBlock, "grants client_credentials", "", 1), `client "svc": no grants, at Testfile:3`, ""},
		{"duplicate client", strings.Replace(clientBlock, "}\n}", "}\n\tclient svc {\n\t\tsecret t\n\t\tgrants password\n\t}\n}", 1), `client "svc" is declared twice, at Testfile:7`, ""},
		{"bad auth_method", strings.Replace(clientBlock, "secret s3cret", "secret s3cret\n\t\tauth_method client_secret", 1), `unknown auth_method "client_secret"`, "at Testfile:5"},
		{"private_key_jwt without keys", strings.Replace(clientBlock, "secret s3cret", "auth_method private_key_jwt", 1), `client "svc": auth_method private_key_jwt needs jwks_file or jwks_uri, at Testfile:3`, ""},
		{"private_key_jwt with a secret", strings.Replace(clientBlock, "secret s3cret", "secret s3cret\n\t\tauth_method private_key_jwt\n\t\tjwks_file k.json", 1), "a private_key_jwt client has no secret", "at Testfile:3"},
		{"client_secret_jwt with a bcrypt secret", strings.Replace(clientBlock, "secret s3cret", "secret "+testHash+"\n\t\tauth_method client_secret_jwt", 1), "a bcrypt hash cannot be used", "at Testfile:3"},
		{"client_secret_jwt with a short secret", strings.Replace(clientBlock, "secret s3cret", "secret short\n\t\tauth_method client_secret_jwt", 1), "HS256 needs at least 32", "at Testfile:3"},
		{"jwks_file and jwks_uri", strings.Replace(clientBlock, "secret s3cret", "secret s3cret\n\t\tjwks_file k.json\n\t\tjwks_uri https://svc.example/jwks", 1), "exclusive", "at Testfile:3"},
		{"jwks_uri over plain http", strings.Replace(clientBlock, "secret s3cret", "secret s3cret\n\t\tjwks_uri http://svc.example/jwks", 1), "use https", "at Testfile:5"},
		{"jwks_file twice", strings.Replace(clientBlock, "secret s3cret", "secret s3cret\n\t\tjwks_file a\n\t\tjwks_file b", 1), "jwks_file is declared twice, at Testfile:6", ""},
		{"public with keys", strings.Replace(clientBlock, "secret s3cret\n\t\tgrants client_credentials", "public\n\t\tjwks_file k.json\n\t\tgrants password", 1), "a public client has no keys", "at Testfile:3"},
		{"client ttl under a second", strings.Replace(clientBlock, "secret s3cret", "secret s3cret\n\t\taccess_token_ttl 10ms", 1), "access_token_ttl: 10ms is under the minimum of 1s, at Testfile:5", ""},
		{"secret without value", strings.Replace(clientBlock, "secret s3cret", "secret", 1), "wrong argument count", "at Testfile:4"},
		{"registered claim", strings.Replace(clientBlock, "secret s3cret", "secret s3cret\n\t\tclaim sub root", 1), `claim "sub" is set by tokengate itself, at Testfile:5`, ""},
		{"claim without value", strings.Replace(clientBlock, "secret s3cret", "secret s3cret\n\t\tclaim tier", 1), "wrong argument count", "at Testfile:5"},
		{"bad scope", strings.Replace(clientBlock, "secret s3cret", "secret s3cret\n\t\tscopes api café", 1), `scope "café"`, "at Testfile:5"},
		{"relative redirect uri", strings.Replace(clientBlock, "secret s3cret", "secret s3cret\n\t\tredirect_uris /cb", 1), `redirect URI "/cb": must be absolute`, "at Testfile:5"},
		{"redirect uri with fragment", strings.Replace(clientBlock, "secret s3cret", "secret s3cret\n\t\tredirect_uris https://a.example/cb#f", 1), "no fragment", "at Testfile:5"},
		{"control character in client_id", "tokengate {\n client \"a\tb\" {\n }\n}", "only printable ASCII", "at Testfile:2"},
		{"unknown identity provider", strings.Replace(clientBlock, "secret s3cret", "secret s3cret\n\t\tidentity_providers corp", 1), `client "svc": no identity provider is named "corp", at Testfile:5`, ""},
		{"users without users", "tokengate {\n issuer https://a.example\n users corp {\n }\n}", `users "corp": no user and no http_login, at Testfile:3`, ""},
		{"users and http_login", "tokengate {\n users corp {\n  user alice " + testHash + "\n  http_login https://a.example/login\n }\n}", "has both users and http_login", "at Testfile:2"},
		{"plaintext password", "tokengate {\n users corp {\n  user alice hunter2\n }\n}", `user "alice": the password must be a bcrypt hash (caddy hash-password), at Testfile:3`, ""},
		{"duplicate user", "tokengate {\n users corp {\n  user alice " + testHash + "\n  user alice " + testHash + "\n }\n}", `user "alice" is declared twice, at Testfile:4`, ""},
		{"duplicate users block", "tokengate {\n users corp {\n  http_login https://a.example/login\n }\n users corp {\n  http_login https://b.example/login\n }\n}", `users "corp" is declared twice, at Testfile:5`, ""},
		{"unknown user option", "tokengate {\n users corp {\n  user alice " + testHash + " {\n   role admin\n  }\n }\n}", `unrecognized subdirective "role", at Testfile:4`, ""},
		{"http_login not a URL", "tokengate {\n users corp {\n  http_login localhost/login\n }\n}", "want an absolute http or https URL", "at Testfile:3"},
		{"success_location not a URL", "tokengate {\n users corp {\n  http_login https://a.example/login {\n   success_location /home\n  }\n }\n}", "success_location: \"/home\": want an absolute http or https URL", "at Testfile:4"},
		{"success_location without value", "tokengate {\n users corp {\n  http_login https://a.example/login {\n   success_location\n  }\n }\n}", "wrong argument count", "at Testfile:4"},
		{"success_location twice", "tokengate {\n users corp {\n  http_login https://a.example/login {\n   success_location https://a.example/a\n   success_location https://a.example/b\n  }\n }\n}", "success_location is declared twice", "at Testfile:5"},
		{"an oidc option in github", "tokengate {\n issuer https://a.example\n github gh {\n  client_id c\n  issuer https://github.com\n }\n}", `unrecognized subdirective "issuer"`, "at Testfile:5"},
		{"userinfo neither on nor off", "tokengate {\n issuer https://a.example\n oidc corp {\n  issuer https://idp.example\n  client_id c\n  userinfo maybe\n }\n}", `userinfo takes on or off, not "maybe"`, "at Testfile:6"},
		{"client_secret twice", "tokengate {\n issuer https://a.example\n oidc corp {\n  issuer https://idp.example\n  client_id c\n  client_secret s3cret\n  client_secret s3cret\n }\n}", "client_secret is declared twice", "at Testfile:7"},
		{"unknown http_login option", "tokengate {\n users corp {\n  http_login https://a.example/login {\n   follow_redirects\n  }\n }\n}", `unrecognized subdirective "follow_redirects"`, "at Testfile:4"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseGlobal(tc.input)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.line) {
				t.Errorf("parseGlobalOption(%s) error = %v, want it to contain %q and %q", tc.name, err, tc.want, tc.line)
			}
			// The secrets and Redis passwords of these inputs are all s3cret.
			if err != nil && strings.Contains(err.Error(), "s3cret") {
				t.Errorf("parseGlobalOption(%s) error = %v, quoting a secret", tc.name, err)
			}
		})
	}
}

func TestParseGlobalOptionTwice(t *testing.T) {
	if _, err := parseGlobalOption(caddyfile.NewTestDispenser("tokengate {\n}"), httpcaddyfile.App{}); err == nil {
		t.Error("parseGlobalOption with an existing value = nil error, want one")
	}
}

func TestParseBearerAuth(t *testing.T) {
	for _, tc := range []struct {
		name, input, want string
	}{
		{"bare", "bearer_auth", `{}`},
		{"everything", `bearer_auth {
			scope api.read
			scope api.admin api.write
			audience api
			claim tenant acme
			header sub X-User
			header email X-Email
			forward_token
		}`, `{"scopes":[["api.read"],["api.admin","api.write"]],"audience":"api","claims":{"tenant":"acme"},` +
			`"headers":[{"claim":"sub","header":"X-User"},{"claim":"email","header":"X-Email"}],"forward_token":true}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b BearerAuth
			if err := b.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tc.input)); err != nil {
				t.Fatalf("UnmarshalCaddyfile(%s): %v", tc.name, err)
			}
			got, _ := json.Marshal(&b)
			if string(got) != tc.want {
				t.Errorf("UnmarshalCaddyfile(%s) = %s, want %s", tc.name, got, tc.want)
			}
		})
	}
}

func TestParseBearerAuthErrors(t *testing.T) {
	for _, tc := range []struct {
		name, input, want string
	}{
		{"argument", "bearer_auth api", "wrong argument count"},
		{"unknown", "bearer_auth {\n realm x\n}", `unrecognized subdirective "realm", at Testfile:2`},
		{"empty scope", "bearer_auth {\n scope\n}", "wrong argument count"},
		{"bad scope", "bearer_auth {\n scope \"a b\"\n}", `scope "a b"`},
		{"audience twice", "bearer_auth {\n audience a\n audience b\n}", "audience is declared twice, at Testfile:3"},
		{"audience list", "bearer_auth {\n audience a b\n}", "wrong argument count"},
		{"forward_token with an argument", "bearer_auth {\n forward_token yes\n}", "wrong argument count"},
		{"claim twice", "bearer_auth {\n claim t a\n claim t b\n}", `claim "t" is declared twice, at Testfile:3`},
		{"bad header", "bearer_auth {\n header sub \"X User\"\n}", `header "X User": not a valid header name, at Testfile:2`},
		{"header twice", "bearer_auth {\n header sub X-User\n header email x-user\n}", `header "x-user" is declared twice, at Testfile:3`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b BearerAuth
			err := b.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tc.input))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("UnmarshalCaddyfile(%s) error = %v, want it to contain %q", tc.name, err, tc.want)
			}
		})
	}
}

func TestParseHandler(t *testing.T) {
	for input, ok := range map[string]bool{
		"tokengate":                 true,
		"tokengate extra":           false,
		"tokengate {\n issuer x\n}": false,
	} {
		err := new(Handler).UnmarshalCaddyfile(caddyfile.NewTestDispenser(input))
		if (err == nil) != ok {
			t.Errorf("UnmarshalCaddyfile(%q) error = %v, want ok %v", input, err, ok)
		}
	}
}

// FuzzCaddyfile feeds arbitrary token streams to the global option parser, which must answer
// with a value or an error and never panic.
func FuzzCaddyfile(f *testing.F) {
	f.Add("tokengate {\n issuer https://a.example\n}")
	f.Add(clientBlock)
	f.Add("tokengate {\n users corp {\n  user alice " + testHash + " {\n   claim email a@b\n   tenant t\n  }\n  http_login https://x/\n }\n}")
	f.Add("tokengate {\n store bolt\n signing_key_file es256 k.pem kid\n code_ttl 1s\n}")
	f.Fuzz(func(t *testing.T, input string) {
		tokens, err := caddyfile.Tokenize([]byte(input), "Fuzzfile")
		if err != nil {
			return
		}
		v, err := parseGlobalOption(caddyfile.NewDispenser(tokens), nil)
		if err == nil && v.(httpcaddyfile.App).Name != "tokengate" {
			t.Errorf("parseGlobalOption(%q) = an app named %q, want tokengate", input, v.(httpcaddyfile.App).Name)
		}
	})
}
