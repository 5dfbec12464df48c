package tests

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// adminBackup posts body to Caddy's admin API at /tokengate/backup with method, and returns the
// status and the body of the answer.
func adminBackup(t *testing.T, c *Caddy, method, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(testContext(t), method, "http://"+c.Admin+"/tokengate/backup", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(answer)
}

// TestBackupRestore takes a backup of the pebble store through Caddy's admin API while tokengate
// serves, then starts a second Caddy on the copy: it holds the signing key, the refresh tokens,
// the rotations and the revocations as they were when the backup was taken, and nothing after.
func TestBackupRestore(t *testing.T) {
	t.Parallel()
	caddyfile := func(storeDir string) string {
		return (&lifecycleConfig{issuer: "http://tokengate.test", clients: []string{"web"},
			options: []string{"store pebble " + storeDir}}).caddyfile()
	}
	c := startCaddy(t, caddyfile("{{DATA}}/pebble"))
	kept := signIn(t, c, "web")
	revoked := signIn(t, c, "web")
	rotated := signIn(t, c, "web")
	revoke(t, c, revoked.RefreshToken)
	successor := mustRefresh(t, c, "web", rotated.RefreshToken, "rotating before the backup")

	to := filepath.Join(t.TempDir(), "copy")
	body, _ := json.Marshal(map[string]string{"to": to})
	if status, answer := adminBackup(t, c, http.MethodPost, string(body)); status != http.StatusOK || !strings.Contains(answer, `"store":"pebble `) {
		t.Fatalf("backup to %s: HTTP %d %s, want 200 naming the store", to, status, answer)
	}
	if fi, err := os.Stat(to); err != nil || fi.Mode().Perm()&0o077 != 0 {
		t.Errorf("the backup: %v, %v; want a directory only Caddy's user may read (it holds the signing keys)", fi, err)
	}
	for _, bad := range []struct{ what, method, body string }{
		{"the same path again", http.MethodPost, string(body)},
		{"a relative path", http.MethodPost, `{"to": "copy"}`},
		{"a path whose directory does not exist", http.MethodPost, `{"to": "` + filepath.Join(to+"-missing", "copy") + `"}`},
		{"no path", http.MethodPost, `{}`},
		{"a body that is not JSON", http.MethodPost, `to=/tmp/x`},
	} {
		if status, answer := adminBackup(t, c, bad.method, bad.body); status != http.StatusBadRequest {
			t.Errorf("backup with %s: HTTP %d %s, want 400", bad.what, status, answer)
		}
	}
	if status, _ := adminBackup(t, c, http.MethodGet, ""); status != http.StatusMethodNotAllowed {
		t.Errorf("GET /tokengate/backup: HTTP %d, want 405", status)
	}
	if log := c.log.String(); !strings.Contains(log, `"event":"store_backed_up"`) || !strings.Contains(log, to) {
		t.Error(`no audit line "store_backed_up" naming the backup: a copy of the signing keys left the store`)
	}
	late := signIn(t, c, "web")

	restored := startCaddy(t, caddyfile(to))
	wantGate(t, restored, kept.AccessToken, http.StatusOK, "an access token signed before the backup, at the restored copy")
	wantGate(t, restored, revoked.AccessToken, http.StatusUnauthorized, "an access token of a family revoked before the backup, at the restored copy")
	wantRefreshRefused(t, restored, "web", revoked.RefreshToken, "a refresh token revoked before the backup, at the restored copy", false)
	mustRefresh(t, restored, "web", kept.RefreshToken, "a refresh token issued before the backup, at the restored copy")
	mustRefresh(t, restored, "web", successor.RefreshToken, "a rotation's successor, at the restored copy")
	wantRefreshRefused(t, restored, "web", rotated.RefreshToken, "a refresh token rotated before the backup, at the restored copy", false)
	wantRefreshRefused(t, restored, "web", late.RefreshToken, "a refresh token issued after the backup, at the restored copy", false)
}

// TestBackupOfAMemoryStoreIsRefused: only the embedded stores are backed up; the answer says so.
func TestBackupOfAMemoryStoreIsRefused(t *testing.T) {
	t.Parallel()
	c := startCaddy(t, (&lifecycleConfig{clients: []string{"svc"}, options: []string{"store memory"}}).caddyfile())
	to := filepath.Join(t.TempDir(), "copy")
	if status, answer := adminBackup(t, c, http.MethodPost, `{"to": "`+to+`"}`); status != http.StatusBadRequest || !strings.Contains(answer, "embedded") {
		t.Errorf("backup of a memory store: HTTP %d %s, want 400 saying which stores are backed up", status, answer)
	}
	if _, err := os.Stat(to); err == nil {
		t.Errorf("a refused backup left %s behind", to)
	}
}

// TestBackupWithoutTokengate: a Caddy that runs no tokengate app answers the backup route 404.
func TestBackupWithoutTokengate(t *testing.T) {
	t.Parallel()
	c := startCaddy(t, "{{BASE}} {\n\trespond \"ok\"\n}\n")
	to := filepath.Join(t.TempDir(), "copy")
	if status, answer := adminBackup(t, c, http.MethodPost, `{"to": "`+to+`"}`); status != http.StatusNotFound {
		t.Errorf("backup without a tokengate app: HTTP %d %s, want 404", status, answer)
	}
}
