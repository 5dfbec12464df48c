package grants

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tokengate/tokengate/internal/jwtpart"
	"github.com/tokengate/tokengate/store"
)

const (
	webRedirect = "https://web.example.com/cb"
	verifier    = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
)

var web = [2]string{"web", "web-secret"}

func s256(v string) string {
	sum := sha256.Sum256([]byte(v))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// code issues a code for alice as /connect/authorize would, with edit applied to the grant.
func (f *fixture) code(edit func(*CodeGrant)) string {
	f.t.Helper()
	g := CodeGrant{ClientID: "web", RedirectURI: webRedirect, Scope: []string{"openid", "offline_access", "api.read"},
		Nonce: "n-0S6_WzA2Mj", CodeChallenge: s256(verifier), ChallengeMethod: PKCES256,
		Subject: "alice", Claims: map[string]any{"email": "alice@example.com"}, AuthTime: f.Now().Add(-time.Minute)}
	if edit != nil {
		edit(&g)
	}
	code, err := f.srv.IssueCode(f.t.Context(), g)
	if err != nil {
		f.t.Fatal(err)
	}
	return code
}

func (f *fixture) redeem(who [2]string, kv ...string) *response {
	f.t.Helper()
	return f.do(request{body: vals(append([]string{"grant_type", "authorization_code"}, kv...)...).Encode(), basic: who})
}

func TestAuthorizationCode(t *testing.T) {
	f := newFixture(t)
	code := f.code(nil)
	resp := f.redeem(web, "code", code, "redirect_uri", webRedirect, "code_verifier", verifier)
	f.expectOK("code exchange", resp)
	if resp.str("refresh_token") == "" {
		t.Error("no refresh token for offline_access")
	}
	// OIDC Core §3.1.3.7: exact iss, aud holding the client, exp, iat, the echoed nonce.
	id := jwtpart.Claims(t, resp.str("id_token"))
	if id["iss"] != issuer || id["aud"] != "web" || id["nonce"] != "n-0S6_WzA2Mj" || id["sub"] != "alice" ||
		id["exp"] == nil || id["iat"] == nil || id["auth_time"] == nil || id["at_hash"] == nil ||
		fmt.Sprint(id["amr"]) != "[pwd]" || id["acr"] != "1" || id["azp"] != "web" {
		t.Errorf("id_token claims = %v", id)
	}
	claims, err := f.verifier.VerifyAccessToken(resp.str("access_token"))
	if err != nil || claims.GrantID == "" || claims.All["email"] != "alice@example.com" {
		t.Fatalf("access token = %+v, %v", claims, err)
	}
	// A refreshed ID token keeps sub, aud and auth_time but not the nonce.
	refreshed := f.do(request{body: vals("grant_type", "refresh_token", "refresh_token", resp.str("refresh_token")).Encode(), basic: web})
	f.expectOK("refresh", refreshed)
	again := jwtpart.Claims(t, refreshed.str("id_token"))
	if again["sub"] != id["sub"] || again["aud"] != id["aud"] || again["auth_time"] != id["auth_time"] || again["nonce"] != nil {
		t.Errorf("refreshed id_token = %v, first = %v", again, id)
	}
}

// RFC 6749 §4.1.3, RFC 7636 §4.6: each attempt below uses its own code, and fails.
func TestAuthorizationCodeAttacks(t *testing.T) {
	f := newFixture(t)
	ok := []string{"redirect_uri", webRedirect, "code_verifier", verifier}
	for _, tc := range []struct {
		name string
		edit func(*CodeGrant)
		who  [2]string
		form []string
		code string
	}{
		{name: "C31 another client", who: [2]string{"native", ""}, form: append([]string{"client_id", "native"}, ok...)},
		{name: "C32 redirect_uri missing", form: []string{"code_verifier", verifier}},
		{name: "C32 redirect_uri in another case", form: []string{"redirect_uri", "https://WEB.example.com/cb", "code_verifier", verifier}},
		{name: "C32 redirect_uri with a trailing slash", form: []string{"redirect_uri", webRedirect + "/", "code_verifier", verifier}},
		{name: "C32 redirect_uri with a query", form: []string{"redirect_uri", webRedirect + "?x=1", "code_verifier", verifier}},
		{name: "C35 wrong verifier", form: []string{"redirect_uri", webRedirect, "code_verifier", strings.Repeat("a", 43)}},
		{name: "C36 verifier missing", form: []string{"redirect_uri", webRedirect}},
		{name: "C37 verifier without a challenge", edit: func(g *CodeGrant) { g.CodeChallenge, g.ChallengeMethod = "", "" }, form: ok},
		{name: "C38 verifier too short", edit: func(g *CodeGrant) { g.CodeChallenge = s256("short") }, form: []string{"redirect_uri", webRedirect, "code_verifier", "short"}},
		{name: "C38 verifier too long", edit: func(g *CodeGrant) { g.CodeChallenge = s256(strings.Repeat("a", 129)) }, form: []string{"redirect_uri", webRedirect, "code_verifier", strings.Repeat("a", 129)}},
		{name: "C38 verifier with a bad character", edit: func(g *CodeGrant) { g.CodeChallenge = s256(strings.Repeat("a", 42) + "!") }, form: []string{"redirect_uri", webRedirect, "code_verifier", strings.Repeat("a", 42) + "!"}},
		{name: "C40 plain for a client that did not opt in", edit: func(g *CodeGrant) { g.CodeChallenge, g.ChallengeMethod = verifier, PKCEPlain }, form: ok},
		{name: "C30 unknown code", code: "not-a-code", form: ok},
	} {
		code := tc.code
		if code == "" {
			code = f.code(tc.edit)
		}
		who := tc.who
		if who[0] == "" {
			who = web
		}
		var req request
		if who[1] == "" {
			req = request{body: vals(append([]string{"grant_type", "authorization_code", "code", code}, tc.form...)...).Encode()}
		} else {
			req = request{body: vals(append([]string{"grant_type", "authorization_code", "code", code}, tc.form...)...).Encode(), basic: who}
		}
		f.expectError(tc.name, f.do(req), 400, CodeInvalidGrant)
		// Whatever failed, the code is used up: the right request now fails too.
		if tc.code == "" {
			f.expectError(tc.name+", then the right request", f.redeem(web, append([]string{"code", code}, ok...)...), 400, CodeInvalidGrant)
		}
	}
	f.expectError("C30 code missing", f.redeem(web, ok...), 400, CodeInvalidRequest)
}

func TestAuthorizationCodeExpires(t *testing.T) {
	f := newFixture(t)
	code := f.code(nil)
	f.Advance(61 * time.Second)
	f.expectError("an expired code", f.redeem(web, "code", code, "redirect_uri", webRedirect, "code_verifier", verifier), 400, CodeInvalidGrant)
}

// RFC 6749 §4.1.2: a second redemption fails and revokes what the first issued.
func TestAuthorizationCodeReplayRevokes(t *testing.T) {
	f := newFixture(t)
	code := f.code(nil)
	form := []string{"code", code, "redirect_uri", webRedirect, "code_verifier", verifier}
	first := f.redeem(web, form...)
	f.expectOK("first redemption", first)
	f.expectError("second redemption", f.redeem(web, form...), 400, CodeInvalidGrant)
	claims, _ := f.verifier.VerifyAccessToken(first.str("access_token"))
	if !f.deny.Revoked(claims.JTI, claims.GrantID) {
		t.Error("the first access token is not revoked at the gate after the replay")
	}
	f.expectError("the first refresh token after the replay",
		f.do(request{body: vals("grant_type", "refresh_token", "refresh_token", first.str("refresh_token")).Encode(), basic: web}), 400, CodeInvalidGrant)
}

// stallingStore holds every refresh token it is asked to store until release is closed: a
// redemption that won the code waits there, between taking the code and answering, while the
// replays racing it are answered.
type stallingStore struct {
	Store
	release chan struct{}
}

func (s *stallingStore) CreateRefreshToken(ctx context.Context, hash string, t store.RefreshToken) error {
	<-s.release
	return s.Store.CreateRefreshToken(ctx, hash, t)
}

// RFC 6749 §4.1.2 when the redemptions race: of parallel redemptions of one code exactly one gets
// tokens, and the replays, all answered before it has minted anything, still revoke what it issues.
func TestAuthorizationCodeRacingReplaysRevoke(t *testing.T) {
	stalled := &stallingStore{release: make(chan struct{})}
	f := newFixture(t, func(_ *fixture, cfg *Config) {
		stalled.Store = cfg.Store
		cfg.Store = stalled
	})
	code := f.code(nil)
	const n = 8
	answers := make(chan *response, n)
	for range n {
		go func() {
			answers <- f.redeem(web, "code", code, "redirect_uri", webRedirect, "code_verifier", verifier)
		}()
	}
	var won *response
	for i := range n {
		var r *response
		select {
		case r = <-answers:
		case <-time.After(30 * time.Second):
			t.Fatalf("%d of %d redemptions answered", i, n)
		}
		if i == n-2 {
			close(stalled.release) // every replay is answered: let the winner mint
		}
		switch {
		case r.status == http.StatusOK && won == nil:
			won = r
		case r.status == http.StatusOK:
			t.Errorf("a second redemption got tokens: %s", r.raw)
		default:
			f.expectError("a racing replay", r, http.StatusBadRequest, CodeInvalidGrant)
		}
	}
	if won == nil {
		t.Fatal("no redemption got tokens")
	}
	claims, err := f.verifier.VerifyAccessToken(won.str("access_token"))
	if err != nil {
		t.Fatal(err)
	}
	if !f.deny.Revoked(claims.JTI, claims.GrantID) {
		t.Error("the winner's access token is not revoked at the gate after the racing replays")
	}
	f.expectError("the winner's refresh token after the racing replays",
		f.do(request{body: vals("grant_type", "refresh_token", "refresh_token", won.str("refresh_token")).Encode(), basic: web}), 400, CodeInvalidGrant)
}

func TestAuthorizationCodePublicClient(t *testing.T) {
	f := newFixture(t)
	native := func(g *CodeGrant) { g.ClientID, g.RedirectURI = "native", "com.example.app:/cb" }
	redeem := func(code string, kv ...string) *response {
		return f.do(request{body: vals(append([]string{"grant_type", "authorization_code", "client_id", "native", "code", code, "redirect_uri", "com.example.app:/cb"}, kv...)...).Encode()})
	}
	f.expectOK("public client with S256", redeem(f.code(native), "code_verifier", verifier))
	plain := f.code(func(g *CodeGrant) { native(g); g.CodeChallenge, g.ChallengeMethod = verifier, PKCEPlain })
	f.expectOK("public client with plain, opted in", redeem(plain, "code_verifier", verifier))
	// dex CVE-2022-39222: a public client's code without a challenge is refused.
	bare := f.code(func(g *CodeGrant) { native(g); g.CodeChallenge, g.ChallengeMethod = "", "" })
	f.expectError("public client without PKCE", redeem(bare), 400, CodeInvalidGrant)
}

// A code carries the identity provider that signed its person in; it yields nothing once that
// provider no longer has them, and its refresh tokens end when they are removed.
func TestAuthorizationCodeUserRemoved(t *testing.T) {
	f := newFixture(t)
	redeem := func(code string) *response {
		return f.redeem(web, "code", code, "redirect_uri", webRedirect, "code_verifier", verifier)
	}
	f.expectError("a code for alice signed in by partners, which has no alice",
		redeem(f.code(func(g *CodeGrant) { g.IdP = "partners" })), 400, CodeInvalidGrant)
	resp := redeem(f.code(func(g *CodeGrant) { g.IdP = "main" }))
	f.expectOK("a code for alice signed in by main", resp)
	pending := f.code(func(g *CodeGrant) { g.IdP = "main" })

	f.reload(withoutUser(t, "main", "alice"))
	f.expectError("alice's code once she is removed", redeem(pending), 400, CodeInvalidGrant)
	f.expectError("alice's refresh token once she is removed",
		f.do(request{body: vals("grant_type", "refresh_token", "refresh_token", resp.str("refresh_token")).Encode(), basic: web}),
		400, CodeInvalidGrant)
}
