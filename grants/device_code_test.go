package grants

import (
	"context"
	"errors"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokengate/tokengate/internal/jwtpart"
	"github.com/tokengate/tokengate/store"
)

const deviceAuthorizationPath = "/connect/deviceauthorization"

var (
	tv  = [2]string{"tv", ""} // public: no secret
	box = [2]string{"box", "box-secret"}
)

// deviceFixture is the fixture with two device clients: tv (public, may refresh) and box
// (confidential). app, registered without device_code, stands for every other client.
func deviceFixture(t *testing.T) *fixture {
	t.Helper()
	f := newFixture(t)
	for _, c := range []*Client{
		{ID: "tv", Public: true, Grants: []string{"device_code", "refresh_token"}, Scopes: []string{"openid", "offline_access", "api.read"}},
		{ID: "box", Secrets: secrets(t, "box-secret"), Grants: []string{"device_code"}, Scopes: []string{"api.read", "api.write"}},
	} {
		if err := f.srv.addClient(c); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// as sends form values to target as who: Basic for a confidential client, client_id for a public one.
func (f *fixture) as(who [2]string, target string, kv ...string) *response {
	f.t.Helper()
	if who[1] == "" {
		return f.do(request{target: target, body: vals(append(kv, "client_id", who[0])...).Encode()})
	}
	return f.do(request{target: target, body: vals(kv...).Encode(), basic: who})
}

// startDevice asks for a device code as who and returns the answer.
func (f *fixture) startDevice(who [2]string, kv ...string) *response {
	f.t.Helper()
	resp := f.as(who, deviceAuthorizationPath, kv...)
	if resp.status != http.StatusOK || resp.str("device_code") == "" {
		f.t.Fatalf("device authorization as %s: %d %s, want 200", who[0], resp.status, resp.raw)
	}
	return resp
}

// poll polls the token endpoint with code as who.
func (f *fixture) poll(who [2]string, code string) *response {
	f.t.Helper()
	return f.as(who, "", "grant_type", GrantTypeDeviceCode, "device_code", code)
}

func alice(f *fixture) SignedIn {
	return SignedIn{Subject: "alice", Claims: map[string]any{"email": "alice@example.com"}, AuthTime: f.Now()}
}

func (f *fixture) approve(userCode string) {
	f.t.Helper()
	if ok, err := f.srv.ApproveDevice(f.t.Context(), userCode, alice(f)); !ok || err != nil {
		f.t.Fatalf("ApproveDevice(%q) = %v, %v, want true, nil", userCode, ok, err)
	}
}

var userCodeShape = regexp.MustCompile(`^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$`)

func TestDeviceAuthorization(t *testing.T) {
	f := deviceFixture(t)
	resp := f.startDevice(tv, "scope", "openid api.read")
	if got := resp.header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", got)
	}
	userCode := resp.str("user_code")
	if !userCodeShape.MatchString(userCode) {
		t.Errorf("user_code = %q, want XXXX-XXXX of %s", userCode, userCodeAlphabet)
	}
	if len(resp.str("device_code")) < 43 {
		t.Errorf("device_code = %q, want 256 random bits", resp.str("device_code"))
	}
	wantURI := verificationURI
	if got := resp.str("verification_uri"); got != wantURI {
		t.Errorf("verification_uri = %q, want %q", got, wantURI)
	}
	if got, want := resp.str("verification_uri_complete"), wantURI+"?user_code="+userCode; got != want {
		t.Errorf("verification_uri_complete = %q, want %q", got, want)
	}
	if resp.json["expires_in"] != 300.0 || resp.json["interval"] != 5.0 {
		t.Errorf("expires_in, interval = %v, %v, want 300, 5", resp.json["expires_in"], resp.json["interval"])
	}
	req, ok, err := f.srv.PendingDevice(t.Context(), userCode)
	if err != nil || !ok || req.Client.ID != "tv" || !slices.Equal(req.Scope, []string{"openid", "api.read"}) || req.UserCode != userCode {
		t.Errorf("PendingDevice(%q) = %+v, %v, %v, want tv's request for openid api.read", userCode, req, ok, err)
	}

	// No scope asked: all the client's scopes (IdentityServer's rule).
	resp = f.startDevice(box)
	req, _, _ = f.srv.PendingDevice(t.Context(), resp.str("user_code"))
	if !slices.Equal(req.Scope, []string{"api.read", "api.write"}) {
		t.Errorf("scope with none asked = %q, want the client's", req.Scope)
	}

	// device_code_ttl sets expires_in.
	f.srv.cfg.DeviceCodeTTL = 90 * time.Second
	if resp := f.startDevice(tv); resp.json["expires_in"] != 90.0 {
		t.Errorf("expires_in with a 90s TTL = %v, want 90", resp.json["expires_in"])
	}
}

// Each device authorization stores a device code, so one client from one address is refused from
// the 101st request within a minute: 429 with Retry-After, as JSON. Other clients and addresses go
// on, and after the minute so does it.
func TestDeviceAuthorizationThrottled(t *testing.T) {
	f := deviceFixture(t)
	f.srv.cfg.ClientIP = func(r *http.Request) string { return r.Header.Get("X-Test-Address") }
	ask := func(who [2]string, address string) *response {
		t.Helper()
		req := request{target: deviceAuthorizationPath, header: map[string]string{"X-Test-Address": address}}
		if who[1] == "" {
			req.body = "client_id=" + who[0]
		} else {
			req.basic = who
		}
		return f.do(req)
	}
	for i := 1; i <= 100; i++ {
		if resp := ask(tv, "192.0.2.1"); resp.status != http.StatusOK {
			t.Fatalf("request %d from tv: %d %s, want 200", i, resp.status, resp.raw)
		}
	}
	resp := ask(tv, "192.0.2.1")
	f.expectError("the 101st request within a minute", resp, http.StatusTooManyRequests, CodeTemporarilyUnavail)
	if resp.header.Get("Retry-After") == "" {
		t.Error("the 101st request: no Retry-After")
	}
	if resp := ask(box, "192.0.2.1"); resp.status != http.StatusOK {
		t.Errorf("another client from the same address: %d %s, want 200", resp.status, resp.raw)
	}
	if resp := ask(tv, "192.0.2.2"); resp.status != http.StatusOK {
		t.Errorf("tv from another address: %d %s, want 200", resp.status, resp.raw)
	}
	f.Advance(time.Minute)
	if resp := ask(tv, "192.0.2.1"); resp.status != http.StatusOK {
		t.Errorf("tv after the minute: %d %s, want 200", resp.status, resp.raw)
	}
}

// Every refusal of the device authorization endpoint is the token endpoint's: JSON, no-store.
func TestDeviceAuthorizationRefused(t *testing.T) {
	f := deviceFixture(t)
	for _, tt := range []struct {
		name   string
		req    request
		status int
		code   string
	}{
		{"wrong secret", request{body: "scope=api.read", basic: [2]string{"box", "nope"}}, 401, CodeInvalidClient},
		{"unknown client", request{body: "client_id=nobody"}, 401, CodeInvalidClient},
		{"confidential without secret", request{body: "client_id=box"}, 401, CodeInvalidClient},
		{"no client", request{body: "scope=api.read"}, 401, CodeInvalidClient},
		{"client without device_code", request{basic: [2]string{"app", "app-secret"}}, 400, CodeUnauthorizedClient},
		{"scope not allowed", request{body: "client_id=tv&scope=api.write"}, 400, CodeInvalidScope},
		{"scope malformed", request{body: "client_id=tv&scope=%22api%22"}, 400, CodeInvalidScope},
		{"GET", request{method: http.MethodGet, body: "client_id=tv"}, 405, CodeInvalidRequest},
		{"JSON", request{contentType: "application/json", body: `{"client_id":"tv"}`}, 400, CodeInvalidRequest},
		{"repeated", request{body: "client_id=tv&scope=openid&scope=api.read"}, 400, CodeInvalidRequest},
	} {
		tt.req.target = deviceAuthorizationPath
		resp := f.do(tt.req)
		f.expectError(tt.name, resp, tt.status, tt.code)
		if tt.code == CodeInvalidClient && tt.req.basic[0] != "" && resp.header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s: no WWW-Authenticate after Basic", tt.name)
		}
	}
}

