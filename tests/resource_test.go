package tests

import (
	"encoding/json"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/tokengate/tokengate/internal/jwtpart"
)

// resourceCaddyfile has tokengate on {{BASE}}, and on {{BASE2}}, without the tokengate directive,
// two protected resources ({{BASE2}}/mcp, whose two blocks name mcp.tools and mcp.admin, and
// {{BASE2}}/files) in front of an upstream that greets the caller. The browser client mcp-app and
// the machine client svc may get both resources.
const resourceCaddyfile = `{
	tokengate {
		issuer {{BASE}}
		store memory
		client mcp-app {
			public
			grants authorization_code refresh_token
			scopes openid offline_access mcp.tools mcp.admin
			audience {{BASE2}}/mcp {{BASE2}}/files
			redirect_uris http://127.0.0.1:1/callback
		}
		client svc {
			secret svc-secret
			grants client_credentials password refresh_token
			scopes offline_access mcp.tools mcp.admin
			audience api {{BASE2}}/mcp {{BASE2}}/files
		}
		users staff {
			user alice {{ALICE_HASH}}
		}
	}
}

{{BASE}} {
	tokengate
}

{{BASE2}} {
	bearer_auth /mcp* {
		resource {{BASE2}}/mcp
		scope mcp.tools
		header sub X-User
	}
	bearer_auth /mcp/admin* {
		resource {{BASE2}}/mcp
		scope mcp.admin
	}
	bearer_auth /files* {
		resource {{BASE2}}/files
		scope mcp.admin
	}
	respond "hello {http.auth.user.id}"
}
`

// startResourceCaddy runs resourceCaddyfile; resources is {{BASE2}}.
func startResourceCaddy(t *testing.T) (c *Caddy, resources string) {
	t.Helper()
	c = startCaddy(t, strings.ReplaceAll(resourceCaddyfile, "{{ALICE_HASH}}", aliceHash()))
	return c, c.vars.Replace("{{BASE2}}")
}

// getAt GETs path on site with token (none when empty).
func getAt(t *testing.T, c *Caddy, site, path, token string) reply {
	t.Helper()
	return send(t, c, request{method: http.MethodGet, base: site, path: path, header: bearer(token, nil)})
}

// svcAsks sends pairs to the token endpoint as the client svc.
func svcAsks(t *testing.T, c *Caddy, pairs ...string) reply {
	t.Helper()
	return postToken(t, c, basicAuth("svc", "svc-secret"), formBody(pairs...))
}

// audOf is the aud claim of token: a string or an array.
func audOf(t *testing.T, token string) any {
	t.Helper()
	var claims map[string]any
	jwtpart.Decode(t, token, jwtpart.Payload, &claims)
	return claims["aud"]
}

// RFC 9728: each resource's metadata is served at its path-inserted well-known URL on the site of
// its bearer_auth, whatever that directive's matcher, though the site has no tokengate directive.
func TestResourceMetadataDocument(t *testing.T) {
	t.Parallel()
	c, site := startResourceCaddy(t)
	for _, tc := range []struct {
		path string
		want map[string]any
	}{
		{"/.well-known/oauth-protected-resource/mcp", map[string]any{
			"resource": site + "/mcp", "authorization_servers": []any{c.Base},
			"scopes_supported": []any{"mcp.admin", "mcp.tools"}, "bearer_methods_supported": []any{"header"}}},
		{"/.well-known/oauth-protected-resource/files", map[string]any{
			"resource": site + "/files", "authorization_servers": []any{c.Base},
			"scopes_supported": []any{"mcp.admin"}, "bearer_methods_supported": []any{"header"}}},
	} {
		r := getAt(t, c, site, tc.path, "")
		var got map[string]any
		if err := json.Unmarshal(r.body, &got); err != nil || r.status != http.StatusOK {
			t.Fatalf("GET %s = %d %s, want 200 and JSON", tc.path, r.status, r.body)
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("GET %s = %v, want %v", tc.path, got, tc.want)
		}
		if ct, cors := r.header.Get("Content-Type"), r.header.Get("Access-Control-Allow-Origin"); ct != "application/json" || cors != "*" {
			t.Errorf("GET %s: Content-Type %q, Access-Control-Allow-Origin %q; want application/json and *", tc.path, ct, cors)
		}
	}
	// The document is the resource site's: the authorization server's site does not serve it.
	if r := getAt(t, c, "", "/.well-known/oauth-protected-resource/mcp", ""); r.status == http.StatusOK && len(r.body) > 0 {
		t.Errorf("the tokengate site serves the resource's metadata: %s", r.body)
	}
}

