package tests

import (
	"cmp"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokengate/tokengate/internal/jwtpart"
)

// cimdCaddyfile lets MCP clients identify by the URL of their metadata document, on loopback hosts
// too (the tests' document server is on 127.0.0.1), and guards /mcp with bearer_auth.
const cimdCaddyfile = `{
	tokengate {
		issuer {{BASE}}
		store memory
		client_id_metadata_documents {
			allow_loopback
			scopes openid offline_access mcp.tools
		}
		users staff {
			user alice {{ALICE_HASH}}
		}
	}
}

{{BASE}} {
	tokengate
	bearer_auth /mcp* {
		resource {{BASE}}/mcp
		scope mcp.tools
		header sub X-User
	}
	reverse_proxy /mcp* {{UPSTREAM}}
}
`

// docServer serves client metadata documents over https, under httptest's certificate, which the
// Caddy under test trusts through SSL_CERT_FILE. Each path answers as set, and the server counts the
// requests each path received.
type docServer struct {
	*httptest.Server
	certFile string
	mux      *http.ServeMux

	mu      sync.Mutex
	fetches map[string]int
}

func startDocServer(t *testing.T) *docServer {
	t.Helper()
	s := &docServer{mux: http.NewServeMux(), fetches: map[string]int{}}
	s.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.fetches[r.URL.Path]++
		s.mu.Unlock()
		s.mux.ServeHTTP(w, r)
	}))
	t.Cleanup(s.Close)
	s.certFile = filepath.Join(t.TempDir(), "docs.pem")
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Certificate().Raw})
	if err := os.WriteFile(s.certFile, certPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	return s
}

// handle answers path with h.
func (s *docServer) handle(path string, h http.HandlerFunc) string {
	s.mux.HandleFunc(path, h)
	return s.URL + path
}

// document serves at path a valid document naming its own URL, with members (JSON object
// members, without braces) added or replacing the defaults, and returns the URL: the client_id.
func (s *docServer) document(path string, members ...string) string {
	id := s.URL + path
	return s.handle(path, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, documentJSON(id, members...))
	})
}

// documentJSON is a client metadata document for id: an MCP client on a loopback redirect URI,
// which may refresh; members come after the defaults, so a later member replaces an earlier one.
func documentJSON(id string, members ...string) string {
	all := append([]string{fmt.Sprintf(`"client_id":%q`, id), `"client_name":"Inspector <script>x()</script>"`,
		`"redirect_uris":["http://127.0.0.1/callback"]`, `"grant_types":["authorization_code","refresh_token"]`,
		`"response_types":["code"]`, `"token_endpoint_auth_method":"none"`}, members...)
	return "{" + strings.Join(all, ",") + "}"
}

func (s *docServer) fetchCount(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fetches[path]
}

// startCIMDCaddy starts Caddy on caddyfile, trusting docs' certificate, its protected route
// answered by upstream.
func startCIMDCaddy(t *testing.T, caddyfile string, docs *docServer, upstream string) *Caddy {
	t.Helper()
	cf := strings.NewReplacer("{{ALICE_HASH}}", aliceHash(), "{{UPSTREAM}}", upstream).Replace(caddyfile)
	return startCaddyBinary(t, caddyBin, cf, "SSL_CERT_FILE="+docs.certFile)
}

// mcpAuthorization is an MCP client's authorization request: PKCE S256, a state, its loopback
// redirect URI on a port the system chose.
type mcpAuthorization struct {
	clientID, redirectURI, state, verifier string
}

func newMCPAuthorization(clientID, redirectURI string) mcpAuthorization {
	return mcpAuthorization{clientID: clientID, redirectURI: redirectURI, state: "st-" + randomHex(), verifier: randomHex() + randomHex()}
}

func randomHex() string {
	b := make([]byte, 16)
	rand.Read(b)
	return fmt.Sprintf("%x", b)
}

func (a mcpAuthorization) url(c *Caddy) string {
	sum := sha256.Sum256([]byte(a.verifier))
	return c.URL("/connect/authorize?") + url.Values{
		"client_id": {a.clientID}, "redirect_uri": {a.redirectURI}, "response_type": {"code"}, "scope": {"mcp.tools"},
		"state": {a.state}, "code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"},
		"resource": {c.URL("/mcp")},
	}.Encode()
}

