package tests

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// crashCaddyfile keeps its state in the embedded store {{STORE}} declares, or without one in the
// default store in Caddy's data directory, so that the crash is survived by whatever engine a
// configuration gets without asking, and by bolt, which it may ask for: "web"
// refreshes (password grant), "app" redeems authorization codes from the sign-in form at
// /connect/authorize.
const crashCaddyfile = `{
	tokengate {
		issuer {{BASE}}
		{{STORE}}
		signing_key rs256
		client web {
			secret web-secret
			grants password refresh_token
			scopes openid offline_access
		}
		client app {
			secret app-secret
			grants authorization_code refresh_token
			scopes openid offline_access
			redirect_uris ` + crashRedirectURI + `
		}
		users local {
			user alice {{ALICE_HASH}}
		}
	}
}

{{BASE}} {
	tokengate
}
`

const (
	crashRedirectURI = "https://app.example/cb"
	// crashVerifier is the PKCE code_verifier of every code the test asks for (RFC 7636 §4.1).
	crashVerifier = "crash-test-verifier-0123456789-abcdefghijklmnopqrstuvwxyz"
	// crashBusy clients refresh concurrently until Caddy is killed, each holding the last token
	// answered to it; crashSettled more stop just before: they have nothing in flight. RS256
	// (~1 ms a signature here) widens the moment between a rotation's commit and its reply, where
	// the kill is the hard case.
	crashBusy    = 16
	crashSettled = 4
	// crashCodes are asked for before the kill: crashCodesRedeemed of them are redeemed and
	// answered before the load starts, the next ones during the load, and the last crashCodesKept
	// are kept for after the restart.
	crashCodes         = 24
	crashCodesRedeemed = 8
	crashCodesKept     = 4
)

// TestCrashLosesNothingAnswered kills Caddy with SIGKILL while clients refresh in a loop and codes
// are redeemed, restarts it on the same data, and checks that the crash lost nothing that was
// answered and doubled nothing. A token or code counts as answered when the test read a complete 200 carrying
// it; a request that got no complete answer was in flight: the server may or may not have
// committed it, and only the client that sent it knows it never learnt the outcome.
//
// The guarantee checked, per refresh client: the last refresh token answered 200 before the kill
// refreshes after the restart (200), whether or not a request presenting it was in flight and
// committed at the kill; then that token again and every earlier one are invalid_grant, and so is
// the token the restart answered, because presenting a used token is reuse and kills the family
// (RFC 9700 §4.14.2). Half the clients present the last token again first, the others their
// earlier ones, newest first, so that each refusal is checked before a reuse kills the family.
// The store cannot tell a rotation answered just before the crash from one committed without an
// answer, so after a crash it honours once more a token whose successor was never presented: an
// earlier token presented before the last one may work once (and its holder's next refresh then
// kills the family), so the last token, which is what the client holding them presents, goes first.
//
// Per code: a code redeemed (answered 200) before the kill is invalid_grant after the restart, and
// that replay revokes the refresh token it issued (RFC 6749 §4.1.2); a code never redeemed works
// once; a code whose redemption was in flight yields tokens at most once; no code yields two 200s.
func TestCrashLosesNothingAnswered(t *testing.T) {
	t.Parallel()
	for name, storeLine := range map[string]string{"default": "", "bolt": "store bolt {{DATA}}/tokengate.db"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			testCrashLosesNothingAnswered(t, strings.ReplaceAll(crashCaddyfile, "{{STORE}}", storeLine))
		})
	}
}

