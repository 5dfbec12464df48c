package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Store counts the operations of one store backend, its series resolved once.
type Store struct {
	ok, fault prometheus.Counter
	took      prometheus.Observer
}

// ForStore returns the counters of the backend named backend (memory, pebble, bolt, redis).
func ForStore(backend string) *Store {
	return &Store{
		ok:    storeOperations.WithLabelValues(backend, "ok"),
		fault: storeOperations.WithLabelValues(backend, "error"),
		took:  storeDuration.WithLabelValues(backend),
	}
}

// Observe counts one operation that took took; fault is a technical fault, not an answer about
// the data such as "not found".
func (s *Store) Observe(took time.Duration, fault bool) {
	s.took.Observe(took.Seconds())
	if fault {
		s.fault.Inc()
		return
	}
	s.ok.Inc()
}
