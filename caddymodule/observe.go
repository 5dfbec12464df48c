package caddymodule

import (
	"github.com/caddyserver/caddy/v2"

	"github.com/tokengate/tokengate/audit"
	"github.com/tokengate/tokengate/grants"
	"github.com/tokengate/tokengate/metrics"
	"github.com/tokengate/tokengate/tokens"
)

// auditLoggerName names the audit trail's logger, below the app's (named by its module id,
// tokengate): `log { include tokengate.audit }` routes it.
const auditLoggerName = "audit"

// setUpObservers registers the metrics in this configuration's registry, so they are served
// wherever Caddy serves metrics, and opens the audit trail.
func (a *App) setUpObservers(ctx caddy.Context) error {
	if err := metrics.Register(ctx.GetMetricsRegistry()); err != nil {
		return err
	}
	a.audit = audit.New(a.logger.Named(auditLoggerName))
	return nil
}

// observer hears of the grants' events for clients: it counts them and writes the audit trail.
func (a *App) observer(clients []*grants.Client) grants.Observer {
	counts := metrics.NewGrants(clients)
	return func(ev grants.Event) {
		counts.Observe(ev)
		a.audit.Observe(ev)
	}
}

// publishKeys makes ks the keys to sign and verify with, counts them by state, and audits a new
// signing key.
func (a *App) publishKeys(ks *tokens.KeySet) {
	a.keySet.Store(ks)
	now := a.now()
	metrics.SigningKeys(ks.Census(now))
	signing := ks.Signing(now)
	if a.signingKID != "" && signing.ID != a.signingKID {
		a.audit.KeyRotated(signing.ID, signing.Alg)
	}
	a.signingKID = signing.ID
}
