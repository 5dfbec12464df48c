package store

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/tokengate/tokengate/internal/redistest"
)

// testDeviceCodes is the conformance suite's part for DeviceCodes (RFC 8628): every backend's test
// function runs it.
func testDeviceCodes(t *testing.T, open opener) {
	for name, test := range map[string]func(*testing.T, opener){
		"Lookup":             testDeviceLookup,
		"UserCodeUnique":     testDeviceUserCodeUnique,
		"BadCodes":           testDeviceBadCodes,
		"Polls":              testDevicePolls,
		"SlowDown":           testDeviceSlowDown,
		"ForeignPoll":        testDeviceForeignPoll,
		"DecidedOnce":        testDeviceDecidedOnce,
		"ConcurrentPolls":    testDeviceConcurrentPolls,
		"ConcurrentDecision": testDeviceConcurrentDecisions,
		"ConcurrentCreates":  testDeviceConcurrentCreates,
	} {
		t.Run("Device"+name, func(t *testing.T) { test(t, open) })
	}
}

// device is a pending code of client "tv" for user code uc, live for 5 minutes.
func device(uc string) DeviceCode {
	return DeviceCode{ClientID: "tv", UserCode: uc, Scope: []string{"openid", "api.read"},
		ExpiresAt: t0.Add(5 * time.Minute), Interval: 5 * time.Second}
}

func mustCreateDevice(t *testing.T, s Store, hash string, d DeviceCode) {
	t.Helper()
	if ok, err := s.CreateDeviceCode(ctx, hash, d); !ok || err != nil {
		t.Fatalf("CreateDeviceCode(%q, %q) = %v, %v, want true, nil", hash, d.UserCode, ok, err)
	}
}

func mustDecide(t *testing.T, s Store, uc string, decision DeviceStatus, grant []byte) {
	t.Helper()
	if err := s.DecideDeviceCode(ctx, uc, decision, grant); err != nil {
		t.Fatalf("DecideDeviceCode(%q, %q) = %v, want nil", uc, decision, err)
	}
}

// expectPoll polls hash as client tv and checks the status (an error when want is "").
func expectPoll(t *testing.T, s Store, hash string, want DeviceStatus, wantErr error) DeviceCode {
	t.Helper()
	d, got, err := s.PollDeviceCode(ctx, hash, "tv")
	if got != want || !errors.Is(err, wantErr) || (wantErr == nil && err != nil) {
		t.Fatalf("PollDeviceCode(%q) = %q, %v, want %q, %v", hash, got, err, want, wantErr)
	}
	return d
}

func testDeviceLookup(t *testing.T, open opener) {
	c := newClock()
	s := open(t, c.Now)
	want := device("BCDFGHJK")
	mustCreateDevice(t, s, "h1", want)
	got, err := s.PendingDeviceCode(ctx, "BCDFGHJK")
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("PendingDeviceCode(%q) = %+v, %v, want %+v, nil", "BCDFGHJK", got, err, want)
	}
	for _, uc := range []string{"BCDFGHJL", "bcdfghjk", "", "h1"} {
		if _, err := s.PendingDeviceCode(ctx, uc); !errors.Is(err, ErrNotFound) {
			t.Errorf("PendingDeviceCode(%q) = %v, want ErrNotFound", uc, err)
		}
	}
	c.Advance(5*time.Minute - time.Nanosecond)
	if _, err := s.PendingDeviceCode(ctx, "BCDFGHJK"); err != nil {
		t.Errorf("PendingDeviceCode(%q) at the last instant = %v, want nil", "BCDFGHJK", err)
	}
	c.Advance(time.Nanosecond)
	if _, err := s.PendingDeviceCode(ctx, "BCDFGHJK"); !errors.Is(err, ErrNotFound) {
		t.Errorf("PendingDeviceCode(%q) once expired = %v, want ErrNotFound", "BCDFGHJK", err)
	}
	if err := s.DecideDeviceCode(ctx, "BCDFGHJK", DeviceApproved, []byte("g")); !errors.Is(err, ErrNotFound) {
		t.Errorf("DecideDeviceCode(%q) once expired = %v, want ErrNotFound", "BCDFGHJK", err)
	}
}

