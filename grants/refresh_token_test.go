package grants

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokengate/tokengate/identity"
	"github.com/tokengate/tokengate/internal/bcrypttest"
	"github.com/tokengate/tokengate/internal/jwtpart"
	"github.com/tokengate/tokengate/store"
)

// login returns a password grant's response for alice with a refresh token.
func (f *fixture) login(scope string) *response {
	f.t.Helper()
	resp := f.post(vals("grant_type", "password", "username", "alice", "password", "alice-pw", "scope", scope))
	f.expectOK("login", resp)
	if resp.str("refresh_token") == "" {
		f.t.Fatalf("login with %q: no refresh token: %s", scope, resp.raw)
	}
	return resp
}

func (f *fixture) refresh(token string, extra ...string) *response {
	f.t.Helper()
	return f.post(vals(append([]string{"grant_type", "refresh_token", "refresh_token", token}, extra...)...))
}

// RFC 9700 §4.14.2: rotation, and reuse of a rotated token kills the family.
func TestRefreshRotationAndReuse(t *testing.T) {
	f := newFixture(t)
	first := f.login("openid offline_access api.read").str("refresh_token")
	second := f.refresh(first)
	f.expectOK("refresh", second)
	if second.str("refresh_token") == "" || second.str("refresh_token") == first {
		t.Fatalf("refresh did not rotate: %s", second.raw)
	}
	if second.str("id_token") == "" {
		t.Error("a refresh of an openid grant returned no id_token")
	}
	third := f.refresh(second.str("refresh_token"))
	f.expectOK("second refresh", third)

	f.expectError("a rotated token", f.refresh(first), 400, CodeInvalidGrant)
	if f.revoked.Load() == 0 {
		t.Error("reuse did not tell the gate to refresh its deny-list")
	}
	f.expectError("the newest token after reuse", f.refresh(third.str("refresh_token")), 400, CodeInvalidGrant)
	// The family's access tokens are revoked too: the store says so for the gate.
	claims, err := f.verifier.VerifyAccessToken(third.str("access_token"))
	if err != nil {
		t.Fatal(err)
	}
	revocations, _, _ := f.store.RevocationsSince(t.Context(), 0)
	if len(revocations) != 1 || revocations[0].ID != claims.GrantID {
		t.Errorf("revocations after reuse = %+v, want the family %q", revocations, claims.GrantID)
	}
}

// RFC 6749 §6: a refresh may narrow the scope, never widen it, and a narrowed refresh does not
// shrink the grant.
func TestRefreshScope(t *testing.T) {
	f := newFixture(t)
	token := f.login("offline_access api.read api.write").str("refresh_token")
	f.expectError("wider scope", f.refresh(token, "scope", "api.read openid"), 400, CodeInvalidScope)
	narrowed := f.refresh(token, "scope", "api.read")
	f.expectOK("narrower scope", narrowed)
	if narrowed.str("scope") != "api.read" {
		t.Errorf("narrowed scope = %q, want api.read", narrowed.str("scope"))
	}
	full := f.refresh(narrowed.str("refresh_token"))
	f.expectOK("refresh without scope", full)
	if full.str("scope") != "offline_access api.read api.write" {
		t.Errorf("scope after a narrowed refresh = %q, want the original grant's", full.str("scope"))
	}
}

// RFC 6749 §6: a refresh token is bound to its authenticated client, and nothing else stands in
// for one.
func TestRefreshTokenBinding(t *testing.T) {
	f := newFixture(t)
	login := f.login("openid offline_access api.read")
	token := login.str("refresh_token")
	byOther := f.do(request{body: vals("grant_type", "refresh_token", "refresh_token", token).Encode(), basic: [2]string{"other", "other-secret"}})
	f.expectError("another client's token", byOther, 400, CodeInvalidGrant)
	f.expectOK("the owner after another client tried", f.refresh(token))

	f.expectError("unknown token", f.refresh("not-a-token"), 400, CodeInvalidGrant)
	f.expectError("missing token", f.post(vals("grant_type", "refresh_token")), 400, CodeInvalidRequest)
	f.expectError("an access token", f.refresh(login.str("access_token")), 400, CodeInvalidGrant)
	f.expectError("an ID token", f.refresh(login.str("id_token")), 400, CodeInvalidGrant)
	f.expectError("no client authentication", f.do(request{body: vals("grant_type", "refresh_token", "refresh_token", token, "client_id", "app").Encode()}), 401, CodeInvalidClient)
}