// TestDeviceCodeGrant walks RFC 8628 §3.4-3.5: pending, slow_down, denied, expired, and an approval
// redeemed once.
func TestDeviceCodeGrant(t *testing.T) {
	f := deviceFixture(t)
	start := f.startDevice(tv, "scope", "openid offline_access api.read")
	code, userCode := start.str("device_code"), start.str("user_code")

	// RFC 8628 §3.5: authorization_pending before the person decides.
	f.expectError("poll before approval", f.poll(tv, code), 400, CodeAuthorizationPending)
	// RFC 8628 §3.5 slow_down: polling faster than the interval; the interval is now 10 s.
	f.expectError("poll at once", f.poll(tv, code), 400, CodeSlowDown)
	f.Advance(6 * time.Second)
	f.expectError("poll 6 s later, interval 10 s", f.poll(tv, code), 400, CodeSlowDown)
	f.Advance(15 * time.Second)
	f.expectError("poll after the longer interval", f.poll(tv, code), 400, CodeAuthorizationPending)

	// Another client's code is unknown to it, and its poll uses nothing up.
	f.approve(userCode)
	f.expectError("another client's code", f.poll(box, code), 400, CodeInvalidGrant)
	f.expectError("a code of no one", f.poll(tv, "made-up"), 400, CodeInvalidGrant)
	f.expectError("no code", f.as(tv, "", "grant_type", GrantTypeDeviceCode), 400, CodeInvalidRequest)
	f.expectError("a client without device_code", f.poll([2]string{"app", "app-secret"}, code), 400, CodeUnauthorizedClient)
	f.expectError("confidential client without secret", f.do(request{body: vals("grant_type", GrantTypeDeviceCode,
		"device_code", code, "client_id", "box").Encode()}), 401, CodeInvalidClient)

	resp := f.poll(tv, code)
	f.expectOK("poll after approval", resp)
	claims, err := f.verifier.VerifyAccessToken(resp.str("access_token"))
	if err != nil || claims.Subject != "alice" || claims.ClientID != "tv" || claims.Scope != "openid offline_access api.read" {
		t.Errorf("access token = %+v, %v, want alice's for tv with the scope asked", claims, err)
	}
	if id := jwtpart.Claims(t, resp.str("id_token")); id["sub"] != "alice" || id["aud"] != "tv" || id["auth_time"] == nil {
		t.Errorf("id_token claims = %v, want alice's for tv", id)
	}
	if resp.str("refresh_token") == "" {
		t.Error("no refresh token for offline_access")
	}
	// Redeemed once.
	f.expectError("second poll after redemption", f.poll(tv, code), 400, CodeInvalidGrant)

	// RFC 8628 §3.5: denied is access_denied, 400, once.
	start = f.startDevice(tv)
	if ok, err := f.srv.DenyDevice(t.Context(), start.str("user_code")); !ok || err != nil {
		t.Fatalf("DenyDevice = %v, %v, want true, nil", ok, err)
	}
	f.expectError("poll after denial", f.poll(tv, start.str("device_code")), 400, CodeAccessDenied)
	f.expectError("poll after access_denied", f.poll(tv, start.str("device_code")), 400, CodeInvalidGrant)

	// RFC 8628 §3.5 expired_token: past expires_in, approved or not.
	pending, approved := f.startDevice(tv), f.startDevice(box)
	f.approve(approved.str("user_code"))
	f.Advance(300 * time.Second)
	f.expectError("pending code past expires_in", f.poll(tv, pending.str("device_code")), 400, CodeExpiredToken)
	f.expectError("approved code past expires_in", f.poll(box, approved.str("device_code")), 400, CodeExpiredToken)
	if ok, _ := f.srv.ApproveDevice(t.Context(), pending.str("user_code"), alice(f)); ok {
		t.Error("ApproveDevice of an expired code = true, want false")
	}
}