// redeem exchanges code as the public client.
func (a mcpAuthorization) redeem(t *testing.T, c *Caddy, code string) tokenAnswer {
	t.Helper()
	answer, err := send(t, c, request{path: "/connect/token", body: url.Values{"grant_type": {"authorization_code"}, "client_id": {a.clientID},
		"code": {code}, "redirect_uri": {a.redirectURI}, "code_verifier": {a.verifier}}.Encode()}).tokenAnswer()
	if err != nil {
		t.Fatal(err)
	}
	return answer
}

// consent answers the consent page p with decision, failing unless p is that page: its form with
// the allow button before the deny button.
func consent(t *testing.T, f *formClient, c *Caddy, p formPage, decision string) formPage {
	t.Helper()
	allow := strings.Index(p.body, `name="consent" value="allow"`)
	deny := strings.Index(p.body, `name="consent" value="deny"`)
	if p.status != http.StatusOK || allow < 0 || deny < allow || strings.Contains(p.body, `type="password"`) {
		t.Fatalf("want the consent page (allow, then deny), got HTTP %d:\n%s", p.status, p.body)
	}
	form := url.Values{}
	for name, values := range p.fields {
		form[name] = values
	}
	form.Set("consent", decision)
	return f.submit(c.URL("/connect/authorize"), form)
}

// TestCIMDSignIn is an MCP client with nothing configured for it: its client_id is the URL of its
// metadata document. The person signs in, is asked, allows; the client redeems the code with PKCE,
// calls the protected route, refreshes and revokes. A second request is asked again, and denied.
func TestCIMDSignIn(t *testing.T) {
	t.Parallel()
	docs := startDocServer(t)
	upstream := startUpstream(t)
	c := startCIMDCaddy(t, cimdCaddyfile, docs, upstream.URL)
	clientID := docs.document("/inspector/client.json")
	auth := newMCPAuthorization(clientID, "http://127.0.0.1:53682/callback")

	browser := newFormClient(t)
	login := browser.submit(auth.url(c), nil)
	if login.status != http.StatusOK || !strings.Contains(login.body, `type="password"`) {
		t.Fatalf("the authorization request: HTTP %d %s, want the sign-in form", login.status, login.body)
	}
	for _, want := range []string{"Inspector &lt;script&gt;x()&lt;/script&gt;", "not verified", strings.TrimPrefix(docs.URL, "https://"), "127.0.0.1:53682"} {
		if !strings.Contains(login.body, want) {
			t.Errorf("the sign-in page does not show %q", want)
		}
	}
	form := login.fields
	form.Set("username", "alice")
	form.Set("password", alicePassword)
	back := consent(t, browser, c, browser.submit(c.URL("/connect/authorize"), form), "allow")
	if back.location == nil || !strings.HasPrefix(back.location.String(), auth.redirectURI+"?") ||
		back.location.Query().Get("state") != auth.state || back.location.Query().Get("iss") != c.Base {
		t.Fatalf("allow: HTTP %d to %v, want the redirect URI with state and iss", back.status, back.location)
	}
	tokens := auth.redeem(t, c, back.location.Query().Get("code"))
	if tokens.Status != http.StatusOK || tokens.RefreshToken == "" {
		t.Fatalf("redeeming the code: %s, want tokens and a refresh token (MCP clients never ask for offline_access)", tokens)
	}
	var claims struct {
		ClientID string `json:"client_id"`
		Subject  string `json:"sub"`
	}
	jwtpart.Decode(t, tokens.AccessToken, jwtpart.Payload, &claims)
	if claims.ClientID != clientID || claims.Subject != "alice" {
		t.Errorf("access token client_id %q sub %q, want %q and alice", claims.ClientID, claims.Subject, clientID)
	}
	if echo := callUpstream(t, c, "/mcp", tokens.AccessToken, nil); echo.Header.Get("X-User") != "alice" {
		t.Errorf("the upstream saw X-User %q, want alice", echo.Header.Get("X-User"))
	}
	refresh := func(token string) tokenAnswer {
		answer, err := send(t, c, request{path: "/connect/token", body: url.Values{"grant_type": {"refresh_token"},
			"client_id": {clientID}, "refresh_token": {token}}.Encode()}).tokenAnswer()
		if err != nil {
			t.Fatal(err)
		}
		return answer
	}
	refreshed := refresh(tokens.RefreshToken)
	if refreshed.Status != http.StatusOK || refreshed.RefreshToken == "" || refreshed.RefreshToken == tokens.RefreshToken {
		t.Fatalf("refreshing: %s, want a rotated refresh token", refreshed)
	}
	if r := send(t, c, request{path: "/connect/revocation", body: url.Values{"client_id": {clientID}, "token": {refreshed.RefreshToken}}.Encode()}); r.status != http.StatusOK {
		t.Fatalf("revoking its refresh token: HTTP %d %s", r.status, r.body)
	}
	if again := refresh(refreshed.RefreshToken); again.Error != "invalid_grant" {
		t.Errorf("the revoked refresh token: %s, want invalid_grant", again)
	}

	// Signed in now, the person is asked again at once; deny sends access_denied.
	second := newMCPAuthorization(clientID, "http://127.0.0.1:40001/callback")
	denied := consent(t, browser, c, browser.submit(second.url(c), nil), "deny")
	if denied.location == nil || denied.location.Query().Get("error") != "access_denied" || denied.location.Query().Get("state") != second.state ||
		denied.location.Query().Get("code") != "" {
		t.Errorf("deny: HTTP %d to %v, want access_denied with the state", denied.status, denied.location)
	}
}

