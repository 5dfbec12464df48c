package federation

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// clock is a settable now.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

// signedBy signs a payload with key under kid.
func signedBy(t *testing.T, key *ecdsa.PrivateKey, kid string) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", kid))
	if err != nil {
		t.Fatal(err)
	}
	jws, err := signer.Sign([]byte(`{"sub":"x"}`))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestKeySetRefetchesAnUnknownKidAtMostEvery10s(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	var fetches atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Use: "sig"}}})
	}))
	defer srv.Close()
	clk := &clock{t: time.Unix(1e9, 0)}
	ks := &keySet{uri: srv.URL, algs: []jose.SignatureAlgorithm{jose.ES256}, client: NewHTTPClient(nil), now: clk.now}
	ctx := context.Background()

	if _, err := ks.VerifySignature(ctx, signedBy(t, key, "k1")); err != nil {
		t.Fatalf("a token of the set's key: %v", err)
	}
	for range 5 {
		if _, err := ks.VerifySignature(ctx, signedBy(t, key, "unknown")); err == nil {
			t.Fatal("a token naming a kid the set lacks verified")
		}
	}
	if n := fetches.Load(); n != 1 {
		t.Errorf("fetches within 10 s of the first = %d, want 1 (unknown kids wait for the interval)", n)
	}
	clk.t = clk.t.Add(refetchInterval)
	ks.VerifySignature(ctx, signedBy(t, key, "unknown"))
	if n := fetches.Load(); n != 2 {
		t.Errorf("fetches after 10 s = %d, want 2", n)
	}
	if _, err := ks.VerifySignature(ctx, signedBy(t, key, "k1")); err != nil || fetches.Load() != 2 {
		t.Errorf("a known kid: %v after %d fetches, want verified from the cache", err, fetches.Load())
	}
}

func TestDiscoveryRetriesAFailureAfter10s(t *testing.T) {
	var up atomic.Bool
	var fetches atomic.Int32
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		if !up.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"issuer": srv.URL, "authorization_endpoint": srv.URL + "/a",
			"token_endpoint": srv.URL + "/t", "jwks_uri": srv.URL + "/k"})
	}))
	defer srv.Close()
	clk := &clock{t: time.Unix(1e9, 0)}
	p, err := New(Config{Name: "up", Kind: KindOIDC, Issuer: srv.URL, ClientID: "c", RedirectURI: "https://tg.example/cb", Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	if n := fetches.Load(); n != 0 {
		t.Fatalf("New fetched %d times, want nothing before a sign-in", n)
	}
	ctx := context.Background()
	_, _, err = p.Start(ctx, Hints{})
	var ferr *Error
	if !errors.As(err, &ferr) || ferr.Code != CodeTemporarilyUnavailable {
		t.Fatalf("Start with discovery down = %v, want temporarily_unavailable", err)
	}
	up.Store(true)
	p.Start(ctx, Hints{})
	if n := fetches.Load(); n != 1 {
		t.Errorf("fetches within 10 s of a failure = %d, want 1", n)
	}
	clk.t = clk.t.Add(refetchInterval)
	to, pending, err := p.Start(ctx, Hints{LoginHint: "a@b.example", ForceLogin: true})
	if err != nil {
		t.Fatalf("Start after 10 s = %v, want the discovery fetched again", err)
	}
	for _, want := range []string{"code_challenge_method=S256", "nonce=" + pending.Nonce, "state=" + pending.State, "login_hint=a%40b.example", "prompt=login", "scope=openid"} {
		if !strings.Contains(to, want) {
			t.Errorf("authorization URL %q lacks %q", to, want)
		}
	}
}

func TestBoundedBody(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(make([]byte, maxBody+1))
	}))
	defer srv.Close()
	resp, err := NewHTTPClient(nil).Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if _, err := io.ReadAll(resp.Body); !errors.Is(err, errTooLarge) {
		t.Errorf("reading %d bytes = %v, want errTooLarge", maxBody+1, err)
	}
}

func TestUpstreamError(t *testing.T) {
	for sent, want := range map[string]string{
		"access_denied": CodeAccessDenied, "interaction_required": CodeAccessDenied, "account_selection_required": CodeAccessDenied,
		"temporarily_unavailable": CodeTemporarilyUnavailable, "server_error": CodeServerError, "<script>": CodeServerError,
	} {
		if got := UpstreamError(sent).Code; got != want {
			t.Errorf("UpstreamError(%q) = %q, want %q", sent, got, want)
		}
	}
}

func TestPersonSubjectAndDomains(t *testing.T) {
	p, _ := New(Config{Name: "gh", Kind: KindOAuth2, AuthorizeURL: "https://x/a", TokenURL: "https://x/t", UserinfoURL: "https://x/u",
		ClientID: "c", RedirectURI: "https://tg.example/cb", AllowedDomains: []string{"Example.com"}, Claims: map[string]string{"org": "company"}})
	for _, tc := range []struct {
		name    string
		profile string
		sub     string
		code    string
	}{
		{"numeric id beyond 2^53", `{"id": 9007199254740993, "email": "a@example.COM", "company": "acme"}`, "gh|9007199254740993", ""},
		{"string id", `{"id": "abc", "email": "a@example.com"}`, "gh|abc", ""},
		{"fractional id", `{"id": 1.5, "email": "a@example.com"}`, "", CodeServerError},
		{"no id", `{"email": "a@example.com"}`, "", CodeServerError},
		{"subdomain", `{"id": 1, "email": "a@sub.example.com"}`, "", CodeAccessDenied},
		{"suffix", `{"id": 1, "email": "a@badexample.com"}`, "", CodeAccessDenied},
		{"two @", `{"id": 1, "email": "a@evil.org@example.com"}`, "", CodeAccessDenied},
		{"no email", `{"id": 1}`, "", CodeAccessDenied},
	} {
		profile, err := decodeObject([]byte(tc.profile))
		if err != nil {
			t.Fatal(err)
		}
		person, err := p.person(profile)
		var ferr *Error
		switch {
		case tc.code == "" && (err != nil || person.Subject != tc.sub):
			t.Errorf("%s: person = %+v, %v, want sub %q", tc.name, person, err, tc.sub)
		case tc.code != "" && (!errors.As(err, &ferr) || ferr.Code != tc.code):
			t.Errorf("%s: err = %v, want %s", tc.name, err, tc.code)
		}
	}
	person, _ := p.person(map[string]any{"id": "1", "email": "a@example.com", "company": "acme", "secret": "x"})
	if person.Claims["org"] != "acme" || person.Claims["email"] != "a@example.com" || person.Claims["secret"] != nil {
		t.Errorf("claims = %v, want org renamed from company, email passed, nothing else", person.Claims)
	}
}
