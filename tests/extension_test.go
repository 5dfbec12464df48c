package tests

import (
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// exampleCaddy is bin/caddy-example, Caddy built with tokengate and examples/apikeygrant (a module
// of its own): $EXAMPLE_CADDY_BIN, or built here as `make -f xcaddy.mk build-example` does.
func exampleCaddy(t *testing.T) string {
	t.Helper()
	if bin := os.Getenv("EXAMPLE_CADDY_BIN"); bin != "" {
		return bin
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	build := exec.Command("make", "-f", "xcaddy.mk", "build-example")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building Caddy with the example extension grant: %v\n%s", err, out)
	}
	return filepath.Join(root, "bin", "caddy-example")
}

const apiKeyGrantType = "urn:example:params:oauth:grant-type:api-key"

// The extension point works from outside the package: a grant type from another Go module, built
// in with xcaddy --with and declared by a Caddyfile line, issues tokens bearer_auth accepts.
func TestExtensionGrantFromAnotherModule(t *testing.T) {
	upstream := startUpstream(t)
	c := startCaddyBinary(t, exampleCaddy(t), strings.NewReplacer("{{UPSTREAM}}", upstream.URL).Replace(`{
	tokengate {
		issuer {{BASE}}
		store memory
		grant `+apiKeyGrantType+` api_key {
			key k-7f3c2a9e4b1d alice
		}
		client integration {
			secret integration-secret
			grants `+apiKeyGrantType+`
			scopes api
			audience api
		}
		client other {
			secret other-secret
			grants client_credentials
			scopes api
			audience api
		}
	}
}

`+upstreamAPISite))
	// Clients authenticate with <id>-secret (requestToken's convention).
	grant := func(client, key string) tokenAnswer {
		t.Helper()
		ans, err := requestToken(testContext(t), c, client, url.Values{"grant_type": {apiKeyGrantType}, "api_key": {key}})
		if err != nil {
			t.Fatal(err)
		}
		return ans
	}
	tok := grant("integration", "k-7f3c2a9e4b1d")
	if tok.Status != http.StatusOK || tok.AccessToken == "" {
		t.Fatalf("the API key grant = %d %s, want a token", tok.Status, tok.Body)
	}
	if got := callUpstream(t, c, "/api/x", tok.AccessToken, nil).Header.Get("X-User"); got != "alice" {
		t.Errorf("X-User upstream = %q, want alice (the key's subject)", got)
	}
	for _, tc := range []struct{ what, client, key, code string }{
		{"a wrong key", "integration", "k-wrong", "invalid_grant"},
		{"a client not registered for the grant", "other", "k-7f3c2a9e4b1d", "unauthorized_client"},
	} {
		if got := grant(tc.client, tc.key); got.Status != http.StatusBadRequest || got.Error != tc.code {
			t.Errorf("%s = %d %s, want 400 %s", tc.what, got.Status, got.Body, tc.code)
		}
	}
}
