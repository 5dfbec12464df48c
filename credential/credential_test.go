package credential

import (
	"context"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

func bcryptOf(t testing.TB, secret string) []byte {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(secret), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestCheck(t *testing.T) {
	c := NewChecker(100, 2)
	h := bcryptOf(t, "s3cret")
	ctx := context.Background()
	for _, tc := range []struct {
		account, presented string
		want               bool
	}{
		{"app", "s3cret", true},
		{"app", "s3cret", true}, // from the cache
		{"app", "s3cre", false},
		{"app", "s3cret ", false},
		{"app", "", false},
	} {
		got, err := c.Check(ctx, h, tc.account, tc.presented)
		if err != nil || got != tc.want {
			t.Errorf("Check(%q, %q) = %v, %v, want %v", tc.account, tc.presented, got, err, tc.want)
		}
	}
}

// A verified secret must not be honoured against another hash: a reload that changes a client's
// secret must not keep the old one working through the cache.
func TestCacheIsBoundToHash(t *testing.T) {
	c := NewChecker(100, 2)
	ctx := context.Background()
	if ok, _ := c.Check(ctx, bcryptOf(t, "old"), "app", "old"); !ok {
		t.Fatal("old secret refused")
	}
	if ok, _ := c.Check(ctx, bcryptOf(t, "new"), "app", "old"); ok {
		t.Fatal("old secret accepted against the new hash")
	}
}

// A cached secret needs no bcrypt slot: with every slot taken by a flood of wrong secrets, the
// good client still gets through at once.
func TestCachedCheckSkipsBusyCompares(t *testing.T) {
	c := NewChecker(100, 1)
	h := bcryptOf(t, "good")
	ctx := context.Background()
	if ok, _ := c.Check(ctx, h, "app", "good"); !ok {
		t.Fatal("good secret refused")
	}
	c.compares <- struct{}{} // the only slot is now busy
	defer func() { <-c.compares }()
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if ok, err := c.Check(short, h, "app", "good"); !ok || err != nil {
		t.Fatalf("cached Check = %v, %v, want true, nil", ok, err)
	}
	if _, err := c.Check(short, h, "app", "wrong"); err != ErrBusy {
		t.Fatalf("uncached Check while busy: err = %v, want ErrBusy", err)
	}
}

func TestCacheIsBounded(t *testing.T) {
	c := NewChecker(2, 2)
	h := bcryptOf(t, "x")
	for _, account := range []string{"a", "b", "c", "d"} {
		c.Check(context.Background(), h, account, "x")
	}
	if n := len(c.verified); n > 2 {
		t.Fatalf("cache holds %d entries, want at most 2", n)
	}
}

// Verified answers from the cache alone: before a check it is false, after a good one true, and it
// never vouches for a wrong secret.
func TestVerified(t *testing.T) {
	c := NewChecker(100, 1)
	h := bcryptOf(t, "good")
	if c.Verified(h, "app", "good") {
		t.Fatal("Verified before any check")
	}
	c.Check(context.Background(), h, "app", "good")
	c.Check(context.Background(), h, "app", "wrong")
	if !c.Verified(h, "app", "good") {
		t.Fatal("a verified secret is not Verified")
	}
	if c.Verified(h, "app", "wrong") || c.Verified(h, "other", "good") {
		t.Fatal("Verified vouches for a wrong secret or another account")
	}
}

// FailureTime is what one bcrypt at the cost takes: more at a higher cost, and measured once.
func TestFailureTimeIsOneBcrypt(t *testing.T) {
	c := NewChecker(10, 2)
	cost := bcrypt.MinCost + 4
	start := time.Now()
	if _, err := bcrypt.GenerateFromPassword([]byte("x"), cost); err != nil {
		t.Fatal(err)
	}
	bcryptTime := time.Since(start)
	failure := c.FailureTime(cost)
	if failure < bcryptTime/4 || failure > 4*bcryptTime {
		t.Fatalf("FailureTime(%d) = %v, want about what one bcrypt at that cost takes (%v)", cost, failure, bcryptTime)
	}
	if cheap := c.FailureTime(bcrypt.MinCost); cheap >= failure {
		t.Fatalf("FailureTime(%d) = %v, not less than FailureTime(%d) = %v", bcrypt.MinCost, cheap, cost, failure)
	}
	if again := c.FailureTime(cost); again != failure {
		t.Fatalf("FailureTime measured again: %v, then %v", failure, again)
	}
}

// A failed attempt lasts its failure time from Begin, however little the check did, and waiting it
// out needs no compare slot: with every slot taken, it still ends on time.
func TestFailedAttemptLastsTheFailureTime(t *testing.T) {
	c := NewChecker(10, 1)
	cost := bcrypt.MinCost + 4
	want := c.FailureTime(cost)
	c.compares <- struct{}{} // the only slot is now busy
	defer func() { <-c.compares }()
	start := time.Now()
	c.Begin(cost).Failed(context.Background())
	if d := time.Since(start); d < want || d > want+time.Second {
		t.Fatalf("a failed attempt took %v, want %v", d, want)
	}
	// An attempt that already took its time (a slow compare) waits no more.
	attempt := c.Begin(bcrypt.MinCost)
	time.Sleep(c.FailureTime(bcrypt.MinCost))
	start = time.Now()
	attempt.Failed(context.Background())
	if d := time.Since(start); d > 50*time.Millisecond {
		t.Fatalf("Failed after the failure time had passed waited %v more", d)
	}
}

// The wait ends with its context: a client that went away holds nothing.
func TestFailedEndsWithContext(t *testing.T) {
	c := NewChecker(10, 1)
	cost := bcrypt.MinCost + 4
	attempt := c.Begin(cost)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	attempt.Failed(ctx)
	if d := time.Since(start); d > c.FailureTime(cost)/2 {
		t.Fatalf("Failed with an ended context waited %v", d)
	}
}

func TestIsBcryptHash(t *testing.T) {
	h := string(bcryptOf(t, "x"))
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{h, true},
		{"$2a$14$ajq8Q7fbtFRQvXpdCq7Jcuy.Rx1h/L4J60Otx.gyNLbAYctGMJ9tK", true},
		{"plaintext-secret", false},
		{"$2a$14$short", false},
		{"$1$abcdefgh$" + h[11:], false},
	} {
		if got := IsBcryptHash(tc.in); got != tc.want {
			t.Errorf("IsBcryptHash(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

// A cached check is the hot path of every client that authenticates again: one HMAC and a map
// lookup.
func BenchmarkVerified(b *testing.B) {
	c := NewChecker(100, 1)
	h := bcryptOf(b, "app-secret")
	c.Check(context.Background(), h, "app", "app-secret")
	b.ReportAllocs()
	for b.Loop() {
		if !c.Verified(h, "app", "app-secret") {
			b.Fatal("not verified")
		}
	}
}
