package caddymodule

import (
	"errors"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// TestOutageLog: a failing backend is reported at once, then at most once per outageLogEvery
// however often it is read, and its recovery once.
func TestOutageLog(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	now := time.Unix(1_800_000_000, 0)
	o := &outageLog{logger: zap.New(core), now: func() time.Time { return now }, failing: "revocations may be stale", recovered: "revocations are current again"}
	down := errors.New("dial tcp 127.0.0.1:6379: connection refused")

	o.report(nil) // healthy from the start: nothing to say
	for range 60 {
		o.report(down)
		now = now.Add(time.Second) // a read per second, for a minute
	}
	o.report(nil)
	o.report(nil)

	var got []string
	for _, e := range logs.All() {
		got = append(got, e.Level.String()+" "+e.Message)
	}
	want := []string{"warn revocations may be stale", "warn revocations may be stale", "info revocations are current again"}
	if len(got) != len(want) {
		t.Fatalf("log = %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("log line %d = %q, want %q", i, got[i], want[i])
		}
	}
	if e := logs.All()[0]; e.ContextMap()["error"] != down.Error() {
		t.Errorf("the warning's error = %v, want %q", e.ContextMap()["error"], down)
	}
	if e := logs.All()[2]; e.ContextMap()["failed_reads"] != int64(60) {
		t.Errorf("the recovery's failed_reads = %v, want 60", e.ContextMap()["failed_reads"])
	}
}