func TestRefreshTokenExpires(t *testing.T) {
	f := newFixture(t)
	token := f.login("offline_access api.read").str("refresh_token")
	f.Advance(719 * time.Hour)
	resp := f.refresh(token)
	f.expectOK("refresh near the family's end", resp)
	// Access tokens never outlive the family they came from.
	if got := resp.json["expires_in"]; got != float64(3600) {
		t.Errorf("expires_in an hour before the family ends = %v, want 3600", got)
	}
	f.Advance(30 * time.Minute)
	resp = f.refresh(resp.str("refresh_token"))
	f.expectOK("refresh half an hour before the end", resp)
	if got := resp.json["expires_in"]; got != float64(1800) {
		t.Errorf("expires_in half an hour before the family ends = %v, want 1800", got)
	}
	f.Advance(time.Hour)
	f.expectError("expired family", f.refresh(resp.str("refresh_token")), 400, CodeInvalidGrant)
}

// Of parallel refreshes with one token, exactly one succeeds: the others are reuse (RFC 9700
// §4.14.2).
func TestParallelRefreshes(t *testing.T) {
	f := newFixture(t)
	token := f.login("offline_access api.read").str("refresh_token")
	const n = 16
	statuses := make(chan int, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses <- f.refresh(token).status
		}()
	}
	wg.Wait()
	close(statuses)
	ok := 0
	for s := range statuses {
		if s == http.StatusOK {
			ok++
		}
	}
	if ok != 1 {
		t.Fatalf("%d of %d parallel refreshes succeeded, want exactly 1", ok, n)
	}
}

func TestPublicClientRefresh(t *testing.T) {
	f := newFixture(t)
	login := f.do(request{body: vals("grant_type", "password", "client_id", "spa", "username", "alice", "password", "alice-pw", "scope", "offline_access api.read").Encode()})
	f.expectOK("public login", login)
	resp := f.do(request{body: vals("grant_type", "refresh_token", "client_id", "spa", "refresh_token", login.str("refresh_token")).Encode()})
	f.expectOK("public refresh", resp)
}

// lostReplyStore commits the first rotation it is asked for and then reports a fault, as a Redis
// killed between running the script and answering does.
type lostReplyStore struct {
	*store.Memory
	lost atomic.Bool
}

func (s *lostReplyStore) RotateRefreshToken(ctx context.Context, oldHash, newHash string, next store.RefreshToken) error {
	err := s.Memory.RotateRefreshToken(ctx, oldHash, newHash, next)
	if err == nil && s.lost.CompareAndSwap(false, true) {
		return errors.New("redis: write: EOF")
	}
	return err
}

// A refresh token is not used up by an answer the client never got.
func TestRefreshSurvivesALostStoreReply(t *testing.T) {
	f := newFixture(t)
	token := f.login("offline_access api.read").str("refresh_token")
	cfg := f.srv.cfg
	lossy := &lostReplyStore{Memory: f.store}
	cfg.Store = lossy
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.srv = srv
	resp := f.refresh(token)
	f.expectOK("refresh whose first rotation reply was lost", resp)
	if !lossy.lost.Load() {
		t.Fatal("the store never lost a reply: the test tested nothing")
	}
	f.expectOK("the new refresh token", f.refresh(resp.str("refresh_token")))
}

// withoutUser is a reload that leaves username out of the identity provider idp, as an operator
// who deletes their user line does.
func withoutUser(t *testing.T, idp, username string, keep ...identity.StaticUser) func(*Config) {
	return func(cfg *Config) {
		users, err := identity.NewStatic(keep)
		if err != nil {
			t.Fatal(err)
		}
		i := slices.IndexFunc(cfg.IdentityProviders, func(p IdentityProvider) bool { return p.Name == idp })
		cfg.IdentityProviders[i].Provider = users
	}
}

