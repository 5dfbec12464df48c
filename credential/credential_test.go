package credential

import (
	"context"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

func hash(t *testing.T, secret string) []byte {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(secret), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestCheck(t *testing.T) {
	c := NewChecker(100, 2)
	h := hash(t, "s3cret")
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
	if ok, _ := c.Check(ctx, hash(t, "old"), "app", "old"); !ok {
		t.Fatal("old secret refused")
	}
	if ok, _ := c.Check(ctx, hash(t, "new"), "app", "old"); ok {
		t.Fatal("old secret accepted against the new hash")
	}
}

// A cached secret needs no bcrypt slot: with every slot taken by a flood of wrong secrets, the
// good client still gets through at once.
func TestCachedCheckSkipsBusyCompares(t *testing.T) {
	c := NewChecker(100, 1)
	h := hash(t, "good")
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
	h := hash(t, "x")
	for _, account := range []string{"a", "b", "c", "d"} {
		c.Check(context.Background(), h, account, "x")
	}
	if n := len(c.verified); n > 2 {
		t.Fatalf("cache holds %d entries, want at most 2", n)
	}
}

func TestCheckMissingCostsACompare(t *testing.T) {
	c := NewChecker(10, 2)
	cost := bcrypt.MinCost + 4
	c.CheckMissing(context.Background(), cost, "warm") // the fake hash is made once
	start := time.Now()
	if err := c.CheckMissing(context.Background(), cost, "guess"); err != nil {
		t.Fatal(err)
	}
	// A real compare at this cost takes well over a millisecond; a skipped one takes microseconds.
	if d := time.Since(start); d < time.Millisecond {
		t.Fatalf("CheckMissing took %v: no bcrypt compare was made", d)
	}
	if got, _ := bcrypt.Cost(c.fakeHash(cost)); got != cost {
		t.Fatalf("fake hash cost = %d, want %d", got, cost)
	}
}

func TestIsBcryptHash(t *testing.T) {
	h := string(hash(t, "x"))
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
