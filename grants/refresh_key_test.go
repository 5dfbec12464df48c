package grants

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// A family's refresh tokens are keyed side by side, in the order they were issued, apart from
// other families' tokens: a rotation stores its new token next to the old one.
func TestRefreshKeysKeepAFamilyTogetherInIssueOrder(t *testing.T) {
	start := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	var keys []string
	for _, after := range []time.Duration{0, time.Millisecond, time.Second, 24 * time.Hour} {
		keys = append(keys, refreshKey(newRefreshTokenValue("family-a", start.Add(after))))
	}
	if !slices.IsSorted(keys) {
		t.Errorf("keys of one family in issue order %q are not sorted", keys)
	}
	family := keys[0][:2*familyDigestLen]
	for _, k := range keys {
		if !strings.HasPrefix(k, family) {
			t.Errorf("key %q does not start with its family's %q", k, family)
		}
	}
	if other := refreshKey(newRefreshTokenValue("family-b", start)); strings.HasPrefix(other, family) {
		t.Errorf("another family's key %q starts with %q", other, family)
	}
}

// Two tokens of one family issued at the same moment differ (their random part) and so do their
// keys; the key never contains the token.
func TestRefreshTokensStayRandom(t *testing.T) {
	now := time.Now()
	a, b := newRefreshTokenValue("family", now), newRefreshTokenValue("family", now)
	if a == b || refreshKey(a) == refreshKey(b) {
		t.Fatalf("two tokens issued together: %q and %q, keys %q and %q", a, b, refreshKey(a), refreshKey(b))
	}
	if strings.Contains(refreshKey(a), a) {
		t.Fatalf("key %q contains the token", refreshKey(a))
	}
}

// A refresh token issued before tokens carried their place (32 random bytes) is still found: its
// key is its hash, as it was stored.
func TestRefreshKeyOfATokenWithoutPrefix(t *testing.T) {
	old := randomToken()
	if got, want := refreshKey(old), hashToken(old); got != want {
		t.Fatalf("refreshKey(%q) = %q, want its hash %q", old, got, want)
	}
}

// A refresh token says when it was issued, to the millisecond; one without the prefix says nothing.
func TestRefreshTokenIssuedAt(t *testing.T) {
	issued := time.Date(2026, 12, 3, 12, 0, 0, 123456789, time.UTC)
	if _, got := parseRefreshToken(newRefreshTokenValue("family", issued)); !got.Equal(issued.Truncate(time.Millisecond)) {
		t.Errorf("issued at %v, read back %v", issued, got)
	}
	if _, got := parseRefreshToken(randomToken()); !got.IsZero() {
		t.Errorf("a token without the prefix says it was issued at %v", got)
	}
}
