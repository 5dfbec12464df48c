package tests

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/tokengate/tokengate/internal/jwtpart"
)

// The helpers every suite shares: the user alice, one way to send a request and read its answer,
// and one decoding of the token endpoint's answers.

// alicePassword is the password of the user alice in every configuration of these tests.
const alicePassword = "alice-password"

// aliceHash is a bcrypt hash of alicePassword, at the lowest cost so that tests stay fast.
var aliceHash = sync.OnceValue(func() string {
	hash, err := bcrypt.GenerateFromPassword([]byte(alicePassword), bcrypt.MinCost)
	if err != nil {
		panic(err)
	}
	return string(hash)
})

// requestTimeout bounds the requests of load goroutines, which have no test to end them: when the
// store fails, tokengate answers 503 within a few seconds and never hangs, so a request still
// unanswered after this is a failure.
const requestTimeout = 8 * time.Second

// maxReplyBody bounds what is read of an answer: tokengate's are a few kilobytes.
const maxReplyBody = 1 << 20

// request is one HTTP request with every part spelled out: what the attack suites send is mostly
// what no client library would.
type request struct {
	// method defaults to POST.
	method string
	// base is the site the path is on; "" means c.Base, the first site.
	base string
	path string
	// query is the raw query string, sent as it is.
	query  string
	header http.Header
	// contentType defaults to application/x-www-form-urlencoded when body is set; "-" sends none.
	contentType string
	body        string
	// client sends it; nil means http.DefaultClient (see fromLoopback for another address).
	client *http.Client
}

// reply is what came back, body read.
type reply struct {
	status  int
	header  http.Header
	body    []byte
	elapsed time.Duration
}