// A reload that removes a person from their identity provider ends their refresh tokens, and
// only theirs; one that removes the whole provider ends its users'.
func TestRefreshEndsWithTheUser(t *testing.T) {
	f := newFixture(t)
	alice := f.login("offline_access api.read").str("refresh_token")
	carolResp := f.post(vals("grant_type", "password", "username", "carol", "password", "carol-pw", "scope", "offline_access api.read"))
	f.expectOK("carol's login", carolResp)
	bobResp := f.post(vals("grant_type", "password", "username", "bob", "password", "bob-pw", "scope", "offline_access api.read",
		"acr_values", "idp:partners"))
	f.expectOK("bob's login", bobResp)

	f.reload(withoutUser(t, "main", "alice", identity.StaticUser{Username: "carol", Hash: bcrypttest.Hash(t, "carol-pw")}))
	if in := f.introspect(alice, [2]string{"app", "app-secret"}); in.json["active"] != false {
		t.Errorf("introspection of alice's refresh token once she is removed: %s, want inactive", in.raw)
	}
	f.expectError("alice's refresh token once she is removed", f.refresh(alice), 400, CodeInvalidGrant)
	carol := f.refresh(carolResp.str("refresh_token"))
	f.expectOK("carol's refresh token, she stays", carol)

	f.reload(func(cfg *Config) {
		cfg.IdentityProviders = cfg.IdentityProviders[:1]
		cfg.client("app").IdentityProviders = []string{"main"}
	})
	f.expectError("bob's refresh token once his provider is removed", f.refresh(bobResp.str("refresh_token")), 400, CodeInvalidGrant)
	f.expectOK("carol's refresh token, her provider stays", f.refresh(carol.str("refresh_token")))
}

// A refresh family from before the identity provider was recorded is checked against the
// provider a sign-in through its client uses by default.
func TestRefreshOfAFamilyWithoutIdP(t *testing.T) {
	f := newFixture(t)
	raw, record := oldFamilyToken(t, f)
	if err := f.store.CreateRefreshToken(t.Context(), refreshKey(raw), record); err != nil {
		t.Fatal(err)
	}
	next := f.refresh(raw)
	f.expectOK("an old family's refresh token, alice is still there", next)
	f.reload(withoutUser(t, "main", "alice"))
	f.expectError("an old family's refresh token once alice is removed", f.refresh(next.str("refresh_token")), 400, CodeInvalidGrant)
}

// A provider that cannot list its users (http_login) cannot say that one was removed: their
// grants last.
func TestUserKnown(t *testing.T) {
	f := newFixture(t, func(_ *fixture, cfg *Config) {
		cfg.IdentityProviders = append(cfg.IdentityProviders, IdentityProvider{Name: "legacy", Provider: passwordOnly{}})
	})
	for _, tc := range []struct {
		idp, user string
		want      bool
	}{
		{"main", "alice", true},
		{"main", "bob", false},
		{"partners", "bob", true},
		{"legacy", "anyone", true},
		{"gone", "alice", false},
		{"", "alice", false},
	} {
		if got := f.srv.UserKnown(tc.idp, tc.user); got != tc.want {
			t.Errorf("UserKnown(%q, %q) = %v, want %v", tc.idp, tc.user, got, tc.want)
		}
	}
}

// passwordOnly is an identity provider that answers password checks only, as http_login does.
type passwordOnly struct{}

func (passwordOnly) Authenticate(context.Context, string, string, string) (identity.User, bool, error) {
	return identity.User{}, false, nil
}

// A reload that removes a scope from a client: no later refresh yields it, and asking for it is
// invalid_scope; one that removes offline_access ends the client's refresh tokens (invalid_grant).
func TestRefreshDropsRemovedScopes(t *testing.T) {
	f := newFixture(t)
	token := f.login("offline_access api.read api.write").str("refresh_token")
	f.reload(func(cfg *Config) {
		cfg.client("app").Scopes = []string{"openid", "profile", "offline_access", "api.read"}
	})
	narrowed := f.refresh(token)
	f.expectOK("refresh after api.write was removed", narrowed)
	if got := narrowed.str("scope"); got != "offline_access api.read" {
		t.Errorf("scope after api.write was removed = %q, want offline_access api.read", got)
	}
	if got := jwtpart.Claims(t, narrowed.str("access_token"))["scope"]; got != "offline_access api.read" {
		t.Errorf("the access token's scope after api.write was removed = %q, want offline_access api.read", got)
	}
	token = narrowed.str("refresh_token")
	f.expectError("asking for the removed scope", f.refresh(token, "scope", "api.write"), 400, CodeInvalidScope)
	f.reload(func(cfg *Config) { cfg.client("app").Scopes = []string{"api.read"} })
	f.expectError("refresh after offline_access was removed", f.refresh(token), 400, CodeInvalidGrant)
}

