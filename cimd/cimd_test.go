package cimd

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokengate/tokengate/grants"
	"github.com/tokengate/tokengate/internal/testclock"
)

// docServer serves client metadata documents over TLS on 127.0.0.1, each path its own answer,
// and counts the fetches and remembers the last request.
type docServer struct {
	*httptest.Server
	mu      sync.Mutex
	answers map[string]func(w http.ResponseWriter, r *http.Request)
	fetches atomic.Int64
	last    *http.Request
}

func newDocServer(t *testing.T) *docServer {
	s := &docServer{answers: map[string]func(http.ResponseWriter, *http.Request){}}
	s.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fetches.Add(1)
		s.mu.Lock()
		s.last = r.Clone(context.Background())
		answer := s.answers[r.URL.Path]
		s.mu.Unlock()
		if answer == nil {
			http.NotFound(w, r)
			return
		}
		answer(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

// serve answers path with body and the headers (name, value pairs).
func (s *docServer) serve(path, body string, headers ...string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.answers[path] = func(w http.ResponseWriter, _ *http.Request) {
		for i := 0; i < len(headers); i += 2 {
			w.Header().Set(headers[i], headers[i+1])
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, body)
	}
	return s.URL + path
}

// doc is a valid document for id, with extra members (JSON, without braces) added.
func doc(id string, extra ...string) string {
	members := append([]string{fmt.Sprintf(`"client_id":%q`, id), `"client_name":"Test <b>App</b>"`,
		`"redirect_uris":["http://127.0.0.1/callback","https://app.example/cb"]`}, extra...)
	return "{" + strings.Join(members, ",") + "}"
}

func (s *docServer) roots() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(s.Certificate())
	return pool
}

func newResolver(s *docServer, clock *testclock.Clock, edit func(*Config)) *Resolver {
	cfg := Config{Scopes: func() []string { return []string{"openid", "mcp"} }, AllowLoopback: true, Roots: s.roots(), Now: clock.Now}
	if edit != nil {
		edit(&cfg)
	}
	return New(cfg)
}

func TestLookupClient(t *testing.T) {
	s := newDocServer(t)
	r := newResolver(s, testclock.New(time.Unix(1_800_000_000, 0)), nil)
	id := s.URL + "/client.json"
	s.serve("/client.json", doc(id, `"grant_types":["refresh_token","authorization_code"]`, `"future_member":{"x":1}`))
	c, err := r.LookupClient(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	if c.ID != id || !c.Dynamic || !c.Public || c.DisplayName != "Test <b>App</b>" ||
		strings.Join(c.Grants, " ") != "authorization_code refresh_token" || strings.Join(c.Scopes, " ") != "openid mcp" ||
		len(c.RedirectURIs) != 2 || len(c.Secrets) != 0 {
		t.Errorf("client = %+v", c)
	}
	if got := s.last.Header.Get("Accept"); got != "application/json" {
		t.Errorf("Accept = %q, want application/json", got)
	}
	// Without client_name the page names the host; without grant_types, authorization_code only.
	bare := s.URL + "/bare.json"
	s.serve("/bare.json", fmt.Sprintf(`{"client_id":%q,"redirect_uris":["https://app.example/cb"],"token_endpoint_auth_method":"none"}`, bare))
	c, err = r.LookupClient(t.Context(), bare)
	if err != nil || c.DisplayName != "127.0.0.1" || strings.Join(c.Grants, " ") != "authorization_code" {
		t.Errorf("bare document: %+v, %v", c, err)
	}
}

// Every document below is refused, and why is said without the server's words.
func TestLookupClientRefusesDocuments(t *testing.T) {
	s := newDocServer(t)
	r := newResolver(s, testclock.New(time.Unix(1_800_000_000, 0)), nil)
	for _, tc := range []struct{ name, body, want string }{
		{"client_id of another URL", doc("https://other.example/client.json"), "client_id is not the URL"},
		{"client_id with a trailing slash", doc("{{id}}/"), "client_id is not the URL"},
		{"no redirect_uris", `{"client_id":"{{id}}"}`, "no redirect_uris"},
		{"empty redirect_uris", `{"client_id":"{{id}}","redirect_uris":[]}`, "no redirect_uris"},
		{"an http redirect URI off loopback", `{"client_id":"{{id}}","redirect_uris":["http://app.example/cb"]}`, "redirect_uris"},
		{"a javascript: redirect URI", `{"client_id":"{{id}}","redirect_uris":["javascript:alert(1)"]}`, "redirect_uris"},
		{"a redirect URI with a fragment", `{"client_id":"{{id}}","redirect_uris":["https://app.example/cb#x"]}`, "redirect_uris"},
		{"a secret auth method", doc("{{id}}", `"token_endpoint_auth_method":"client_secret_basic"`), "token_endpoint_auth_method"},
		{"a client_secret", doc("{{id}}", `"client_secret":"s3cret"`), "client_secret"},
		{"the password grant", doc("{{id}}", `"grant_types":["authorization_code","password"]`), "grant_types"},
		{"the token response type", doc("{{id}}", `"response_types":["token"]`), "response_types"},
		{"a client_name that is no string", `{"client_id":"{{id}}","client_name":7,"redirect_uris":["https://app.example/cb"]}`, "not a JSON object"},
		{"an array", `[{"client_id":"{{id}}"}]`, "not a JSON object"},
		{"not JSON", `client_id={{id}}`, "not a JSON object"},
	} {
		path := "/" + strings.ReplaceAll(tc.name, " ", "-")
		id := s.URL + path
		s.serve(path, strings.ReplaceAll(tc.body, "{{id}}", id))
		c, err := r.LookupClient(t.Context(), id)
		var refusal *Error
		if c != nil || !errors.As(err, &refusal) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: LookupClient = %+v, %v; want an *Error mentioning %q", tc.name, c, err, tc.want)
		}
	}
}

func TestLookupClientRefusesFetches(t *testing.T) {
	s := newDocServer(t)
	r := newResolver(s, testclock.New(time.Unix(1_800_000_000, 0)), nil)
	id := s.URL + "/client.json"
	s.serve("/client.json", doc(id))
	s.mu.Lock()
	s.answers["/moved"] = func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/client.json", http.StatusFound) }
	s.answers["/created"] = func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusCreated)
		fmt.Fprint(w, doc(s.URL+"/created"))
	}
	s.answers["/large"] = func(w http.ResponseWriter, _ *http.Request) {
		body := doc(s.URL + "/large")
		fmt.Fprint(w, body+strings.Repeat(" ", MaxDocumentSize+1-len(body)))
	}
	s.answers["/exactly-5KiB"] = func(w http.ResponseWriter, _ *http.Request) {
		body := doc(s.URL + "/exactly-5KiB")
		fmt.Fprint(w, body+strings.Repeat(" ", MaxDocumentSize-len(body)))
	}
	s.mu.Unlock()
	for _, tc := range []struct{ path, want string }{
		{"/moved", "redirect"},
		{"/created", "200"},
		{"/missing", "200"},
		{"/large", "larger than 5 KiB"},
	} {
		before := s.fetches.Load()
		c, err := r.LookupClient(t.Context(), s.URL+tc.path)
		if c != nil || err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: LookupClient = %+v, %v; want a refusal mentioning %q", tc.path, c, err, tc.want)
		}
		if n := s.fetches.Load() - before; n != 1 {
			t.Errorf("%s: %d requests reached the server, want 1 (no redirect followed)", tc.path, n)
		}
	}
	if _, err := r.LookupClient(t.Context(), s.URL+"/exactly-5KiB"); err != nil {
		t.Errorf("a document of exactly 5 KiB: %v", err)
	}
}

