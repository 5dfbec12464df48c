package grants

import (
	"slices"
	"strings"
	"sync"
	"testing"
)

// observed is a fixture whose Server tells its events to events.
func observed(t *testing.T) (*fixture, *[]Event) {
	var mu sync.Mutex
	var events []Event
	f := newFixture(t, func(_ *fixture, cfg *Config) {
		cfg.Observe = func(ev Event) {
			mu.Lock()
			defer mu.Unlock()
			events = append(events, ev)
		}
	})
	return f, &events
}

// take returns the events of kind seen since the last take, and forgets every event.
func take(events *[]Event, kind EventKind) []Event {
	var out []Event
	for _, ev := range *events {
		if ev.Kind == kind {
			out = append(out, ev)
		}
	}
	*events = nil
	return out
}

func clientID(c *Client) string {
	if c == nil {
		return "<none>"
	}
	return c.ID
}

func TestObserverTokenAnswers(t *testing.T) {
	f, events := observed(t)

	resp := f.post(vals("grant_type", "password", "username", "alice", "password", "alice-pw", "scope", "api.read offline_access"))
	claims := f.accessClaims("password grant", resp)
	issued := take(events, EventTokenIssued)
	if len(issued) != 1 {
		t.Fatalf("token_issued events: %+v, want one", issued)
	}
	ev := issued[0]
	if clientID(ev.Client) != "app" || ev.GrantType != "password" || ev.Result != ResultOK || ev.Subject != claims.Subject ||
		ev.JTI != claims.JTI || ev.GrantID != claims.GrantID || ev.GrantID == "" || ev.Scope != "api.read offline_access" || ev.Duration <= 0 {
		t.Errorf("token_issued = %+v, want app's password grant naming the token's jti %q and gid %q", ev, claims.JTI, claims.GrantID)
	}

	// A refresh keeps its family's gid.
	f.expectOK("refresh", f.post(vals("grant_type", "refresh_token", "refresh_token", resp.str("refresh_token"))))
	if issued := take(events, EventTokenIssued); len(issued) != 1 || issued[0].GrantID != claims.GrantID || issued[0].GrantType != "refresh_token" {
		t.Errorf("refresh: token_issued = %+v, want gid %q", issued, claims.GrantID)
	}

	cases := []struct {
		name          string
		req           request
		client, grant string
		result        string
	}{
		{"wrong secret of a configured client", request{body: "grant_type=client_credentials", basic: [2]string{"app", "wrong"}},
			"app", "client_credentials", CodeInvalidClient},
		{"a client that is not configured", request{body: "grant_type=client_credentials", basic: [2]string{"nobody", "x"}},
			"<none>", "client_credentials", CodeInvalidClient},
		{"an unknown grant type", request{body: "grant_type=urn:made:up", basic: [2]string{"app", "app-secret"}},
			"app", GrantUnsupported, CodeUnsupportedGrantType},
		{"no grant type", request{body: "scope=x", basic: [2]string{"nobody", "x"}},
			"<none>", GrantUnsupported, CodeInvalidRequest},
		{"a grant the client may not use", request{body: "grant_type=password&username=a&password=b", basic: [2]string{"plain", "p:%+& secret"}},
			"plain", "password", CodeUnauthorizedClient},
	}
	for _, c := range cases {
		f.do(c.req)
		refused := take(events, EventTokenRefused)
		if len(refused) != 1 {
			t.Errorf("%s: token_refused events %+v, want one", c.name, refused)
			continue
		}
		ev := refused[0]
		if clientID(ev.Client) != c.client || ev.GrantType != c.grant || ev.Result != c.result {
			t.Errorf("%s: token_refused client %s grant %q result %q, want %s %q %q", c.name, clientID(ev.Client), ev.GrantType, ev.Result,
				c.client, c.grant, c.result)
		}
	}
}

func TestObserverClientAuthFailed(t *testing.T) {
	f, events := observed(t)
	f.do(request{body: "grant_type=client_credentials", basic: [2]string{"app", "wrong"}, header: map[string]string{"X-Test": "1"}})
	failed := take(events, EventClientAuthFailed)
	if len(failed) != 1 || clientID(failed[0].Client) != "app" || failed[0].AuthMethod != AuthSecretBasic || failed[0].RemoteIP == "" {
		t.Errorf("client_auth_failed = %+v, want app by client_secret_basic with its address", failed)
	}
	f.do(request{body: "grant_type=client_credentials&client_id=ghost&client_secret=s3cr3t"})
	failed = take(events, EventClientAuthFailed)
	if len(failed) != 1 || failed[0].Client != nil || failed[0].AuthMethod != AuthSecretPost {
		t.Errorf("client_auth_failed = %+v, want no client, by client_secret_post", failed)
	}
}

