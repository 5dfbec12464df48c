package metrics

import "github.com/prometheus/client_golang/prometheus"

// The gate's results, resolved once: a gated request costs one increment.
var (
	gateAllowed = gateRequests.WithLabelValues("allowed")
	// gateRefused is by RFC 6750 §3.1 error code; "" is a request that carried no token at all.
	gateRefused = map[string]prometheus.Counter{
		"":                   gateRequests.WithLabelValues("missing"),
		"invalid_token":      gateRequests.WithLabelValues("invalid_token"),
		"insufficient_scope": gateRequests.WithLabelValues("insufficient_scope"),
		"invalid_request":    gateRequests.WithLabelValues("invalid_request"),
	}
)

// GateAllowed counts a request bearer_auth let on.
func GateAllowed() { gateAllowed.Inc() }

// GateRefused counts a request bearer_auth refused, by the RFC 6750 §3.1 error code of the
// refusal ("" when the request carried no token).
func GateRefused(code string) {
	if c, ok := gateRefused[code]; ok {
		c.Inc()
		return
	}
	gateRequests.WithLabelValues(code).Inc()
}