// TestCIMDForgedConsent: another site cannot answer the consent page for the person: without this
// browser's CSRF token, or by GET, nothing goes to the client.
func TestCIMDForgedConsent(t *testing.T) {
	t.Parallel()
	docs := startDocServer(t)
	c := startCIMDCaddy(t, cimdCaddyfile, docs, startUpstream(t).URL)
	auth := newMCPAuthorization(docs.document("/client.json"), "http://127.0.0.1:53682/callback")
	browser := newFormClient(t)
	form := browser.submit(auth.url(c), nil).fields
	form.Set("username", "alice")
	form.Set("password", alicePassword)
	page := browser.submit(c.URL("/connect/authorize"), form)
	if !strings.Contains(page.body, `name="consent"`) {
		t.Fatalf("want the consent page, got HTTP %d %s", page.status, page.body)
	}
	forged := url.Values{}
	for name, values := range page.fields {
		if name != "csrf_token" {
			forged[name] = values
		}
	}
	forged.Set("consent", "allow")
	for name, answer := range map[string]formPage{
		"a POST without the CSRF token": browser.submit(c.URL("/connect/authorize"), forged),
		"a GET":                         browser.submit(c.URL("/connect/authorize?")+forged.Encode()+"&csrf_token="+url.QueryEscape(page.fields.Get("csrf_token")), nil),
		"another browser's POST":        newFormClient(t).submit(c.URL("/connect/authorize"), page.fields),
	} {
		if answer.status != http.StatusForbidden || answer.location != nil {
			t.Errorf("a forged consent, %s: HTTP %d to %v, want 403 and no redirect", name, answer.status, answer.location)
		}
	}
}

// TestCIMDAttacks sends client_ids whose documents must not be used, or must not even be fetched:
// each is refused on the authorization endpoint's error page (400, never a redirect) and with
// invalid_client at the token endpoint.
func TestCIMDAttacks(t *testing.T) {
	t.Parallel()
	docs := startDocServer(t)
	c := startCIMDCaddy(t, cimdCaddyfile, docs, startUpstream(t).URL)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })

	valid := docs.document("/client.json")
	docs.handle("/moved", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/client.json", http.StatusFound) })
	docs.handle("/large", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, documentJSON(docs.URL+"/large", `"padding":"`+strings.Repeat("x", 6<<10)+`"`))
	})
	docs.handle("/slow", func(w http.ResponseWriter, _ *http.Request) {
		select {
		case <-release:
		case <-time.After(30 * time.Second):
		}
	})
	docs.document("/impostor", fmt.Sprintf(`"client_id":%q`, valid))
	docs.document("/secret", `"token_endpoint_auth_method":"client_secret_basic"`)
	for _, tc := range []struct {
		name, clientID, redirectURI, reason string
	}{
		{"a private address", "https://10.20.30.40/client.json", "", "special-use"},
		{"the cloud metadata address", "https://169.254.169.254/latest/meta-data/client.json", "", "special-use"},
		{"an IPv4-mapped private address", "https://[::ffff:192.168.0.1]/client.json", "", "special-use"},
		{"a redirect", docs.URL + "/moved", "", "redirect"},
		{"a document over 5 KiB", docs.URL + "/large", "", "5 KiB"},
		{"a server that never answers", docs.URL + "/slow", "", "5 s"},
		{"a document of another client_id", docs.URL + "/impostor", "", "client_id is not the URL"},
		{"a confidential client's document", docs.URL + "/secret", "", "token_endpoint_auth_method"},
		{"a missing document", docs.URL + "/missing", "", "200"},
		{"a redirect_uri not in the document", valid, "https://attacker.example/callback", ""},
		{"a loopback redirect_uri on another path", valid, "http://127.0.0.1:53682/other", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			auth := newMCPAuthorization(tc.clientID, cmp.Or(tc.redirectURI, "http://127.0.0.1:53682/callback"))
			start := time.Now()
			page := newFormClient(t).submit(auth.url(c), nil)
			if page.status != http.StatusBadRequest || page.location != nil || !strings.Contains(page.body, tc.reason) {
				t.Errorf("authorize: HTTP %d to %v, want 400 and an error page saying %q:\n%s", page.status, page.location, tc.reason, page.body)
			}
			if took := time.Since(start); took > 8*time.Second {
				t.Errorf("authorize took %v, want at most the 5 s fetch bound and a little", took)
			}
			if tc.redirectURI != "" {
				return
			}
			answer := auth.redeem(t, c, "a-code")
			if answer.Status != http.StatusUnauthorized || answer.Error != "invalid_client" {
				t.Errorf("token endpoint: %s, want 401 invalid_client", answer)
			}
		})
	}
	if n := docs.fetchCount("/client.json"); n > 1 {
		t.Errorf("the redirect's target was fetched %d times besides the valid client's one: a redirect was followed", n-1)
	}
}