// A user code is unique among live codes, and free again once its code has expired.
func testDeviceUserCodeUnique(t *testing.T, open opener) {
	c := newClock()
	s := open(t, c.Now)
	mustCreateDevice(t, s, "h1", device("BCDFGHJK"))
	if ok, err := s.CreateDeviceCode(ctx, "h2", device("BCDFGHJK")); ok || err != nil {
		t.Fatalf("CreateDeviceCode(%q) with a live user code = %v, %v, want false, nil", "h2", ok, err)
	}
	if ok, err := s.CreateDeviceCode(ctx, "h1", device("MNPQRSTV")); ok || err != nil {
		t.Fatalf("CreateDeviceCode(%q) with a stored hash = %v, %v, want false, nil", "h1", ok, err)
	}
	if _, err := s.PendingDeviceCode(ctx, "MNPQRSTV"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("PendingDeviceCode(%q) after a refused create = %v, want ErrNotFound", "MNPQRSTV", err)
	}
	expectPoll(t, s, "h2", "", ErrNotFound)

	c.Advance(5 * time.Minute)
	next := device("BCDFGHJK")
	next.ClientID, next.ExpiresAt = "other", c.Now().Add(5*time.Minute)
	mustCreateDevice(t, s, "h3", next)
	got, err := s.PendingDeviceCode(ctx, "BCDFGHJK")
	if err != nil || got.ClientID != "other" {
		t.Fatalf("PendingDeviceCode(%q) after reuse = %+v, %v, want the new code", "BCDFGHJK", got, err)
	}
	// The old code is still told expired, not unknown.
	expectPoll(t, s, "h1", DeviceExpired, nil)
}

func testDeviceBadCodes(t *testing.T, open opener) {
	s := open(t, newClock().Now)
	for _, tt := range []struct {
		name string
		edit func(*DeviceCode)
	}{
		{"no client", func(d *DeviceCode) { d.ClientID = "" }},
		{"no user code", func(d *DeviceCode) { d.UserCode = "" }},
		{"no interval", func(d *DeviceCode) { d.Interval = 0 }},
	} {
		d := device("BCDFGHJK")
		tt.edit(&d)
		if ok, err := s.CreateDeviceCode(ctx, "h1", d); ok || err == nil {
			t.Errorf("CreateDeviceCode with %s = %v, %v, want false and an error", tt.name, ok, err)
		}
	}
	mustCreateDevice(t, s, "h1", device("BCDFGHJK"))
	for _, decision := range []DeviceStatus{DevicePending, DeviceSlowDown, DeviceExpired, deviceConsumed, ""} {
		if err := s.DecideDeviceCode(ctx, "BCDFGHJK", decision, nil); err == nil || errors.Is(err, ErrNotFound) {
			t.Errorf("DecideDeviceCode(%q) = %v, want a fault", decision, err)
		}
	}
	expectPoll(t, s, "h1", DevicePending, nil)
}

