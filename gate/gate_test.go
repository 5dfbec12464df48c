package gate

import (
	"context"
	"github.com/tokengate/tokengate/internal/testclock"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokengate/tokengate/store"
	"github.com/tokengate/tokengate/tokens"
)

const issuer = "https://auth.example.com"

// fixture is a gate in front of a route, with a minter for the same keys and a settable clock.
type fixture struct {
	clk    *clock
	minter *tokens.Minter
	log    *fakeLog
	gate   *Gate
}

func newFixture(t testing.TB) *fixture {
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
	keys := func() *tokens.KeySet { return ks }
	f := &fixture{clk: testclock.New(t0), log: &fakeLog{}}
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

// do runs the gate on r and returns the response and whether the gate let it through.
func (f *fixture) do(r *http.Request) (*httptest.ResponseRecorder, bool) {
	w := httptest.NewRecorder()
	_, ok := f.gate.Authenticate(w, r)
	return w, ok
}

func bearer(token string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/data", nil)
	r.Header.Set("Authorization", "Bearer "+token)
	return r
}

func TestAuthenticateChallenges(t *testing.T) {
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

		// RFC 6750 §3.1: no credentials, or another scheme, get a bare challenge (SECURITY 77, 78).
		{"no credentials", req("GET", "/data", "", ""), http.StatusUnauthorized, bare},
		{"Basic", req("GET", "/data", "Basic YWxpY2U6c2VjcmV0", ""), http.StatusUnauthorized, bare},
		{"Bearerx scheme", req("GET", "/data", "Bearerx "+good, ""), http.StatusUnauthorized, bare},

		// SECURITY 80, 83, 85, 89: bad, expired, foreign, revoked: invalid_token.
		{"malformed", req("GET", "/data", "Bearer abc.def", ""), http.StatusUnauthorized, invalidToken},
		{"Bearer alone", req("GET", "/data", "Bearer", ""), http.StatusUnauthorized, invalidToken},
		{"Bearer and spaces", req("GET", "/data", "Bearer    ", ""), http.StatusUnauthorized, invalidToken},
		{"a megabyte of dots", req("GET", "/data", "Bearer "+strings.Repeat(".", 1<<20), ""), http.StatusUnauthorized, invalidToken},
		{"expired", req("GET", "/data", "Bearer "+expired, ""), http.StatusUnauthorized, invalidToken},
		{"another audience", req("GET", "/data", "Bearer "+otherAud, ""), http.StatusUnauthorized, invalidToken},
		{"a client removed from the config", req("GET", "/data", "Bearer "+removedClient, ""), http.StatusUnauthorized, invalidToken},

		// RFC 6750 §2, SECURITY 81: one method only, and never the query.
		{"header and query", req("GET", "/data?access_token="+good, "Bearer "+good, ""), http.StatusBadRequest, invalidReq},
		{"header and encoded query name", req("GET", "/data?access%5Ftoken=x", "Bearer "+good, ""), http.StatusBadRequest, invalidReq},
		{"header and form body", req("POST", "/data", "Bearer "+good, "a=1&access_token="+good), http.StatusBadRequest, invalidReq},
		{"query only", req("GET", "/data?access_token="+good, "", ""), http.StatusBadRequest, invalidReq},
		{"Basic and query", req("GET", "/data?access_token="+good, "Basic YWxpY2U6c2VjcmV0", ""), http.StatusBadRequest, invalidReq},
		{"two Authorization headers", twoHeaders, http.StatusBadRequest, invalidReq},
	}
	for _, c := range cases {
		w, ok := f.do(c.r)
		if c.status == http.StatusOK {
			if !ok {
				t.Errorf("Authenticate(%s) refused: %d %q", c.name, w.Code, w.Header().Get("WWW-Authenticate"))
			}
			continue
		}
		if ok || w.Code != c.status {
			t.Errorf("Authenticate(%s) = %d, %v; want %d", c.name, w.Code, ok, c.status)
		}
		if got := w.Header().Get("WWW-Authenticate"); got != c.challenge {
			t.Errorf("Authenticate(%s) challenge = %q, want %q", c.name, got, c.challenge)
		}
		if body := w.Body.String(); len(body) > 64 || strings.Contains(body, good) {
			t.Errorf("Authenticate(%s) body = %.80q, want a short text without the token", c.name, body)
		}
	}
}

func TestAuthenticateRefusesATokenFromAnotherIssuer(t *testing.T) {
	f, other := newFixture(t), newFixture(t)
	if w, ok := f.do(bearer(other.mint(t, nil))); ok || w.Code != http.StatusUnauthorized {
		t.Errorf("Authenticate(token of another tokengate) = %d, %v; want 401", w.Code, ok)
	}
}

// An oversized token is refused before the cache is consulted (it would cost a hash of it).
func TestAuthenticateRefusesOversizedTokenBeforeTheCache(t *testing.T) {
	f := newFixture(t)
	huge := strings.Repeat("a", tokens.MaxTokenLen) + ".b.c"
	f.gate.Cache.Put(huge, &tokens.Claims{JTI: "j", ClientID: "app", Audience: []string{"api"}, ExpiresAt: t0.Add(time.Hour)})
	if w, ok := f.do(bearer(huge)); ok || w.Code != http.StatusUnauthorized {
		t.Errorf("Authenticate(oversized, planted in the cache) = %d, %v; want 401", w.Code, ok)
	}
}