// RFC 9728 §5.1, RFC 6750 §3: every refusal at a resource names its metadata; the bare 401 and the
// 403 name the route's scope line; a token for another resource is 401 invalid_token whatever its
// scopes, never insufficient_scope; a token for this one with its scope passes.
func TestResourceChallengesAndAudience(t *testing.T) {
	t.Parallel()
	c, site := startResourceCaddy(t)
	meta := `resource_metadata="` + site + `/.well-known/oauth-protected-resource/mcp"`
	realm := `Bearer realm="` + c.Base + `"`

	bare := getAt(t, c, site, "/mcp", "")
	if want := realm + `, scope="mcp.tools", ` + meta; bare.status != http.StatusUnauthorized || bare.header.Get("WWW-Authenticate") != want {
		t.Errorf("GET /mcp without a token = %d %q, want 401 %q", bare.status, bare.header.Get("WWW-Authenticate"), want)
	}

	token := func(pairs ...string) string {
		t.Helper()
		return wantToken(t, "svc's token", svcAsks(t, c, append([]string{"grant_type", "client_credentials"}, pairs...)...)).AccessToken
	}
	forFiles := token("scope", "mcp.tools mcp.admin", "resource", site+"/files")
	forMCP := token("scope", "mcp.tools", "resource", site+"/mcp")
	adminOnly := token("scope", "mcp.admin", "resource", site+"/mcp")
	forAll := token("scope", "mcp.tools mcp.admin")
	for _, tc := range []struct {
		name, path, token string
		status            int
		challenge         string
	}{
		{"a token for the other resource, with every scope", "/mcp", forFiles, http.StatusUnauthorized, realm + `, error="invalid_token", ` + meta},
		{"the resource's token without its scope", "/mcp", adminOnly, http.StatusForbidden, realm + `, error="insufficient_scope", scope="mcp.tools", ` + meta},
		{"the resource's token", "/mcp", forMCP, http.StatusOK, ""},
		{"the other resource's token there", "/files", forFiles, http.StatusOK, ""},
		{"a token without resource: the client's whole audience", "/mcp", forAll, http.StatusOK, ""},
	} {
		r := getAt(t, c, site, tc.path, tc.token)
		if r.status != tc.status || r.header.Get("WWW-Authenticate") != tc.challenge {
			t.Errorf("%s: GET %s = %d %q, want %d %q", tc.name, tc.path, r.status, r.header.Get("WWW-Authenticate"), tc.status, tc.challenge)
		}
	}
	if r := getAt(t, c, site, "/mcp", forMCP); string(r.body) != "hello svc" {
		t.Errorf("GET /mcp with the resource's token = %q, want hello svc", r.body)
	}
}

// RFC 8707 at the token endpoint: the aud is exactly the resources asked for; a refresh narrows it
// to part of the grant's and the next one gets them all back; anything else is invalid_target.
func TestResourceIndicatorsAtTheTokenEndpoint(t *testing.T) {
	t.Parallel()
	c, site := startResourceCaddy(t)
	mcp, files := site+"/mcp", site+"/files"

	for _, tc := range []struct{ name, resource string }{
		{"a resource not the client's", "https://evil.example/mcp"},
		{"a fragment", mcp + "#x"},
		{"a relative URI", "/mcp"},
		{"a slash added", mcp + "/"},
	} {
		r := svcAsks(t, c, "grant_type", "client_credentials", "scope", "mcp.tools", "resource", tc.resource)
		wantError(t, tc.name, r, "invalid_target", http.StatusBadRequest)
	}

	login := wantToken(t, "password grant for both resources", svcAsks(t, c, "grant_type", "password", "username", "alice",
		"password", alicePassword, "scope", "offline_access mcp.tools mcp.admin", "resource", mcp, "resource", files))
	if got := audOf(t, login.AccessToken); !reflect.DeepEqual(got, []any{mcp, files}) {
		t.Errorf("password grant aud = %v, want [%s %s]", got, mcp, files)
	}
	narrowed := wantToken(t, "refresh for files", svcAsks(t, c, "grant_type", "refresh_token", "refresh_token", login.RefreshToken, "resource", files))
	if got := audOf(t, narrowed.AccessToken); got != files {
		t.Errorf("narrowed refresh aud = %v, want %s", got, files)
	}
	if r := getAt(t, c, site, "/mcp", narrowed.AccessToken); r.status != http.StatusUnauthorized {
		t.Errorf("the token narrowed to files at /mcp = %d, want 401", r.status)
	}
	if r := getAt(t, c, site, "/files", narrowed.AccessToken); r.status != http.StatusOK {
		t.Errorf("the token narrowed to files at /files = %d, want 200", r.status)
	}
	wantError(t, "a refresh for a resource of the client outside the grant",
		svcAsks(t, c, "grant_type", "refresh_token", "refresh_token", narrowed.RefreshToken, "resource", "api"), "invalid_target", http.StatusBadRequest)
	whole := wantToken(t, "refresh without resource", svcAsks(t, c, "grant_type", "refresh_token", "refresh_token", narrowed.RefreshToken))
	if got := audOf(t, whole.AccessToken); !reflect.DeepEqual(got, []any{mcp, files}) {
		t.Errorf("the next refresh's aud = %v, want both resources again", got)
	}
	if r := getAt(t, c, site, "/mcp", whole.AccessToken); r.status != http.StatusOK || string(r.body) != "hello alice" {
		t.Errorf("the whole grant's token at /mcp = %d %q, want 200 hello alice", r.status, r.body)
	}
}