func TestLookupClientGivesUpAfter5s(t *testing.T) {
	s := newDocServer(t)
	r := newResolver(s, testclock.New(time.Unix(1_800_000_000, 0)), nil)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	s.mu.Lock()
	// The headers come at once; the body never ends.
	s.answers["/slow"] = func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, `{"client_id":`)
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-time.After(20 * time.Second):
		}
	}
	s.mu.Unlock()
	start := time.Now()
	_, err := r.LookupClient(t.Context(), s.URL+"/slow")
	took := time.Since(start)
	if err == nil || !strings.Contains(err.Error(), "within 5 s") || took > FetchTimeout+2*time.Second {
		t.Errorf("a document that never ends: %v after %v, want a refusal after 5 s", err, took)
	}
}

// Loopback, private and other special-use addresses are refused on the address dialled: an IP
// literal or a name resolving there, before any connection.
func TestLookupClientRefusesSpecialUseAddresses(t *testing.T) {
	s := newDocServer(t)
	port := s.Listener.Addr().(interface{ String() string }).String()
	port = port[strings.LastIndex(port, ":"):]
	strict := newResolver(s, testclock.New(time.Unix(1_800_000_000, 0)), func(c *Config) { c.AllowLoopback = false })
	loose := newResolver(s, testclock.New(time.Unix(1_800_000_000, 0)), nil)
	for _, tc := range []struct {
		r    *Resolver
		id   string
		want string
	}{
		// /etc/hosts names vm and runsc for 127.0.0.1 on this machine; localhost everywhere.
		{strict, "https://vm" + port + "/client.json", "special-use"},
		{strict, "https://localhost" + port + "/client.json", "not allowed"},
		{strict, "https://127.0.0.1" + port + "/client.json", "not allowed"},
		{strict, "https://[::ffff:127.0.0.1]" + port + "/client.json", "not allowed"},
		{strict, "https://10.1.2.3/client.json", "special-use"},
		{strict, "https://169.254.169.254/latest/meta-data", "special-use"},
		{strict, "https://[fd00::1]/client.json", "special-use"},
		{strict, "https://[::ffff:192.168.1.1]/client.json", "special-use"},
		{strict, "https://100.64.0.1/client.json", "special-use"},
		// allow_loopback lifts loopback only.
		{loose, "https://10.1.2.3/client.json", "special-use"},
		{loose, "https://192.168.1.1/client.json", "special-use"},
		{loose, "https://0.0.0.0" + port + "/client.json", "special-use"},
	} {
		before := s.fetches.Load()
		c, err := tc.r.LookupClient(t.Context(), tc.id)
		if c != nil || err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("LookupClient(%q) = %+v, %v; want a refusal mentioning %q", tc.id, c, err, tc.want)
		}
		if s.fetches.Load() != before {
			t.Errorf("LookupClient(%q) reached the server", tc.id)
		}
	}
	// The same server through a name resolving to loopback, with allow_loopback: fetched.
	id := "https://vm" + port + "/client.json"
	s.serve("/client.json", doc(id))
	if _, err := loose.LookupClient(t.Context(), id); err == nil || !strings.Contains(err.Error(), "certificate") {
		// httptest's certificate names example.com and 127.0.0.1, not vm: the dial passed.
		t.Errorf("allow_loopback and a name resolving to loopback: %v, want the dial to pass", err)
	}
}

