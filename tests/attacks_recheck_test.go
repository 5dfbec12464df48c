package tests

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokengate/tokengate/internal/jwtpart"
	"golang.org/x/oauth2"
)

// Attacks found uncovered when the security checklist was re-read against the code: request
// headers a client writes itself that must not name its address or this server's URL, and the
// entropy of the one-time codes the endpoints hand out.

// spoofingTransport writes, on every request, headers that claim another client address and
// another public URL of this server: what a client sends to pass for many clients, or to have
// this server name an attacker's host (caddy-security CVE-2024-21494, CVE-2024-21499).
type spoofingTransport struct {
	sent atomic.Int32
}

func (s *spoofingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	n := s.sent.Add(1)
	r = r.Clone(r.Context())
	address := fmt.Sprintf("198.51.100.%d", n%250+1)
	r.Header.Set("X-Forwarded-For", address)
	r.Header.Set("X-Real-IP", address)
	r.Header.Set("Forwarded", "for="+address+";host=evil.example;proto=https")
	r.Header.Set("X-Forwarded-Host", "evil.example")
	r.Header.Set("X-Forwarded-Proto", "https")
	r.Header.Set("X-Forwarded-Prefix", "/evil")
	return http.DefaultTransport.RoundTrip(r)
}

// spoofingClient is an HTTP client whose every request carries spoofingTransport's headers.
func spoofingClient() *http.Client {
	return &http.Client{Transport: &spoofingTransport{}, Timeout: requestTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// Caddy trusts no proxy unless told to (trusted_proxies), so a client's own X-Forwarded-For and
// Forwarded headers never give it a fresh address at a throttle counted per address, and its
// X-Forwarded-Host and -Proto never change the URLs this server names itself by, which come from
// the configured issuer (caddy-security CVE-2024-21494, CVE-2024-21499).
func TestAttackRecheckForwardedHeaders(t *testing.T) {
	t.Parallel()
	c, _ := startRaceAttackCaddy(t)

	t.Run("user code guesses", func(t *testing.T) {
		// RFC 8628 §5.1: user codes are short, so wrong ones are limited per address, from the 10th
		// in a minute; a guesser claiming a new address each time is still one address.
		guesser := newFormClient(t)
		guesser.client.Transport = &spoofingTransport{}
		form := guesser.submit(c.URL("/connect/device"), nil).fields
		throttled := false
		for i := 1; i <= 10 && !throttled; i++ {
			form.Set("user_code", "BCDF-GHJ"+string("BCDFGHJKLM"[i-1]))
			page := guesser.submit(c.URL("/connect/device"), form)
			switch page.status {
			case http.StatusTooManyRequests:
				throttled = true
			case http.StatusBadRequest:
			default:
				t.Fatalf("wrong user code %d: HTTP %d, want 400 or 429:\n%.300s", i, page.status, page.body)
			}
		}
		if !throttled {
			t.Error("10 wrong user codes, each from a spoofed X-Forwarded-For: none answered 429, want the 10th throttled")
		}
	})

	t.Run("device authorization flood", func(t *testing.T) {
		// RFC 8628 §3.1: a client's device authorizations are limited per address, from the 101st in
		// a minute.
		spoofer := spoofingClient()
		var last reply
		for i := 1; i <= 101; i++ {
			last = send(t, c, request{path: "/connect/deviceauthorization", client: spoofer,
				body: formBody("client_id", "tv", "scope", "api.read")})
		}
		wantThrottled(t, "the 101st device authorization, each from a spoofed X-Forwarded-For", last)
	})

	t.Run("this server's URLs", func(t *testing.T) {
		spoofer := spoofingClient()
		r := send(t, c, request{method: http.MethodGet, path: "/.well-known/openid-configuration", client: spoofer})
		var discovery map[string]any
		if err := json.Unmarshal(r.body, &discovery); err != nil || r.status != http.StatusOK {
			t.Fatalf("discovery with forwarded headers = HTTP %d %.200s (%v), want 200 and JSON", r.status, r.body, err)
		}
		if discovery["issuer"] != c.Base {
			t.Errorf("discovery issuer with forwarded headers = %v, want the configured %s", discovery["issuer"], c.Base)
		}
		for name, v := range discovery {
			if !strings.HasSuffix(name, "_endpoint") && name != "jwks_uri" {
				continue
			}
			if s, _ := v.(string); !strings.HasPrefix(s, c.Base+"/") {
				t.Errorf("discovery %s with forwarded headers = %v, want a URL under %s", name, v, c.Base)
			}
		}

		r = send(t, c, request{path: "/connect/deviceauthorization", client: spoofer, body: formBody("client_id", "tv2", "scope", "api.read")})
		var device struct {
			VerificationURI         string `json:"verification_uri"`
			VerificationURIComplete string `json:"verification_uri_complete"`
		}
		if err := json.Unmarshal(r.body, &device); err != nil || r.status != http.StatusOK {
			t.Fatalf("device authorization with forwarded headers = HTTP %d %.200s (%v), want 200", r.status, r.body, err)
		}
		for _, u := range []string{device.VerificationURI, device.VerificationURIComplete} {
			if !strings.HasPrefix(u, c.Base+"/") {
				t.Errorf("device authorization with forwarded headers names %q, want a URL under %s", u, c.Base)
			}
		}

		tok := wantToken(t, "password grant with forwarded headers", send(t, c, request{path: "/connect/token", client: spoofer,
			header: basicAuth("web", "web-secret"), body: formBody("grant_type", "password", "username", "dave", "password", alicePassword)}))
		var claims struct{ Iss string }
		jwtpart.Decode(t, tok.AccessToken, jwtpart.Payload, &claims)
		if claims.Iss != c.Base {
			t.Errorf("access token iss with forwarded headers = %q, want the configured %s", claims.Iss, c.Base)
		}
	})
}

// RFC 6749 §10.10: authorization codes, and device codes (RFC 8628 §5.2), carry at least 128 bits
// of entropy in VSCHAR (A.11), so that they cannot be guessed; and a code of a megabyte is refused
// at once.
func TestAttackRecheckCodeEntropy(t *testing.T) {
	t.Parallel()
	c, _ := startRaceAttackCaddy(t)
	// 128 bits need 22 characters of base64url.
	wantUnguessable := func(what string, values []string) {
		t.Helper()
		seen := map[string]bool{}
		for _, v := range values {
			if len(v) < 22 || strings.IndexFunc(v, func(r rune) bool { return r < 0x20 || r > 0x7e }) >= 0 {
				t.Errorf("%s = %q, want at least 22 VSCHAR characters (128 bits)", what, v)
			}
			if seen[v] {
				t.Errorf("%s = %q, issued twice, want a fresh random one each time", what, v)
			}
			seen[v] = true
		}
	}

	var codes []string
	for range 3 {
		code, _, page := signInWith(t, newFormClient(t), c, "openid api.read", "", "erin", alicePassword)
		if code == "" {
			t.Fatalf("sign-in for erin: HTTP %d, location %v, want a redirect with a code", page.status, page.location)
		}
		codes = append(codes, code)
	}
	wantUnguessable("authorization code", codes)

	var deviceCodes []string
	for range 3 {
		r := send(t, c, request{path: "/connect/deviceauthorization", body: formBody("client_id", "tv", "scope", "api.read")})
		var auth struct {
			DeviceCode string `json:"device_code"`
		}
		if err := json.Unmarshal(r.body, &auth); err != nil || r.status != http.StatusOK {
			t.Fatalf("device authorization = HTTP %d %.200s (%v), want 200", r.status, r.body, err)
		}
		deviceCodes = append(deviceCodes, auth.DeviceCode)
	}
	wantUnguessable("device_code", deviceCodes)

	r := postToken(t, c, nil, formBody("grant_type", "authorization_code", "client_id", "app", "code", strings.Repeat("A", 1_000_000),
		"redirect_uri", appRedirectURI, "code_verifier", strings.Repeat("v", 43)))
	wantError(t, "a 1 MB code", r, "invalid_grant")
	if r.elapsed > 3*time.Second {
		t.Errorf("a 1 MB code: answered in %v, want under 3s", r.elapsed)
	}
}

// A loopback redirect URI is matched like any other, byte for byte: another host, path, query or
// fragment is refused before anything goes to it, and a code sent to it is redeemed only with it
// (fosite CVE-2020-15233 ignored the query and host of loopback URIs; RFC 9700 §2.1).
func TestAttackRecheckLoopbackRedirect(t *testing.T) {
	t.Parallel()
	c, _ := startRaceAttackCaddy(t)
	variants := []string{
		"http://localhost:9/cb",
		"http://127.0.0.2:9/cb",
		"http://[::1]:9/cb",
		"http://127.0.0.1:9/cb/",
		"http://127.0.0.1:9/cb?x=1",
		"http://127.0.0.1:9/cb#x",
		"http://127.0.0.1:9/CB",
		"https://127.0.0.1:9/cb",
		"http://127.0.0.1:9@evil.example/cb",
	}
	for _, redirect := range variants {
		query := url.Values{"client_id": {"app"}, "redirect_uri": {redirect}, "response_type": {"code"}, "scope": {"openid"},
			"code_challenge": {oauth2.S256ChallengeFromVerifier(oauth2.GenerateVerifier())}, "code_challenge_method": {"S256"}}
		page := newFormClient(t).submit(c.URL("/connect/authorize?"+query.Encode()), nil)
		if page.status != http.StatusBadRequest || page.location != nil {
			t.Errorf("authorize to %s = HTTP %d, Location %v, want 400 and no redirect", redirect, page.status, page.location)
		}
	}
	for _, redirect := range variants[:3] {
		code, verifier, page := signInWith(t, newFormClient(t), c, "openid api.read", "", "frank", alicePassword)
		if code == "" {
			t.Fatalf("sign-in for frank: HTTP %d, location %v, want a redirect with a code", page.status, page.location)
		}
		r := postToken(t, c, nil, formBody("grant_type", "authorization_code", "client_id", "app", "code", code,
			"redirect_uri", redirect, "code_verifier", verifier))
		wantError(t, "a code redeemed with redirect_uri "+redirect, r, "invalid_grant")
	}
}

// deviceIdPCaddyfile has a device app, tv, whose people sign in only through the users block
// partners; alice of local and bob of partners have the same password.
const deviceIdPCaddyfile = `{
	tokengate {
		issuer {{BASE}}
		store memory
		client tv {
			public
			grants device_code
			scopes api.read
			audience api
			identity_providers partners
		}
		users local {
			user alice {{ALICE_HASH}}
		}
		users partners {
			user bob {{ALICE_HASH}}
		}
	}
}

{{BASE}} {
	tokengate
}
`

// The device page lets only the people of the identity providers a client may use approve its
// requests, as the sign-in page and the password grant do (authentik CVE-2024-38371: the device
// flow skipped the application's access control).
func TestAttackRecheckDeviceIdentityProviders(t *testing.T) {
	t.Parallel()
	c := startCaddy(t, strings.ReplaceAll(deviceIdPCaddyfile, "{{ALICE_HASH}}", aliceHash()))
	for _, tc := range []struct {
		username string
		allowed  bool
	}{
		{"alice", false}, // of local, which tv may not use
		{"bob", true},    // of partners, the control
	} {
		_, page, _ := deviceSignIn(t, c, "api.read", tc.username)
		if decision := page.status == http.StatusOK && strings.Contains(page.body, `name="approve"`); decision != tc.allowed {
			t.Errorf("%s's right password on tv's device page: HTTP %d, decision offered %t, want %t:\n%.300s",
				tc.username, page.status, decision, tc.allowed, page.body)
		}
	}
}

// deviceRemovedUserCaddyfile has a device app, tv, that may refresh and whose people, alice and
// carol, sign in through the users block local; it lists the OpenID provider upstream first, which
// takes no passwords, so the device page checks them with local.
const deviceRemovedUserCaddyfile = `{
	tokengate {
		issuer {{BASE}}
		store memory
		client tv {
			public
			grants device_code refresh_token
			scopes offline_access api.read
			audience api
			identity_providers upstream local
		}
		users local {
			user alice {{ALICE_HASH}}
			user carol {{ALICE_HASH}}
		}
		oidc upstream {
			issuer http://127.0.0.1:9
			client_id tokengate
			client_secret never-used
		}
	}
}

{{BASE}} {
	tokengate
}
`

// deviceSignIn has tv ask for a device authorization for scope, and username type its user code
// and alicePassword on the device page in the browser f; page is the answer to the password.
func deviceSignIn(t *testing.T, c *Caddy, scope, username string) (f *formClient, page formPage, deviceCode string) {
	t.Helper()
	r := send(t, c, request{path: "/connect/deviceauthorization", body: formBody("client_id", "tv", "scope", scope)})
	var auth struct {
		DeviceCode string `json:"device_code"`
		UserCode   string `json:"user_code"`
	}
	if err := json.Unmarshal(r.body, &auth); r.status != http.StatusOK || err != nil {
		t.Fatalf("device authorization: HTTP %d %s (%v)", r.status, r.body, err)
	}
	f = newFormClient(t)
	codeStep := f.submit(c.URL("/connect/device"), nil)
	codeStep.fields.Set("user_code", auth.UserCode)
	login := f.submit(c.URL("/connect/device"), codeStep.fields)
	login.fields.Set("username", username)
	login.fields.Set("password", alicePassword)
	return f, f.submit(c.URL("/connect/device"), login.fields), auth.DeviceCode
}

// deviceApproval has username approve tv's device authorization for scope, and returns tv's token
// answer.
func deviceApproval(t *testing.T, c *Caddy, scope, username string) tokenAnswer {
	t.Helper()
	f, decision, deviceCode := deviceSignIn(t, c, scope, username)
	decision.fields.Set("approve", "approve")
	if done := f.submit(c.URL("/connect/device"), decision.fields); done.status != http.StatusOK {
		t.Fatalf("%s approving on the device page: HTTP %d:\n%.300s", username, done.status, done.body)
	}
	return wantToken(t, "tv's poll after "+username+" approved", postToken(t, c, nil, formBody("grant_type",
		"urn:ietf:params:oauth:grant-type:device_code", "device_code", deviceCode, "client_id", "tv")))
}

// A reload that removes a user ends the refresh tokens they approved on the device page, as it
// ends those of the other grants: the approval keeps the identity provider that checked the
// password, whichever the client lists first.
func TestAttackRecheckDeviceRemovedUser(t *testing.T) {
	t.Parallel()
	config := strings.ReplaceAll(deviceRemovedUserCaddyfile, "{{ALICE_HASH}}", aliceHash())
	c := startCaddy(t, config)
	alice := deviceApproval(t, c, "offline_access api.read", "alice")
	carol := deviceApproval(t, c, "offline_access api.read", "carol")
	var claims struct{ Idp string }
	if jwtpart.Decode(t, alice.AccessToken, jwtpart.Payload, &claims); claims.Idp != "local" {
		t.Errorf("alice's device access token idp = %q, want local, the provider that checked her password", claims.Idp)
	}

	c.Reload(t, strings.Replace(config, "\t\t\tuser alice "+aliceHash()+"\n", "", 1))

	tvRefresh := func(token string) reply {
		return postToken(t, c, nil, formBody("grant_type", "refresh_token", "refresh_token", token, "client_id", "tv"))
	}
	wantError(t, "alice's device refresh token once she is removed", tvRefresh(alice.RefreshToken), "invalid_grant")
	wantToken(t, "carol's device refresh token, she stays", tvRefresh(carol.RefreshToken))
}
