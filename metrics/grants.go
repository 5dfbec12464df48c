package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tokengate/tokengate/grants"
)

// tokenResults are the results of a token request: ok and every RFC 6749 §5.2 error code the
// token endpoint answers.
var tokenResults = []string{
	grants.ResultOK,
	grants.CodeInvalidRequest,
	grants.CodeInvalidClient,
	grants.CodeInvalidGrant,
	grants.CodeUnauthorizedClient,
	grants.CodeUnsupportedGrantType,
	grants.CodeInvalidScope,
	grants.CodeServerError,
	grants.CodeTemporarilyUnavail,
}

// Grants counts the events of one configuration's grants.Server. The series of its configured
// clients are resolved when it is built, so counting a token request looks up no label values.
// It is immutable, and safe for concurrent use.
type Grants struct {
	clients map[*grants.Client]*clientSeries
	unknown *clientSeries
	// durations are the token request histograms by grant name.
	durations map[string]prometheus.Observer
}

// clientSeries are one client label's token request counters, by grant and result.
type clientSeries struct {
	label  string
	tokens map[tokenKey]prometheus.Counter
}

type tokenKey struct{ grant, result string }

// NewGrants resolves the series of clients: for each, the grants it registered (and an unsupported
// one) with every result.
func NewGrants(clients []*grants.Client) *Grants {
	g := &Grants{
		clients:   make(map[*grants.Client]*clientSeries, len(clients)),
		unknown:   newClientSeries(clientUnknown, nil),
		durations: map[string]prometheus.Observer{grants.GrantUnsupported: tokenDuration.WithLabelValues(grants.GrantUnsupported)},
	}
	for _, c := range clients {
		g.clients[c] = newClientSeries(c.ID, c.Grants)
		for _, name := range c.Grants {
			if g.durations[name] == nil {
				g.durations[name] = tokenDuration.WithLabelValues(name)
			}
		}
	}
	return g
}

func newClientSeries(label string, grantNames []string) *clientSeries {
	s := &clientSeries{label: label, tokens: make(map[tokenKey]prometheus.Counter, (len(grantNames)+1)*len(tokenResults))}
	for _, name := range append([]string{grants.GrantUnsupported}, grantNames...) {
		for _, result := range tokenResults {
			s.tokens[tokenKey{name, result}] = tokenRequests.WithLabelValues(label, name, result)
		}
	}
	return s
}

// clientLabel is the client label of c: its id when it is configured, dynamic when it is not,
// unknown for none.
func (g *Grants) clientLabel(c *grants.Client) string {
	switch s, ok := g.clients[c]; {
	case ok:
		return s.label
	case c != nil:
		return clientDynamic
	}
	return clientUnknown
}

// Observe counts ev; it is a grants.Observer.
func (g *Grants) Observe(ev grants.Event) {
	switch ev.Kind {
	case grants.EventTokenIssued, grants.EventTokenRefused:
		g.tokenRequest(ev)
	case grants.EventSignIn:
		signIns.WithLabelValues(ev.IdP, ev.Result).Inc()
	case grants.EventRefreshReused:
		refreshReuse.WithLabelValues(g.clientLabel(ev.Client)).Inc()
	case grants.EventRevoked:
		revocations.WithLabelValues(ev.What).Inc()
	case grants.EventThrottled:
		throttled.WithLabelValues(ev.What).Inc()
	}
}

// tokenRequest counts one token endpoint answer and how long it took.
func (g *Grants) tokenRequest(ev grants.Event) {
	g.tokenCounter(ev).Inc()
	took, ok := g.durations[ev.GrantType]
	if !ok {
		took = tokenDuration.WithLabelValues(ev.GrantType)
	}
	took.Observe(ev.Duration.Seconds())
}

// tokenCounter is the counter of ev's labels. Those of configured clients and their grants are
// resolved already; any others (a dynamic client, an unknown one naming a grant) are looked up.
func (g *Grants) tokenCounter(ev grants.Event) prometheus.Counter {
	series, ok := g.unknown, true
	if ev.Client != nil {
		series, ok = g.clients[ev.Client]
	}
	if ok {
		if c, ok := series.tokens[tokenKey{ev.GrantType, ev.Result}]; ok {
			return c
		}
	}
	return tokenRequests.WithLabelValues(g.clientLabel(ev.Client), ev.GrantType, ev.Result)
}
