package throttle

import (
	"fmt"
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

func TestForget(t *testing.T) {
	l := New(1, time.Minute, 100)
	now := time.Unix(1000, 0)
	l.Fail("alice", now)
	l.Forget("alice")
	if _, blocked := l.Blocked("alice", now); blocked {
		t.Fatal("blocked after Forget")
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