// do sends a to c within ctx and reads the answer. It needs no *testing.T, so that goroutines other
// than the test's may call it; err is a transport failure, and elapsed is set even then.
func do(ctx context.Context, c *Caddy, a request) (reply, error) {
	method := cmp.Or(a.method, http.MethodPost)
	target := cmp.Or(a.base, c.Base) + a.path
	if a.query != "" {
		target += "?" + a.query
	}
	req, err := http.NewRequestWithContext(ctx, method, target, strings.NewReader(a.body))
	if err != nil {
		return reply{}, err
	}
	for name, values := range a.header {
		req.Header[name] = values
	}
	switch {
	case a.contentType == "-":
	case a.contentType != "":
		req.Header.Set("Content-Type", a.contentType)
	case a.body != "":
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	start := time.Now()
	resp, err := cmp.Or(a.client, http.DefaultClient).Do(req)
	if err != nil {
		return reply{elapsed: time.Since(start)}, fmt.Errorf("%s %s: %w", method, a.path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxReplyBody))
	r := reply{status: resp.StatusCode, header: resp.Header, body: body, elapsed: time.Since(start)}
	if err != nil {
		return r, fmt.Errorf("%s %s: reading the body: %w", method, a.path, err)
	}
	return r, nil
}

// send is do within the test's context: a transport error fails the test.
func send(t *testing.T, c *Caddy, a request) reply {
	t.Helper()
	r, err := do(testContext(t), c, a)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// bearer is header with an Authorization header carrying token (RFC 6750 §2.1), none when token is
// empty. header is not modified.
func bearer(token string, header http.Header) http.Header {
	h := header.Clone()
	if h == nil {
		h = http.Header{}
	}
	if token != "" {
		h.Set("Authorization", "Bearer "+token)
	}
	return h
}

// basicAuth is an RFC 6749 §2.3.1 Authorization header: id and secret form-urlencoded, then Base64.
func basicAuth(id, secret string) http.Header {
	return basicAuthRaw(url.QueryEscape(id) + ":" + url.QueryEscape(secret))
}

// basicAuthRaw is an Authorization header of Basic with the Base64 of raw, encoded as is.
func basicAuthRaw(raw string) http.Header {
	return http.Header{"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte(raw))}}
}

// formBody encodes name/value pairs in the order given, repeats included (url.Values sorts and merges).
func formBody(pairs ...string) string {
	parts := make([]string, 0, len(pairs)/2)
	for i := 0; i+1 < len(pairs); i += 2 {
		parts = append(parts, url.QueryEscape(pairs[i])+"="+url.QueryEscape(pairs[i+1]))
	}
	return strings.Join(parts, "&")
}

// postForm POSTs form to path, authenticating as client with HTTP Basic, and returns the status and
// body.
func postForm(t *testing.T, c *Caddy, path, client, secret string, form url.Values) (int, []byte) {
	t.Helper()
	r := send(t, c, request{path: path, header: basicAuth(client, secret), body: form.Encode()})
	return r.status, r.body
}

// call sends a GET for path with the access token (none when empty) and extra headers.
func call(t *testing.T, c *Caddy, path, token string, header http.Header) reply {
	t.Helper()
	return send(t, c, request{method: http.MethodGet, path: path, header: bearer(token, header)})
}

// callUpstream calls path with token, expects the upstream to answer, and returns what it received.
func callUpstream(t *testing.T, c *Caddy, path, token string, header http.Header) Echo {
	t.Helper()
	r := call(t, c, path, token, header)
	if r.status != http.StatusOK {
		t.Fatalf("GET %s with a token: HTTP %d (%s), want 200 from the upstream; WWW-Authenticate: %q",
			path, r.status, r.body, r.header.Get("WWW-Authenticate"))
	}
	var echo Echo
	if err := json.Unmarshal(r.body, &echo); err != nil {
		t.Fatalf("GET %s: the upstream's answer %q: %v", path, r.body, err)
	}
	return echo
}

// tokenAnswer is what /connect/token answered: a token response (RFC 6749 §5.1) or an error
// (§5.2), with the HTTP status and how long the answer took.
type tokenAnswer struct {
	Status       int    `json:"-"`
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	Scope        string `json:"scope"`
	RefreshToken string `json:"refresh_token"`
	IDToken      string `json:"id_token"`
	Error        string `json:"error"`
	Body         string `json:"-"`
	Took         time.Duration
}

// String describes the answer for failure messages.
func (a tokenAnswer) String() string {
	return fmt.Sprintf("HTTP %d %s (in %v)", a.Status, a.Body, a.Took.Round(time.Millisecond))
}

// tokenAnswer decodes r as the token endpoint's answer; err says it is not JSON.
func (r reply) tokenAnswer() (tokenAnswer, error) {
	a := tokenAnswer{Status: r.status, Body: string(r.body), Took: r.elapsed}
	if err := json.Unmarshal(r.body, &a); err != nil {
		return a, fmt.Errorf("token endpoint: HTTP %d, body %q is not JSON: %w", r.status, r.body, err)
	}
	return a, nil
}

// requestToken POSTs form to c's token endpoint as client (HTTP Basic, the secret being the
// client's id followed by "-secret"). It needs no *testing.T, so that load goroutines may call it;
// err is a transport failure, a timeout or an answer that is not JSON, never an OAuth error.
func requestToken(ctx context.Context, c *Caddy, client string, form url.Values) (tokenAnswer, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	r, err := do(ctx, c, request{path: "/connect/token", header: basicAuth(client, client+"-secret"), body: form.Encode()})
	if err != nil {
		return tokenAnswer{Status: r.status, Took: r.elapsed}, err
	}
	return r.tokenAnswer()
}

// gateStatus GETs /api/<what> at c with token and returns the status bearer_auth let through or
// refused with. It needs no *testing.T, so that load goroutines may call it.
func gateStatus(ctx context.Context, c *Caddy, token, what string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	r, err := do(ctx, c, request{method: http.MethodGet, path: "/api/" + url.PathEscape(what), header: bearer(token, nil)})
	return r.status, err
}

// kidOf returns the kid header of a JWT.
func kidOf(t *testing.T, token string) string {
	t.Helper()
	var header struct {
		Kid string `json:"kid"`
	}
	jwtpart.Decode(t, token, jwtpart.Header, &header)
	return header.Kid
}

// jwksKids returns the kid of every key c's JWKS publishes, sorted.
func jwksKids(t *testing.T, c *Caddy) []string {
	t.Helper()
	r := call(t, c, "/.well-known/openid-configuration/jwks", "", nil)
	var jwks struct {
		Keys []struct {
			Kid string `json:"kid"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(r.body, &jwks); err != nil || r.status != http.StatusOK {
		t.Fatalf("JWKS of %s: HTTP %d %s (%v)", c.Base, r.status, r.body, err)
	}
	kids := make([]string, 0, len(jwks.Keys))
	for _, k := range jwks.Keys {
		kids = append(kids, k.Kid)
	}
	slices.Sort(kids)
	return kids
}

// formClient is a person's browser without JavaScript: it keeps cookies, reads the forms' fields,
// and does not follow redirects, so that a code's redirect is read and never fetched.
type formClient struct {
	t      *testing.T
	client *http.Client
}

func newFormClient(t *testing.T) *formClient {
	jar, _ := cookiejar.New(nil)
	return &formClient{t: t, client: &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// formField is a hidden or text input of a form, as tokengate's templates write them.
var formField = regexp.MustCompile(`<input type="(?:hidden|text)"[^>]* name="([^"]*)" value="([^"]*)"`)

// formPage is what a formClient got back.
type formPage struct {
	status   int
	body     string
	fields   url.Values // the hidden and text inputs of its forms
	location *url.URL   // a redirect's target, nil when none
}

// submit GETs target (form nil) or POSTs form to it.
func (f *formClient) submit(target string, form url.Values) formPage {
	f.t.Helper()
	method, body := http.MethodGet, ""
	if form != nil {
		method, body = http.MethodPost, form.Encode()
	}
	req, err := http.NewRequest(method, target, strings.NewReader(body))
	if err != nil {
		f.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := f.client.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxReplyBody))
	if err != nil {
		f.t.Fatalf("%s %s: %v", method, target, err)
	}
	p := formPage{status: resp.StatusCode, body: string(raw), fields: url.Values{}}
	for _, m := range formField.FindAllStringSubmatch(p.body, -1) {
		p.fields.Set(m[1], html.UnescapeString(m[2]))
	}
	p.location, _ = resp.Location()
	return p
}
