package throttle

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestBlocksAfterMaxFailuresWithinWindow(t *testing.T) {
	l := New(3, time.Minute, 100)
	t0 := time.Unix(1000, 0)
	for i := 0; i < 3; i++ {
		if _, blocked := l.Blocked("alice", t0); blocked {
			t.Fatalf("blocked after %d failures, want 3 allowed", i)
		}
		l.Fail("alice", t0.Add(time.Duration(i)*time.Second))
	}
	wait, blocked := l.Blocked("alice", t0.Add(10*time.Second))
	if !blocked || wait != 50*time.Second {
		t.Fatalf("Blocked = %v, %v, want 50s, true", wait, blocked)
	}
	if _, blocked := l.Blocked("bob", t0); blocked {
		t.Fatal("another key is blocked too")
	}
	// The window slides: once the first failure is a minute old, one more attempt is allowed.
	if _, blocked := l.Blocked("alice", t0.Add(time.Minute)); blocked {
		t.Fatal("still blocked after the window passed")
	}
}

// Attempts in flight hold their failure until they end: a fourth attempt while three are being
// checked is refused, for a window when no failure is recorded yet, and each outcome is kept.
func TestReservationsCountUntilTheyEnd(t *testing.T) {
	l := New(3, time.Minute, 100)
	t0 := time.Unix(1000, 0)
	reserve := func(at time.Time) *Reservation {
		t.Helper()
		r, wait, ok := l.Reserve("alice", at)
		if !ok {
			t.Fatalf("Reserve at %v = %v, false, want a reservation", at.Sub(t0), wait)
		}
		return r
	}
	first, second, third := reserve(t0), reserve(t0), reserve(t0)
	if _, wait, ok := l.Reserve("alice", t0); ok || wait != time.Minute {
		t.Fatalf("Reserve with three in flight = %v, %v, want 1m0s, false", wait, ok)
	}
	if bob, _, ok := l.Reserve("bob", t0); !ok {
		t.Fatal("another key is refused too")
	} else {
		bob.Release()
	}

	first.Release() // not counted: the slot is free again
	fourth := reserve(t0)
	second.Fail(t0.Add(20 * time.Second))
	third.Fail(t0.Add(10 * time.Second)) // ended later, but began first: kept in order
	second.Release()                     // after Fail: no effect
	if wait, blocked := l.Blocked("alice", t0.Add(30*time.Second)); !blocked || wait != 40*time.Second {
		t.Fatalf("Blocked with two failures and one in flight = %v, %v, want 40s (until the earlier failure ends), true", wait, blocked)
	}
	fourth.Succeed()
	if _, blocked := l.Blocked("alice", t0.Add(30*time.Second)); blocked {
		t.Fatal("blocked after a success")
	}
	if len(l.pending) != 0 {
		t.Fatalf("pending = %v after every reservation ended, want none", l.pending)
	}
}

// Of attempts sent at once, no more are let through than the failures allowed: each admitted
// attempt is still being checked while the others try.
func TestParallelReservations(t *testing.T) {
	l := New(9, time.Minute, 100)
	now := time.Unix(1000, 0)
	var admitted atomic.Int32
	var tried, done sync.WaitGroup
	allTried := make(chan struct{})
	tried.Add(60)
	for range 60 {
		done.Go(func() {
			r, _, ok := l.Reserve("alice", now)
			tried.Done()
			if ok {
				admitted.Add(1)
				<-allTried
				r.Fail(now)
			}
		})
	}
	tried.Wait()
	close(allTried)
	done.Wait()
	if n := admitted.Load(); n != 9 {
		t.Fatalf("%d of 60 parallel attempts admitted, want 9", n)
	}
	if _, _, ok := l.Reserve("alice", now); ok {
		t.Fatal("a reservation after nine failures, want none")
	}
}

// Allow limits every request, not only failures: the 101st within the window is refused, for as
// long as the oldest counted request stays in it, and refusals do not count.
func TestAllowLimitsRequests(t *testing.T) {
	l := New(100, time.Minute, 100)
	t0 := time.Unix(1000, 0)
	var allowed atomic.Int32
	var wg sync.WaitGroup
	for i := range 150 {
		wg.Go(func() {
			if _, ok := l.Allow("tv\x00192.0.2.1", t0.Add(time.Duration(i%10)*time.Millisecond)); ok {
				allowed.Add(1)
			}
		})
	}
	wg.Wait()
	if n := allowed.Load(); n != 100 {
		t.Fatalf("Allow admitted %d of 150 parallel requests, want 100", n)
	}
	if wait, ok := l.Allow("tv\x00192.0.2.1", t0.Add(30*time.Second)); ok || wait <= 29*time.Second || wait > 30*time.Second {
		t.Errorf("Allow after 100 = %v, %v, want about 30s, false", wait, ok)
	}
	if _, ok := l.Allow("tv\x00192.0.2.2", t0); !ok {
		t.Error("another key is refused too")
	}
	if _, ok := l.Allow("tv\x00192.0.2.1", t0.Add(time.Minute+10*time.Millisecond)); !ok {
		t.Error("refused after the window passed: the refusals were counted")
	}
}

// An attacker inventing usernames must not grow memory without bound.
func TestKeysAreBounded(t *testing.T) {
	l := New(5, time.Minute, 10)
	now := time.Unix(1000, 0)
	for i := 0; i < 1000; i++ {
		l.Fail(fmt.Sprint("user", i), now)
	}
	if n := len(l.failures); n > 10 {
		t.Fatalf("%d keys kept, want at most 10", n)
	}
}

// One key may have at most max attempts under way; others are unaffected, and a key that left is
// admitted again and forgotten once idle.
func TestInFlight(t *testing.T) {
	f := NewInFlight(2)
	for i := 0; i < 2; i++ {
		if !f.Enter("198.51.100.1") {
			t.Fatalf("attempt %d refused, want 2 admitted", i+1)
		}
	}
	if f.Enter("198.51.100.1") {
		t.Fatal("a third attempt under way was admitted")
	}
	if !f.Enter("198.51.100.2") {
		t.Fatal("another key was refused")
	}
	f.Leave("198.51.100.1")
	if !f.Enter("198.51.100.1") {
		t.Fatal("refused after one attempt left")
	}
	f.Leave("198.51.100.1")
	f.Leave("198.51.100.1")
	f.Leave("198.51.100.2")
	if n := len(f.running); n != 0 {
		t.Fatalf("%d idle keys kept, want none", n)
	}
}