// testDevicePolls walks each way a code can end, polling once a minute (never too soon).
func testDevicePolls(t *testing.T, open opener) {
	approval := []byte(`{"sub":"alice"}`)
	for _, tt := range []struct {
		name string
		// act runs after the first poll.
		act   func(t *testing.T, s Store, c *clock)
		want  DeviceStatus
		grant []byte
		// then is what every later poll finds.
		then    DeviceStatus
		thenErr error
	}{
		{"pending", nil, DevicePending, nil, DevicePending, nil},
		{"approved", func(t *testing.T, s Store, c *clock) { mustDecide(t, s, "BCDFGHJK", DeviceApproved, approval) },
			DeviceApproved, approval, "", ErrNotFound},
		{"denied", func(t *testing.T, s Store, c *clock) { mustDecide(t, s, "BCDFGHJK", DeviceDenied, approval) },
			DeviceDenied, nil, "", ErrNotFound},
		{"expired", func(t *testing.T, s Store, c *clock) { c.Advance(4 * time.Minute) }, DeviceExpired, nil, DeviceExpired, nil},
		{"approved, then expired", func(t *testing.T, s Store, c *clock) {
			mustDecide(t, s, "BCDFGHJK", DeviceApproved, approval)
			c.Advance(4 * time.Minute)
		}, DeviceExpired, nil, DeviceExpired, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := newClock()
			s := open(t, c.Now)
			mustCreateDevice(t, s, "h1", device("BCDFGHJK"))
			c.Advance(time.Minute)
			expectPoll(t, s, "h1", DevicePending, nil)
			if tt.act != nil {
				tt.act(t, s, c)
			}
			c.Advance(time.Minute)
			got := expectPoll(t, s, "h1", tt.want, nil)
			if string(got.Grant) != string(tt.grant) || got.ClientID != "tv" || !reflect.DeepEqual(got.Scope, device("").Scope) {
				t.Errorf("PollDeviceCode(%q) = %+v, want the code with grant %q", "h1", got, tt.grant)
			}
			c.Advance(time.Minute)
			expectPoll(t, s, "h1", tt.then, tt.thenErr)
		})
	}
	t.Run("forgotten", func(t *testing.T) {
		c := newClock()
		s := open(t, c.Now)
		mustCreateDevice(t, s, "h1", device("BCDFGHJK"))
		c.Advance(5*time.Minute + deviceKeep - time.Nanosecond)
		expectPoll(t, s, "h1", DeviceExpired, nil)
		c.Advance(time.Nanosecond)
		expectPoll(t, s, "h1", "", ErrNotFound)
	})
	t.Run("unknown", func(t *testing.T) {
		s := open(t, newClock().Now)
		expectPoll(t, s, "nope", "", ErrNotFound)
	})
}

// RFC 8628 §3.5: polling sooner than the interval is slow_down, and the interval grows by 5 s for
// this and every later poll.
func testDeviceSlowDown(t *testing.T, open opener) {
	c := newClock()
	s := open(t, c.Now)
	mustCreateDevice(t, s, "h1", device("BCDFGHJK"))
	steps := []struct {
		wait     time.Duration
		want     DeviceStatus
		interval time.Duration
	}{
		{0, DevicePending, 5 * time.Second}, // the first poll is never too soon
		{0, DeviceSlowDown, 10 * time.Second},
		{10 * time.Second, DevicePending, 10 * time.Second},
		{9 * time.Second, DevicePending, 10 * time.Second}, // within the leeway
		{8 * time.Second, DeviceSlowDown, 15 * time.Second},
		{8 * time.Second, DeviceSlowDown, 20 * time.Second}, // each poll restarts the interval
		{20 * time.Second, DevicePending, 20 * time.Second},
	}
	for i, step := range steps {
		c.Advance(step.wait)
		d, got, err := s.PollDeviceCode(ctx, "h1", "tv")
		if err != nil || got != step.want || d.Interval != step.interval {
			t.Fatalf("poll %d after %v = %q (interval %v), %v, want %q (interval %v)", i, step.wait, got, d.Interval, err, step.want, step.interval)
		}
	}
	// An approved code is answered at once, however soon.
	mustDecide(t, s, "BCDFGHJK", DeviceApproved, []byte("g"))
	expectPoll(t, s, "h1", DeviceApproved, nil)
}

// Another client's poll is as unknown as a made-up code, and changes nothing: it neither paces nor
// uses up the owner's code.
func testDeviceForeignPoll(t *testing.T, open opener) {
	c := newClock()
	s := open(t, c.Now)
	mustCreateDevice(t, s, "h1", device("BCDFGHJK"))
	expectPoll(t, s, "h1", DevicePending, nil)
	c.Advance(time.Minute)
	mustDecide(t, s, "BCDFGHJK", DeviceApproved, []byte("g"))
	for range 3 {
		if _, got, err := s.PollDeviceCode(ctx, "h1", "thief"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("PollDeviceCode(%q) by another client = %q, %v, want ErrNotFound", "h1", got, err)
		}
	}
	if d := expectPoll(t, s, "h1", DeviceApproved, nil); string(d.Grant) != "g" {
		t.Errorf("grant after foreign polls = %q, want %q", d.Grant, "g")
	}
}

