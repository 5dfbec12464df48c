package tests

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// The audit's attacks on access that outlives its reason: a user or a scope removed by a reload,
// and a token exchanged from another that was never meant for the exchanging client, or that was
// revoked since.

// reloadedCaddyfile declares the users block local with users (each with alicePassword), the
// password client web (secret web-secret) with webScopes, and app, which signs people in on the
// sign-in page. /write/* needs api.write.
func reloadedCaddyfile(webScopes string, users ...string) string {
	var lines strings.Builder
	for _, u := range users {
		fmt.Fprintf(&lines, "\t\t\tuser %s %s\n", u, aliceHash())
	}
	return `{
	tokengate {
		issuer {{BASE}}
		store memory
		client web {
			secret web-secret
			grants password refresh_token
			scopes ` + webScopes + `
			audience api
		}
` + appClient + `		}
		users local {
` + lines.String() + `		}
	}
}

{{BASE}} {
	tokengate
	bearer_auth /write/* {
		audience api
		scope api.write
	}
	respond /write/* "written" 200
}
`
}

// webSignIn is web's password grant for username, asking for scope.
func webSignIn(t *testing.T, c *Caddy, username, scope string) tokenAnswer {
	t.Helper()
	return wantToken(t, username+"'s password grant", postToken(t, c, basicAuth("web", "web-secret"),
		formBody("grant_type", "password", "username", username, "password", alicePassword, "scope", scope)))
}

// webRefresh is web's refresh with token, asking for scope when it is not empty.
func webRefresh(t *testing.T, c *Caddy, token, scope string) reply {
	t.Helper()
	pairs := []string{"grant_type", "refresh_token", "refresh_token", token}
	if scope != "" {
		pairs = append(pairs, "scope", scope)
	}
	return postToken(t, c, basicAuth("web", "web-secret"), formBody(pairs...))
}

// A reload that removes a user ends their sign-ins: their refresh token is invalid_grant, and
// their browser's session yields no code, only the sign-in form. Another user is untouched.
func TestAttackRemovedUser(t *testing.T) {
	t.Parallel()
	const scopes = "offline_access api.read"
	c := startCaddy(t, reloadedCaddyfile(scopes, "alice", "carol"))
	alice := webSignIn(t, c, "alice", scopes)
	carol := webSignIn(t, c, "carol", scopes)
	browser := newFormClient(t)
	if code, _, page := signInWith(t, browser, c, "openid api.read", "", "alice", alicePassword); code == "" {
		t.Fatalf("alice on the sign-in page: HTTP %d, location %v, want a code", page.status, page.location)
	}
	if page, _ := authorizeApp(t, browser, c, "openid api.read", ""); page.location == nil || page.location.Query().Get("code") == "" {
		t.Fatalf("alice's session before the reload: HTTP %d, location %v, want a code without the form", page.status, page.location)
	}

	c.Reload(t, reloadedCaddyfile(scopes, "carol"))

	wantError(t, "alice's refresh token once she is removed", webRefresh(t, c, alice.RefreshToken, ""), "invalid_grant")
	wantToken(t, "carol's refresh token, she stays", webRefresh(t, c, carol.RefreshToken, ""))
	page, _ := authorizeApp(t, browser, c, "openid api.read", "")
	if !isSignInForm(page) || page.location != nil {
		t.Errorf("alice's session once she is removed: HTTP %d, location %v, want the sign-in form and no code", page.status, page.location)
	}
}