// Of 16 concurrent polls of an approved code, one gets tokens.
func TestDeviceCodeConcurrentPolls(t *testing.T) {
	f := deviceFixture(t)
	start := f.startDevice(box)
	f.approve(start.str("user_code"))
	var wg sync.WaitGroup
	statuses := make([]int, 16)
	for i := range statuses {
		wg.Go(func() { statuses[i] = f.poll(box, start.str("device_code")).status })
	}
	wg.Wait()
	if n := slices.Index(statuses, http.StatusOK); n < 0 || slices.Index(statuses[n+1:], http.StatusOK) >= 0 {
		t.Errorf("statuses of 16 concurrent polls = %v, want exactly one 200", statuses)
	}
}

func TestDeviceDecisions(t *testing.T) {
	f := deviceFixture(t)
	userCode := f.startDevice(tv).str("user_code")
	// The page passes on what was typed: dashes and case are forgiven everywhere.
	typed := "  " + userCode[:2] + " " + strings.ToLower(userCode[2:]) + " "
	req, ok, err := f.srv.PendingDevice(t.Context(), typed)
	if !ok || err != nil || req.UserCode != userCode {
		t.Fatalf("PendingDevice(%q) = %+v, %v, %v, want the request of %q", typed, req, ok, err, userCode)
	}
	for _, bad := range []string{"", "BCDF", userCode + "B", "AEIO-UY01", "ſ" + userCode[1:]} {
		if _, ok, err := f.srv.PendingDevice(t.Context(), bad); ok || err != nil {
			t.Errorf("PendingDevice(%q) = %v, %v, want false, nil", bad, ok, err)
		}
	}
	if ok, err := f.srv.DenyDevice(t.Context(), strings.ToLower(userCode)); !ok || err != nil {
		t.Fatalf("DenyDevice(%q) = %v, %v, want true, nil", strings.ToLower(userCode), ok, err)
	}
	if ok, err := f.srv.ApproveDevice(t.Context(), userCode, alice(f)); ok || err != nil {
		t.Errorf("ApproveDevice after the denial = %v, %v, want false, nil", ok, err)
	}
	if _, ok, _ := f.srv.PendingDevice(t.Context(), userCode); ok {
		t.Error("PendingDevice after the decision = true, want false")
	}
}

