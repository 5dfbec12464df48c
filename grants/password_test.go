package grants

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokengate/tokengate/identity"
)

func TestPassword(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		name   string
		form   []string
		status int
		code   string
	}{
		{"right password", []string{"username", "alice", "password", "alice-pw"}, 200, ""},
		{"missing username", []string{"password", "alice-pw"}, 400, CodeInvalidRequest},
		{"missing password", []string{"username", "alice"}, 400, CodeInvalidRequest},
		{"empty password", []string{"username", "alice", "password", ""}, 400, CodeInvalidRequest},
		{"wrong password", []string{"username", "carol", "password", "nope"}, 400, CodeInvalidGrant},
		{"unknown user", []string{"username", "mallory", "password", "nope"}, 400, CodeInvalidGrant},
		{"user of another identity provider", []string{"username", "bob", "password", "bob-pw"}, 400, CodeInvalidGrant},
		{"idp picks the provider", []string{"username", "bob", "password", "bob-pw", "acr_values", "idp:partners"}, 200, ""},
		{"unknown idp", []string{"username", "bob", "password", "bob-pw", "acr_values", "idp:ldap"}, 400, CodeInvalidRequest},
		{"the user's tenant", []string{"username", "alice", "password", "alice-pw", "acr_values", "tenant:acme"}, 200, ""},
		{"a foreign tenant", []string{"username", "alice", "password", "alice-pw", "acr_values", "tenant:globex"}, 400, CodeInvalidGrant},
		{"a tenant for a user of no tenant", []string{"username", "carol", "password", "carol-pw", "acr_values", "tenant:globex"}, 400, CodeInvalidGrant},
		{"disallowed scope", []string{"username", "alice", "password", "alice-pw", "scope", "admin"}, 400, CodeInvalidScope},
	} {
		resp := f.post(vals(append([]string{"grant_type", "password"}, tc.form...)...))
		if tc.status == 200 {
			f.expectOK(tc.name, resp)
		} else {
			f.expectError(tc.name, resp, tc.status, tc.code)
		}
	}
	// Wrong password and unknown user answer alike (RFC 6749 §4.3.2).
	wrong := f.post(vals("grant_type", "password", "username", "carol", "password", "x"))
	unknown := f.post(vals("grant_type", "password", "username", "nobody", "password", "x"))
	if wrong.raw != unknown.raw {
		t.Errorf("wrong password %q, unknown user %q: want identical", wrong.raw, unknown.raw)
	}
}

// A client without identity_providers may use only the first users block.
func TestDefaultIdentityProviderOnly(t *testing.T) {
	f := newFixture(t)
	resp := f.do(request{body: vals("grant_type", "password", "username", "bob", "password", "bob-pw", "acr_values", "idp:partners").Encode(),
		basic: [2]string{"other", "other-secret"}})
	f.expectError("another provider", resp, 400, CodeInvalidRequest)
	resp = f.do(request{body: vals("grant_type", "password", "username", "carol", "password", "carol-pw").Encode(),
		basic: [2]string{"other", "other-secret"}})
	f.expectOK("default provider", resp)
}

// ACRValues picks the identity providers and tenant a sign-in may use, for the password grant and
// the authorization endpoint alike.
func TestACRValues(t *testing.T) {
	f := newFixture(t)
	app, _ := f.srv.Client("app")
	other, _ := f.srv.Client("other")
	for _, tc := range []struct {
		client *Client
		param  string
		idps   []string
		tenant string
		code   string
	}{
		{app, "", []string{"main", "partners"}, "", ""},
		{app, "idp:partners", []string{"partners"}, "", ""},
		{app, "tenant:acme idp:main urn:ignored", []string{"main"}, "acme", ""},
		{app, "idp:", []string{"main", "partners"}, "", ""},
		{app, "idp:ldap", nil, "", CodeInvalidRequest},
		// Names compare exactly.
		{app, "idp:Main", nil, "", CodeInvalidRequest},
		// A client without identity_providers has the first provider only.
		{other, "", []string{"main"}, "", ""},
		{other, "idp:partners", nil, "", CodeInvalidRequest},
	} {
		got, err := f.srv.ACRValues(tc.client, tc.param)
		var code string
		if err != nil {
			code = err.Code
		}
		if code != tc.code || !slices.Equal(got.IdPs, tc.idps) || got.Tenant != tc.tenant {
			t.Errorf("ACRValues(%s, %q) = %q %q %q, want %q %q %q", tc.client.ID, tc.param, got.IdPs, got.Tenant, code, tc.idps, tc.tenant, tc.code)
		}
	}
}

