package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// The race and flood attacks an outside audit performed: password guesses sent at once, a flood of
// device authorization requests, and code replays racing the first redemption.

// raceAttackCaddyfile signs people in through slowLogin, a legacy login that takes its time as
// real ones do, so that guesses sent at once are all in flight together: web uses the password
// grant, app the sign-in page (and may refresh), tv and tv2 the device flow. /api/* is guarded.
// The store is the default bolt file, whose durable writes give a racing replay time to overtake.
const raceAttackCaddyfile = `{
	tokengate {
		issuer {{BASE}}
		store bolt {{DATA}}/tokengate.db
		client web {
			secret web-secret
			grants password
			scopes api.read
			audience api
		}
		client app {
			public
			grants authorization_code refresh_token
			redirect_uris ` + appRedirectURI + `
			scopes openid offline_access api.read
			audience api
		}
		client tv {
			public
			grants device_code
			scopes api.read
		}
		client tv2 {
			public
			grants device_code
			scopes api.read
		}
		users slow {
			http_login {{LOGIN}}/login
		}
	}
}

{{BASE}} {
	tokengate
	bearer_auth /api/* {
		audience api
	}
	respond /api/* "hello {http.auth.user.id}" 200
}
`

// slowLogin is a legacy login that answers after slowLoginDelay: alicePassword is a valid login
// for anyone, every other password 401. It counts the passwords checked per username.
type slowLogin struct {
	*httptest.Server
	mu      sync.Mutex
	checked map[string]int
}

const slowLoginDelay = 300 * time.Millisecond

func startSlowLogin(t *testing.T) *slowLogin {
	l := &slowLogin{checked: map[string]int{}}
	l.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		l.mu.Lock()
		l.checked[r.PostForm.Get("username")]++
		l.mu.Unlock()
		time.Sleep(slowLoginDelay)
		if r.PostForm.Get("password") != alicePassword {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Write([]byte(`{}`))
	}))
	t.Cleanup(l.Server.Close)
	return l
}

// checks is how many passwords of username the login was asked to check.
func (l *slowLogin) checks(username string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.checked[username]
}

func startRaceAttackCaddy(t *testing.T) (*Caddy, *slowLogin) {
	t.Helper()
	login := startSlowLogin(t)
	return startCaddy(t, strings.Replace(raceAttackCaddyfile, "{{LOGIN}}", login.URL, 1)), login
}

