package audit

import (
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/tokengate/tokengate/grants"
)

// trail returns a Trail and the lines it writes.
func trail() (*Trail, *observer.ObservedLogs) {
	core, logs := observer.New(zapcore.DebugLevel)
	return New(zap.New(core)), logs
}

func TestLines(t *testing.T) {
	app := &grants.Client{ID: "app"}
	cases := []struct {
		name  string
		write func(*Trail)
		want  map[string]any
	}{
		{"token issued", func(tr *Trail) {
			tr.Observe(grants.Event{Kind: grants.EventTokenIssued, Client: app, GrantType: "password", Result: grants.ResultOK,
				Subject: "alice", Scope: "api.read", JTI: "j1", GrantID: "g1"})
		}, map[string]any{"event": "token_issued", "client": "app", "grant_type": "password", "sub": "alice", "scope": "api.read", "jti": "j1", "gid": "g1"}},
		{"token refused by an unknown client", func(tr *Trail) {
			tr.Observe(grants.Event{Kind: grants.EventTokenRefused, GrantType: "client_credentials", Result: grants.CodeInvalidClient})
		}, map[string]any{"event": "token_refused", "client": "unknown", "grant_type": "client_credentials", "error": "invalid_client"}},
		{"client auth failed", func(tr *Trail) {
			tr.Observe(grants.Event{Kind: grants.EventClientAuthFailed, Client: app, AuthMethod: grants.AuthSecretBasic, RemoteIP: "192.0.2.1"})
		}, map[string]any{"event": "client_auth_failed", "client": "app", "auth_method": "client_secret_basic", "remote_ip": "192.0.2.1"}},
		{"wrong password", func(tr *Trail) {
			tr.Observe(grants.Event{Kind: grants.EventSignIn, Username: "bob", IdP: "main", Result: grants.SignInWrongPassword, RemoteIP: "192.0.2.1"})
		}, map[string]any{"event": "sign_in", "username": "bob", "idp": "main", "result": "wrong_password", "remote_ip": "192.0.2.1"}},
		{"sign-in", func(tr *Trail) {
			tr.Observe(grants.Event{Kind: grants.EventSignIn, Subject: "u-1", Username: "bob", IdP: "main", Result: grants.SignInOK, RemoteIP: "192.0.2.1"})
		}, map[string]any{"event": "sign_in", "sub": "u-1", "idp": "main", "result": "ok", "remote_ip": "192.0.2.1"}},
		{"refresh reuse", func(tr *Trail) {
			tr.Observe(grants.Event{Kind: grants.EventRefreshReused, Client: app, GrantID: "g1"})
		}, map[string]any{"event": "refresh_reuse", "client": "app", "gid": "g1"}},
		{"access token revoked", func(tr *Trail) {
			tr.Observe(grants.Event{Kind: grants.EventRevoked, Client: app, What: grants.RevokedAccessToken, JTI: "j1"})
		}, map[string]any{"event": "revoked", "kind": "access_token", "jti": "j1", "client": "app"}},
		{"client removed", func(tr *Trail) {
			tr.Observe(grants.Event{Kind: grants.EventRevoked, Client: &grants.Client{ID: "gone"}, What: grants.RevokedClientRemoved})
		}, map[string]any{"event": "revoked", "kind": "client_removed", "client": "gone"}},
		{"key rotated", func(tr *Trail) { tr.KeyRotated("k2", "ES256") },
			map[string]any{"event": "key_rotated", "kid": "k2", "alg": "ES256"}},
		{"store backed up", func(tr *Trail) { tr.StoreBackedUp("pebble /var/lib/tg", "/backups/1") },
			map[string]any{"event": "store_backed_up", "store": "pebble /var/lib/tg", "to": "/backups/1"}},
		{"gate refused", func(tr *Trail) {
			tr.GateRefused(GateRefusal{Code: "insufficient_scope", Method: "GET", Path: "/api", RemoteIP: "192.0.2.1", Subject: "alice"})
		}, map[string]any{"event": "gate_refused", "error": "insufficient_scope", "method": "GET", "path": "/api", "remote_ip": "192.0.2.1", "sub": "alice"}},
		{"gate refused, token not valid", func(tr *Trail) {
			tr.GateRefused(GateRefusal{Code: "invalid_token", Method: "POST", Path: "/api", RemoteIP: "192.0.2.1"})
		}, map[string]any{"event": "gate_refused", "error": "invalid_token", "method": "POST", "path": "/api", "remote_ip": "192.0.2.1"}},
	}
	for _, c := range cases {
		tr, logs := trail()
		c.write(tr)
		lines := logs.All()
		if len(lines) != 1 {
			t.Errorf("%s: %d lines, want 1", c.name, len(lines))
			continue
		}
		if lines[0].Level != zapcore.InfoLevel {
			t.Errorf("%s: level %v, want info", c.name, lines[0].Level)
		}
		got := lines[0].ContextMap()
		if len(got) != len(c.want) {
			t.Errorf("%s: fields %v, want %v", c.name, got, c.want)
		}
		for k, v := range c.want {
			if got[k] != v {
				t.Errorf("%s: %s = %v, want %v", c.name, k, got[k], v)
			}
		}
	}
}

// TestThrottlingIsNotAudited: throttling is counted; the failures that led to it are audited.
func TestThrottlingIsNotAudited(t *testing.T) {
	tr, logs := trail()
	tr.Observe(grants.Event{Kind: grants.EventThrottled, What: grants.ThrottledPassword})
	if logs.Len() != 0 {
		t.Errorf("throttling wrote %v", logs.All())
	}
}
