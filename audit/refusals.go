package audit

import (
	"sync"
	"time"
)

// A bearer gate refusal costs the client one request, so a client stuck on a bad token, or an
// attacker flooding a route, can send thousands a second. Written one line each, they would fill
// the disk and make every refusal pay for a write. So the trail writes the first refusal of each
// kind in an interval and counts the rest, then summarises the counts when the interval ends.
const (
	// refusalInterval is how long the refusals after a written one are only counted.
	refusalInterval = time.Minute
	// maxRefusalKinds bounds the kinds counted in one interval: an attacker rotating addresses
	// (an IPv6 prefix holds billions) must grow neither memory nor the log without bound. A
	// refusal of a kind the full table cannot take is counted in total, not written. The bound
	// holds apart for refusals of tokens that verified (they name a subject) and for the rest, so
	// that garbage from rotating addresses, which anyone can send, cannot crowd out the refusals
	// of real tokens (revoked, for another audience, without the scope), which only a holder of
	// one of our tokens can cause, and then under that token's subject.
	maxRefusalKinds = 256
)

// refusalKind is what makes a refusal new to the operator: who sent it, why it was refused, and
// whose token it was.
type refusalKind struct {
	remoteIP, code, sub string
}

// refusalCounts decides which gate refusals are written in full and counts the others, for one
// interval at a time. It is safe for concurrent use.
type refusalCounts struct {
	interval time.Duration
	max      int
	// after calls f once d has passed and returns what cancels that; time.AfterFunc's Stop outside
	// tests.
	after func(d time.Duration, f func()) (cancel func() bool)
	// due is called when an interval ends, to write its summary.
	due func()

	mu sync.Mutex
	// repeats holds the kinds written in this interval, each with how many refusals of that kind
	// came after.
	repeats map[refusalKind]int
	// kinds counts the kinds in repeats without a subject ([0]) and with one ([1]), each bounded by max.
	kinds [2]int
	// untracked counts the refusals of kinds the full table could not take.
	untracked int
	// cancel stops the pending end of the interval; nil when none has begun.
	cancel func() bool
}

// newRefusalCounts counts in intervals of interval, at most max kinds each, and calls due at the
// end of each interval that counted a refusal.
func newRefusalCounts(interval time.Duration, max int, after func(time.Duration, func()) func() bool, due func()) *refusalCounts {
	return &refusalCounts{interval: interval, max: max, after: after, due: due, repeats: map[refusalKind]int{}}
}

// afterFunc is time.AfterFunc, returning the timer's Stop.
func afterFunc(d time.Duration, f func()) func() bool { return time.AfterFunc(d, f).Stop }

// note counts a refusal of kind k and reports whether it is the first of its kind in this interval,
// to be written in full. The first refusal of an interval begins it.
func (c *refusalCounts) note(k refusalKind) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cancel == nil {
		c.cancel = c.after(c.interval, c.due)
	}
	if n, ok := c.repeats[k]; ok {
		c.repeats[k] = n + 1
		return false
	}
	class := 0
	if k.sub != "" {
		class = 1
	}
	if c.kinds[class] >= c.max {
		c.untracked++
		return false
	}
	c.kinds[class]++
	c.repeats[k] = 0
	return true
}

// take ends the interval: it returns the kinds that were refused again with their counts, and the
// count of refusals of kinds the table could not take. The next refusal begins a new interval.
func (c *refusalCounts) take() (repeats map[refusalKind]int, untracked int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cancel != nil {
		c.cancel()
		c.cancel = nil
	}
	for k, n := range c.repeats {
		if n > 0 {
			if repeats == nil {
				repeats = map[refusalKind]int{}
			}
			repeats[k] = n
		}
	}
	// A fresh table: clearing would keep the old one's buckets, sized by the busiest interval.
	c.repeats = map[refusalKind]int{}
	c.kinds = [2]int{}
	untracked, c.untracked = c.untracked, 0
	return repeats, untracked
}