// A code is decided once: the second decision, whichever, finds nothing pending.
func testDeviceDecidedOnce(t *testing.T, open opener) {
	for _, first := range []DeviceStatus{DeviceApproved, DeviceDenied} {
		for _, second := range []DeviceStatus{DeviceApproved, DeviceDenied} {
			t.Run(fmt.Sprintf("%s then %s", first, second), func(t *testing.T) {
				s := open(t, newClock().Now)
				mustCreateDevice(t, s, "h1", device("BCDFGHJK"))
				mustDecide(t, s, "BCDFGHJK", first, []byte("first"))
				if err := s.DecideDeviceCode(ctx, "BCDFGHJK", second, []byte("second")); !errors.Is(err, ErrNotFound) {
					t.Fatalf("DecideDeviceCode(%q) again = %v, want ErrNotFound", second, err)
				}
				if _, err := s.PendingDeviceCode(ctx, "BCDFGHJK"); !errors.Is(err, ErrNotFound) {
					t.Errorf("PendingDeviceCode after the decision = %v, want ErrNotFound", err)
				}
				d := expectPoll(t, s, "h1", first, nil)
				if want := map[DeviceStatus]string{DeviceApproved: "first"}[first]; string(d.Grant) != want {
					t.Errorf("grant = %q, want %q", d.Grant, want)
				}
			})
		}
	}
}

// race runs f n times at once and returns the results.
func race[T any](n int, f func(i int) T) []T {
	out := make([]T, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			out[i] = f(i)
		})
	}
	close(start)
	wg.Wait()
	return out
}

type pollResult struct {
	status DeviceStatus
	grant  string
	err    error
}

// Of 16 concurrent polls of an approved code exactly one redeems it; the others find it used up.
func testDeviceConcurrentPolls(t *testing.T, open opener) {
	s := open(t, newClock().Now)
	mustCreateDevice(t, s, "h1", device("BCDFGHJK"))
	mustDecide(t, s, "BCDFGHJK", DeviceApproved, []byte("g"))
	results := race(16, func(int) pollResult {
		d, status, err := s.PollDeviceCode(ctx, "h1", "tv")
		return pollResult{status, string(d.Grant), err}
	})
	redeemed := 0
	for _, r := range results {
		switch {
		case r.err == nil && r.status == DeviceApproved && r.grant == "g":
			redeemed++
		case !errors.Is(r.err, ErrNotFound):
			t.Errorf("a concurrent poll = %q, %v, want approved or ErrNotFound", r.status, r.err)
		}
	}
	if redeemed != 1 {
		t.Errorf("%d of 16 concurrent polls redeemed the code, want 1", redeemed)
	}
}

// Of concurrent decisions exactly one is recorded, and the poll reports that one.
func testDeviceConcurrentDecisions(t *testing.T, open opener) {
	s := open(t, newClock().Now)
	mustCreateDevice(t, s, "h1", device("BCDFGHJK"))
	decisions := []DeviceStatus{DeviceApproved, DeviceDenied}
	errs := race(16, func(i int) error {
		return s.DecideDeviceCode(ctx, "BCDFGHJK", decisions[i%2], []byte(fmt.Sprint(i)))
	})
	won := -1
	for i, err := range errs {
		switch {
		case err == nil && won >= 0:
			t.Errorf("decisions %d and %d both recorded", won, i)
		case err == nil:
			won = i
		case !errors.Is(err, ErrNotFound):
			t.Errorf("decision %d = %v, want nil or ErrNotFound", i, err)
		}
	}
	if won < 0 {
		t.Fatal("no decision recorded")
	}
	d := expectPoll(t, s, "h1", decisions[won%2], nil)
	if want := map[DeviceStatus]string{DeviceApproved: fmt.Sprint(won)}[decisions[won%2]]; string(d.Grant) != want {
		t.Errorf("grant = %q, want %q (of the decision recorded)", d.Grant, want)
	}
}