// SignedIn names the identity provider that checked the password, so a session can say which.
func TestSignInNamesTheIdentityProvider(t *testing.T) {
	f := newFixture(t)
	app, _ := f.srv.Client("app")
	for _, tc := range []struct{ user, password, acr, want string }{
		{"alice", "alice-pw", "", "main"},
		{"bob", "bob-pw", "idp:partners", "partners"},
	} {
		user, err := f.srv.SignIn(t.Context(), "192.0.2.1", app, tc.user, tc.password, tc.acr)
		if err != nil || user.IdP != tc.want {
			t.Errorf("SignIn(%q, acr_values %q).IdP = %q, %v, want %q", tc.user, tc.acr, user.IdP, err, tc.want)
		}
	}
}

func TestPasswordTokens(t *testing.T) {
	f := newFixture(t)
	resp := f.post(vals("grant_type", "password", "username", "alice", "password", "alice-pw",
		"scope", "openid offline_access api.read", "acr_values", "tenant:acme"))
	claims := f.accessClaims("password", resp)
	if claims.Subject != "alice" || claims.ClientID != "app" || claims.Scope != "openid offline_access api.read" ||
		claims.All["email"] != "alice@example.com" || claims.All["tenant"] != "acme" || claims.All["tier"] != "gold" ||
		claims.GrantID == "" || len(claims.Audience) != 1 || claims.Audience[0] != "api" {
		t.Errorf("access token claims = %+v", claims)
	}
	if got := len(resp.str("refresh_token")); got < 43 {
		t.Errorf("refresh token has %d characters, want 256 bits (43 base64url characters)", got)
	}
	if resp.str("id_token") == "" {
		t.Error("no id_token for openid")
	}
	// Without offline_access, no refresh token; without openid, no ID token.
	resp = f.post(vals("grant_type", "password", "username", "alice", "password", "alice-pw", "scope", "api.read"))
	if resp.str("refresh_token") != "" || resp.str("id_token") != "" {
		t.Errorf("scope api.read got %s", resp.raw)
	}
}

// RFC 6749 §4.3.2: from the 10th wrong password for one username, 429 with
// Retry-After, and then the right password is 429 too, never invalid_grant. Other users go on.
func TestPasswordGuessingIsThrottled(t *testing.T) {
	f := newFixture(t)
	guess := func(user, pw string) *response {
		return f.post(vals("grant_type", "password", "username", user, "password", pw))
	}
	for i := 1; i < 10; i++ {
		f.expectError("wrong password", guess("alice", "guess"), 400, CodeInvalidGrant)
	}
	resp := guess("alice", "guess")
	if resp.status != http.StatusTooManyRequests || resp.header.Get("Retry-After") == "" {
		t.Fatalf("10th wrong password: %d Retry-After %q, want 429 with Retry-After", resp.status, resp.header.Get("Retry-After"))
	}
	if resp := guess("alice", "alice-pw"); resp.status != http.StatusTooManyRequests {
		t.Fatalf("right password while throttled: %d %s, want 429", resp.status, resp.raw)
	}
	f.expectOK("another user", guess("carol", "carol-pw"))
	// Never forever: after the window the right password works.
	f.Advance(5 * time.Minute)
	f.expectOK("after the window", guess("alice", "alice-pw"))
}

// One address guessing many usernames is throttled too, but far later than one username.
func TestAddressThrottleIsFarLater(t *testing.T) {
	f := newFixture(t)
	for i := 0; i < 150; i++ {
		resp := f.post(vals("grant_type", "password", "username", "user"+strings.Repeat("x", i%50)+string(rune('a'+i/50)), "password", "guess"))
		if resp.status != 400 {
			t.Fatalf("guess %d from one address: %d, want 400 (the address limit is far higher)", i, resp.status)
		}
	}
	var throttled bool
	for i := 0; i < 100 && !throttled; i++ {
		throttled = f.post(vals("grant_type", "password", "username", "u"+strings.Repeat("y", i), "password", "guess")).status == http.StatusTooManyRequests
	}
	if !throttled {
		t.Fatal("250 wrong passwords from one address were never throttled")
	}
}

// heldProvider holds every password check of the provider it wraps until release is closed, so
// that attempts sent at once are all in flight together; arrived counts the checks.
type heldProvider struct {
	identity.Provider
	arrived atomic.Int32
	release chan struct{}
}

func (h *heldProvider) Authenticate(ctx context.Context, username, password, tenant string) (identity.User, bool, error) {
	h.arrived.Add(1)
	<-h.release
	return h.Provider.Authenticate(ctx, username, password, tenant)
}

