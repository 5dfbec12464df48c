package grants

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/tokengate/tokengate/internal/cputime"
	"github.com/tokengate/tokengate/store"
)

// BenchmarkTokenEndpoint measures a refresh and a client_credentials request in process, on a
// pebble store, 32 at once as the load test sends them, without HTTP or Caddy around them. The
// CPU per request (cpu-ns/op) is steadier than the load test's rates on a shared machine, and the
// ratio of the two is what refresh/client_credentials can reach at best end to end. A refresh on
// the memory store, which writes nothing durably, is the ceiling of any durable store's.
func BenchmarkTokenEndpoint(b *testing.B) {
	for _, run := range []struct{ name, grantType, store string }{
		{"client_credentials", "client_credentials", "pebble"},
		{"refresh_token", "refresh_token", "pebble"},
		{"refresh_token_on_memory", "refresh_token", "memory"},
	} {
		b.Run(run.name, func(b *testing.B) {
			f := newFixture(b, func(f *fixture, cfg *Config) {
				if run.store == "memory" {
					return
				}
				s, err := store.OpenPebble(filepath.Join(b.TempDir(), "pebble"), f.Now)
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { s.Close() })
				cfg.Store = s
			})
			f.expectOK("first request", f.post(vals("grant_type", "client_credentials")))
			parallelism := max(1, 32/runtime.GOMAXPROCS(0))
			// Each client refreshes a token of its own, signed in for before the clock starts.
			tokens := make(chan string, parallelism*runtime.GOMAXPROCS(0))
			for range cap(tokens) {
				tokens <- f.login("offline_access api.read").str("refresh_token")
			}
			b.SetParallelism(parallelism)
			cpuBefore := cputime.Process(b)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				token := <-tokens
				for pb.Next() {
					body := "grant_type=client_credentials"
					if run.grantType == "refresh_token" {
						body = "grant_type=refresh_token&refresh_token=" + token
					}
					r := httptest.NewRequest(http.MethodPost, "/connect/token", strings.NewReader(body))
					r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
					r.SetBasicAuth("app", "app-secret")
					w := httptest.NewRecorder()
					f.srv.ServeHTTP(w, r)
					if w.Code != http.StatusOK {
						b.Errorf("HTTP %d %s", w.Code, w.Body)
						return
					}
					if run.grantType == "refresh_token" {
						var resp struct {
							RefreshToken string `json:"refresh_token"`
						}
						if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil {
							b.Error(err)
							return
						}
						token = resp.RefreshToken
					}
				}
			})
			cputime.Report(b, cpuBefore)
		})
	}
}
