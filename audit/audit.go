// Package audit writes tokengate's audit trail: one structured line per security event, at info
// level, with the event's name in `event` and the fields that say who did what. A line never holds
// a secret, a password, an assertion or a token: a jti and a grant id name tokens without being
// them.
package audit

import (
	"go.uber.org/zap"

	"github.com/tokengate/tokengate/grants"
)

// unknownClient stands for a client that is not configured: what a request presented instead may
// be anything, a secret pasted by mistake included.
const unknownClient = "unknown"

// Trail writes the audit lines to its logger.
type Trail struct {
	log *zap.Logger
}

// New returns a Trail writing to log (caddymodule's is named tokengate.audit, so that Caddy's
// `log { include tokengate.audit }` routes it).
func New(log *zap.Logger) *Trail { return &Trail{log: log} }

// Observe writes the line of ev; it is a grants.Observer. Throttling is counted, not audited: the
// failures that led to it are.
func (t *Trail) Observe(ev grants.Event) {
	switch ev.Kind {
	case grants.EventTokenIssued:
		t.log.Info("token issued", event("token_issued"), client(ev), zap.String("grant_type", ev.GrantType),
			zap.String("sub", ev.Subject), zap.String("scope", ev.Scope), zap.String("jti", ev.JTI), gid(ev))
	case grants.EventTokenRefused:
		t.log.Info("token refused", event("token_refused"), client(ev), zap.String("grant_type", ev.GrantType),
			zap.String("error", ev.Result))
	case grants.EventClientAuthFailed:
		t.log.Info("client authentication failed", event("client_auth_failed"), client(ev),
			zap.String("auth_method", ev.AuthMethod), zap.String("remote_ip", ev.RemoteIP))
	case grants.EventSignIn:
		who := zap.String("sub", ev.Subject)
		if ev.Subject == "" {
			who = zap.String("username", ev.Username)
		}
		t.log.Info("sign-in", event("sign_in"), who, zap.String("idp", ev.IdP), zap.String("result", ev.Result),
			zap.String("remote_ip", ev.RemoteIP))
	case grants.EventRefreshReused:
		t.log.Info("refresh token reused: its family is revoked", event("refresh_reuse"), client(ev), gid(ev))
	case grants.EventRevoked:
		// A revoked access token is named by its jti, a family or a code's grant by its id; a
		// removed client by itself.
		named := gid(ev)
		if ev.JTI != "" {
			named = zap.String("jti", ev.JTI)
		}
		t.log.Info("revoked", event("revoked"), zap.String("kind", ev.What), named, client(ev))
	}
}

// KeyRotated writes that the key with kid and alg has begun signing.
func (t *Trail) KeyRotated(kid, alg string) {
	t.log.Info("signing key rotated", event("key_rotated"), zap.String("kid", kid), zap.String("alg", alg))
}

// GateRefused writes a bearer gate refusal of a request that carried a token: the RFC 6750 §3.1
// error code, the request's method and path, and the token's subject when it was valid ("" when
// not).
func (t *Trail) GateRefused(code, method, path, sub string) {
	fields := []zap.Field{event("gate_refused"), zap.String("error", code), zap.String("method", method), zap.String("path", path)}
	if sub != "" {
		fields = append(fields, zap.String("sub", sub))
	}
	t.log.Info("bearer token refused", fields...)
}

func event(name string) zap.Field { return zap.String("event", name) }

// client is the configured client of ev.
func client(ev grants.Event) zap.Field {
	if ev.Client == nil {
		return zap.String("client", unknownClient)
	}
	return zap.String("client", ev.Client.ID)
}

// gid is the grant id of ev, when it has one: a client_credentials token has no grant to revoke.
func gid(ev grants.Event) zap.Field {
	if ev.GrantID == "" {
		return zap.Skip()
	}
	return zap.String("gid", ev.GrantID)
}
