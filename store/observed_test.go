package store

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestObserved: an observed store keeps every rule of the store it wraps.
func TestObserved(t *testing.T) {
	open := func(t *testing.T, now func() time.Time) Store {
		return Observed(NewMemory(now), func(time.Duration, bool) {})
	}
	testStore(t, open)
	testDeviceCodes(t, open)
}

// unreachable is a store whose Take fails, as a backend that cannot be reached does.
type unreachable struct{ Store }

func (unreachable) Take(context.Context, string) ([]byte, error) {
	return nil, errors.New("connection refused")
}

// TestObservedReportsFaults: an answer about the data is no fault, a technical failure is.
func TestObservedReportsFaults(t *testing.T) {
	var faults []bool
	observe := func(took time.Duration, fault bool) {
		if took < 0 {
			t.Errorf("an operation took %v", took)
		}
		faults = append(faults, fault)
	}
	s := Observed(unreachable{NewMemory(newClock().Now)}, observe)
	mustCreate(t, s, "a", grant("f1", time.Hour))
	mustRotate(t, s, "a", "b", grant("f1", time.Hour))
	s.RefreshToken(ctx, "a") // reused
	s.RefreshToken(ctx, "z") // not found
	s.Take(ctx, "code")      // the backend fails
	want := []bool{false, false, false, false, true}
	if len(faults) != len(want) {
		t.Fatalf("%d operations reported, want %d", len(faults), len(want))
	}
	for i := range want {
		if faults[i] != want[i] {
			t.Errorf("operation %d: fault %t, want %t", i, faults[i], want[i])
		}
	}
}
