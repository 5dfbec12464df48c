package grants

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// RFC 6749 §3.2, §5.1-5.2: transport and format.
func TestTransportAndFormat(t *testing.T) {
	f := newFixture(t)
	cc := vals("grant_type", "client_credentials").Encode()
	basic := [2]string{"app", "app-secret"}
	for _, tc := range []struct {
		name   string
		req    request
		status int
		code   string
	}{
		{"GET", request{method: http.MethodGet, basic: basic}, 405, CodeInvalidRequest},
		{"PUT", request{method: http.MethodPut, body: cc, basic: basic}, 405, CodeInvalidRequest},
		{"JSON body", request{contentType: "application/json", body: `{"grant_type":"client_credentials"}`, basic: basic}, 400, CodeInvalidRequest},
		{"no content type", request{contentType: " ", body: cc, basic: basic}, 400, CodeInvalidRequest},
		{"repeated grant_type", request{body: cc + "&grant_type=client_credentials", basic: basic}, 400, CodeInvalidRequest},
		{"repeated scope", request{body: cc + "&scope=api.read&scope=api.read", basic: basic}, 400, CodeInvalidRequest},
		{"parameters in the URL", request{target: "/connect/token?grant_type=client_credentials", basic: basic}, 400, CodeInvalidRequest},
		{"same parameter in URL and body", request{target: "/connect/token?scope=api.read", body: cc, basic: basic}, 400, CodeInvalidRequest},
		{"credentials in the URL", request{target: "/connect/token?client_id=app&client_secret=app-secret", body: cc}, 400, CodeInvalidRequest},
		{"missing grant_type", request{body: "scope=api.read", basic: basic}, 400, CodeInvalidRequest},
		{"empty grant_type", request{body: "grant_type=", basic: basic}, 400, CodeInvalidRequest},
		{"unknown grant_type", request{body: "grant_type=urn:example:magic", basic: basic}, 400, CodeUnsupportedGrantType},
		{"grant the client lacks", request{body: "grant_type=urn:ietf:params:oauth:grant-type:device_code&device_code=x", basic: basic}, 400, CodeUnauthorizedClient},
		{"bad percent encoding", request{body: "grant_type=client_credentials&scope=%zz", basic: basic}, 400, CodeInvalidRequest},
		{"semicolon separator", request{body: "grant_type=client_credentials;scope=api.read", basic: basic}, 400, CodeInvalidRequest},
		{"NUL byte", request{body: cc + "&scope=api%00read", basic: basic}, 400, CodeInvalidRequest},
		{"body over the cap", request{body: cc + "&pad=" + strings.Repeat("a", maxBody), basic: basic}, 413, CodeInvalidRequest},
	} {
		f.expectError(tc.name, f.do(tc.req), tc.status, tc.code)
	}
	if resp := f.do(request{method: http.MethodGet}); resp.header.Get("Allow") != "POST" {
		t.Errorf("405 Allow = %q, want POST", resp.header.Get("Allow"))
	}
}

func TestSuccessResponseFormat(t *testing.T) {
	f := newFixture(t)
	resp := f.do(request{contentType: "application/x-www-form-urlencoded; charset=UTF-8",
		body: "grant_type=client_credentials&unknown_parameter=ignored", basic: [2]string{"app", "app-secret"}})
	f.expectOK("charset and an unknown parameter", resp)
	for header, want := range map[string]string{"Content-Type": "application/json", "Cache-Control": "no-store", "Pragma": "no-cache"} {
		if got := resp.header.Get(header); got != want {
			t.Errorf("%s = %q, want %q", header, got, want)
		}
	}
	if resp.str("token_type") != "Bearer" || resp.json["expires_in"] != float64(3600) {
		t.Errorf("token_type, expires_in = %v, %v, want Bearer, 3600", resp.json["token_type"], resp.json["expires_in"])
	}
	if resp.str("scope") != "api.read api.write" {
		t.Errorf("default scope = %q, want the client's API scopes", resp.str("scope"))
	}
	if _, ok := resp.json["refresh_token"]; ok {
		t.Error("client_credentials returned a refresh token (RFC 6749 §4.4.3)")
	}
}

// RFC 6749 §5.2: error_description carries only %x20-21 / %x23-5B / %x5D-7E, whatever the input.
func TestErrorDescriptionIsWireSafe(t *testing.T) {
	f := newFixture(t)
	for _, body := range []string{
		"grant_type=client_credentials&scope=caf%C3%A9",
		"grant_type=client_credentials&scope=a%22b",
		"grant_type=client_credentials&x%C3%A9%0D%0A=1&x%C3%A9%0D%0A=2",
	} {
		resp := f.do(request{body: body, basic: [2]string{"app", "app-secret"}})
		for _, r := range resp.str("error_description") {
			if r < 0x20 || r == '"' || r == '\\' || r > 0x7E {
				t.Errorf("%s: error_description %q holds %q", body, resp.str("error_description"), r)
			}
		}
	}
}

