package audit

import (
	"fmt"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// timers stands in for time.AfterFunc: it holds the scheduled functions until the test fires them.
type timers struct {
	pending []func()
	started int
}

func (ts *timers) after(_ time.Duration, f func()) func() bool {
	ts.started++
	i := len(ts.pending)
	ts.pending = append(ts.pending, f)
	return func() bool {
		was := ts.pending[i] != nil
		ts.pending[i] = nil
		return was
	}
}

// fire runs every function still scheduled, as if their time had come.
func (ts *timers) fire() {
	for i, f := range ts.pending {
		if f != nil {
			ts.pending[i] = nil
			f()
		}
	}
}

// countedTrail returns a Trail whose intervals end when the test fires them, counting at most max
// kinds, and the lines it writes.
func countedTrail(max int) (*Trail, *timers, *observer.ObservedLogs) {
	core, logs := observer.New(zapcore.DebugLevel)
	ts := new(timers)
	t := &Trail{log: zap.New(core)}
	t.refusals = newRefusalCounts(refusalInterval, max, ts.after, t.FlushRefusals)
	return t, ts, logs
}

// events returns the lines written of event.
func events(logs *observer.ObservedLogs, event string) []map[string]any {
	var out []map[string]any
	for _, l := range logs.All() {
		if m := l.ContextMap(); m["event"] == event {
			out = append(out, m)
		}
	}
	return out
}

// A flood of refusals from one address is one line, then one summary with the count, when the
// interval ends; the next refusal is written again.
func TestGateRefusalFloodIsSummarised(t *testing.T) {
	tr, ts, logs := countedTrail(maxRefusalKinds)
	bad := GateRefusal{Code: "invalid_token", Method: "GET", Path: "/api", RemoteIP: "198.51.100.7"}
	for range 1000 {
		tr.GateRefused(bad)
	}
	if got := events(logs, "gate_refused"); len(got) != 1 || got[0]["remote_ip"] != "198.51.100.7" {
		t.Fatalf("1000 refusals wrote gate_refused lines %v, want one", got)
	}
	if ts.started != 1 {
		t.Errorf("the interval was scheduled %d times, want once", ts.started)
	}
	ts.fire()
	repeated := events(logs, "gate_refused_repeated")
	if len(repeated) != 1 || repeated[0]["remote_ip"] != "198.51.100.7" || repeated[0]["error"] != "invalid_token" ||
		repeated[0]["count"] != int64(999) {
		t.Fatalf("summary %v, want one gate_refused_repeated of 999 invalid_token from 198.51.100.7", repeated)
	}
	if n := logs.Len(); n != 2 {
		t.Errorf("%d lines, want 2: %v", n, logs.All())
	}

	tr.GateRefused(bad)
	if got := events(logs, "gate_refused"); len(got) != 2 {
		t.Errorf("the first refusal of a new interval: %d gate_refused lines in all, want 2", len(got))
	}
	tr.FlushRefusals()
	if got := events(logs, "gate_refused_repeated"); len(got) != 1 {
		t.Errorf("an interval of one refusal wrote a summary: %v", got)
	}
}

// Each kind of refusal (address, error, subject) is written once an interval, so a revoked token
// shows even where a flood of garbage came from the same address.
func TestGateRefusalKinds(t *testing.T) {
	tr, ts, logs := countedTrail(maxRefusalKinds)
	kinds := []GateRefusal{
		{Code: "invalid_token", RemoteIP: "192.0.2.1"},
		{Code: "invalid_token", RemoteIP: "192.0.2.2"},
		{Code: "invalid_token", RemoteIP: "192.0.2.1", Subject: "alice"},
		{Code: "insufficient_scope", RemoteIP: "192.0.2.1", Subject: "alice"},
		{Code: "invalid_request", RemoteIP: "192.0.2.1"},
	}
	for range 3 {
		for _, k := range kinds {
			tr.GateRefused(k)
		}
	}
	if got := events(logs, "gate_refused"); len(got) != len(kinds) {
		t.Errorf("%d gate_refused lines, want one per kind (%d): %v", len(got), len(kinds), got)
	}
	ts.fire()
	repeated := events(logs, "gate_refused_repeated")
	if len(repeated) != len(kinds) {
		t.Fatalf("%d gate_refused_repeated lines, want %d: %v", len(repeated), len(kinds), repeated)
	}
	for _, r := range repeated {
		if r["count"] != int64(2) {
			t.Errorf("%v: want count 2", r)
		}
	}
	// Sorted by address, then error, then subject.
	if r := repeated[0]; r["remote_ip"] != "192.0.2.1" || r["error"] != "insufficient_scope" || r["sub"] != "alice" {
		t.Errorf("first summary line %v, want 192.0.2.1's insufficient_scope for alice", r)
	}
	if r := repeated[len(repeated)-1]; r["remote_ip"] != "192.0.2.2" {
		t.Errorf("last summary line %v, want 192.0.2.2's", r)
	}
}

// An attacker rotating addresses fills the table once: the kinds past its bound are counted, not
// written or remembered, and one line reports how many there were.
func TestGateRefusalTableIsBounded(t *testing.T) {
	const max, addresses = 16, 10000
	tr, ts, logs := countedTrail(max)
	for i := range addresses {
		tr.GateRefused(GateRefusal{Code: "invalid_token", RemoteIP: fmt.Sprintf("2001:db8::%x", i)})
	}
	if got := events(logs, "gate_refused"); len(got) != max {
		t.Errorf("%d addresses wrote %d gate_refused lines, want %d", addresses, len(got), max)
	}
	if n := len(tr.refusals.repeats); n != max {
		t.Errorf("the table holds %d kinds, want at most %d", n, max)
	}
	ts.fire()
	untracked := events(logs, "gate_refused_untracked")
	if len(untracked) != 1 || untracked[0]["count"] != int64(addresses-max) {
		t.Errorf("gate_refused_untracked lines %v, want one counting %d", untracked, addresses-max)
	}
	if n := len(tr.refusals.repeats); n != 0 {
		t.Errorf("after the interval the table holds %d kinds, want 0", n)
	}
}

// Garbage from rotating addresses fills only its own part of the table: a refused token that
// verified (here a revoked one) is still written, and vice versa.
func TestGateRefusalGarbageCannotHideRealTokens(t *testing.T) {
	const max = 16
	tr, _, logs := countedTrail(max)
	for i := range 10 * max {
		tr.GateRefused(GateRefusal{Code: "invalid_token", RemoteIP: fmt.Sprintf("2001:db8::%x", i)})
	}
	revoked := GateRefusal{Code: "invalid_token", RemoteIP: "198.51.100.9", Subject: "alice"}
	tr.GateRefused(revoked)
	got := events(logs, "gate_refused")
	if len(got) != max+1 || got[max]["sub"] != "alice" || got[max]["remote_ip"] != "198.51.100.9" {
		t.Fatalf("after a flood of garbage, a revoked token's refusal was not written: %d lines, last %v", len(got), got[len(got)-1])
	}
	for i := range 10 * max {
		tr.GateRefused(GateRefusal{Code: "invalid_token", RemoteIP: fmt.Sprintf("2001:db8::1:%x", i), Subject: fmt.Sprintf("user%d", i)})
	}
	if n := len(tr.refusals.repeats); n != 2*max {
		t.Errorf("the table holds %d kinds, want at most %d", n, 2*max)
	}
}

// Outside tests the interval ends by itself.
func TestGateRefusalIntervalEnds(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	tr := &Trail{log: zap.New(core)}
	tr.refusals = newRefusalCounts(time.Millisecond, maxRefusalKinds, afterFunc, tr.FlushRefusals)
	for range 3 {
		tr.GateRefused(GateRefusal{Code: "invalid_token", RemoteIP: "192.0.2.1"})
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(events(logs, "gate_refused_repeated")) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no gate_refused_repeated line 10 s after an interval of 1 ms")
		}
		time.Sleep(time.Millisecond)
	}
}
