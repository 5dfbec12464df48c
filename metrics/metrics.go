// Package metrics counts what tokengate does in Prometheus collectors: token requests, bearer gate
// decisions, sign-ins, refresh token reuse, revocations, throttling, store operations and the
// published signing keys. The collectors are process-wide, so counts carry over a configuration
// reload; Register adds them to each new registry (Caddy gives every configuration load its own).
// Label values come from fixed sets and the configuration, never from a request.
package metrics

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

const namespace = "tokengate"

// Label values that do not come from the configuration.
const (
	// clientUnknown is the client of a request that identified no configured client.
	clientUnknown = "unknown"
	// clientDynamic is a client that is not in the configuration (registered, or a metadata
	// document).
	clientDynamic = "dynamic"
)

var (
	tokenRequests = counter("token_requests_total",
		"Token endpoint answers by client, grant type and result (ok or the RFC 6749 §5.2 error code).",
		"client", "grant_type", "result")
	tokenDuration = histogram("token_request_duration_seconds",
		"How long the token endpoint took to answer, by grant type.", "grant_type")
	gateRequests = counter("gate_requests_total",
		"bearer_auth decisions: allowed, missing, or the RFC 6750 §3.1 error code.", "result")
	signIns = counter("sign_ins_total",
		"Password checks by identity provider and result.", "idp", "result")
	refreshReuse = counter("refresh_reuse_total",
		"Rotated refresh tokens presented again, their family killed (RFC 9700 §4.14.2).", "client")
	revocations = counter("revocations_total",
		"Revocations by kind.", "kind")
	throttled = counter("throttled_total",
		"Attempts refused for the failures before them, by what was throttled.", "what")
	storeOperations = counter("store_operations_total",
		"Store operations by backend and result (ok, or error for a fault).", "store", "result")
	storeDuration = histogram("store_operation_duration_seconds",
		"How long store operations took, by backend.", "store")
	signingKeys = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: namespace, Name: "signing_keys",
		Help: "Published signing keys: current (signing), next (published ahead), retired (kept for their tokens).",
	}, []string{"state"})
)

func counter(name, help string, labels ...string) *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: name, Help: help}, labels)
}

func histogram(name, help string, labels ...string) *prometheus.HistogramVec {
	return prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: namespace, Name: name, Help: help,
		Buckets: prometheus.DefBuckets}, labels)
}

// collectors is every collector Register adds.
var collectors = []prometheus.Collector{
	tokenRequests, tokenDuration, gateRequests, signIns, refreshReuse,
	revocations, throttled, storeOperations, storeDuration, signingKeys,
}

// Register adds tokengate's collectors to reg. Collectors reg holds already (a second app in the
// same configuration) are fine: they are these very ones.
func Register(reg prometheus.Registerer) error {
	for _, c := range collectors {
		if err := reg.Register(c); err != nil && !errors.As(err, new(prometheus.AlreadyRegisteredError)) {
			return err
		}
	}
	return nil
}

// SigningKeys sets the gauge of published keys by state.
func SigningKeys(current, next, retired int) {
	signingKeys.WithLabelValues("current").Set(float64(current))
	signingKeys.WithLabelValues("next").Set(float64(next))
	signingKeys.WithLabelValues("retired").Set(float64(retired))
}