// RFC 6749 §2.3.1, §3.2.1: client authentication.
func TestClientAuthentication(t *testing.T) {
	f := newFixture(t)
	cc := "grant_type=client_credentials"
	for _, tc := range []struct {
		name   string
		req    request
		status int
		code   string
	}{
		{"Basic", request{body: cc, basic: [2]string{"app", "app-secret"}}, 200, ""},
		{"post", request{body: cc + "&client_id=app&client_secret=app-secret"}, 200, ""},
		{"Basic with a form-encoded secret", request{body: cc, basic: [2]string{"plain", "p:%+& secret"}}, 200, ""},
		{"Basic plus an empty body secret", request{body: cc + "&client_secret=", basic: [2]string{"app", "app-secret"}}, 200, ""},
		{"Basic plus the same body client_id", request{body: cc + "&client_id=app", basic: [2]string{"app", "app-secret"}}, 200, ""},
		{"scheme in lower case", request{body: cc, header: map[string]string{"Authorization": "basic YXBwOmFwcC1zZWNyZXQ="}}, 200, ""},
		{"Basic wrong secret", request{body: cc, basic: [2]string{"app", "wrong"}}, 401, CodeInvalidClient},
		{"post wrong secret", request{body: cc + "&client_id=app&client_secret=wrong"}, 401, CodeInvalidClient},
		{"no authentication", request{body: cc + "&client_id=app"}, 401, CodeInvalidClient},
		{"nothing at all", request{body: cc}, 401, CodeInvalidClient},
		{"bad base64", request{body: cc, header: map[string]string{"Authorization": "Basic %%%"}}, 401, CodeInvalidClient},
		{"no colon", request{body: cc, header: map[string]string{"Authorization": "Basic YXBw"}}, 401, CodeInvalidClient},
		{"bad escape in Basic", request{body: cc, header: map[string]string{"Authorization": "Basic YXBwJXp6OnNlY3JldA=="}}, 401, CodeInvalidClient},
		{"Basic plus body secret", request{body: cc + "&client_secret=app-secret", basic: [2]string{"app", "app-secret"}}, 400, CodeInvalidRequest},
		{"Basic plus assertion", request{body: cc + "&client_assertion=x.y.z", basic: [2]string{"app", "app-secret"}}, 400, CodeInvalidRequest},
		{"body secret plus assertion", request{body: cc + "&client_id=app&client_secret=app-secret&client_assertion=x.y.z"}, 400, CodeInvalidRequest},
		{"body client_id contradicts Basic", request{body: cc + "&client_id=plain", basic: [2]string{"app", "app-secret"}}, 400, CodeInvalidRequest},
		{"NFD look-alike id", request{body: cc, basic: [2]string{"a\u0301pp", "app-secret"}}, 401, CodeInvalidClient},
		{"id with NUL", request{body: cc + "&client_id=app%00x&client_secret=app-secret"}, 400, CodeInvalidRequest},
		{"id in another case", request{body: cc, basic: [2]string{"APP", "app-secret"}}, 401, CodeInvalidClient},
		{"public client sends a secret", request{body: "grant_type=password&username=alice&password=alice-pw&client_id=spa&client_secret=x"}, 401, CodeInvalidClient},
	} {
		resp := f.do(tc.req)
		if tc.status == 200 {
			f.expectOK(tc.name, resp)
			continue
		}
		f.expectError(tc.name, resp, tc.status, tc.code)
		// RFC 6749 §5.2: a client that tried Basic must get a Basic challenge with its 401.
		if tc.status == 401 && tc.req.basic[0] != "" && !strings.HasPrefix(resp.header.Get("WWW-Authenticate"), "Basic") {
			t.Errorf("%s: WWW-Authenticate = %q, want a Basic challenge", tc.name, resp.header.Get("WWW-Authenticate"))
		}
	}
}

// An unknown client and a wrong secret must be indistinguishable (RFC 6749 §5.2: one invalid_client for both).
func TestUnknownClientLooksLikeWrongSecret(t *testing.T) {
	f := newFixture(t)
	wrong := f.do(request{body: "grant_type=client_credentials", basic: [2]string{"app", "wrong"}})
	unknown := f.do(request{body: "grant_type=client_credentials", basic: [2]string{"nobody", "wrong"}})
	if wrong.raw != unknown.raw || wrong.status != unknown.status {
		t.Fatalf("wrong secret %d %q, unknown client %d %q: want identical", wrong.status, wrong.raw, unknown.status, unknown.raw)
	}
}