func TestSpecialUseAddr(t *testing.T) {
	for addr, special := range map[string]bool{
		"127.0.0.1": true, "127.255.0.9": true, "10.0.0.1": true, "172.16.5.4": true, "172.32.0.1": false,
		"192.168.0.1": true, "169.254.169.254": true, "100.64.0.1": true, "100.128.0.1": false, "0.0.0.0": true,
		"192.0.2.1": true, "198.51.100.7": true, "203.0.113.9": true, "198.18.0.1": true, "224.0.0.251": true,
		"255.255.255.255": true, "240.0.0.1": true, "8.8.8.8": false, "1.1.1.1": false,
		"::1": true, "::": true, "fe80::1": true, "fd12::1": true, "ff02::1": true, "2001:db8::1": true,
		"::ffff:10.0.0.1": true, "::ffff:8.8.8.8": false, "64:ff9b::a00:1": true, "2002:a00:1::": true,
		"2001::1": true, "2606:4700::1111": false, "2001:4860:4860::8888": false,
	} {
		if got := specialUseAddr(netip.MustParseAddr(addr)); got != special {
			t.Errorf("specialUseAddr(%s) = %v, want %v", addr, got, special)
		}
	}
}

func TestClientIDURL(t *testing.T) {
	r := New(Config{})
	loopback := New(Config{AllowLoopback: true})
	for id, want := range map[string][2]bool{ // {strict, with allow_loopback}
		"https://app.example/client.json":      {true, true},
		"https://app.example/c?v=1":            {true, true},
		"https://app.example":                  {false, false},
		"https://app.example/":                 {false, false},
		"http://app.example/client.json":       {false, false},
		"http://127.0.0.1:8080/client.json":    {false, true},
		"http://localhost/client.json":         {false, true},
		"https://user@app.example/client.json": {false, false},
		"https://app.example/client.json#x":    {false, false},
		"https://app.example/a/../client.json": {false, false},
		"https://app.example/a/./client.json":  {false, false},
		"https://app.example/a/%2e%2e/c.json":  {false, false},
		"app-client":                           {false, false},
		"":                                     {false, false},
	} {
		_, got := r.clientIDURL(id)
		_, gotLoopback := loopback.clientIDURL(id)
		if got != want[0] || gotLoopback != want[1] {
			t.Errorf("clientIDURL(%q) = %v, with allow_loopback %v; want %v", id, got, gotLoopback, want)
		}
		if _, err := r.LookupClient(t.Context(), id); !want[0] && !errors.Is(err, grants.ErrNotOwned) {
			t.Errorf("LookupClient(%q) = %v, want ErrNotOwned", id, err)
		}
	}
}

