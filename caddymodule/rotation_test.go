package caddymodule

import (
	"encoding/base64"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"
)

// tokenKid returns the kid in the header of a JWT.
func tokenKid(t *testing.T, raw string) string {
	t.Helper()
	header, _, _ := strings.Cut(raw, ".")
	data, err := base64.RawURLEncoding.DecodeString(header)
	if err != nil {
		t.Fatal(err)
	}
	var h struct {
		Kid string `json:"kid"`
	}
	if err := json.Unmarshal(data, &h); err != nil {
		t.Fatal(err)
	}
	return h.Kid
}

// TestRotationThroughJWKS runs a real rotation every 2s and watches it as a client would: each
// new key appears in the JWKS at least half an interval before a token carries its kid, and the
// keys that signed before stay published. A key first seen at one poll was published after the
// poll before it began, so the lead is measured from then: a slow poll on a busy machine can only
// lengthen the lead the test sees, never shorten it into a false failure.
func TestRotationThroughJWKS(t *testing.T) {
	const interval = 2 * time.Second
	app := provision(t, strings.Replace(testConfig, `"store": {"backend": "memory"},`,
		`"store": {"backend": "memory"}, "signing_key_rotation": 2000000000,`, 1))
	if err := app.Start(); err != nil {
		t.Fatal(err)
	}
	defer app.Stop()

	published := map[string]time.Time{} // kid → the latest moment it may have been published
	var signers []string                // the kids tokens carried, in order
	var previousPoll time.Time          // zero before the first: keys there were published before the test
	for deadline := time.Now().Add(5 * interval); len(signers) < 3 && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		poll := time.Now()
		kids := jwksKids(t, app)
		for _, kid := range kids {
			if _, ok := published[kid]; !ok {
				published[kid] = previousPoll
			}
		}
		previousPoll = poll
		kid := tokenKid(t, issueToken(t, app))
		if len(signers) > 0 && kid == signers[len(signers)-1] {
			continue
		}
		if len(signers) > 0 {
			if lead := time.Since(published[kid]); lead < interval/2 {
				t.Errorf("key %q signed %v after it was published, want at least %v", kid, lead, interval/2)
			}
		}
		if !slices.Contains(kids, kid) {
			t.Errorf("key %q signed a token but the JWKS %q lacks it", kid, kids)
		}
		signers = append(signers, kid)
	}
	if len(signers) < 3 {
		t.Fatalf("in %v tokens were signed by %q, want two rotations", 5*interval, signers)
	}
	// The access tokens live 1h: every key that signed one is still published.
	kids := jwksKids(t, app)
	for _, kid := range signers {
		if !slices.Contains(kids, kid) {
			t.Errorf("JWKS %q lacks %q, which signed a token that has not expired", kids, kid)
		}
	}
}