// The form body read to look for a second token reaches the upstream whole.
func TestAuthenticateKeepsTheBody(t *testing.T) {
	f := newFixture(t)
	body := "a=1&" + strings.Repeat("b", 100<<10)
	r := httptest.NewRequest("POST", "/data", strings.NewReader(body))
	r.Header.Set("Authorization", "Bearer "+f.mint(t, nil))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	if w, ok := f.do(r); !ok {
		t.Fatalf("Authenticate() = %d", w.Code)
	}
	if got, _ := io.ReadAll(r.Body); string(got) != body {
		t.Errorf("body after Authenticate has %d bytes, want %d", len(got), len(body))
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

func TestAuthenticateInsufficientScope(t *testing.T) {
	f := newFixture(t)
	f.gate.Req.ScopeSets = [][]string{{"admin", "audit"}, {"root"}}
	w, ok := f.do(bearer(f.mint(t, nil)))
	want := `Bearer realm="api", error="insufficient_scope", scope="admin audit"`
	if ok || w.Code != http.StatusForbidden || w.Header().Get("WWW-Authenticate") != want {
		t.Errorf("Authenticate(scope read write) = %d %q, want 403 %q", w.Code, w.Header().Get("WWW-Authenticate"), want)
	}
	f.gate.Req.ScopeSets = [][]string{{"admin"}, {"write", "read"}}
	if w, ok := f.do(bearer(f.mint(t, nil))); !ok {
		t.Errorf("Authenticate(scope read write, needs admin or read+write) = %d, want success", w.Code)
	}
}

func TestAuthenticateAudienceAndClaims(t *testing.T) {
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
		w, ok := f.do(bearer(tok))
		if ok != (c.status == http.StatusOK) || (!ok && w.Code != c.status) {
			t.Errorf("Authenticate(%s) = %d, %v; want %d", c.name, w.Code, ok, c.status)
		}
	}
	f.gate.Req = Requirements{}
	f.gate.Audiences = nil
	if _, ok := f.do(bearer(tok)); ok {
		t.Errorf("Authenticate() with no known audiences succeeded, want refused")
	}
}

// SECURITY 91 (Caddy CVE-2026-30851): a client's own copy of an identity header never reaches the
// upstream, even when the token lacks the claim.
func TestAuthenticateStripsIdentityHeaders(t *testing.T) {
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
	if w, ok := f.do(r); !ok {
		t.Fatalf("Authenticate() = %d", w.Code)
	}
	want := map[string][]string{
		"X-User-Id": {"alice"}, "X-Roles": {"admin, dev"}, "X-Level": {"3"}, "X-Other": {"kept"},
		"Authorization": r.Header["Authorization"],
	}
	if len(r.Header) != len(want) {
		t.Errorf("headers after Authenticate = %v, want %v", r.Header, want)
	}
	for name, v := range want {
		if got := r.Header[name]; strings.Join(got, "|") != strings.Join(v, "|") {
			t.Errorf("header %s = %q, want %q", name, got, v)
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

// SECURITY 92: a challenge carries no unescaped quote and no CR or LF, whatever was configured.
func TestChallengeIsSanitized(t *testing.T) {
	f := newFixture(t)
	f.gate.Realm = "a\"b\\c\r\nX-Injected: 1"
	f.gate.Req.ScopeSets = [][]string{{`sc"ope`, "x\r\ny", `back\slash`}}
	w, _ := f.do(bearer(f.mint(t, nil)))
	want := `Bearer realm="a\"b\\cX-Injected: 1", error="insufficient_scope", scope="scope xy backslash"`
	if got := w.Header().Get("WWW-Authenticate"); got != want {
		t.Errorf("challenge = %q, want %q", got, want)
	}
	f.gate.Realm = ""
	w, _ = f.do(httptest.NewRequest("GET", "/", nil))
	if got := w.Header().Get("WWW-Authenticate"); got != "Bearer" {
		t.Errorf("challenge with no realm = %q, want %q", got, "Bearer")
	}
}

// SECURITY 89: revocation beats the cache, in this process and from another one.
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
		if _, ok := f.do(bearer(raw)); !ok {
			t.Fatalf("%s: first Authenticate refused", c.name)
		}
		cached, ok := f.gate.Cache.Get(raw)
		if !ok {
			t.Fatalf("%s: token not cached after a success", c.name)
		}
		c.revoke(f, cached.JTI)
		if w, ok := f.do(bearer(raw)); ok || w.Code != http.StatusUnauthorized {
			t.Errorf("%s: Authenticate(revoked, cached) = %d, %v; want 401", c.name, w.Code, ok)
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
	w := httptest.NewRecorder()
	if _, ok := f.gate.Authenticate(w, r); !ok {
		b.Fatal("refused")
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := f.gate.Authenticate(w, r); !ok {
			b.Fatal("refused")
		}
	}
}

// Run with -race: requests, revocations and syncs at once.
func TestAuthenticateConcurrently(t *testing.T) {
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
				f.do(bearer(toks[(i+j)%len(toks)]))
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
