package tests

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// mcpSDK is the official MCP TypeScript SDK, as tests/node/package-lock.json pins it.
const mcpSDK = "node/node_modules/@modelcontextprotocol/sdk"

// mcpCaddyfile is cimdCaddyfile with registration beside metadata documents: the README's
// "Protecting an MCP server", registered clients getting the default scopes.
var mcpCaddyfile = strings.Replace(cimdCaddyfile, "\t\tusers staff {", "\t\tregistration\n\t\tusers staff {", 1)

// sdkRun is what tests/node/mcpclient.mjs printed.
type sdkRun struct {
	User     string   `json:"user"`
	ClientID string   `json:"client_id"`
	Scope    string   `json:"scope"`
	Steps    []string `json:"steps"`
}

// TestMCPSDKClient puts a real MCP server (the TypeScript SDK's, tests/node/mcpserver.mjs) behind
// bearer_auth and lets the SDK's own client find its way in from nothing but the server's URL: the
// 401's resource_metadata, the protected resource metadata, the authorization server metadata,
// then its Client ID Metadata Document or, without one, dynamic registration, PKCE, the sign-in
// and consent pages (the script plays the person there), the code, and a tool call that sees who
// signed in.
func TestMCPSDKClient(t *testing.T) {
	t.Parallel()
	node := needNodePackage(t, mcpSDK, "the MCP SDK")
	mcpServer := startMCPServer(t, node)
	docs := startDocServer(t)
	const redirectURI = "http://127.0.0.1:53682/callback"
	clientID := docs.document("/mcp-client/client.json", `"client_name":"tokengate test MCP client"`,
		`"redirect_uris":["`+redirectURI+`"]`)
	c := startCIMDCaddy(t, mcpCaddyfile, docs, mcpServer)

	for _, tc := range []struct {
		name, documentURL string
	}{
		{"metadata document", clientID},
		{"registration", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			run := runMCPClient(t, node, c.URL("/mcp"), redirectURI, tc.documentURL)
			if run.User != "alice" {
				t.Errorf("whoami = %q, want alice: the tool must see who signed in", run.User)
			}
			if !slices.Equal(run.Steps, []string{"sign-in", "consent"}) {
				t.Errorf("pages passed %q, want the sign-in page, then the consent page", run.Steps)
			}
			if !slices.Contains(strings.Fields(run.Scope), "mcp.tools") {
				t.Errorf("token scope %q, want mcp.tools, which the route's challenge named", run.Scope)
			}
			switch {
			case tc.documentURL != "" && run.ClientID != tc.documentURL:
				t.Errorf("client_id %q, want the metadata document's URL %s", run.ClientID, tc.documentURL)
			case tc.documentURL == "" && (run.ClientID == "" || strings.HasPrefix(run.ClientID, "https://")):
				t.Errorf("client_id %q, want one registration issued", run.ClientID)
			}
		})
	}
	if n := docs.fetchCount("/mcp-client/client.json"); n == 0 {
		t.Errorf("tokengate never fetched the client's metadata document")
	}
}

// startMCPServer runs tests/node/mcpserver.mjs until the test ends and returns its base URL.
func startMCPServer(t *testing.T, node string) string {
	t.Helper()
	cmd := exec.CommandContext(testContext(t), node, "node/mcpserver.mjs")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	port := bufio.NewScanner(stdout)
	if !port.Scan() {
		t.Fatalf("the MCP server printed no port: %s", stderr.String())
	}
	return "http://127.0.0.1:" + strings.TrimSpace(port.Text())
}

// runMCPClient runs tests/node/mcpclient.mjs against mcpURL and reads what it printed.
func runMCPClient(t *testing.T, node, mcpURL, redirectURI, documentURL string) sdkRun {
	t.Helper()
	args := []string{"node/mcpclient.mjs", mcpURL, "alice", alicePassword, redirectURI}
	if documentURL != "" {
		args = append(args, documentURL)
	}
	cmd := exec.CommandContext(testContext(t), node, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node mcpclient.mjs: %v\n%s%s", err, out, stderr.Bytes())
	}
	var run sdkRun
	if err := json.Unmarshal(out, &run); err != nil {
		t.Fatalf("node mcpclient.mjs printed %q, want one JSON object: %v", out, err)
	}
	return run
}