// RFC 8707 and RFC 9207 at the authorization endpoint, with RFC 8414's metadata saying so: a
// resource the client may not get comes back as invalid_target with state and iss (after the
// error page for an unknown client); one it may get rides the sign-in into the code and the token.
func TestResourceIndicatorsAtTheAuthorizationEndpoint(t *testing.T) {
	t.Parallel()
	c, site := startResourceCaddy(t)
	mcp := site + "/mcp"

	var meta struct {
		Issuer      string   `json:"issuer"`
		IssSupport  bool     `json:"authorization_response_iss_parameter_supported"`
		PKCE        []string `json:"code_challenge_methods_supported"`
		ResponseTys []string `json:"response_types_supported"`
	}
	r := send(t, c, request{method: http.MethodGet, path: "/.well-known/oauth-authorization-server"})
	if err := json.Unmarshal(r.body, &meta); err != nil || meta.Issuer != c.Base || !meta.IssSupport ||
		!reflect.DeepEqual(meta.PKCE, []string{"S256"}) || !reflect.DeepEqual(meta.ResponseTys, []string{"code"}) {
		t.Errorf("RFC 8414 metadata = %s, want the issuer, iss support, S256 and code", r.body)
	}

	verifier := oauth2.GenerateVerifier()
	authorize := func(f *formClient, kv ...string) formPage {
		q := url.Values{"client_id": {"mcp-app"}, "redirect_uri": {"http://127.0.0.1:1/callback"}, "response_type": {"code"},
			"scope": {"mcp.tools offline_access"}, "state": {"s1"}, "code_challenge": {oauth2.S256ChallengeFromVerifier(verifier)},
			"code_challenge_method": {"S256"}}
		for i := 0; i < len(kv); i += 2 {
			q.Add(kv[i], kv[i+1])
		}
		return f.submit(c.URL("/connect/authorize?"+q.Encode()), nil)
	}
	for _, tc := range []struct {
		name string
		kv   []string
	}{
		{"a resource not the client's", []string{"resource", "https://evil.example/mcp"}},
		{"one of two not the client's", []string{"resource", mcp, "resource", site + "/other"}},
		{"a fragment", []string{"resource", mcp + "#x"}},
	} {
		page := authorize(newFormClient(t), tc.kv...)
		if page.location == nil {
			t.Errorf("%s: HTTP %d, want a redirect to the client", tc.name, page.status)
			continue
		}
		q := page.location.Query()
		if q.Get("error") != "invalid_target" || q.Get("state") != "s1" || q.Get("iss") != c.Base || q.Has("code") {
			t.Errorf("%s: redirect to %s, want error=invalid_target, state s1 and iss %s", tc.name, page.location, c.Base)
		}
	}
	unknown := newFormClient(t).submit(c.URL("/connect/authorize?"+url.Values{"client_id": {"nobody"}, "redirect_uri": {"http://127.0.0.1:1/callback"},
		"response_type": {"code"}, "resource": {"https://evil.example/mcp"}}.Encode()), nil)
	if unknown.status != http.StatusBadRequest || unknown.location != nil {
		t.Errorf("an unknown client with a foreign resource: HTTP %d, location %v; want the 400 page", unknown.status, unknown.location)
	}

	browser := newFormClient(t)
	form := authorize(browser, "resource", mcp)
	if form.fields.Get("resource") != mcp {
		t.Fatalf("the sign-in form does not carry the resource: %v", form.fields)
	}
	form.fields.Set("username", "alice")
	form.fields.Set("password", alicePassword)
	back := browser.submit(c.URL("/connect/authorize"), form.fields)
	if back.location == nil || back.location.Query().Get("iss") != c.Base || back.location.Query().Get("code") == "" {
		t.Fatalf("sign-in: HTTP %d, location %v; want a code with iss %s", back.status, back.location, c.Base)
	}
	tok := wantToken(t, "the code", postToken(t, c, nil, formBody("grant_type", "authorization_code", "client_id", "mcp-app",
		"code", back.location.Query().Get("code"), "redirect_uri", "http://127.0.0.1:1/callback", "code_verifier", verifier)))
	if got := audOf(t, tok.AccessToken); got != mcp {
		t.Errorf("the code's token aud = %v, want %s", got, mcp)
	}
	if r := getAt(t, c, site, "/mcp", tok.AccessToken); r.status != http.StatusOK || string(r.body) != "hello alice" {
		t.Errorf("the code's token at /mcp = %d %q, want 200 hello alice", r.status, r.body)
	}
	if r := getAt(t, c, site, "/files", tok.AccessToken); r.status != http.StatusUnauthorized {
		t.Errorf("the code's token for /mcp at /files = %d, want 401", r.status)
	}
}
