package caddymodule

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	_ "github.com/caddyserver/caddy/v2/modules/filestorage" // the storage option of the test Caddyfile

	"github.com/tokengate/tokengate/internal/freeport"
)

// TestCaddyReload runs the modules inside a real Caddy: the Caddyfile adapts, the handlers find the
// app, a token issued by the tokengate directive passes bearer_auth, and a reload on the same
// embedded store (a bolt file, a pebble directory) neither deadlocks on its lock nor forgets the
// key, while a client it removes loses its tokens.
func TestCaddyReload(t *testing.T) {
	t.Run("bolt", func(t *testing.T) { testCaddyReload(t, "bolt "+filepath.Join(t.TempDir(), "tokengate.db")) })
	t.Run("pebble", func(t *testing.T) { testCaddyReload(t, "pebble "+filepath.Join(t.TempDir(), "pebble")) })
}

// testCaddyReload is TestCaddyReload on the store that the `store` line storeLine declares.
func testCaddyReload(t *testing.T, storeLine string) {
	addr := "127.0.0.1:" + strconv.Itoa(freeport.Port(t))
	config := func(clientID string) []byte {
		caddyfile := `{
	admin off
	persist_config off
	storage file_system ` + t.TempDir() + `
	tokengate {
		issuer http://` + addr + `
		store ` + storeLine + `
		client ` + clientID + ` {
			secret a-long-random-client-secret
			scopes api
			grants client_credentials
		}
	}
}

http://` + addr + ` {
	tokengate
	bearer_auth /api/*
	respond "hello {http.auth.user.id}"
}
`
		out, _, err := adapt(caddyfile)
		if err != nil {
			t.Fatalf("adapt: %v", err)
		}
		return []byte(out)
	}
	load := func(cfg []byte) {
		t.Helper()
		done := make(chan error, 1)
		go func() { done <- caddy.Load(cfg, true) }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("caddy.Load: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("caddy.Load hung (a second open of the store?)")
		}
	}

	load(config("svc"))
	t.Cleanup(func() {
		if err := caddy.Stop(); err != nil {
			t.Errorf("caddy.Stop: %v", err)
		}
	})
	base := "http://" + addr
	token := postToken(t, base)
	if status, body := getAPI(t, base, token); status != http.StatusOK || body != "hello svc" {
		t.Fatalf("GET /api/x = %d %q, want 200 %q", status, body, "hello svc")
	}
	if status, _ := getAPI(t, base, ""); status != http.StatusUnauthorized {
		t.Errorf("GET /api/x without a token = %d, want 401", status)
	}

	load(config("other"))
	if status, _ := getAPI(t, base, token); status != http.StatusUnauthorized {
		t.Errorf("GET /api/x with the token of a removed client = %d, want 401", status)
	}
	// Declared again, the client gets new tokens; the ones from before its removal stay revoked.
	time.Sleep(time.Second) // iat has whole seconds: the new token must not share the removal's
	load(config("svc"))
	if status, _ := getAPI(t, base, token); status != http.StatusUnauthorized {
		t.Errorf("GET /api/x with a token from before the client's removal = %d, want 401", status)
	}
	if status, body := getAPI(t, base, postToken(t, base)); status != http.StatusOK || body != "hello svc" {
		t.Errorf("GET /api/x with a new token = %d %q, want 200", status, body)
	}
}

func postToken(t *testing.T, base string) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+"/connect/token", strings.NewReader(url.Values{"grant_type": {"client_credentials"}}.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("svc", "a-long-random-client-secret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var body struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(raw, &body); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /connect/token = %d %s, want 200 and a token", resp.StatusCode, raw)
	}
	return body.AccessToken
}

func getAPI(t *testing.T, base, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, base+"/api/x", nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// TestRefusalsReachErrorRoutes runs bearer_auth in a real Caddy, on a server without error routes,
// inside a subroute that has its own, and on a server with handle_errors: the error routes write
// the body wherever there are some, and the status and challenge are the same everywhere.
func TestRefusalsReachErrorRoutes(t *testing.T) {
	plain, handled := "127.0.0.1:"+strconv.Itoa(freeport.Port(t)), "127.0.0.1:"+strconv.Itoa(freeport.Port(t))
	gated := `{"handler": "bearer_auth"}, {"handler": "static_response", "body": "upstream"}`
	errorRoutes := func(body string) string {
		return `{"routes": [{"handle": [{"handler": "static_response", "body": "` + body + ` {http.error.status_code}"}]}]}`
	}
	config := `{
	"admin": {"disabled": true},
	"storage": {"module": "file_system", "root": "` + t.TempDir() + `"},
	"apps": {
		"tokengate": {"issuer": "http://` + plain + `", "store": {"backend": "memory"},
			"clients": [{"id": "svc", "secrets": ["a-long-random-client-secret"], "grants": ["client_credentials"], "audience": ["api"]}]},
		"http": {"servers": {
			"plain": {"listen": ["` + plain + `"], "automatic_https": {"disable": true}, "routes": [
				{"match": [{"path": ["/sub/*"]}], "handle": [{"handler": "subroute", "routes": [{"handle": [` + gated + `]}],
					"errors": ` + errorRoutes("subroute") + `}]},
				{"handle": [` + gated + `]}
			]},
			"handled": {"listen": ["` + handled + `"], "automatic_https": {"disable": true}, "routes": [{"handle": [` + gated + `]}],
				"errors": ` + errorRoutes("handle_errors") + `}
		}}
	}
}`
	if err := caddy.Load([]byte(config), true); err != nil {
		t.Fatalf("caddy.Load: %v", err)
	}
	t.Cleanup(func() {
		if err := caddy.Stop(); err != nil {
			t.Errorf("caddy.Stop: %v", err)
		}
	})
	challenge := `Bearer realm="http://` + plain + `", error="invalid_token"`
	for _, tc := range []struct{ url, body string }{
		{"http://" + plain + "/x", ""},
		{"http://" + plain + "/sub/x", "subroute 401"},
		{"http://" + handled + "/x", "handle_errors 401"},
	} {
		req, err := http.NewRequest(http.MethodGet, tc.url, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer not.a.token")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || string(body) != tc.body || resp.Header.Get("WWW-Authenticate") != challenge {
			t.Errorf("GET %s: %d %q WWW-Authenticate %q, want 401 %q %q", tc.url, resp.StatusCode, body,
				resp.Header.Get("WWW-Authenticate"), tc.body, challenge)
		}
	}
}