// The allow list is checked before any fetch, and allow_loopback does not widen it.
func TestAllowList(t *testing.T) {
	r := New(Config{Allow: []string{"*.example.com", "Client.Test", "192.0.2.7", "[2001:db8::7]"}, AllowLoopback: true})
	for host, want := range map[string]bool{
		"a.example.com": true, "a.b.example.com": true, "example.com": false, "evilexample.com": false,
		"client.test": true, "CLIENT.TEST": true, "other.test": false, "192.0.2.7": true, "192.0.2.8": false,
		"127.0.0.1": false, "localhost": false, "2001:db8::7": true, "2001:db8::8": false,
	} {
		if got := r.hostAllowed(host); got != want {
			t.Errorf("hostAllowed(%q) = %v, want %v", host, got, want)
		}
	}
	start := time.Now()
	_, err := r.LookupClient(t.Context(), "https://not-allowed.invalid/client.json")
	if err == nil || !strings.Contains(err.Error(), "not allowed") || time.Since(start) > time.Second {
		t.Errorf("a host outside the allow list: %v", err)
	}
	if !r.Owns("https://a.example.com/c.json") || r.Owns("https://example.com/c.json") || r.Owns("web") {
		t.Error("Owns does not follow the allow list")
	}
}

// RFC 9111 §5.2.2: max-age (at most 24 h), no-store, no-cache, max-age=0; 5 minutes without.
func TestLookupClientCaches(t *testing.T) {
	s := newDocServer(t)
	clock := testclock.New(time.Unix(1_800_000_000, 0))
	r := newResolver(s, clock, nil)
	for _, tc := range []struct {
		cacheControl string
		reused       time.Duration // still reused just before this; fetched again at it
	}{
		{"", DefaultCacheTTL},
		{"public", DefaultCacheTTL},
		{"max-age=60", time.Minute},
		{"public, max-age=3600", time.Hour},
		{"max-age=999999", MaxCacheTTL},
		{"max-age=0", 0},
		{"no-store", 0},
		{"max-age=600, no-cache", 0},
	} {
		path := fmt.Sprintf("/cc-%d", len(tc.cacheControl)*1000+int(tc.reused/time.Second)%1000)
		id := s.URL + path
		var headers []string
		if tc.cacheControl != "" {
			headers = []string{"Cache-Control", tc.cacheControl}
		}
		s.serve(path, doc(id), headers...)
		fetches := func() int64 {
			if _, err := r.LookupClient(t.Context(), id); err != nil {
				t.Fatalf("%q: %v", tc.cacheControl, err)
			}
			return s.fetches.Load()
		}
		first := fetches()
		if tc.reused == 0 {
			if fetches() != first+1 {
				t.Errorf("Cache-Control %q: the document was reused", tc.cacheControl)
			}
			continue
		}
		clock.Advance(tc.reused - time.Second)
		if fetches() != first {
			t.Errorf("Cache-Control %q: fetched again before %v", tc.cacheControl, tc.reused)
		}
		clock.Advance(time.Second)
		if fetches() != first+1 {
			t.Errorf("Cache-Control %q: not fetched again at %v", tc.cacheControl, tc.reused)
		}
	}
}

