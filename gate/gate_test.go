package gate

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokengate/tokengate/internal/testclock"
	"github.com/tokengate/tokengate/store"
	"github.com/tokengate/tokengate/tokens"
)

const issuer = "https://auth.example.com"

// fixture is a gate in front of a route, with a minter for the same keys and a settable clock.
type fixture struct {
	clk    *clock
	keys   func() *tokens.KeySet
	minter *tokens.Minter
	log    *fakeLog
	gate   *Gate
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	keys := newKeys(t)
	f := &fixture{clk: testclock.New(t0), keys: keys, log: &fakeLog{}}
	f.minter = tokens.NewMinter(issuer, keys, f.clk.Now)
	f.gate = &Gate{
		Verifier:    tokens.NewVerifier(issuer, keys, f.clk.Now),
		Deny:        NewDenyList(f.log, f.clk.Now),
		Cache:       NewCache(100, f.clk.Now),
		Realm:       "api",
		Audiences:   map[string]bool{"api": true, "other-api": true},
		ClientKnown: func(id string) bool { return id != "removed" },
	}
	return f
}

// newKeys returns a key set of one new ES256 key.
func newKeys(t testing.TB) func() *tokens.KeySet {
	t.Helper()
	signer, err := tokens.GenerateKey(tokens.ES256)
	if err != nil {
		t.Fatal(err)
	}
	key, err := tokens.NewKey(tokens.ES256, signer, t0)
	if err != nil {
		t.Fatal(err)
	}
	ks, err := tokens.NewKeySet(key)
	if err != nil {
		t.Fatal(err)
	}
	return func() *tokens.KeySet { return ks }
}