// A reload that removes a scope from a client: no later refresh yields it, and asking for it is
// invalid_scope.
func TestAttackRemovedScope(t *testing.T) {
	t.Parallel()
	c := startCaddy(t, reloadedCaddyfile("offline_access api.read api.write", "alice"))
	alice := webSignIn(t, c, "alice", "offline_access api.read api.write")
	if r := call(t, c, "/write/x", alice.AccessToken, nil); r.status != http.StatusOK {
		t.Fatalf("alice's token at an api.write route before the reload: HTTP %d, want 200", r.status)
	}

	c.Reload(t, reloadedCaddyfile("offline_access api.read", "alice"))

	refreshed := wantToken(t, "refresh after api.write was removed", webRefresh(t, c, alice.RefreshToken, ""))
	if slices.Contains(strings.Fields(refreshed.Scope), "api.write") {
		t.Errorf("refresh after api.write was removed: scope %q, want no api.write", refreshed.Scope)
	}
	if r := call(t, c, "/write/x", refreshed.AccessToken, nil); r.status != http.StatusForbidden {
		t.Errorf("the refreshed token at an api.write route: HTTP %d, want 403 insufficient_scope", r.status)
	}
	wantError(t, "a refresh asking for the removed scope", webRefresh(t, c, refreshed.RefreshToken, "api.write"), "invalid_scope")
}

// exchangeCaddyfile: frontend's client_credentials tokens are for orders, which exchanges them for
// tokens to billing; ledger may exchange tokens for orders too (exchange_audiences); reports has
// the grant but nothing addressed to it. /billing/* takes tokens for billing.
const exchangeCaddyfile = `{
	tokengate {
		issuer {{BASE}}
		store memory
		grant ` + grantTokenExchange + ` token_exchange
		client frontend {
			secret frontend-secret
			grants client_credentials
			scopes orders.read
			audience orders
		}
		client orders {
			secret orders-secret
			grants ` + grantTokenExchange + `
			scopes orders.read
			audience billing
		}
		client ledger {
			secret ledger-secret
			grants ` + grantTokenExchange + `
			scopes orders.read
			audience billing
			exchange_audiences orders
		}
		client reports {
			secret reports-secret
			grants ` + grantTokenExchange + `
			scopes orders.read
			audience reports
		}
	}
}

{{BASE}} {
	tokengate
	bearer_auth /billing/* {
		audience billing
	}
	respond /billing/* "billed" 200
}
`

// exchangeAs is client's token exchange of subject (its secret is <client>-secret).
func exchangeAs(t *testing.T, c *Caddy, client, subject string) reply {
	t.Helper()
	return postToken(t, c, basicAuth(client, client+"-secret"), formBody("grant_type", grantTokenExchange,
		"subject_token", subject, "subject_token_type", tokenTypeAccess))
}

// A client exchanges only a token addressed to it, by its client_id or an exchange audience; and
// revoking a client_credentials subject token makes bearer_auth refuse what was exchanged from it.
func TestAttackTokenExchange(t *testing.T) {
	t.Parallel()
	c := startCaddy(t, exchangeCaddyfile)
	subject := wantToken(t, "frontend's token for orders", postToken(t, c, basicAuth("frontend", "frontend-secret"),
		formBody("grant_type", "client_credentials"))).AccessToken

	wantError(t, "reports exchanging a token for orders", exchangeAs(t, c, "reports", subject), "invalid_request")
	exchanged := wantToken(t, "orders exchanging a token for orders", exchangeAs(t, c, "orders", subject)).AccessToken
	viaAudience := wantToken(t, "ledger exchanging a token of its exchange audience", exchangeAs(t, c, "ledger", subject)).AccessToken
	for what, token := range map[string]string{"orders's": exchanged, "ledger's": viaAudience} {
		if r := call(t, c, "/billing/x", token, nil); r.status != http.StatusOK {
			t.Fatalf("%s exchanged token at billing: HTTP %d, want 200", what, r.status)
		}
	}

	if status, body := postForm(t, c, "/connect/revocation", "frontend", "frontend-secret", url.Values{"token": {subject}}); status != http.StatusOK {
		t.Fatalf("frontend revoking its token: HTTP %d %s", status, body)
	}
	for what, token := range map[string]string{"orders's": exchanged, "ledger's": viaAudience} {
		if r := call(t, c, "/billing/x", token, nil); r.status != http.StatusUnauthorized {
			t.Errorf("%s token exchanged from a revoked one at billing: HTTP %d, want 401", what, r.status)
		}
	}
}