func TestCanonicalUserCode(t *testing.T) {
	for _, tt := range []struct {
		typed, want string
		ok          bool
	}{
		{"BCDF-GHJK", "BCDFGHJK", true},
		{"bcdf-ghjk", "BCDFGHJK", true},
		{"bcdfghjk", "BCDFGHJK", true},
		{" BCDF GHJK ", "BCDFGHJK", true},
		{"B-C-D-F-G-H-J-K", "BCDFGHJK", true},
		{"BCDF-GHJ", "", false},
		{"BCDF-GHJKL", "", false},
		{"BCDF-GHJA", "", false},                                        // a vowel is never issued
		{"BCDF-GHJ1", "", false},                                        // nor a digit
		{"BCDF-GHJſ", "", false},                                        // ſ upper-cases to S in Unicode, not here
		{"BCDF\tGHJK", "", false},                                       // only dashes and spaces are forgiven
		{strings.Repeat("-", maxTypedUserCode) + "BCDFGHJK", "", false}, // too long to look at
	} {
		got, ok := canonicalUserCode(tt.typed)
		if (ok && got != tt.want) || ok != tt.ok {
			t.Errorf("canonicalUserCode(%q) = %q, %v, want %q, %v", tt.typed, got, ok, tt.want, tt.ok)
		}
	}
}

