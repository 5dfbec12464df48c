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