// guessAtOnce sends the password grants for the username and password pairs all at once, through
// a main provider that holds each check until every request has either reached it or been
// answered, and returns the answers.
func guessAtOnce(t *testing.T, pairs [][2]string) (*fixture, []*response) {
	t.Helper()
	held := &heldProvider{release: make(chan struct{})}
	f := newFixture(t, func(_ *fixture, cfg *Config) {
		held.Provider = cfg.IdentityProviders[0].Provider
		cfg.IdentityProviders[0].Provider = held
	})
	// One request first puts app's secret in the verified-secret cache, so that the flood queues
	// for no bcrypt compare of it.
	f.expectOK("client_credentials before the flood", f.post(vals("grant_type", "client_credentials")))
	answers := make([]*response, len(pairs))
	var answered atomic.Int32
	var wg sync.WaitGroup
	for i, p := range pairs {
		wg.Go(func() {
			answers[i] = f.post(vals("grant_type", "password", "username", p[0], "password", p[1]))
			answered.Add(1)
		})
	}
	for deadline := time.Now().Add(time.Minute); int(held.arrived.Load()+answered.Load()) < len(pairs); {
		if time.Now().After(deadline) {
			t.Fatalf("%d checks reached the provider and %d were answered, want %d in all", held.arrived.Load(), answered.Load(), len(pairs))
		}
		time.Sleep(time.Millisecond)
	}
	close(held.release)
	wg.Wait()
	return f, answers
}

// countAnswers counts invalid_grant and 429 answers; anything else fails the test, and so does a
// 429 without Retry-After.
func countAnswers(t *testing.T, answers []*response) (wrong, throttled int) {
	t.Helper()
	for i, r := range answers {
		switch {
		case r.status == http.StatusBadRequest && r.str("error") == CodeInvalidGrant:
			wrong++
		case r.status == http.StatusTooManyRequests && r.header.Get("Retry-After") != "":
			throttled++
		default:
			t.Errorf("attempt %d: %d %s Retry-After %q, want invalid_grant or 429 with Retry-After", i, r.status, r.raw, r.header.Get("Retry-After"))
		}
	}
	return wrong, throttled
}

// Parallel wrong passwords for one username count as sequential ones: of 60 sent at once, no more
// are checked than the throttle lets through one after another (RFC 6749 §4.3.2), and then the
// right password waits for the window too.
func TestParallelGuessesAreThrottledAsSequential(t *testing.T) {
	pairs := make([][2]string, 60)
	for i := range pairs {
		pairs[i] = [2]string{"alice", fmt.Sprint("guess", i)}
	}
	f, answers := guessAtOnce(t, pairs)
	if wrong, throttled := countAnswers(t, answers); wrong > 9 || wrong+throttled != 60 {
		t.Errorf("60 parallel wrong passwords: %d checked (invalid_grant), %d throttled, want at most 9 checked and the rest 429", wrong, throttled)
	}
	if resp := f.post(vals("grant_type", "password", "username", "alice", "password", "alice-pw")); resp.status != http.StatusTooManyRequests {
		t.Errorf("the right password after the flood: %d %s, want 429", resp.status, resp.raw)
	}
	f.Advance(5 * time.Minute)
	f.expectOK("the right password after the window", f.post(vals("grant_type", "password", "username", "alice", "password", "alice-pw")))
}

// The per-address count is reserved the same way: one address guessing many usernames at once is
// checked no more often than one after another.
func TestParallelGuessesFromOneAddress(t *testing.T) {
	pairs := make([][2]string, 250)
	for i := range pairs {
		pairs[i] = [2]string{fmt.Sprint("user", i), "guess"}
	}
	_, answers := guessAtOnce(t, pairs)
	if wrong, throttled := countAnswers(t, answers); wrong > 200 || throttled == 0 {
		t.Errorf("250 parallel wrong passwords for as many usernames: %d checked, %d throttled, want at most 200 checked", wrong, throttled)
	}
}

// failingProvider is a login backend that cannot answer.
type failingProvider struct{}

func (failingProvider) Authenticate(context.Context, string, string, string) (identity.User, bool, error) {
	return identity.User{}, false, fmt.Errorf("legacy login: %w", errors.New("connection refused"))
}

// A check that could not be made is no wrong password: it leaves no failure behind, so an outage
// of the login backend never turns into 429 for the people it turned away.
func TestUnavailableProviderCountsNoFailure(t *testing.T) {
	f := newFixture(t, func(_ *fixture, cfg *Config) { cfg.IdentityProviders[0].Provider = failingProvider{} })
	for i := 1; i <= 20; i++ {
		if resp := f.post(vals("grant_type", "password", "username", "alice", "password", "alice-pw")); resp.status != http.StatusServiceUnavailable {
			t.Fatalf("attempt %d while the provider is down: %d %s, want 503", i, resp.status, resp.raw)
		}
	}
}