// atOnce runs attempt n times at once and returns the answers; a transport failure fails the test.
func atOnce(t *testing.T, n int, attempt func(i int) (reply, error)) []reply {
	t.Helper()
	answers := make([]reply, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { answers[i], errs[i] = attempt(i) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	return answers
}

// wantThrottled checks r is a 429 with Retry-After.
func wantThrottled(t *testing.T, what string, r reply) {
	t.Helper()
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") == "" {
		t.Errorf("%s: HTTP %d, Retry-After %q, want 429 with Retry-After:\n%.300s", what, r.status, r.header.Get("Retry-After"), r.body)
	}
}

// RFC 6749 §4.3.2 against parallel guesses: of 60 wrong passwords for one username sent at once, at
// most 10 are checked, the others get 429 with Retry-After, on the password grant and the sign-in
// page alike; then the right password is 429 too, and the login is not asked.
func TestAttackParallelPasswordGuesses(t *testing.T) {
	t.Parallel()
	c, login := startRaceAttackCaddy(t)
	const guesses = 60

	t.Run("password grant", func(t *testing.T) {
		guess := formBody("grant_type", "password", "username", "alice", "password", "wrong")
		answers := atOnce(t, guesses, func(int) (reply, error) {
			return do(testContext(t), c, request{path: "/connect/token", header: basicAuth("web", "web-secret"), body: guess})
		})
		wrong := 0
		for i, r := range answers {
			if r.status == http.StatusTooManyRequests {
				wantThrottled(t, "a throttled guess", r)
				continue
			}
			wantError(t, fmt.Sprint("guess ", i), r, "invalid_grant")
			wrong++
		}
		if wrong > 10 || login.checks("alice") > 10 {
			t.Errorf("%d parallel wrong passwords: %d answered invalid_grant, %d checked by the login; want at most 10 of each", guesses, wrong, login.checks("alice"))
		}
		right := postToken(t, c, basicAuth("web", "web-secret"), formBody("grant_type", "password", "username", "alice", "password", alicePassword))
		wantThrottled(t, "the right password after the guesses", right)
		wantErrorIn(t, "the right password after the guesses", right, "temporarily_unavailable")
	})

	t.Run("sign-in page", func(t *testing.T) {
		browsers := make([]*formClient, guesses)
		forms := make([]url.Values, guesses)
		for i := range guesses {
			browsers[i] = newFormClient(t)
			forms[i], _ = signInForm(t, browsers[i], c, "openid", "")
			forms[i].Set("username", "bob")
			forms[i].Set("password", "wrong")
		}
		answers := atOnce(t, guesses, func(i int) (reply, error) {
			resp, err := browsers[i].client.PostForm(c.URL("/connect/authorize"), forms[i])
			if err != nil {
				return reply{}, err
			}
			resp.Body.Close()
			return reply{status: resp.StatusCode, header: resp.Header}, nil
		})
		wrong := 0
		for i, r := range answers {
			switch r.status {
			case http.StatusUnauthorized:
				wrong++
			case http.StatusTooManyRequests:
				wantThrottled(t, "a throttled guess on the sign-in page", r)
			default:
				t.Errorf("guess %d on the sign-in page: HTTP %d, want 401 (the form again) or 429", i, r.status)
			}
		}
		if wrong > 10 || login.checks("bob") > 10 {
			t.Errorf("%d parallel wrong passwords on the sign-in page: %d answered 401, %d checked by the login; want at most 10 of each", guesses, wrong, login.checks("bob"))
		}
		_, _, page := signInWith(t, newFormClient(t), c, "openid", "", "bob", alicePassword)
		if page.status != http.StatusTooManyRequests || page.location != nil {
			t.Errorf("the right password on the sign-in page after the guesses: HTTP %d, location %v, want 429 and no code", page.status, page.location)
		}
	})
}

// RFC 8628 §3.1 against a flood: each device authorization stores a device code, so one client from
// one address is refused from the 101st request within a minute (429, Retry-After, JSON, no-store),
// while another client, and the same client from another address, are served.
func TestAttackDeviceAuthorizationFlood(t *testing.T) {
	t.Parallel()
	c, _ := startRaceAttackCaddy(t)
	ask := func(ctx context.Context, client, source string) (reply, error) {
		return do(ctx, c, request{path: "/connect/deviceauthorization", client: fromLoopback(t, source),
			body: formBody("client_id", client, "scope", "api.read")})
	}
	var last reply
	for i := 1; i <= 101; i++ {
		r, err := ask(testContext(t), "tv", "127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		if i <= 100 && r.status != http.StatusOK {
			t.Fatalf("device authorization %d from tv: HTTP %d %s, want 200 (100 a minute are allowed)", i, r.status, r.body)
		}
		last = r
	}
	wantThrottled(t, "the 101st device authorization within a minute", last)
	wantErrorIn(t, "the 101st device authorization within a minute", last, "temporarily_unavailable")
	if got := last.header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("the 101st device authorization: Cache-Control %q, want no-store", got)
	}
	for _, tc := range []struct{ what, client, source string }{
		{"another client from the same address", "tv2", "127.0.0.1"},
		{"tv from another address", "tv", "127.0.0.2"},
	} {
		r, err := ask(testContext(t), tc.client, tc.source)
		if err != nil {
			t.Fatal(err)
		}
		var auth struct {
			DeviceCode string `json:"device_code"`
		}
		if json.Unmarshal(r.body, &auth); r.status != http.StatusOK || auth.DeviceCode == "" {
			t.Errorf("%s: HTTP %d %s, want 200 with a device code", tc.what, r.status, r.body)
		}
	}
}

// RFC 6749 §4.1.2 when the replays race the first redemption: of parallel redemptions of one code
// exactly one gets tokens, and once all are answered its access token is refused by bearer_auth
// and its refresh token is invalid_grant. Few redemptions at once, in several rounds: a replay
// sent with the first redemption is answered while the winner is still minting, and one sent
// later would find the code's marker however the winner ordered its steps.
func TestAttackRacingCodeReplays(t *testing.T) {
	t.Parallel()
	c, _ := startRaceAttackCaddy(t)
	const redemptions = 3
	for round := range 5 {
		code, verifier, page := signInWith(t, newFormClient(t), c, "openid offline_access api.read", "", "carol", alicePassword)
		if code == "" {
			t.Fatalf("round %d: signing in: HTTP %d, location %v, want a code", round, page.status, page.location)
		}
		body := formBody("grant_type", "authorization_code", "client_id", "app", "code", code,
			"redirect_uri", appRedirectURI, "code_verifier", verifier)
		answers := atOnce(t, redemptions, func(int) (reply, error) {
			return do(testContext(t), c, request{path: "/connect/token", body: body})
		})
		var won []tokenAnswer
		for _, r := range answers {
			if r.status == http.StatusOK {
				won = append(won, wantToken(t, "the redemption that won", r))
				continue
			}
			wantError(t, "a racing redemption", r, "invalid_grant")
		}
		if len(won) != 1 {
			t.Fatalf("round %d: %d of %d parallel redemptions got tokens, want exactly 1", round, len(won), redemptions)
		}
		if won[0].RefreshToken == "" {
			t.Fatalf("round %d: the winner got no refresh token", round)
		}
		if r := call(t, c, "/api/x", won[0].AccessToken, nil); r.status != http.StatusUnauthorized {
			t.Errorf("round %d: the winner's access token at bearer_auth after the replays: HTTP %d %s, want 401", round, r.status, r.body)
		}
		wantError(t, "the winner's refresh token after the replays", refreshAs(t, c, won[0].RefreshToken), "invalid_grant")
	}
}

// refreshAs redeems app's refreshToken.
func refreshAs(t *testing.T, c *Caddy, refreshToken string) reply {
	t.Helper()
	return postToken(t, c, nil, formBody("grant_type", "refresh_token", "client_id", "app", "refresh_token", refreshToken))
}