// A refresh token issued before tokens carried their place in the store (stored under its bare
// hash) still refreshes, into a token of the new form.
func TestRefreshOfATokenWithoutPrefix(t *testing.T) {
	f := newFixture(t)
	_, record := oldFamilyToken(t, f)
	raw := randomToken()
	if err := f.store.CreateRefreshToken(t.Context(), hashToken(raw), record); err != nil {
		t.Fatal(err)
	}
	next := f.refresh(raw)
	f.expectOK("a refresh token stored under its bare hash", next)
	f.expectOK("the token it was rotated to", f.refresh(next.str("refresh_token")))
	f.expectError("the old token presented again", f.refresh(raw), 400, CodeInvalidGrant)
}

// oldFamilyToken makes a refresh token of alice's family "old-family", which records no identity
// provider, and its record, without storing it.
func oldFamilyToken(t *testing.T, f *fixture) (string, store.RefreshToken) {
	t.Helper()
	// Grants were stored with the token's issue time then.
	g := &grant{Subject: "alice", Scope: []string{"offline_access", "api.read"}, User: true, IssuedAt: f.Now(),
		familyID: "old-family", familyExpires: f.Now().Add(time.Hour)}
	payload, err := json.Marshal(g)
	if err != nil {
		t.Fatal(err)
	}
	raw, record := newRefreshToken("app", g, payload, f.Now())
	return raw, record
}

// downStore is a store whose rotations fail while down is set: with fault, or as a Redis that is
// away does.
type downStore struct {
	*store.Memory
	down     atomic.Bool
	fault    error
	attempts atomic.Int32
}

func (s *downStore) RotateRefreshToken(ctx context.Context, oldHash, newHash string, next store.RefreshToken) error {
	if s.down.Load() {
		s.attempts.Add(1)
		return cmp.Or(s.fault, errors.New("redis: dial tcp: connection refused"))
	}
	return s.Memory.RotateRefreshToken(ctx, oldHash, newHash, next)
}

// refreshingOnADownStore signs in for a refresh token, then puts the fixture's server on a store
// that is down, failing its rotations with fault.
func refreshingOnADownStore(t *testing.T, fault error) (f *fixture, refreshToken string, down *downStore) {
	f = newFixture(t)
	refreshToken = f.login("offline_access api.read").str("refresh_token")
	down = &downStore{Memory: f.store, fault: fault}
	down.down.Store(true)
	cfg := f.srv.cfg
	cfg.Store = down
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.srv = srv
	return f, refreshToken, down
}

// A rotation the store keeps failing is retried, then answered 503 temporarily_unavailable once
// rotationRetryFor has passed, counted from the first attempt; the token is not used up.
func TestRefreshGivesUpOnAStoreThatStaysDown(t *testing.T) {
	t.Parallel()
	f, token, failing := refreshingOnADownStore(t, nil)
	start := time.Now()
	f.expectError("a refresh while the store is down", f.refresh(token), http.StatusServiceUnavailable, "temporarily_unavailable")
	took := time.Since(start)
	if took < rotationRetryFor || took > rotationRetryFor+2*time.Second {
		t.Errorf("answered after %v, want just after %v", took, rotationRetryFor)
	}
	if n := failing.attempts.Load(); n < 2 {
		t.Errorf("%d attempts, want the rotation retried", n)
	}
	failing.down.Store(false)
	f.expectOK("the same token once the store is back", f.refresh(token))
}

// A rotation the store refused without writing it (a disk nearly full) is answered 503 at once:
// its outcome is known, and retrying would only keep the client waiting.
func TestRefreshAnswersARefusedWriteAtOnce(t *testing.T) {
	t.Parallel()
	f, token, refusing := refreshingOnADownStore(t, fmt.Errorf("%w: the disk is nearly full", store.ErrWriteRefused))
	f.expectError("a refresh the store refuses to write", f.refresh(token), http.StatusServiceUnavailable, "temporarily_unavailable")
	if n := refusing.attempts.Load(); n != 1 {
		t.Errorf("%d attempts, want the refused rotation not retried", n)
	}
	refusing.down.Store(false)
	f.expectOK("the same token once the store writes again", f.refresh(token))
}