// Drawn user codes use every letter of the alphabet and nothing else.
func TestNewUserCode(t *testing.T) {
	seen := map[rune]int{}
	for range 500 {
		code := newUserCode()
		if canonical, ok := canonicalUserCode(code); !ok || canonical != code {
			t.Fatalf("newUserCode() = %q, want %d letters of %s", code, userCodeLen, userCodeAlphabet)
		}
		for _, c := range code {
			seen[c]++
		}
	}
	// 4000 letters: each of 20 is expected 200 times; under 100 is far beyond chance.
	for _, c := range userCodeAlphabet {
		if seen[c] < 100 {
			t.Errorf("letter %c drawn %d times in 4000, want about 200", c, seen[c])
		}
	}
}

// faultyStore collides on the first `collide` user codes drawn, or fails every device call.
type faultyStore struct {
	Store
	collide int
	fail    bool
}

var errStoreDown = errors.New("store down")

func (s *faultyStore) CreateDeviceCode(ctx context.Context, hash string, d store.DeviceCode) (bool, error) {
	if s.fail {
		return false, errStoreDown
	}
	if s.collide > 0 {
		s.collide--
		return false, nil
	}
	return s.Store.CreateDeviceCode(ctx, hash, d)
}

func (s *faultyStore) PollDeviceCode(ctx context.Context, hash, clientID string) (store.DeviceCode, store.DeviceStatus, error) {
	if s.fail {
		return store.DeviceCode{}, "", errStoreDown
	}
	return s.Store.PollDeviceCode(ctx, hash, clientID)
}

func (s *faultyStore) PendingDeviceCode(ctx context.Context, userCode string) (store.DeviceCode, error) {
	if s.fail {
		return store.DeviceCode{}, errStoreDown
	}
	return s.Store.PendingDeviceCode(ctx, userCode)
}

func TestDeviceStoreTrouble(t *testing.T) {
	f := deviceFixture(t)
	// A user code held by a live code is drawn again.
	f.srv.cfg.Store = &faultyStore{Store: f.store, collide: userCodeDraws - 1}
	f.startDevice(tv)
	f.srv.cfg.Store = &faultyStore{Store: f.store, collide: userCodeDraws}
	f.expectError("every user code drawn taken", f.as(tv, deviceAuthorizationPath), 500, CodeServerError)

	// A store that does not answer is 503 everywhere, never invalid_grant.
	f.srv.cfg.Store = f.store
	code := f.startDevice(tv).str("device_code")
	f.srv.cfg.Store = &faultyStore{Store: f.store, fail: true}
	f.expectError("authorization, store down", f.as(tv, deviceAuthorizationPath), 503, CodeTemporarilyUnavail)
	f.expectError("poll, store down", f.poll(tv, code), 503, CodeTemporarilyUnavail)
	if _, ok, err := f.srv.PendingDevice(t.Context(), "BCDF-GHJK"); ok || !errors.Is(err, errStoreDown) {
		t.Errorf("PendingDevice with the store down = %v, %v, want false, the fault", ok, err)
	}
	// The code was not used up by the outage.
	f.srv.cfg.Store = f.store
	f.expectError("poll after the outage", f.poll(tv, code), 400, CodeAuthorizationPending)
}

// The Caddyfile's grant name device_code stands for RFC 8628's grant_type on the wire.
func TestDeviceGrantRegistered(t *testing.T) {
	if !KnownGrant("device_code") || WireGrantType("device_code") != GrantTypeDeviceCode {
		t.Errorf("WireGrantType(%q) = %q (known %v), want %q", "device_code", WireGrantType("device_code"), KnownGrant("device_code"), GrantTypeDeviceCode)
	}
}

// An approval carries the identity provider that signed its person in, and yields nothing when
// that provider does not have them (any more).
func TestDeviceApprovalOfAnUnknownUser(t *testing.T) {
	f := deviceFixture(t)
	start := f.startDevice(tv, "scope", "api.read")
	user := alice(f)
	user.IdP = "partners"
	if ok, err := f.srv.ApproveDevice(t.Context(), start.str("user_code"), user); !ok || err != nil {
		t.Fatalf("ApproveDevice = %v, %v, want true, nil", ok, err)
	}
	f.expectError("an approval by alice of partners, which has no alice", f.poll(tv, start.str("device_code")), 400, CodeInvalidGrant)
}
