package tests

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"

	"golang.org/x/oauth2"
)

// TestDocsAdapt holds the docs to the promise that every Caddyfile in them adapts: the example
// and each README block fenced as ```caddyfile (syntax summaries with <placeholders> are fenced as
// ```text and are not configurations).
func TestDocsAdapt(t *testing.T) {
	t.Parallel()
	files := map[string]string{"Caddyfile.example": readRepoFile(t, "Caddyfile.example")}
	blocks := caddyfileBlocks(readRepoFile(t, "README.md"))
	if len(blocks) == 0 {
		t.Fatal("README.md has no ```caddyfile block, want the walk-through's configuration")
	}
	for i, block := range blocks {
		files[fmt.Sprintf("README.md block %d", i+1)] = block
	}
	for name, caddyfile := range files {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if out, err := caddyAdapt(t, caddyfile); err != nil {
				t.Errorf("caddy adapt %s: %v\n%s\n%s", name, err, out, caddyfile)
			}
		})
	}
}

// TestExampleServes runs Caddyfile.example (on free ports instead of 8080 and 9090) and follows the
// README: alice signs in with the documented password and the demo app greets her.
func TestExampleServes(t *testing.T) {
	t.Parallel()
	example := strings.NewReplacer(":8080", ":{{PORT}}", ":9090", ":{{PORT2}}").Replace(readRepoFile(t, "Caddyfile.example"))
	c := startCaddy(t, example)
	// The example's site answers to the name localhost, as the README's curl commands use it.
	base := strings.Replace(c.Base, "127.0.0.1", "localhost", 1)
	demo := &oauth2.Config{
		ClientID:     "demo-app",
		ClientSecret: "demo-secret",
		Endpoint:     oauth2.Endpoint{TokenURL: base + "/connect/token", AuthStyle: oauth2.AuthStyleInHeader},
		Scopes:       []string{"api.read"},
	}
	tok, err := demo.PasswordCredentialsToken(testContext(t), "alice", "demo-password")
	if err != nil {
		t.Fatalf("password grant for alice with the documented password: %v", err)
	}
	resp, err := demo.Client(testContext(t), tok).Get(base + "/api/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body := new(strings.Builder)
	if _, err := io.Copy(body, resp.Body); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || body.String() != "hello alice" {
		t.Errorf("GET /api/ as alice: HTTP %d %q, want 200 %q", resp.StatusCode, body, "hello alice")
	}
}

// TestExampleSignInPage opens the README's /connect/authorize URL on Caddyfile.example: it shows
// the sign-in form for the browser client, named by its display_name, and alice's sign-in there
// returns a code that the client redeems with the README's PKCE verifier.
func TestExampleSignInPage(t *testing.T) {
	t.Parallel()
	example := strings.NewReplacer(":8080", ":{{PORT}}", ":9090", ":{{PORT2}}").Replace(readRepoFile(t, "Caddyfile.example"))
	c := startCaddy(t, example)
	base := strings.Replace(c.Base, "127.0.0.1", "localhost", 1)
	var documented string
	for line := range strings.Lines(readRepoFile(t, "README.md")) {
		if strings.HasPrefix(line, "http://localhost:8080/connect/authorize?") && strings.Contains(line, "client_id=demo-spa") {
			documented = strings.TrimSpace(line)
		}
	}
	if documented == "" {
		t.Fatal("README.md gives no line http://localhost:8080/connect/authorize?...client_id=demo-spa")
	}
	person := newFormClient(t)
	page := person.submit(strings.Replace(documented, "http://localhost:8080", base, 1), nil)
	if page.status != http.StatusOK || !strings.Contains(page.body, `type="password"`) || !strings.Contains(page.body, "to continue to Demo App") {
		t.Fatalf("GET the README's authorize URL = %d, want 200 with a sign-in form to continue to Demo App:\n%s", page.status, page.body)
	}
	page.fields.Set("username", "alice")
	page.fields.Set("password", "demo-password")
	signedIn := person.submit(base+"/connect/authorize", page.fields)
	if signedIn.location == nil || signedIn.location.Host != "127.0.0.1:3000" || signedIn.location.Query().Get("code") == "" {
		t.Fatalf("alice's sign-in = %d to %v, want a redirect to http://127.0.0.1:3000/callback with a code:\n%s", signedIn.status, signedIn.location, signedIn.body)
	}
	spa := &oauth2.Config{ClientID: "demo-spa", RedirectURL: "http://127.0.0.1:3000/callback",
		Endpoint: oauth2.Endpoint{TokenURL: base + "/connect/token", AuthStyle: oauth2.AuthStyleInParams}}
	tok, err := spa.Exchange(testContext(t), signedIn.location.Query().Get("code"), oauth2.VerifierOption("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"))
	if err != nil {
		t.Fatalf("redeeming the code with the README's verifier: %v", err)
	}
	if tok.Extra("id_token") == nil || tok.RefreshToken == "" {
		t.Errorf("the code's tokens = %+v, want an ID token and a refresh token", tok)
	}
}

// caddyfileBlocks returns the contents of the Markdown code blocks fenced as ```caddyfile.
func caddyfileBlocks(markdown string) []string {
	var blocks []string
	var current *strings.Builder
	for line := range strings.Lines(markdown) {
		fence, isFence := strings.CutPrefix(strings.TrimSpace(line), "```")
		switch {
		case isFence && current != nil:
			blocks = append(blocks, current.String())
			current = nil
		case isFence && strings.EqualFold(strings.TrimSpace(fence), "caddyfile"):
			current = &strings.Builder{}
		case current != nil:
			current.WriteString(line)
		}
	}
	return blocks
}

// readRepoFile reads a file of the repository root.
func readRepoFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("../" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