// TestCIMDStrict is the production set-up, without allow_loopback: a name that resolves to a
// loopback address is refused on the address dialled, and an allow list refuses other hosts before
// any fetch.
func TestCIMDStrict(t *testing.T) {
	t.Parallel()
	docs := startDocServer(t)
	strict := strings.Replace(cimdCaddyfile, "allow_loopback", "allow mcp.example.com *.mcp.example.org 127.0.0.1", 1)
	c := startCIMDCaddy(t, strict, docs, startUpstream(t).URL)
	docs.document("/client.json")
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(docs.URL, "https://"))
	for _, tc := range []struct{ name, clientID, reason string }{
		{"a host outside the allow list", "https://other.example.net/client.json", "not allowed"},
		{"a loopback address, though allowed", docs.URL + "/client.json", "not allowed"},
		{"localhost", "https://localhost:" + port + "/client.json", "not allowed"},
	} {
		page := newFormClient(t).submit(newMCPAuthorization(tc.clientID, "http://127.0.0.1:1/callback").url(c), nil)
		if page.status != http.StatusBadRequest || page.location != nil || !strings.Contains(page.body, tc.reason) {
			t.Errorf("%s: HTTP %d to %v, want 400 saying %q:\n%s", tc.name, page.status, page.location, tc.reason, page.body)
		}
	}
	if n := docs.fetchCount("/client.json"); n != 0 {
		t.Errorf("the document server was reached %d times, want none", n)
	}

	// A name of this machine's that resolves to a loopback address, as an attacker's DNS name
	// would: allowed by name, refused on the address.
	name := loopbackName(t)
	wide := strings.Replace(cimdCaddyfile, "allow_loopback", "allow "+name, 1)
	c2 := startCIMDCaddy(t, wide, docs, startUpstream(t).URL)
	page := newFormClient(t).submit(newMCPAuthorization("https://"+name+":"+port+"/client.json", "http://127.0.0.1:1/callback").url(c2), nil)
	if page.status != http.StatusBadRequest || page.location != nil || !strings.Contains(page.body, "special-use") {
		t.Errorf("a name resolving to loopback: HTTP %d to %v, want 400 saying special-use:\n%s", page.status, page.location, page.body)
	}
	if n := docs.fetchCount("/client.json"); n != 0 {
		t.Errorf("the document server was reached %d times, want none", n)
	}
}

// loopbackName returns a host name other than localhost that resolves to a loopback address on
// this machine (Debian maps its hostname to 127.0.1.1), skipping the test when there is none.
func loopbackName(t *testing.T) string {
	t.Helper()
	host, _ := os.Hostname()
	for _, name := range []string{host, "vm", "runsc", "ip6-localhost", "ip6-loopback"} {
		if name == "" || strings.EqualFold(name, "localhost") {
			continue
		}
		addrs, err := net.LookupHost(name)
		if err != nil || len(addrs) == 0 {
			continue
		}
		if ip := net.ParseIP(addrs[0]); ip != nil && ip.IsLoopback() {
			return name
		}
	}
	t.Skip("no host name of this machine resolves to a loopback address")
	return ""
}
