package tests

import (
	"bufio"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// conformanceSuite is the MCP conformance suite's command line, as tests/node/package-lock.json pins it.
const conformanceSuite = "node/node_modules/@modelcontextprotocol/conformance/dist/index.js"

// conformanceCheck is one result in a scenario's checks.json.
type conformanceCheck struct {
	ID           string `json:"id"`
	Status       string `json:"status"`
	ErrorMessage string `json:"errorMessage"`
}

// conformanceCaddyfile is cimdCaddyfile (an MCP deployment: metadata documents on, the resource
// {{BASE}}/mcp) with the client the suite is told of: public, for that resource, returning to the
// suite's callback at {{CALLBACK}}.
var conformanceCaddyfile = strings.Replace(cimdCaddyfile, "\t\tusers staff {", `		client conformance {
			public
			grants authorization_code refresh_token
			scopes openid mcp.tools
			audience {{BASE}}/mcp
			redirect_uris {{CALLBACK}}/callback
		}
		users staff {`, 1)

// TestMCPConformanceAuthorizationServer runs the official MCP conformance suite's authorization
// server scenarios against tokengate: the RFC 8414 metadata document (with metadata documents
// supported), and an authorization code grant with PKCE and a resource indicator that the suite
// starts and finishes itself, the person in between signing in on tokengate's page (this test
// plays the person). Every check must pass.
func TestMCPConformanceAuthorizationServer(t *testing.T) {
	t.Parallel()
	node := needNodePackage(t, conformanceSuite, "the MCP conformance suite")
	// The suite takes the callback on http://127.0.0.1:<port>/callback.
	port := freePort(t)
	callback := "http://127.0.0.1:" + port
	c := startCaddy(t, strings.NewReplacer("{{CALLBACK}}", callback, "{{ALICE_HASH}}", aliceHash(), "{{UPSTREAM}}", startUpstream(t).URL).Replace(conformanceCaddyfile))
	results := t.TempDir()
	cmd := exec.CommandContext(testContext(t), node, "--import", "./node/fs-glob-register.mjs", conformanceSuite,
		"authorization", "--url", c.Base, "--client-id", "conformance", "--resource", c.URL("/mcp"), "--port", port,
		"--output-dir", results)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// The suite prints the authorization URL as it starts its callback server, and says when that
	// listens: the person signs in once both are printed.
	var printed strings.Builder
	var authorizeURL string
	listening, signedIn := false, false
	for lines := bufio.NewScanner(stdout); lines.Scan(); {
		line := lines.Text()
		printed.WriteString(line + "\n")
		switch {
		case strings.HasPrefix(line, c.URL("/connect/authorize?")):
			authorizeURL = line
		case strings.HasPrefix(line, "Callback server started"):
			listening = true
		}
		if !signedIn && listening && authorizeURL != "" {
			signInForSuite(t, c, authorizeURL)
			signedIn = true
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("conformance suite: %v\n%s%s", err, printed.String(), stderr.String())
	}
	if !signedIn {
		t.Errorf("the suite never asked for a sign-in:\n%s", printed.String())
	}
	checks := readConformanceChecks(t, results)
	for _, scenario := range []string{"authorization-server-metadata", "authorization-server-metadata-cimd", "authorization-code-grant"} {
		if _, ok := checks[scenario]; !ok {
			t.Errorf("no result for check %s (got %v)", scenario, checks)
		}
	}
	for id, check := range checks {
		t.Logf("check %s: %s %s", id, check.Status, check.ErrorMessage)
		if check.Status != "SUCCESS" {
			t.Errorf("check %s: %s %s", id, check.Status, check.ErrorMessage)
		}
	}
}

// signInForSuite is the person at the browser: alice signs in at the authorization URL the suite
// printed, and her browser follows the redirect to the suite's callback.
func signInForSuite(t *testing.T, c *Caddy, authorizeURL string) {
	t.Helper()
	f := newFormClient(t)
	login := f.submit(authorizeURL, nil)
	if !isSignInForm(login) {
		t.Fatalf("the suite's authorization request = %d, want the sign-in form:\n%s", login.status, login.body)
	}
	form := login.fields
	form.Set("username", "alice")
	form.Set("password", alicePassword)
	page := f.submit(c.URL("/connect/authorize"), form)
	if page.location == nil {
		t.Fatalf("sign-in = %d without a redirect:\n%s", page.status, page.body)
	}
	resp, err := http.Get(page.location.String())
	if err != nil {
		t.Fatalf("delivering %s to the suite: %v", page.location, err)
	}
	resp.Body.Close()
}

// readConformanceChecks reads every checks.json the suite wrote below dir, by check id.
func readConformanceChecks(t *testing.T, dir string) map[string]conformanceCheck {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*", "checks.json"))
	if err != nil || len(files) == 0 {
		entries, _ := os.ReadDir(dir)
		t.Fatalf("no checks.json below %s (%v): %v", dir, err, entries)
	}
	checks := map[string]conformanceCheck{}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var list []conformanceCheck
		if err := json.Unmarshal(data, &list); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		for _, check := range list {
			checks[check.ID] = check
		}
	}
	return checks
}
