package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func testRegisteredClients(t *testing.T, open opener) {
	clock := newClock()
	s := open(t, clock.Now)
	client := func(name string, ttl time.Duration) RegisteredClient {
		return RegisteredClient{Metadata: []byte(`{"client_name":"` + name + `"}`), ExpiresAt: clock.Now().Add(ttl)}
	}
	for i, id := range []string{"a", "b", "c"} {
		if ok, err := s.RegisterClient(ctx, id, client(id, time.Duration(i+1)*time.Hour), 3); !ok || err != nil {
			t.Fatalf("RegisterClient(%q) = %v, %v, want stored", id, ok, err)
		}
	}
	if ok, err := s.RegisterClient(ctx, "d", client("d", time.Hour), 3); ok || err != nil {
		t.Fatalf("RegisterClient beyond max = %v, %v, want false", ok, err)
	}
	if ok, err := s.RegisterClient(ctx, "a", client("again", time.Hour), 10); ok || err != nil {
		t.Fatalf("RegisterClient of a taken id = %v, %v, want false", ok, err)
	}
	got, err := s.RegisteredClient(ctx, "b")
	if err != nil || string(got.Metadata) != `{"client_name":"b"}` || !got.ExpiresAt.Equal(t0.Add(2*time.Hour)) {
		t.Fatalf("RegisteredClient(b) = %+v, %v", got, err)
	}
	if _, err := s.RegisteredClient(ctx, "nobody"); !errors.Is(err, ErrNotFound) {
		t.Errorf("RegisteredClient(nobody) = %v, want ErrNotFound", err)
	}
	// b is kept on; a expires, which frees a place.
	if err := s.ExtendClient(ctx, "b", t0.Add(5*time.Hour)); err != nil {
		t.Fatal(err)
	}
	clock.Advance(150 * time.Minute)
	for id, want := range map[string]error{"a": ErrNotFound, "b": nil, "c": nil} {
		if _, err := s.RegisteredClient(ctx, id); !errors.Is(err, want) {
			t.Errorf("after 150 min RegisteredClient(%q) = %v, want %v", id, err, want)
		}
	}
	if err := s.ExtendClient(ctx, "a", t0.Add(9*time.Hour)); !errors.Is(err, ErrNotFound) {
		t.Errorf("ExtendClient of an expired client = %v, want ErrNotFound", err)
	}
	if ok, err := s.RegisterClient(ctx, "d", client("d", time.Hour), 3); !ok || err != nil {
		t.Errorf("RegisterClient once a client expired = %v, %v, want stored", ok, err)
	}
	// Concurrent registrations never exceed max.
	var stored atomic.Int64
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			ok, err := s.RegisterClient(ctx, fmt.Sprintf("race-%d", i), client("race", time.Hour), 8)
			if err != nil {
				t.Error(err)
			}
			if ok {
				stored.Add(1)
			}
		})
	}
	wg.Wait()
	if n := stored.Load(); n != 5 {
		t.Errorf("%d of 20 concurrent registrations stored with 3 live and max 8, want 5", n)
	}
}

func (a *alternating) RegisterClient(ctx context.Context, id string, c RegisteredClient, max int) (bool, error) {
	return a.next().RegisterClient(ctx, id, c, max)
}

func (a *alternating) RegisteredClient(ctx context.Context, id string) (RegisteredClient, error) {
	return a.next().RegisteredClient(ctx, id)
}

func (a *alternating) ExtendClient(ctx context.Context, id string, until time.Time) error {
	return a.next().ExtendClient(ctx, id, until)
}