// Of concurrent creations with one user code exactly one succeeds, and the user code leads to it.
func testDeviceConcurrentCreates(t *testing.T, open opener) {
	s := open(t, newClock().Now)
	created := race(16, func(i int) bool {
		d := device("BCDFGHJK")
		d.ClientID = fmt.Sprint("client-", i)
		ok, err := s.CreateDeviceCode(ctx, fmt.Sprint("h", i), d)
		if err != nil {
			t.Errorf("CreateDeviceCode %d = %v", i, err)
		}
		return ok
	})
	winner := -1
	for i, ok := range created {
		if ok && winner >= 0 {
			t.Fatalf("creations %d and %d both took user code %q", winner, i, "BCDFGHJK")
		}
		if ok {
			winner = i
		}
	}
	if winner < 0 {
		t.Fatal("no creation succeeded")
	}
	d, err := s.PendingDeviceCode(ctx, "BCDFGHJK")
	if want := fmt.Sprint("client-", winner); err != nil || d.ClientID != want {
		t.Errorf("PendingDeviceCode = %+v, %v, want the code of %s", d, err, want)
	}
}

// alternating's DeviceCodes methods take turns like its others (see redis_test.go).

func (a *alternating) CreateDeviceCode(ctx context.Context, hash string, d DeviceCode) (bool, error) {
	return a.next().CreateDeviceCode(ctx, hash, d)
}

func (a *alternating) PendingDeviceCode(ctx context.Context, userCode string) (DeviceCode, error) {
	return a.next().PendingDeviceCode(ctx, userCode)
}

func (a *alternating) DecideDeviceCode(ctx context.Context, userCode string, decision DeviceStatus, grant []byte) error {
	return a.next().DecideDeviceCode(ctx, userCode, decision, grant)
}

func (a *alternating) PollDeviceCode(ctx context.Context, hash, clientID string) (DeviceCode, DeviceStatus, error) {
	return a.next().PollDeviceCode(ctx, hash, clientID)
}

// TestDevicePurge: memory and bolt forget a device code and its index once it is past deviceKeep,
// and not before.
func TestDevicePurge(t *testing.T) {
	for name, open := range map[string]opener{"memory": openMemory, "bolt": openTestBolt, "pebble": openTestPebble} {
		t.Run(name, func(t *testing.T) {
			c := newClock()
			s := open(t, c.Now)
			mustCreateDevice(t, s, "h1", device("BCDFGHJK"))
			mustDecide(t, s, "BCDFGHJK", DeviceApproved, []byte("g"))
			c.Advance(5*time.Minute + deviceKeep - time.Nanosecond)
			purgeAll(t, s)
			if got := counts(t, s)["once"]; got != 1 {
				t.Fatalf("one-time records just before the code may go = %d, want 1 (the code; its index expired)", got)
			}
			c.Advance(time.Nanosecond)
			purgeAll(t, s)
			if got := counts(t, s)["once"]; got != 0 {
				t.Errorf("one-time records once the code may go = %d, want 0", got)
			}
		})
	}
}

// TestRedisDeviceCodesDown: while Redis does not answer, every device call fails within seconds
// with a fault, never ErrNotFound (which the token endpoint would answer invalid_grant), and a
// poll during the outage uses nothing up.
func TestRedisDeviceCodesDown(t *testing.T) {
	srv := startRedis(t, redistest.Config{Persist: true})
	s := srv.open(t, newClock().Now)
	mustCreateDevice(t, s, "h1", device("BCDFGHJK"))
	mustDecide(t, s, "BCDFGHJK", DeviceApproved, []byte("g"))
	srv.Kill()
	calls := map[string]func() error{
		"CreateDeviceCode":  func() error { _, err := s.CreateDeviceCode(ctx, "h2", device("MNPQRSTV")); return err },
		"PendingDeviceCode": func() error { _, err := s.PendingDeviceCode(ctx, "BCDFGHJK"); return err },
		"DecideDeviceCode":  func() error { return s.DecideDeviceCode(ctx, "BCDFGHJK", DeviceDenied, nil) },
		"PollDeviceCode":    func() error { _, _, err := s.PollDeviceCode(ctx, "h1", "tv"); return err },
	}
	for name, call := range calls {
		start := time.Now()
		err := call()
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("%s took %v with Redis down, want under 5s", name, took)
		}
		if err == nil || errors.Is(err, ErrNotFound) {
			t.Errorf("%s = %v with Redis down, want a fault", name, err)
		}
	}
	srv.Restart()
	waitForRedis(t, s)
	if d := expectPoll(t, s, "h1", DeviceApproved, nil); string(d.Grant) != "g" {
		t.Errorf("grant after the outage = %q, want %q", d.Grant, "g")
	}
}
