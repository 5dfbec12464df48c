// Package cputime measures the CPU a benchmark costs its process, for benchmarks that report it
// beside their rate. For tests only.
package cputime

import (
	"syscall"
	"testing"
	"time"
)

// Process is the CPU time, user and system, the process has used so far.
func Process(tb testing.TB) time.Duration {
	tb.Helper()
	var u syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &u); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(u.Utime.Nano() + u.Stime.Nano())
}

// Report reports, as cpu-ns/op, the CPU the process used since before over b's iterations: the
// engine's or the runtime's background work included, which is what a request costs a server
// whose cores are busy, and steadier than a rate on a shared machine.
func Report(b *testing.B, before time.Duration) {
	b.ReportMetric(float64((Process(b)-before).Nanoseconds())/float64(b.N), "cpu-ns/op")
}
