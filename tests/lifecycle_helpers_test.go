package tests

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

// requestTimeout bounds every request of the lifecycle tests: SPEC "When things go wrong" allows a
// few seconds for a 503, never a hang, so a request still unanswered after this is a failure.
const requestTimeout = 8 * time.Second

// lifecycleClients are the clients a lifecycleConfig may declare, by client_id. Each one's secret
// is its id followed by "-secret"; user clients sign in as alice (alicePassword).
var lifecycleClients = map[string]string{
	"web": `grants password refresh_token
			scopes openid offline_access api.read`,
	"partner": `grants password refresh_token
			scopes offline_access api.read`,
	"svc": `grants client_credentials
			scopes api.read`,
	"newcomer": `grants client_credentials
			scopes api.read`,
}

// lifecycleConfig is a tokengate configuration for the lifecycle tests: one site that serves the
// endpoints and guards /api/* (scope api.read, audience api) in front of a fixed answer.
type lifecycleConfig struct {
	// issuer is the iss of every token; empty means {{BASE}}. Instances sharing one store need one.
	issuer string
	// options are extra lines of the tokengate global option (store, signing_key_rotation).
	options []string
	// accessTTL is access_token_ttl; empty means the default.
	accessTTL string
	// clients are the names, in lifecycleClients, of the clients to declare.
	clients []string
}

// caddyfile renders the configuration for startCaddy.
func (cfg *lifecycleConfig) caddyfile() string {
	var b strings.Builder
	issuer := cmp.Or(cfg.issuer, "{{BASE}}")
	fmt.Fprintf(&b, "{\n\ttokengate {\n\t\tissuer %s\n", issuer)
	for _, opt := range cfg.options {
		fmt.Fprintf(&b, "\t\t%s\n", opt)
	}
	if cfg.accessTTL != "" {
		fmt.Fprintf(&b, "\t\taccess_token_ttl %s\n", cfg.accessTTL)
	}
	for _, id := range cfg.clients {
		fmt.Fprintf(&b, "\t\tclient %s {\n\t\t\tsecret %s-secret\n\t\t\t%s\n\t\t\taudience api\n\t\t}\n", id, id, lifecycleClients[id])
	}
	fmt.Fprintf(&b, "\t\tusers local {\n\t\t\tuser alice %s\n\t\t}\n\t}\n}\n", aliceHash())
	b.WriteString(`
{{BASE}} {
	tokengate
	bearer_auth /api/* {
		audience api
		scope api.read
	}
	respond /api/* "upstream reached" 200
}
`)
	return b.String()
}

// tokenAnswer is what /connect/token answered: a token response (RFC 6749 §5.1) or an error
// (§5.2), with the HTTP status and how long the answer took.
type tokenAnswer struct {
	Status       int    `json:"-"`
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	Error        string `json:"error"`
	Body         string `json:"-"`
	Took         time.Duration
}

// String describes the answer for failure messages.
func (a tokenAnswer) String() string {
	return fmt.Sprintf("HTTP %d %s (in %v)", a.Status, a.Body, a.Took.Round(time.Millisecond))
}

// requestToken POSTs form to c's token endpoint as client (HTTP Basic, the secret being the
// client's id followed by "-secret"). It needs no *testing.T, so that load goroutines may call it;
// err is a transport failure or a timeout, never an OAuth error.
func requestToken(ctx context.Context, c *Caddy, client string, form url.Values) (tokenAnswer, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.URL("/connect/token"), strings.NewReader(form.Encode()))
	if err != nil {
		return tokenAnswer{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(client, client+"-secret")
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return tokenAnswer{Took: time.Since(start)}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	a := tokenAnswer{Status: resp.StatusCode, Body: string(body), Took: time.Since(start)}
	if err != nil {
		return a, err
	}
	if err := json.Unmarshal(body, &a); err != nil {
		return a, fmt.Errorf("token endpoint: HTTP %d, body %q is not JSON: %w", resp.StatusCode, body, err)
	}
	return a, nil
}

// refreshToken redeems refreshToken at c as client (RFC 6749 §6).
func refreshToken(ctx context.Context, c *Caddy, client, refreshToken string) (tokenAnswer, error) {
	return requestToken(ctx, c, client, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshToken}})
}

// signIn signs alice in through client with the password grant, asking for a refresh token, and
// fails the test unless it gets one.
func signIn(t *testing.T, c *Caddy, client string) tokenAnswer {
	t.Helper()
	a, err := requestToken(testContext(t), c, client, url.Values{
		"grant_type": {"password"}, "username": {"alice"}, "password": {alicePassword},
		"scope": {"offline_access api.read"},
	})
	if err != nil || a.Status != http.StatusOK || a.AccessToken == "" || a.RefreshToken == "" {
		t.Fatalf("password grant for alice through %s: %v (%v), want 200 with both tokens", client, a, err)
	}
	return a
}

// mustRefresh redeems refreshToken at c as client and fails the test unless it gets new tokens.
func mustRefresh(t *testing.T, c *Caddy, client, refresh, what string) tokenAnswer {
	t.Helper()
	a, err := refreshToken(testContext(t), c, client, refresh)
	if err != nil || a.Status != http.StatusOK || a.RefreshToken == "" || a.RefreshToken == refresh {
		t.Fatalf("%s: refresh = %v (%v), want 200 with a new refresh token", what, a, err)
	}
	return a
}

// wantRefreshRefused checks that refreshToken no longer works at c: 400 invalid_grant (RFC 6749
// §5.2), or invalid_client when the client itself is gone (unknownClient).
func wantRefreshRefused(t *testing.T, c *Caddy, client, refresh, what string, unknownClient bool) {
	t.Helper()
	a, err := refreshToken(testContext(t), c, client, refresh)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	want := []string{"invalid_grant"}
	if unknownClient {
		want = append(want, "invalid_client")
	}
	if !slices.Contains(want, a.Error) || a.Status >= 500 {
		t.Errorf("%s: refresh = %v, want a 4xx with error %q", what, a, want)
	}
}

// gateStatus GETs /api/<what> at c with token and returns the status bearer_auth let through or
// refused with. It needs no *testing.T, so that load goroutines may call it.
func gateStatus(ctx context.Context, c *Caddy, token, what string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.URL("/api/"+url.PathEscape(what)), nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// wantGate checks that bearer_auth at c answers token with status: 200 (the upstream answered) or
// 401 (RFC 6750 §3.1 invalid_token).
func wantGate(t *testing.T, c *Caddy, token string, status int, what string) {
	t.Helper()
	got, err := gateStatus(testContext(t), c, token, strings.ReplaceAll(what, " ", "-"))
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if got != status {
		t.Errorf("%s: bearer_auth answered HTTP %d, want %d", what, got, status)
	}
}

// jwksKids returns the kid of every key c's JWKS publishes, sorted.
func jwksKids(t *testing.T, c *Caddy) []string {
	t.Helper()
	resp, body := call(t, c, "/.well-known/openid-configuration/jwks", "", nil)
	var jwks struct {
		Keys []struct {
			Kid string `json:"kid"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(body, &jwks); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("JWKS of %s: HTTP %d %s (%v)", c.Base, resp.StatusCode, body, err)
	}
	kids := make([]string, 0, len(jwks.Keys))
	for _, k := range jwks.Keys {
		kids = append(kids, k.Kid)
	}
	slices.Sort(kids)
	return kids
}

// kidOf returns the kid header of a JWT.
func kidOf(t *testing.T, token string) string {
	t.Helper()
	var header struct {
		Kid string `json:"kid"`
	}
	jwtPart(t, token, 0, &header)
	return header.Kid
}
