package caddymodule

import (
	"sync"
	"time"

	"go.uber.org/zap"
)

// outageLogEvery is how often a backend that keeps failing is reported: often enough to see in a
// log that an outage goes on, seldom enough that a long one does not flood it.
const outageLogEvery = 30 * time.Second

// outageLog reports the health of a backend that is read periodically: a warning at the first
// failure and then at most once per outageLogEvery while failures go on, and one info line when a
// read works again.
type outageLog struct {
	logger *zap.Logger
	now    func() time.Time
	// failing is the warning's message, recovered the info line's.
	failing, recovered string

	mu     sync.Mutex
	down   bool
	warned time.Time
	// failures counts the failures since the outage began.
	failures int
}

// report records the outcome of one read: nil when it worked.
func (o *outageLog) report(err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if err == nil {
		if o.down {
			o.logger.Info(o.recovered, zap.Int("failed_reads", o.failures))
			o.down, o.failures = false, 0
		}
		return
	}
	o.failures++
	if now := o.now(); !o.down || now.Sub(o.warned) >= outageLogEvery {
		o.logger.Warn(o.failing, zap.Error(err), zap.Int("failed_reads", o.failures))
		o.down, o.warned = true, now
	}
}
