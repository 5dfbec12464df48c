package caddymodule

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

const redisPassword = "redis-s3cret-password"

// redisConfig is testConfig on the Redis at redisURL, with a second client, app, whose password
// grant for alice with offline_access needs the store (to keep the refresh token).
func redisConfig(redisURL string) string {
	c := strings.Replace(testConfig, `"store": {"backend": "memory"}`, `"store": {"backend": "redis", "url": `+jsonString(redisURL)+`}`, 1)
	return strings.Replace(c, `"clients": [{`, `"identity_providers": [{"name": "local", "users": [{"username": "alice", "hash": "`+testHash+`"}]}],
	"clients": [{"id": "app", "secrets": ["{env.TOKENGATE_TEST_SECRET}"], "grants": ["password", "refresh_token"], "scopes": ["api.read", "offline_access"]}, {`, 1)
}

// offlineRequest is app's password grant for alice (testHash is of demo-password) with a refresh
// token.
func offlineRequest() *http.Request {
	r := tokenRequest(url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"demo-password"}, "scope": {"api.read offline_access"}})
	r.SetBasicAuth("app", testSecret)
	return r
}

func TestRedisStore(t *testing.T) {
	r := startRedis(t, redisPassword)
	app := provision(t, redisConfig(r.url("one")))
	for what, v := range map[string]string{"pool key": app.poolKey, "store name": app.storeName} {
		if strings.Contains(v, redisPassword) {
			t.Errorf("the %s %q holds the Redis password", what, v)
		}
	}
	if !strings.HasPrefix(app.storeName, "redis redis://"+r.Addr()) {
		t.Errorf("store name = %q, want it to name the server", app.storeName)
	}
	raw := issueToken(t, app)
	if got := gateStatus(t, app, raw); got != http.StatusTeapot {
		t.Errorf("bearer_auth with a token issued on Redis = %d, want 418", got)
	}
}

// TestRedisUnreachableFailsProvision: a configuration whose store cannot be reached does not
// start, and says why without the password.
func TestRedisUnreachableFailsProvision(t *testing.T) {
	r := startRedis(t, redisPassword)
	wrongPassword := strings.Replace(r.url("one"), redisPassword, "not-the-"+redisPassword, 1)
	r2 := startRedis(t, "")
	r2.Kill()
	for name, redisURL := range map[string]string{"nothing listens": r2.url("one"), "wrong password": wrongPassword} {
		_, err := tryProvision(t, redisConfig(redisURL))
		if err == nil || !strings.Contains(err.Error(), "store redis: ") {
			t.Errorf("Provision with %s = %v, want a store redis error", name, err)
		}
		if err != nil && strings.Contains(err.Error(), redisPassword) {
			t.Errorf("Provision with %s = %v, quoting the password", name, err)
		}
	}
}

// TestRedisInstancesAgree: instances started at the same moment on one empty Redis sign with the
// same key and publish the same JWKS.
func TestRedisInstancesAgree(t *testing.T) {
	r := startRedis(t, "")
	t.Setenv("TOKENGATE_TEST_SECRET", testSecret)
	apps := make([]*App, 4)
	errs := make([]error, len(apps))
	var wg sync.WaitGroup
	for i := range apps {
		apps[i] = new(App)
		if err := json.Unmarshal([]byte(redisConfig(r.url("instance-"+string(rune('a'+i))))), apps[i]); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
		t.Cleanup(cancel)
		wg.Go(func() { errs[i] = apps[i].Provision(ctx) })
	}
	wg.Wait()
	for i, app := range apps {
		t.Cleanup(func() { app.Cleanup() })
		if errs[i] != nil {
			t.Fatalf("Provision of instance %d: %v", i, errs[i])
		}
	}
	first := apps[0].keySet.Load()
	for i, app := range apps[1:] {
		if app.shared == apps[0].shared {
			t.Fatalf("instance %d shares instance 0's store in the pool: not two instances", i+1)
		}
		ks := app.keySet.Load()
		if got, want := ks.Signing(time.Now()).ID, first.Signing(time.Now()).ID; got != want {
			t.Errorf("instance %d signs with %q, instance 0 with %q", i+1, got, want)
		}
		if got, want := string(ks.JWKS()), string(first.JWKS()); got != want {
			t.Errorf("instance %d publishes %s, instance 0 %s", i+1, got, want)
		}
	}
	// A token from one instance passes the gate of another.
	if got := gateStatus(t, apps[1], issueToken(t, apps[0])); got != http.StatusTeapot {
		t.Errorf("instance 1's bearer_auth with instance 0's token = %d, want 418", got)
	}
}

// TestRedisOutage checks a store outage: while Redis does not answer, a grant that
// needs it gets a 503 temporarily_unavailable within seconds, bearer_auth keeps accepting tokens by
// their signature, and the log says revocations may be stale; when Redis answers again, all works
// and the log says so.
func TestRedisOutage(t *testing.T) {
	r := startRedis(t, redisPassword)
	core, logs := observer.New(zapcore.InfoLevel)
	app := new(App)
	if err := json.Unmarshal([]byte(redisConfig(r.url("one"))), app); err != nil {
		t.Fatal(err)
	}
	app.logger = zap.New(core)
	if _, err := provisionApp(t, app); err != nil {
		t.Fatal(err)
	}
	if err := app.Start(); err != nil {
		t.Fatal(err)
	}
	defer app.Stop()
	raw := issueToken(t, app)
	if rec, _ := serve(app, offlineRequest()); rec.Code != http.StatusOK {
		t.Fatalf("POST /connect/token needing Redis = %d %s, want 200", rec.Code, rec.Body)
	}

	r.Pause()
	resumed := false
	defer func() {
		if !resumed {
			r.Resume()
		}
	}()
	start := time.Now()
	rec, _ := serve(app, offlineRequest())
	if took := time.Since(start); rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), `"temporarily_unavailable"`) || took > 5*time.Second {
		t.Errorf("POST /connect/token needing Redis while it is down = %d %s after %v, want 503 temporarily_unavailable within 5s", rec.Code, rec.Body, took)
	}
	if got := gateStatus(t, app, raw); got != http.StatusTeapot {
		t.Errorf("bearer_auth with a valid token while Redis is down = %d, want 418", got)
	}
	waitForLog(t, logs, zapcore.WarnLevel, "revocations may be stale")

	r.Resume()
	resumed = true
	waitForLog(t, logs, zapcore.InfoLevel, "revocations are current again")
	rec, _ = serve(app, offlineRequest())
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"refresh_token"`) {
		t.Errorf("POST /connect/token needing Redis once it is back = %d %s, want 200 with a refresh token", rec.Code, rec.Body)
	}
	for _, e := range logs.All() {
		if line, _ := json.Marshal(e.ContextMap()); strings.Contains(e.Message+string(line), redisPassword) {
			t.Errorf("log line %q %v holds the Redis password", e.Message, e.ContextMap())
		}
	}
}

// waitForLog waits up to 15s for a line at level whose message is msg.
func waitForLog(t *testing.T, logs *observer.ObservedLogs, level zapcore.Level, msg string) {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if logs.Filter(func(e observer.LoggedEntry) bool { return e.Level == level && e.Message == msg }).Len() > 0 {
			return
		}
	}
	t.Fatalf("no %s log %q within 15s; the log: %v", level, msg, logs.All())
}
