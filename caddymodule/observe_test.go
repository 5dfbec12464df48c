package caddymodule

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/tokengate/tokengate/internal/testkeys"
	"github.com/tokengate/tokengate/tokens"
)

// provisionObserved provisions testConfig with a logger whose lines the test reads.
func provisionObserved(t *testing.T) (*App, *observer.ObservedLogs) {
	t.Helper()
	core, logs := observer.New(zapcore.InfoLevel)
	app := new(App)
	if err := json.Unmarshal([]byte(testConfig), app); err != nil {
		t.Fatal(err)
	}
	app.logger = zap.New(core).Named("tokengate")
	if _, err := provisionApp(t, app); err != nil {
		t.Fatal(err)
	}
	return app, logs
}

// auditLines returns the audit lines logged so far of event.
func auditLines(logs *observer.ObservedLogs, event string) []observer.LoggedEntry {
	return logs.Filter(func(e observer.LoggedEntry) bool {
		return e.LoggerName == "tokengate.audit" && e.ContextMap()["event"] == event
	}).All()
}

// A new signing key is audited when the rotation publishes it; the keys loaded at start-up are not
// a rotation.
func TestKeyRotationIsAudited(t *testing.T) {
	app, logs := provisionObserved(t)
	if lines := auditLines(logs, "key_rotated"); len(lines) != 0 {
		t.Errorf("provisioning audited a rotation: %v", lines)
	}
	next := testkeys.New(t, tokens.ES256, time.Now().Add(-time.Second))
	ks := testkeys.Set(t, next)
	app.publishKeys(ks)
	app.publishKeys(ks)
	lines := auditLines(logs, "key_rotated")
	if len(lines) != 1 || lines[0].ContextMap()["kid"] != next.ID || lines[0].ContextMap()["alg"] != "ES256" {
		t.Errorf("key_rotated lines %v, want one naming %s", lines, next.ID)
	}
}

// bearer_auth audits a refused token, with the subject when the token was valid, and not a request
// without one.
func TestGateRefusalsAreAudited(t *testing.T) {
	app, logs := provisionObserved(t)
	b, readOnly := writeGate(t, app)
	next := func(http.ResponseWriter, *http.Request) error { return nil }
	serveBearerAuth(b, "", next)
	if lines := auditLines(logs, "gate_refused"); len(lines) != 0 {
		t.Errorf("a request without a token was audited: %v", lines)
	}
	serveBearerAuth(b, "Bearer "+readOnly+"x", next)
	serveBearerAuth(b, "Bearer "+readOnly, next)
	lines := auditLines(logs, "gate_refused")
	if len(lines) != 2 {
		t.Fatalf("gate_refused lines %v, want 2", lines)
	}
	forged, scope := lines[0].ContextMap(), lines[1].ContextMap()
	if forged["error"] != "invalid_token" || forged["sub"] != nil || forged["method"] != "GET" || forged["path"] != "/api" ||
		forged["remote_ip"] != "192.0.2.1" {
		t.Errorf("forged token: %v, want invalid_token on GET /api from 192.0.2.1 without sub", forged)
	}
	if scope["error"] != "insufficient_scope" || scope["sub"] != "svc" {
		t.Errorf("missing scope: %v, want insufficient_scope with sub svc", scope)
	}
	for _, l := range logs.All() {
		for _, v := range l.ContextMap() {
			if s, ok := v.(string); ok && (s == readOnly || s == testSecret) {
				t.Errorf("a line holds a token or a secret: %v", l)
			}
		}
	}
}

// A flood of one bad token from one address is one audit line; stopping the app writes the count
// of the rest, so a reload loses none.
func TestGateRefusalFloodIsCountedUntilStop(t *testing.T) {
	app, logs := provisionObserved(t)
	b, readOnly := writeGate(t, app)
	next := func(http.ResponseWriter, *http.Request) error { return nil }
	for range 50 {
		serveBearerAuth(b, "Bearer "+readOnly+"x", next)
	}
	if lines := auditLines(logs, "gate_refused"); len(lines) != 1 {
		t.Fatalf("50 refusals wrote %d gate_refused lines, want 1", len(lines))
	}
	if err := app.Stop(); err != nil {
		t.Fatal(err)
	}
	lines := auditLines(logs, "gate_refused_repeated")
	if len(lines) != 1 || lines[0].ContextMap()["count"] != int64(49) || lines[0].ContextMap()["remote_ip"] != "192.0.2.1" {
		t.Errorf("after Stop: gate_refused_repeated lines %v, want one counting 49 from 192.0.2.1", lines)
	}
}
