package tests

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"
)

// refreshLoad keeps refresh tokens rotating through several instances, each worker alternating
// between them, and books every answer. A worker keeps its token across a 503: a refresh answered
// 503 has not used the token up.
type refreshLoad struct {
	instances []*Caddy
	ctx       context.Context
	// done ends the workers after their requests in flight: one cut short might have rotated its
	// token unseen, and the test would take the worker's loss for tokengate's.
	done     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup

	mu          sync.Mutex
	issued      map[string]bool // every refresh token handed out
	tokens      [][2]string     // per worker: its current and previous refresh token
	lastOK      []time.Time     // per worker: when it last rotated
	ok          int
	unavailable int            // 503 temporarily_unavailable answers
	slowest     time.Duration  // the slowest 503
	spans       [][2]time.Time // when each answered request was sent and answered
	failures    []string       // lost tokens (any other answer), doubled tokens, transport failures
}

// startRefreshLoad starts one worker per token; each redeems its refresh token at the instances
// in turn until stop.
func startRefreshLoad(t *testing.T, instances []*Caddy, start []tokenAnswer) *refreshLoad {
	t.Helper()
	l := &refreshLoad{instances: instances, ctx: testContext(t), done: make(chan struct{}), issued: map[string]bool{},
		tokens: make([][2]string, len(start)), lastOK: make([]time.Time, len(start))}
	for w, tok := range start {
		l.tokens[w][0] = tok.RefreshToken
		l.issued[tok.RefreshToken] = true
		l.wg.Go(func() { l.work(w) })
	}
	t.Cleanup(l.stop)
	return l
}

func (l *refreshLoad) work(w int) {
	for i := w; ; i++ {
		select {
		case <-l.done:
			return
		default:
		}
		l.mu.Lock()
		current := l.tokens[w][0]
		l.mu.Unlock()
		c := l.instances[i%len(l.instances)]
		ans, err := refreshToken(l.ctx, c, "web", current)
		if !l.book(w, c, current, ans, err) {
			return
		}
	}
}

// book records one answer and reports whether the worker may go on.
func (l *refreshLoad) book(w int, c *Caddy, current string, ans tokenAnswer, err error) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	answered := time.Now()
	l.spans = append(l.spans, [2]time.Time{answered.Add(-ans.Took), answered})
	switch {
	case err != nil:
		l.failures = append(l.failures, fmt.Sprintf("worker %d at %s: %v", w, c.Base, err))
		return false
	case ans.Status == http.StatusOK:
		if l.issued[ans.RefreshToken] {
			l.failures = append(l.failures, fmt.Sprintf("worker %d at %s: a refresh token issued twice: %v", w, c.Base, ans))
			return false
		}
		l.issued[ans.RefreshToken] = true
		l.tokens[w] = [2]string{ans.RefreshToken, current}
		l.lastOK[w] = time.Now()
		l.ok++
		return true
	case ans.Status == http.StatusServiceUnavailable && ans.Error == "temporarily_unavailable":
		l.unavailable++
		l.slowest = max(l.slowest, ans.Took)
		time.Sleep(20 * time.Millisecond)
		return true
	default:
		l.failures = append(l.failures, fmt.Sprintf("worker %d at %s: its refresh token was lost: %v", w, c.Base, ans))
		return false
	}
}

// stop ends the load once every request in flight has been answered.
func (l *refreshLoad) stop() {
	l.stopOnce.Do(func() { close(l.done) })
	l.wg.Wait()
}

// TestRedisOutageUnderLoad kills Redis (SIGKILL) under a load of refreshes through two instances
// and starts it again: nothing is lost once Redis is back, not even a refresh whose answer was a 503 because Redis died under it.
func TestRedisOutageUnderLoad(t *testing.T) {
	t.Parallel()
	r := startRedis(t, true)
	a, b := startOnRedis(t, r)
	instances := []*Caddy{a, b}
	var start []tokenAnswer
	for i := range 6 {
		start = append(start, signIn(t, instances[i%2], "web"))
	}
	load := startRefreshLoad(t, instances, start)
	time.Sleep(500 * time.Millisecond)
	r.Kill()
	down := time.Now()
	time.Sleep(time.Second)
	r.Restart()
	up := time.Now()
	for deadline := up.Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		load.mu.Lock()
		behind := slices.IndexFunc(load.lastOK, func(at time.Time) bool { return at.Before(up) })
		load.mu.Unlock()
		if behind < 0 || time.Now().After(deadline) {
			break
		}
	}
	load.stop()

	t.Logf("Redis down %v; %d rotations, %d answers 503 (slowest %v)", up.Sub(down).Round(time.Millisecond),
		load.ok, load.unavailable, load.slowest.Round(time.Millisecond))
	// A refresh in flight when Redis died may be answered 200 once it is back (the token endpoint
	// repeats a rotation whose outcome it does not know), so what proves the outage was met is a
	// request that overlapped it, whatever its answer.
	met := slices.ContainsFunc(load.spans, func(span [2]time.Time) bool { return span[0].Before(up) && span[1].After(down) })
	if !met {
		t.Error("no refresh of the load met the outage: the test tested nothing")
	}
	if load.slowest > outageBound {
		t.Errorf("the slowest 503 took %v, want under %v", load.slowest, outageBound)
	}
	for _, f := range load.failures {
		t.Error(f)
	}
	// Nothing lost, nothing doubled: each worker's newest token works once, the one before is dead.
	for w, pair := range load.tokens {
		if load.lastOK[w].Before(up) {
			t.Errorf("worker %d did not rotate its token after Redis came back", w)
			continue
		}
		mustRefresh(t, b, "web", pair[0], "a worker's newest refresh token after the outage")
		wantRefreshRefused(t, a, "web", pair[1], "a worker's rotated refresh token after the outage", false)
	}
}
