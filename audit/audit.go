// Package audit writes tokengate's audit trail: one structured line per security event, at info
// level, with the event's name in `event` and the fields that say who did what. A line never holds
// a secret, a password, an assertion or a token: a jti and a grant id name tokens without being
// them. Bearer gate refusals, which a client can send as fast as it likes, are the exception: the
// first of each kind (address, error, subject) in a minute is written in full, the rest are
// counted and summarised when the minute ends, for at most 256 kinds a minute.
package audit

import (
	"cmp"
	"slices"
	"strings"

	"go.uber.org/zap"

	"github.com/tokengate/tokengate/grants"
)

// unknownClient stands for a client that is not configured: what a request presented instead may
// be anything, a secret pasted by mistake included.
const unknownClient = "unknown"

// Trail writes the audit lines to its logger.
type Trail struct {
	log      *zap.Logger
	refusals *refusalCounts
}

// New returns a Trail writing to log (caddymodule's is named tokengate.audit, so that Caddy's
// `log { include tokengate.audit }` routes it).
func New(log *zap.Logger) *Trail {
	t := &Trail{log: log}
	t.refusals = newRefusalCounts(refusalInterval, maxRefusalKinds, afterFunc, t.FlushRefusals)
	return t
}

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

// StoreBackedUp writes that a copy of the store, signing keys included, was written to path.
func (t *Trail) StoreBackedUp(store, path string) {
	t.log.Info("store backed up", event("store_backed_up"), zap.String("store", store), zap.String("to", path))
}

// GateRefusal is a bearer gate's refusal of a request that carried a token.
type GateRefusal struct {
	// Code is the RFC 6750 §3.1 error code.
	Code string
	// Method and Path are the request's.
	Method, Path string
	// RemoteIP is the address the request came from.
	RemoteIP string
	// Subject is the token's sub when it was valid (revoked, for another audience, without the
	// scope); "" when it was not.
	Subject string
}

// GateRefused writes r as a gate_refused line if it is the first refusal of its kind (address,
// code and subject) in this interval; otherwise it only counts it, for FlushRefusals.
func (t *Trail) GateRefused(r GateRefusal) {
	if !t.refusals.note(refusalKind{remoteIP: r.RemoteIP, code: r.Code, sub: r.Subject}) {
		return
	}
	t.log.Info("bearer token refused", event("gate_refused"), zap.String("error", r.Code), zap.String("method", r.Method),
		zap.String("path", r.Path), zap.String("remote_ip", r.RemoteIP), sub(r.Subject))
}

// FlushRefusals ends the interval of gate refusals now: for each kind refused again since its
// gate_refused line, a gate_refused_repeated line with the count, and a gate_refused_untracked
// line with the count of refusals whose kinds the interval had no room for. The Trail calls it
// when an interval ends; call it also before dropping the Trail, so no count is lost.
func (t *Trail) FlushRefusals() {
	repeats, untracked := t.refusals.take()
	kinds := make([]refusalKind, 0, len(repeats))
	for k := range repeats {
		kinds = append(kinds, k)
	}
	// Sorted, so that an address's lines stand together.
	slices.SortFunc(kinds, func(a, b refusalKind) int {
		return cmp.Or(strings.Compare(a.remoteIP, b.remoteIP), strings.Compare(a.code, b.code), strings.Compare(a.sub, b.sub))
	})
	for _, k := range kinds {
		t.log.Info("bearer token refused again", event("gate_refused_repeated"), zap.String("error", k.code),
			zap.String("remote_ip", k.remoteIP), sub(k.sub), zap.Int("count", repeats[k]))
	}
	if untracked > 0 {
		t.log.Info("bearer tokens refused beyond the kinds counted", event("gate_refused_untracked"),
			zap.Int("count", untracked))
	}
}

func event(name string) zap.Field { return zap.String("event", name) }

// client is the configured client of ev.
func client(ev grants.Event) zap.Field {
	if ev.Client == nil {
		return zap.String("client", unknownClient)
	}
	return zap.String("client", ev.Client.ID)
}

// sub is the subject of a token, when it has one.
func sub(subject string) zap.Field {
	if subject == "" {
		return zap.Skip()
	}
	return zap.String("sub", subject)
}

// gid is the grant id of ev, when it has one: a client_credentials token has no grant to revoke.
func gid(ev grants.Event) zap.Field {
	if ev.GrantID == "" {
		return zap.Skip()
	}
	return zap.String("gid", ev.GrantID)
}
