package tests

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"testing"
)

// TestOpenIDClientCodeFlow has node's openid-client, a certified OpenID Connect relying party, sign
// alice in through discovery, the login page, the authorization code grant with PKCE and userinfo
// (tests/node/codeflow.mjs). The redirect_uri is never visited: the script reads the code from the
// redirect.
func TestOpenIDClientCodeFlow(t *testing.T) {
	t.Parallel()
	node := needNodePackage(t, "node/node_modules/openid-client", "openid-client")
	const rp = "https://rp.example"
	c := startSignInCaddy(t, rp)
	cmd := exec.CommandContext(testContext(t), node, "node/codeflow.mjs", c.Base, "rp", "rp-secret", rp+"/callback", "alice", alicePassword)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node codeflow.mjs: %v\n%s%s", err, out, stderr.Bytes())
	}
	t.Logf("openid-client: %s", out)
	var result struct {
		Sub          string `json:"sub"`
		NonceMatches bool   `json:"nonce_matches"`
		Userinfo     struct {
			Sub   string `json:"sub"`
			Email string `json:"email"`
		} `json:"userinfo"`
	}
	if err := json.Unmarshal(out, &result); err != nil {
		t.Fatalf("node codeflow.mjs printed %q, want one JSON object: %v", out, err)
	}
	if result.Sub != "alice" || !result.NonceMatches {
		t.Errorf("openid-client's ID token sub %q nonce matches %v, want alice and true", result.Sub, result.NonceMatches)
	}
	if result.Userinfo.Sub != "alice" || result.Userinfo.Email != "alice@example.com" {
		t.Errorf("openid-client's userinfo sub %q email %q, want alice and alice@example.com (scope email)", result.Userinfo.Sub, result.Userinfo.Email)
	}
}
