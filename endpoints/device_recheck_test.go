package endpoints

import (
	"net/http"
	"testing"
	"time"

	"github.com/tokengate/tokengate/internal/testclock"
)

// An approval on the device page keeps the identity provider that checked the password, as a code
// does: the tokens name it (idp), and each refresh asks it whether the person still exists.
func TestDevicePageKeepsTheIdentityProvider(t *testing.T) {
	c := testclock.New(time.Unix(1_800_000_000, 0))
	e := newDeviceEnv(t, c.Now, nil)
	deviceCode, complete := e.start()
	b := e.browser("192.0.2.1")
	b.submit(b.decideFrom(complete), "approve", "approve").expect(t, "approved", http.StatusOK, "approved")
	status, token := e.poll(deviceCode)
	if status != http.StatusOK {
		t.Fatalf("poll after approval = %d %q, want 200", status, token)
	}
	claims, err := e.verifier.VerifyAccessToken(token)
	if err != nil || claims.All["idp"] != "main" {
		t.Errorf("access token of the approval = %+v, %v, want idp main, the provider that checked alice's password", claims, err)
	}
}