// testCrashLosesNothingAnswered is TestCrashLosesNothingAnswered on the configuration caddyfile.
func testCrashLosesNothingAnswered(t *testing.T, caddyfile string) {
	c := startCaddy(t, strings.ReplaceAll(caddyfile, "{{ALICE_HASH}}", aliceHash()))
	ctx := testContext(t)

	codes := newSignedInBrowser(t, c).codes(crashCodes)
	redeemed := make([]tokenAnswer, crashCodesRedeemed)
	for i := range redeemed {
		redeemed[i] = mustRedeemCode(t, c, codes[i])
	}

	clients := make([]*refreshingClient, crashSettled+crashBusy)
	for i := range clients {
		a, err := requestToken(ctx, c, "web", url.Values{"grant_type": {"password"},
			"username": {"alice"}, "password": {alicePassword}, "scope": {"openid offline_access"}})
		if err != nil || a.Status != http.StatusOK || a.RefreshToken == "" {
			t.Fatalf("password grant = %v (%v), want 200 with a refresh token", a, err)
		}
		clients[i] = &refreshingClient{answered: []string{a.RefreshToken}}
	}
	settle, kill := make(chan struct{}), make(chan struct{})
	var settled, stopped sync.WaitGroup
	for i, rc := range clients {
		quiet := i < crashSettled
		if quiet {
			settled.Add(1)
		}
		stopped.Add(1)
		go func() {
			defer stopped.Done()
			if quiet {
				defer settled.Done()
				rc.refreshUntil(ctx, c, settle)
				return
			}
			rc.refreshUntil(ctx, c, nil)
		}()
	}
	loadCodes := &codeRedeemer{codes: codes[crashCodesRedeemed:]}
	stopped.Add(1)
	go func() {
		defer stopped.Done()
		loadCodes.redeemUntilKilled(ctx, c, kill)
	}()

	// Kill in the middle of the load: every client has rotated a few times, the busy ones are still
	// going, and so are the code redemptions.
	waitFor(t, 10*time.Second, "every client to rotate three times", func() bool {
		for _, rc := range clients {
			if rc.rotations() < 3 {
				return false
			}
		}
		return true
	})
	close(settle)
	settled.Wait()
	busyBefore := busyRotations(clients)
	waitFor(t, 5*time.Second, "the busy clients to go on rotating", func() bool {
		return busyRotations(clients) >= busyBefore+crashBusy
	})
	close(kill)
	c.Kill(t)
	stopped.Wait()
	for i, rc := range clients {
		if rc.failure != nil {
			t.Fatalf("client %d before the kill: %v", i, rc.failure)
		}
	}
	if loadCodes.failure != nil {
		t.Fatalf("redeeming codes before the kill: %v", loadCodes.failure)
	}
	c.Restart(t)

	inFlight := 0
	for i, rc := range clients {
		if rc.inFlight {
			inFlight++
		}
		rc.checkAfterCrash(t, c, i%2 == 1, fmt.Sprintf("client %d (%d rotations, in flight at the kill: %v)", i, rc.rotations(), rc.inFlight))
	}
	for i, code := range codes[:crashCodesRedeemed] {
		wantCodeRefused(t, c, code, fmt.Sprintf("code %d, redeemed before the kill", i))
		wantRefreshRefused(t, c, "app", redeemed[i].RefreshToken, fmt.Sprintf("the refresh token of code %d, replayed after the kill", i), false)
	}
	for _, code := range loadCodes.answered {
		wantCodeRefused(t, c, code, "a code redeemed during the load")
	}
	if code := loadCodes.inFlight; code != "" {
		if a := redeemCode(t, c, code); a.Status != http.StatusOK && a.Error != "invalid_grant" {
			t.Errorf("the code whose redemption was in flight, after the restart: redeeming = %v, want 200 or invalid_grant", a)
		}
		wantCodeRefused(t, c, code, "the code whose redemption was in flight, presented again")
	}
	for _, code := range loadCodes.unused() {
		mustRedeemCode(t, c, code)
		wantCodeRefused(t, c, code, "a code issued before the kill, redeemed after it")
	}
	t.Logf("%d clients in flight at the kill; %d codes redeemed during the load, one in flight: %v",
		inFlight, len(loadCodes.answered), loadCodes.inFlight != "")
}

// refreshingClient refreshes its token in a loop, as a client of the password grant would.
type refreshingClient struct {
	mu sync.Mutex
	// answered holds every refresh token answered 200, in order: the last one is the one held.
	answered []string
	// inFlight says that the last request got no complete answer: the kill came first.
	inFlight bool
	// failure is an answer other than 200 before the kill: a bug, not a crash.
	failure error
}

// refreshUntil refreshes until settle is closed (nil: never) or a request gets no answer.
func (rc *refreshingClient) refreshUntil(ctx context.Context, c *Caddy, settle <-chan struct{}) {
	for {
		select {
		case <-settle:
			return
		default:
		}
		a, err := refreshToken(ctx, c, "web", rc.last())
		rc.mu.Lock()
		switch {
		case err != nil:
			rc.inFlight = true
		case a.Status != http.StatusOK || a.RefreshToken == "":
			rc.failure = fmt.Errorf("refreshing = %v, want 200 with a refresh token", a)
		default:
			rc.answered = append(rc.answered, a.RefreshToken)
		}
		done := rc.inFlight || rc.failure != nil
		rc.mu.Unlock()
		if done {
			return
		}
	}
}

func (rc *refreshingClient) last() string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.answered[len(rc.answered)-1]
}

func (rc *refreshingClient) rotations() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.answered) - 1
}

// checkAfterCrash checks the guarantee of TestCrashLosesNothingAnswered for one client. The first
// reuse kills the family, after which every token is refused whatever else the store did; so with
// newestFirst the token before the last is presented first (the one a crash could most easily
// bring back), and otherwise the last one again.
func (rc *refreshingClient) checkAfterCrash(t *testing.T, c *Caddy, newestFirst bool, what string) {
	t.Helper()
	k := len(rc.answered) - 1
	next, err := refreshToken(testContext(t), c, "web", rc.answered[k])
	if err != nil || next.Status != http.StatusOK || next.RefreshToken == "" {
		t.Errorf("%s: its last answered token after the restart = %v (%v), want 200: the crash lost it", what, next, err)
		return
	}
	earlier := slices.Clone(rc.answered[:k])
	var stale []string
	if newestFirst {
		slices.Reverse(earlier)
		stale = append(earlier, rc.answered[k])
	} else {
		stale = append([]string{rc.answered[k]}, earlier...)
	}
	for _, token := range stale {
		j := slices.Index(rc.answered, token)
		wantRefreshRefused(t, c, "web", token, fmt.Sprintf("%s: its token %d of %d, after the restart used its last", what, j, k), false)
	}
	wantRefreshRefused(t, c, "web", next.RefreshToken, what+": the token answered after the restart, after a reuse killed its family", false)
}