func TestObserverSignInsAndThrottling(t *testing.T) {
	f, events := observed(t)
	pw := func(password string) {
		f.post(vals("grant_type", "password", "username", "carol", "password", password))
	}
	pw("carol-pw")
	if s := take(events, EventSignIn); len(s) != 1 || s[0].Result != SignInOK || s[0].Subject == "" || s[0].IdP != "main" || s[0].Username != "carol" {
		t.Errorf("sign_in = %+v, want carol's ok by main", s)
	}
	for range 9 {
		pw("wrong")
	}
	if s := take(events, EventSignIn); len(s) != 9 || s[0].Result != SignInWrongPassword || s[0].Subject != "" {
		t.Errorf("sign_in = %+v, want nine wrong_password", s)
	}
	pw("carol-pw")
	all := slices.Clone(*events)
	if s := take(events, EventSignIn); len(s) != 1 || s[0].Result != SignInThrottled {
		t.Errorf("sign_in = %+v, want throttled", s)
	}
	*events = all
	if th := take(events, EventThrottled); len(th) != 1 || th[0].What != ThrottledPassword {
		t.Errorf("throttled = %+v, want password", th)
	}
}

func TestObserverRefreshReuseAndRevocation(t *testing.T) {
	f, events := observed(t)
	first := f.post(vals("grant_type", "password", "username", "alice", "password", "alice-pw", "scope", "offline_access"))
	family := f.accessClaims("password grant", first)
	f.expectOK("refresh", f.post(vals("grant_type", "refresh_token", "refresh_token", first.str("refresh_token"))))
	*events = nil
	f.post(vals("grant_type", "refresh_token", "refresh_token", first.str("refresh_token")))
	if reuse := take(events, EventRefreshReused); len(reuse) != 1 || clientID(reuse[0].Client) != "app" || reuse[0].GrantID != family.GrantID {
		t.Errorf("refresh_reuse = %+v, want app's of family %q", reuse, family.GrantID)
	}

	second := f.post(vals("grant_type", "client_credentials"))
	secondClaims := f.accessClaims("client credentials", second)
	*events = nil
	f.do(request{target: "/connect/revocation", body: "token=" + second.str("access_token"), basic: [2]string{"app", "app-secret"}})
	revoked := take(events, EventRevoked)
	if len(revoked) != 1 || revoked[0].What != RevokedAccessToken || revoked[0].JTI != secondClaims.JTI || clientID(revoked[0].Client) != "app" {
		t.Errorf("revoked = %+v, want app's access token %q", revoked, secondClaims.JTI)
	}
}

// TestEventsCarryNoSecrets checks that no event field holds what a request presented as a secret.
func TestEventsCarryNoSecrets(t *testing.T) {
	f, events := observed(t)
	f.do(request{body: "grant_type=client_credentials", basic: [2]string{"app", "the-wrong-secret"}})
	f.post(vals("grant_type", "password", "username", "alice", "password", "the-wrong-password"))
	f.post(vals("grant_type", "refresh_token", "refresh_token", "the-unknown-refresh-token"))
	for _, ev := range *events {
		text := strings.Join([]string{ev.GrantType, ev.Result, ev.Subject, ev.Scope, ev.JTI, ev.GrantID, ev.Username, ev.IdP, ev.AuthMethod, ev.RemoteIP, ev.What}, " ")
		if strings.Contains(text, "the-") {
			t.Errorf("event %+v carries a presented secret", ev)
		}
	}
}

func TestObserverCodeReplay(t *testing.T) {
	f, events := observed(t)
	form := []string{"code", f.code(nil), "redirect_uri", webRedirect, "code_verifier", verifier}
	first := f.redeem(web, form...)
	claims := f.accessClaims("first redemption", first)
	*events = nil
	f.redeem(web, form...)
	revoked := take(events, EventRevoked)
	if len(revoked) != 1 || revoked[0].What != RevokedCodeReplay || revoked[0].GrantID != claims.GrantID || clientID(revoked[0].Client) != "web" {
		t.Errorf("revoked = %+v, want web's code replay of grant %q", revoked, claims.GrantID)
	}
}