// mint returns an access token for alice from client app, aud api, scope "read write", after edit.
func (f *fixture) mint(t testing.TB, edit func(*tokens.AccessToken)) string {
	t.Helper()
	at := tokens.AccessToken{
		Subject: "alice", ClientID: "app", Scope: "read write", GrantID: "g1",
		Audience: []string{"api"}, TTL: time.Hour,
		Claims: map[string]any{"tenant": "acme", "roles": []string{"admin", "dev"}, "level": 3, "vip": true},
	}
	if edit != nil {
		edit(&at)
	}
	raw, _, _, err := f.minter.AccessToken(at)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// check runs the gate on r and returns its refusal, nil when it let r through.
func (f *fixture) check(r *http.Request) *Refusal {
	_, fail := f.gate.Check(r)
	return fail
}

// statusOf is the status a refusal answers, 200 when there is none.
func statusOf(fail *Refusal) int {
	if fail == nil {
		return http.StatusOK
	}
	return fail.Status
}

func bearer(token string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/data", nil)
	r.Header.Set("Authorization", "Bearer "+token)
	return r
}

func TestCheckChallenges(t *testing.T) {
	f := newFixture(t)
	good := f.mint(t, nil)
	expired := f.mint(t, func(a *tokens.AccessToken) { a.TTL = time.Second })
	f.clk.Set(t0.Add(10 * time.Second))
	otherAud := f.mint(t, func(a *tokens.AccessToken) { a.Audience = []string{"billing"} })
	removedClient := f.mint(t, func(a *tokens.AccessToken) { a.ClientID = "removed" })

	req := func(method, target, auth string, body string) *http.Request {
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		r := httptest.NewRequest(method, target, rd)
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		if body != "" {
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		return r
	}
	twoHeaders := req("GET", "/data", "Bearer "+good, "")
	twoHeaders.Header.Add("Authorization", "Bearer "+good)
	const (
		bare         = `Bearer realm="api"`
		invalidToken = `Bearer realm="api", error="invalid_token"`
		invalidReq   = `Bearer realm="api", error="invalid_request"`
	)
	cases := []struct {
		name      string
		r         *http.Request
		status    int
		challenge string
	}{
		{"valid", req("GET", "/data", "Bearer "+good, ""), http.StatusOK, ""},
		{"scheme lower case", req("GET", "/data", "bearer "+good, ""), http.StatusOK, ""},
		{"scheme upper case", req("GET", "/data", "BEARER "+good, ""), http.StatusOK, ""},
		{"several spaces", req("GET", "/data", "Bearer   "+good, ""), http.StatusOK, ""},
		{"form body without a token", req("POST", "/data", "Bearer "+good, "a=1&b=2"), http.StatusOK, ""},
		{"query without a token", req("GET", "/data?x=access_token", "Bearer "+good, ""), http.StatusOK, ""},

		// RFC 6750 §3.1: no credentials, or another scheme (RFC 7235 §2.1), get a bare challenge.
		{"no credentials", req("GET", "/data", "", ""), http.StatusUnauthorized, bare},
		{"Basic", req("GET", "/data", "Basic YWxpY2U6c2VjcmV0", ""), http.StatusUnauthorized, bare},
		{"Bearerx scheme", req("GET", "/data", "Bearerx "+good, ""), http.StatusUnauthorized, bare},

		// RFC 6750 §3.1: a malformed, expired or foreign token is invalid_token.
		{"malformed", req("GET", "/data", "Bearer abc.def", ""), http.StatusUnauthorized, invalidToken},
		{"Bearer alone", req("GET", "/data", "Bearer", ""), http.StatusUnauthorized, invalidToken},
		{"Bearer and spaces", req("GET", "/data", "Bearer    ", ""), http.StatusUnauthorized, invalidToken},
		{"a megabyte of dots", req("GET", "/data", "Bearer "+strings.Repeat(".", 1<<20), ""), http.StatusUnauthorized, invalidToken},
		{"expired", req("GET", "/data", "Bearer "+expired, ""), http.StatusUnauthorized, invalidToken},
		{"another audience", req("GET", "/data", "Bearer "+otherAud, ""), http.StatusUnauthorized, invalidToken},
		{"a client removed from the config", req("GET", "/data", "Bearer "+removedClient, ""), http.StatusUnauthorized, invalidToken},

		// RFC 6750 §2: one method only; §2.3, §5.3: never the query.
		{"header and query", req("GET", "/data?access_token="+good, "Bearer "+good, ""), http.StatusBadRequest, invalidReq},
		{"header and encoded query name", req("GET", "/data?access%5Ftoken=x", "Bearer "+good, ""), http.StatusBadRequest, invalidReq},
		{"header and form body", req("POST", "/data", "Bearer "+good, "a=1&access_token="+good), http.StatusBadRequest, invalidReq},
		{"query only", req("GET", "/data?access_token="+good, "", ""), http.StatusBadRequest, invalidReq},
		{"Basic and query", req("GET", "/data?access_token="+good, "Basic YWxpY2U6c2VjcmV0", ""), http.StatusBadRequest, invalidReq},
		{"two Authorization headers", twoHeaders, http.StatusBadRequest, invalidReq},
	}
	for _, c := range cases {
		fail := f.check(c.r)
		if c.status == http.StatusOK {
			if fail != nil {
				t.Errorf("Check(%s) refused: %d %q (%v)", c.name, fail.Status, fail.Challenge, fail.Err)
			}
			continue
		}
		if fail == nil {
			t.Errorf("Check(%s) let the request through, want %d", c.name, c.status)
			continue
		}
		if fail.Status != c.status || fail.Challenge != c.challenge {
			t.Errorf("Check(%s) = %d %q, want %d %q", c.name, fail.Status, fail.Challenge, c.status, c.challenge)
		}
		if fail.Err == nil || strings.Contains(fail.Err.Error(), good) {
			t.Errorf("Check(%s) error = %v, want a reason without the token", c.name, fail.Err)
		}
	}
}

// Authenticate writes the refusal for handlers that answer with the gate's own response
// (userinfo): the challenge, the status and a short text that never echoes the token.
func TestAuthenticateWritesTheRefusal(t *testing.T) {
	f := newFixture(t)
	good := f.mint(t, nil)
	f.gate.Req.ScopeSets = [][]string{{"admin"}}
	for _, c := range []struct {
		name      string
		r         *http.Request
		status    int
		challenge string
		body      string
	}{
		{"no credentials", httptest.NewRequest("GET", "/data", nil), http.StatusUnauthorized, `Bearer realm="api"`, "Unauthorized\n"},
		{"tampered", bearer(good + "x"), http.StatusUnauthorized, `Bearer realm="api", error="invalid_token"`, "invalid_token\n"},
		{"header and query", func() *http.Request {
			r := bearer(good)
			r.URL.RawQuery = "access_token=" + good
			return r
		}(), http.StatusBadRequest, `Bearer realm="api", error="invalid_request"`, "invalid_request\n"},
		{"scope missing", bearer(good), http.StatusForbidden, `Bearer realm="api", error="insufficient_scope", scope="admin"`, "insufficient_scope\n"},
	} {
		w := httptest.NewRecorder()
		if claims, ok := f.gate.Authenticate(w, c.r); ok || claims != nil {
			t.Errorf("Authenticate(%s) = %v, %v; want refused", c.name, claims, ok)
		}
		if w.Code != c.status || w.Header().Get("WWW-Authenticate") != c.challenge || w.Body.String() != c.body {
			t.Errorf("Authenticate(%s) wrote %d %q %q, want %d %q %q", c.name, w.Code,
				w.Header().Get("WWW-Authenticate"), w.Body, c.status, c.challenge, c.body)
		}
	}
	f.gate.Req.ScopeSets = nil
	w := httptest.NewRecorder()
	if c, ok := f.gate.Authenticate(w, bearer(good)); !ok || c.Subject != "alice" || w.Body.Len() != 0 || len(w.Header()) != 0 {
		t.Errorf("Authenticate(valid) = %v, %v, wrote %d %q; want alice's claims and nothing written", c, ok, w.Code, w.Body)
	}
}

func TestCheckRefusesATokenFromAnotherIssuer(t *testing.T) {
	f, other := newFixture(t), newFixture(t)
	if fail := f.check(bearer(other.mint(t, nil))); fail == nil || fail.Status != http.StatusUnauthorized {
		t.Errorf("Check(token of another tokengate) = %v, want a 401", fail)
	}
}

// The cache outlives a reload; a token it holds passes only while the new configuration's issuer and
// keys would verify it.
func TestCacheHitNeedsTheCurrentIssuerAndKey(t *testing.T) {
	for _, reload := range []struct {
		name   string
		issuer string
		keys   func() *tokens.KeySet
	}{
		{"the signing key replaced", issuer, newKeys(t)},
		{"the issuer changed", issuer + "/v2", nil},
	} {
		f := newFixture(t)
		tok := f.mint(t, nil)
		if fail := f.check(bearer(tok)); fail != nil {
			t.Fatalf("Check(valid token) = %v, want success", fail)
		}
		if reload.keys == nil {
			reload.keys = f.keys
		}
		f.gate.Verifier = tokens.NewVerifier(reload.issuer, reload.keys, f.clk.Now)
		if fail := f.check(bearer(tok)); statusOf(fail) != http.StatusUnauthorized {
			t.Errorf("Check(token cached before a reload with %s) = HTTP %d, want 401", reload.name, statusOf(fail))
		}
	}
}

// An oversized token is refused before the cache is consulted (it would cost a hash of it).
func TestCheckRefusesOversizedTokenBeforeTheCache(t *testing.T) {
	f := newFixture(t)
	huge := strings.Repeat("a", tokens.MaxTokenLen) + ".b.c"
	f.gate.Cache.Put(huge, &tokens.Claims{JTI: "j", ClientID: "app", Audience: []string{"api"}, ExpiresAt: t0.Add(time.Hour)})
	if fail := f.check(bearer(huge)); fail == nil || fail.Status != http.StatusUnauthorized {
		t.Errorf("Check(oversized, planted in the cache) = %v, want a 401", fail)
	}
}

// The form body read to look for a second token reaches the upstream whole.
func TestCheckKeepsTheBody(t *testing.T) {
	f := newFixture(t)
	body := "a=1&" + strings.Repeat("b", 100<<10)
	r := httptest.NewRequest("POST", "/data", strings.NewReader(body))
	r.Header.Set("Authorization", "Bearer "+f.mint(t, nil))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	if fail := f.check(r); fail != nil {
		t.Fatalf("Check() = %v, want success", fail)
	}
	if got, _ := io.ReadAll(r.Body); string(got) != body {
		t.Errorf("body after Check has %d bytes, want %d", len(got), len(body))
	}
}

func TestScopeSets(t *testing.T) {
	cases := []struct {
		sets  [][]string
		scope string
		want  bool
	}{
		{nil, "", true},
		{[][]string{{"read"}}, "read write", true},
		{[][]string{{"read"}}, "write", false},
		{[][]string{{"read"}}, "", false},
		{[][]string{{"read", "write"}}, "write read", true},
		{[][]string{{"read", "write"}}, "read", false},
		{[][]string{{"admin"}, {"read", "write"}}, "read write", true},
		{[][]string{{"admin"}, {"read", "write"}}, "admin", true},
		{[][]string{{"admin"}, {"read", "write"}}, "read", false},
		{[][]string{{"read"}}, "reader", false},
		{[][]string{{"read"}}, "READ", false},
	}
	for _, c := range cases {
		q := Requirements{ScopeSets: c.sets}
		if got := q.scopeOK(c.scope); got != c.want {
			t.Errorf("scopeOK(%q, %q) = %v, want %v", c.sets, c.scope, got, c.want)
		}
	}
}

func TestCheckInsufficientScope(t *testing.T) {
	f := newFixture(t)
	f.gate.Req.ScopeSets = [][]string{{"admin", "audit"}, {"root"}}
	fail := f.check(bearer(f.mint(t, nil)))
	want := `Bearer realm="api", error="insufficient_scope", scope="admin audit"`
	if fail == nil || fail.Status != http.StatusForbidden || fail.Challenge != want {
		t.Errorf("Check(scope read write) = %v, want 403 %q", fail, want)
	}
	f.gate.Req.ScopeSets = [][]string{{"admin"}, {"write", "read"}}
	if fail := f.check(bearer(f.mint(t, nil))); fail != nil {
		t.Errorf("Check(scope read write, needs admin or read+write) = %v, want success", fail)
	}
}

func TestCheckAudienceAndClaims(t *testing.T) {
	f := newFixture(t)
	tok := f.mint(t, func(a *tokens.AccessToken) { a.Audience = []string{"other-api", "extra"} })
	cases := []struct {
		name     string
		audience string
		claims   map[string]string
		status   int
	}{
		{"any known audience", "", nil, http.StatusOK},
		{"named audience present", "extra", nil, http.StatusOK},
		{"named audience absent", "api", nil, http.StatusUnauthorized},
		{"string claim", "", map[string]string{"tenant": "acme"}, http.StatusOK},
		{"string claim differs", "", map[string]string{"tenant": "evil"}, http.StatusForbidden},
		{"array claim contains", "", map[string]string{"roles": "dev"}, http.StatusOK},
		{"array claim lacks", "", map[string]string{"roles": "root"}, http.StatusForbidden},
		{"number claim", "", map[string]string{"level": "3"}, http.StatusOK},
		{"bool claim", "", map[string]string{"vip": "true"}, http.StatusOK},
		{"registered claim", "", map[string]string{"client_id": "app"}, http.StatusOK},
		{"absent claim", "", map[string]string{"dept": ""}, http.StatusForbidden},
		{"all claims required", "", map[string]string{"tenant": "acme", "roles": "root"}, http.StatusForbidden},
	}
	for _, c := range cases {
		f.gate.Req = Requirements{Audience: c.audience, Claims: c.claims}
		if got := statusOf(f.check(bearer(tok))); got != c.status {
			t.Errorf("Check(%s) = %d, want %d", c.name, got, c.status)
		}
	}
	f.gate.Req = Requirements{}
	f.gate.Audiences = nil
	if f.check(bearer(tok)) == nil {
		t.Errorf("Check() with no known audiences succeeded, want refused")
	}
}

// Caddy CVE-2026-30851: a client's own copy of an identity header never reaches the upstream, even
// when the token lacks the claim.
func TestCheckStripsIdentityHeaders(t *testing.T) {
	f := newFixture(t)
	f.gate.Req.Headers = []HeaderCopy{
		{"sub", "X-User-Id"}, {"email", "X-User-Email"}, {"roles", "X-Roles"}, {"level", "X-Level"},
	}
	r := bearer(f.mint(t, nil))
	r.Header.Set("X-User-Id", "root")
	r.Header.Add("X-User-Id", "root2")
	r.Header.Set("X-User-Email", "root@example.com")
	r.Header["x_user_email"] = []string{"root@example.com"}
	r.Header["X-USER-ID"] = []string{"root"}
	r.Header.Set("X-Other", "kept")
	if fail := f.check(r); fail != nil {
		t.Fatalf("Check() = %v, want success", fail)
	}
	want := map[string][]string{
		"X-User-Id": {"alice"}, "X-Roles": {"admin, dev"}, "X-Level": {"3"}, "X-Other": {"kept"},
	}
	if len(r.Header) != len(want) {
		t.Errorf("headers after Check = %v, want %v", r.Header, want)
	}
	for name, v := range want {
		if got := r.Header[name]; strings.Join(got, "|") != strings.Join(v, "|") {
			t.Errorf("header %s = %q, want %q", name, got, v)
		}
	}
}

// The validated token never reaches the upstream, where it would be logged and could be replayed at
// the audience's other routes, unless the route forwards it on purpose.
func TestCheckRemovesTheToken(t *testing.T) {
	for _, forward := range []bool{false, true} {
		f := newFixture(t)
		f.gate.Req.ForwardToken = forward
		r := bearer(f.mint(t, nil))
		want := r.Header.Get("Authorization")
		if !forward {
			want = ""
		}
		if fail := f.check(r); fail != nil {
			t.Fatalf("Check() with ForwardToken %v = %v, want success", forward, fail)
		}
		if got := r.Header.Get("Authorization"); got != want {
			t.Errorf("Authorization after Check() with ForwardToken %v = %q, want %q", forward, got, want)
		}
	}
}

func TestHeaderValue(t *testing.T) {
	cases := []struct {
		v    any
		want string
	}{
		{nil, ""},
		{"alice", "alice"},
		{"", ""},
		{true, "true"},
		{float64(42), "42"},
		{1.5, "1.5"},
		{[]any{"a", "b"}, "a, b"},
		{[]any{}, ""},
		{[]any{"a", map[string]any{"b": 1.0}}, `["a",{"b":1}]`},
		{map[string]any{"k": "v"}, `{"k":"v"}`},
		{"evil\r\nX-Injected: 1", "evilX-Injected: 1"},
		{" padded\t", "padded"},
	}
	for _, c := range cases {
		if got := headerValue(c.v); got != c.want {
			t.Errorf("headerValue(%#v) = %q, want %q", c.v, got, c.want)
		}
	}
}

// RFC 6750 §3 and RFC 7230 §3.2.6: a challenge carries no unescaped quote and no CR or LF,
// whatever was configured, so it can neither break its quoted strings nor split the header.
func TestChallengeIsSanitized(t *testing.T) {
	f := newFixture(t)
	f.gate.Realm = "a\"b\\c\r\nX-Injected: 1"
	f.gate.Req.ScopeSets = [][]string{{`sc"ope`, "x\r\ny", `back\slash`}}
	want := `Bearer realm="a\"b\\cX-Injected: 1", error="insufficient_scope", scope="scope xy backslash"`
	if fail := f.check(bearer(f.mint(t, nil))); fail == nil || fail.Challenge != want {
		t.Errorf("Check() = %v, want the challenge %q", fail, want)
	}
	f.gate.Realm = ""
	if fail := f.check(httptest.NewRequest("GET", "/", nil)); fail == nil || fail.Challenge != "Bearer" {
		t.Errorf("Check() with no realm = %v, want the challenge %q", fail, "Bearer")
	}
}

// RFC 7009 §2.1: a revoked token cannot be used again, though the cache still holds it, whether it
// was revoked in this process or in another one.
func TestRevocationBeatsTheCache(t *testing.T) {
	for _, c := range []struct {
		name   string
		revoke func(f *fixture, jti string)
	}{
		{"jti added in process", func(f *fixture, jti string) {
			f.gate.Deny.Add(store.Revocation{Kind: store.RevokedToken, ID: jti, Until: t0.Add(time.Hour)})
		}},
		{"family added in process", func(f *fixture, _ string) {
			f.gate.Deny.Add(store.Revocation{Kind: store.RevokedFamily, ID: "g1", Until: t0.Add(time.Hour)})
		}},
		{"family revoked by another instance", func(f *fixture, _ string) {
			f.log.Revoke(context.Background(), store.Revocation{Kind: store.RevokedFamily, ID: "g1", Until: t0.Add(time.Hour)})
			if err := f.gate.Deny.Sync(context.Background()); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		f := newFixture(t)
		raw := f.mint(t, nil)
		if fail := f.check(bearer(raw)); fail != nil {
			t.Fatalf("%s: first Check refused: %v", c.name, fail)
		}
		cached, ok := f.gate.Cache.Get(raw)
		if !ok {
			t.Fatalf("%s: token not cached after a success", c.name)
		}
		c.revoke(f, cached.JTI)
		if got := statusOf(f.check(bearer(raw))); got != http.StatusUnauthorized {
			t.Errorf("%s: Check(revoked, cached) = %d, want 401", c.name, got)
		}
	}
}

func BenchmarkGateCachedHit(b *testing.B) {
	f := newFixture(b)
	f.gate.Req = Requirements{
		ScopeSets: [][]string{{"read"}},
		Headers:   []HeaderCopy{{"sub", "X-User-Id"}, {"tenant", "X-Tenant"}},
	}
	r := bearer(f.mint(b, nil))
	r.Header.Set("X-User-Id", "root")
	// Check removes the Authorization header it validated; each request brings it again.
	auth := r.Header["Authorization"]
	if fail := f.check(r); fail != nil {
		b.Fatal(fail)
	}
	b.ReportAllocs()
	for b.Loop() {
		r.Header["Authorization"] = auth
		if fail := f.check(r); fail != nil {
			b.Fatal(fail)
		}
	}
}

// BenchmarkRefuseMalformed is the gate's part of the 401 for a token that is no JWT, which a flood
// of bad tokens asks for on every request.
func BenchmarkRefuseMalformed(b *testing.B) {
	f := newFixture(b)
	r := bearer("not.a.token")
	b.ReportAllocs()
	for b.Loop() {
		if got := statusOf(f.check(r)); got != http.StatusUnauthorized {
			b.Fatalf("Check(not.a.token) = %d, want 401", got)
		}
	}
}

// Run with -race: requests, revocations and syncs at once.
func TestCheckConcurrently(t *testing.T) {
	f := newFixture(t)
	f.gate.Cache = NewCache(4, f.clk.Now)
	toks := make([]string, 8)
	for i := range toks {
		toks[i] = f.mint(t, nil)
	}
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			for j := range 200 {
				f.check(bearer(toks[(i+j)%len(toks)]))
			}
		})
	}
	wg.Go(func() {
		for j := range 200 {
			f.gate.Deny.Add(store.Revocation{Kind: store.RevokedToken, ID: strconv.Itoa(j), Until: t0.Add(time.Hour)})
			if err := f.gate.Deny.Sync(context.Background()); err != nil {
				t.Error(err)
			}
		}
	})
	wg.Wait()
}