// busyRotations counts the rotations answered to the clients that did not settle.
func busyRotations(clients []*refreshingClient) int {
	n := 0
	for _, rc := range clients[crashSettled:] {
		n += rc.rotations()
	}
	return n
}

// codeRedeemer redeems codes one after another until the kill.
type codeRedeemer struct {
	codes []string
	// answered are the codes redeemed with a 200; inFlight is the one whose answer never came.
	answered []string
	inFlight string
	failure  error
	// next is the index in codes of the first code never sent.
	next atomic.Int32
}

// redeemUntilKilled redeems codes until one gets no answer, pausing between them so that some are
// left for after the restart. Once kill is closed it sends no new request.
func (r *codeRedeemer) redeemUntilKilled(ctx context.Context, c *Caddy, kill <-chan struct{}) {
	for i, code := range r.codes[:len(r.codes)-crashCodesKept] {
		select {
		case <-kill:
			return
		default:
		}
		r.next.Store(int32(i + 1))
		a, err := requestToken(ctx, c, "app", redemption(code))
		switch {
		case err != nil:
			r.inFlight = code
			return
		case a.Status != http.StatusOK:
			r.failure = fmt.Errorf("redeeming a code = %v, want 200", a)
			return
		}
		r.answered = append(r.answered, code)
		time.Sleep(20 * time.Millisecond)
	}
}

// unused returns the codes never sent.
func (r *codeRedeemer) unused() []string { return r.codes[r.next.Load():] }

// redemption is the token request for code (RFC 6749 §4.1.3, RFC 7636 §4.5).
func redemption(code string) url.Values {
	return url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"redirect_uri": {crashRedirectURI}, "code_verifier": {crashVerifier}}
}

// redeemCode trades code for tokens as app.
func redeemCode(t *testing.T, c *Caddy, code string) tokenAnswer {
	t.Helper()
	a, err := requestToken(testContext(t), c, "app", redemption(code))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// mustRedeemCode redeems code and fails the test unless it yields tokens.
func mustRedeemCode(t *testing.T, c *Caddy, code string) tokenAnswer {
	t.Helper()
	a := redeemCode(t, c, code)
	if a.Status != http.StatusOK || a.RefreshToken == "" {
		t.Fatalf("redeeming a code = %v, want 200 with a refresh token", a)
	}
	return a
}

func wantCodeRefused(t *testing.T, c *Caddy, code, what string) {
	t.Helper()
	if a := redeemCode(t, c, code); a.Status != http.StatusBadRequest || a.Error != "invalid_grant" {
		t.Errorf("%s: redeeming = %v, want 400 invalid_grant", what, a)
	}
}

// signedInBrowser is alice at /connect/authorize without a browser: a formClient, whose redirects
// are read instead of followed.
type signedInBrowser struct {
	*formClient
	authorize string
}

// newSignedInBrowser signs alice in through the form of /connect/authorize.
func newSignedInBrowser(t *testing.T, c *Caddy) *signedInBrowser {
	t.Helper()
	b := &signedInBrowser{formClient: newFormClient(t), authorize: c.URL("/connect/authorize")}
	page := b.submit(b.authorize+"?"+authorizeRequest().Encode(), nil)
	if page.status != http.StatusOK {
		t.Fatalf("GET /connect/authorize without a session = %d, want the sign-in form", page.status)
	}
	page.fields.Set("username", "alice")
	page.fields.Set("password", alicePassword)
	b.wantCode(b.submit(b.authorize, page.fields))
	return b
}

// codes asks for n codes with the session the sign-in left.
func (b *signedInBrowser) codes(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = b.wantCode(b.submit(b.authorize+"?"+authorizeRequest().Encode(), nil))
	}
	return out
}

// wantCode reads the code from a redirect to the client (RFC 6749 §4.1.2).
func (b *signedInBrowser) wantCode(page formPage) string {
	b.t.Helper()
	loc := page.location
	if page.status != http.StatusFound && page.status != http.StatusSeeOther || loc == nil || loc.Query().Get("code") == "" {
		b.t.Fatalf("/connect/authorize = %d to %v, want a redirect with a code:\n%s", page.status, loc, page.body)
	}
	return loc.Query().Get("code")
}

// authorizeRequest asks for a code for app, with PKCE (RFC 7636 §4.3).
func authorizeRequest() url.Values {
	challenge := sha256.Sum256([]byte(crashVerifier))
	return url.Values{
		"client_id":             {"app"},
		"redirect_uri":          {crashRedirectURI},
		"response_type":         {"code"},
		"scope":                 {"openid offline_access"},
		"state":                 {"s"},
		"code_challenge":        {base64.RawURLEncoding.EncodeToString(challenge[:])},
		"code_challenge_method": {"S256"},
	}
}

// waitFor polls cond until it holds, failing the test after limit.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", limit, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