func TestGrantNotRegistered(t *testing.T) {
	f := newFixture(t)
	resp := f.do(request{body: "grant_type=client_credentials", basic: [2]string{"pwonly", "pwonly-secret"}})
	f.expectError("client_credentials for a password-only client", resp, 400, CodeUnauthorizedClient)
	// Checked before the token is looked up: an unknown token still says unauthorized_client.
	resp = f.do(request{body: "grant_type=refresh_token&refresh_token=unknown", basic: [2]string{"pwonly", "pwonly-secret"}})
	f.expectError("refresh_token for a password-only client", resp, 400, CodeUnauthorizedClient)
}

func TestScope(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		scope string
		code  string
		want  string
	}{
		{"", "", "api.read api.write"},
		{"api.read", "", "api.read"},
		{"api.read  api.read", "", "api.read"},
		{"api.admin", CodeInvalidScope, ""},
		{"openid", CodeInvalidScope, ""}, // no user in client_credentials
		{"café", CodeInvalidScope, ""},
		{`api"read`, CodeInvalidScope, ""},
		{`api\read`, CodeInvalidScope, ""},
	} {
		resp := f.post(vals("grant_type", "client_credentials", "scope", tc.scope))
		if tc.code != "" {
			f.expectError("scope "+tc.scope, resp, 400, tc.code)
			continue
		}
		f.expectOK("scope "+tc.scope, resp)
		if resp.str("scope") != tc.want {
			t.Errorf("scope %q granted %q, want %q", tc.scope, resp.str("scope"), tc.want)
		}
	}
}

// New refuses a configuration without the URLs its answers name.
func TestNewRequiresTheEndpointURLs(t *testing.T) {
	base := newFixture(t).srv.cfg
	for name, unset := range map[string]func(*Config){
		"an issuer":          func(c *Config) { c.Issuer = "" },
		"a token endpoint":   func(c *Config) { c.TokenEndpoint = "" },
		"a verification URI": func(c *Config) { c.VerificationURI = "" },
		"a store":            func(c *Config) { c.Store = nil },
	} {
		cfg := base
		unset(&cfg)
		if _, err := New(cfg); err == nil {
			t.Errorf("New without %s: no error", name)
		}
	}
}

// Failed client authentication is not throttled under 50 a minute, but a flood is: each failure
// costs a bcrypt compare.
func TestClientAuthFloodIsThrottled(t *testing.T) {
	f := newFixture(t)
	wrong := request{body: "grant_type=client_credentials", basic: [2]string{"app", "wrong"}}
	for i := 0; i < 50; i++ {
		f.expectError("wrong secret", f.do(wrong), 401, CodeInvalidClient)
		f.Advance(time.Second)
	}
	var throttled *response
	for i := 0; i < 200 && throttled == nil; i++ {
		if resp := f.do(wrong); resp.status == http.StatusTooManyRequests {
			throttled = resp
		}
	}
	if throttled == nil || throttled.header.Get("Retry-After") == "" {
		t.Fatal("250 wrong secrets within a minute and a half were never answered 429 with Retry-After")
	}
	// Another client is unaffected.
	f.expectOK("another client", f.do(request{body: "grant_type=client_credentials", basic: [2]string{"plain", "p:%+& secret"}}))
}

// x/oauth2 reads expires_in 0 as "never expires" and would never refresh: a one-second token must
// say 1 even when the request arrived mid-second.
func TestExpiresInNeverRoundsToZero(t *testing.T) {
	now := time.Unix(1000, 900_000_000)
	for _, tc := range []struct {
		exp  time.Time
		want int64
	}{
		{time.Unix(1001, 0), 1},
		{time.Unix(1001, 900_000_000), 1},
		{time.Unix(4600, 0), 3600},
	} {
		if got := expiresIn(tc.exp, now); got != tc.want {
			t.Errorf("expiresIn(%v) = %d, want %d", tc.exp, got, tc.want)
		}
	}
}

// The throttles name an address as Config.ClientIP does, or as the TCP peer without its port.
func TestClientIP(t *testing.T) {
	byPeer := newFixture(t).srv
	cfg := byPeer.cfg
	cfg.ClientIP = func(r *http.Request) string { return r.Header.Get("X-Test-Address") }
	byHeader, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r, _ := http.NewRequest(http.MethodPost, "/", nil)
	r.RemoteAddr = "192.0.2.7:54321"
	r.Header.Set("X-Test-Address", "198.51.100.9")
	for _, tc := range []struct {
		name string
		srv  *Server
		want string
	}{
		{"configured", byHeader, "198.51.100.9"},
		{"peer", byPeer, "192.0.2.7"},
	} {
		if got := tc.srv.cfg.ClientIP(r); got != tc.want {
			t.Errorf("ClientIP(%s) = %q, want %q", tc.name, got, tc.want)
		}
	}
}