// A failed fetch or an invalid document is never cached: once fixed, the next lookup succeeds.
// No cookie a server sets is ever sent back.
func TestLookupClientCachesNoFailureNorCookie(t *testing.T) {
	s := newDocServer(t)
	r := newResolver(s, testclock.New(time.Unix(1_800_000_000, 0)), nil)
	id := s.URL + "/client.json"
	s.serve("/client.json", doc("https://wrong.example/client.json"), "Set-Cookie", "session=abc; Path=/")
	if _, err := r.LookupClient(t.Context(), id); err == nil {
		t.Fatal("an invalid document was accepted")
	}
	s.serve("/client.json", doc(id), "Cache-Control", "no-store", "Set-Cookie", "session=abc; Path=/")
	for range 2 {
		if _, err := r.LookupClient(t.Context(), id); err != nil {
			t.Fatalf("the fixed document: %v", err)
		}
		if got := s.last.Header.Get("Cookie"); got != "" {
			t.Errorf("the fetch sent Cookie %q", got)
		}
		if got := s.last.Header.Get("Authorization"); got != "" {
			t.Errorf("the fetch sent Authorization %q", got)
		}
	}
}

// Without Roots, the system's trust store decides: httptest's certificate is not in it.
func TestLookupClientUsesSystemTrust(t *testing.T) {
	s := newDocServer(t)
	id := s.URL + "/client.json"
	s.serve("/client.json", doc(id))
	r := New(Config{AllowLoopback: true})
	if _, err := r.LookupClient(t.Context(), id); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("a certificate outside the trust store: %v", err)
	}
}

// Concurrent lookups of one client_id share one fetch; one host has at most fetchesPerHost
// fetches under way, and the lookups beyond are refused at once.
func TestLookupClientBoundsFetches(t *testing.T) {
	s := newDocServer(t)
	r := newResolver(s, testclock.New(time.Unix(1_800_000_000, 0)), nil)
	release := make(chan struct{})
	var arrived sync.WaitGroup
	s.mu.Lock()
	for i := range fetchesPerHost + 1 {
		path := fmt.Sprintf("/held/%d", i)
		s.answers[path] = func(w http.ResponseWriter, _ *http.Request) {
			arrived.Done()
			<-release
			fmt.Fprint(w, doc(s.URL+path))
		}
	}
	s.mu.Unlock()

	// Many lookups of one id: one fetch.
	arrived.Add(1)
	var lookups sync.WaitGroup
	for range 20 {
		lookups.Go(func() {
			if _, err := r.LookupClient(t.Context(), s.URL+"/held/0"); err != nil {
				t.Errorf("a lookup sharing the fetch: %v", err)
			}
		})
	}
	arrived.Wait()
	// The other slots of the host fill up; the next id is refused without a fetch.
	arrived.Add(fetchesPerHost - 1)
	for i := 1; i < fetchesPerHost; i++ {
		lookups.Go(func() { r.LookupClient(t.Context(), fmt.Sprintf("%s/held/%d", s.URL, i)) })
	}
	arrived.Wait()
	before := s.fetches.Load()
	if _, err := r.LookupClient(t.Context(), fmt.Sprintf("%s/held/%d", s.URL, fetchesPerHost)); err == nil || !strings.Contains(err.Error(), "retry shortly") {
		t.Errorf("a fetch beyond the host's bound: %v, want a refusal", err)
	}
	if s.fetches.Load() != before {
		t.Error("a fetch beyond the host's bound reached the server")
	}
	close(release)
	lookups.Wait()
	if n := s.fetches.Load(); n != fetchesPerHost {
		t.Errorf("%d fetches reached the server, want %d: one per id", n, fetchesPerHost)
	}
}
