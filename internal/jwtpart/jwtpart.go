// Package jwtpart reads the header or the claims of a JWS compact token (RFC 7515 §7.1) without
// verifying it, for tests that look at what was issued. For tests only.
package jwtpart

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
)

// Header and Payload are the parts Decode reads.
const (
	Header  = 0
	Payload = 1
)

// Decode decodes part i (Header or Payload) of token into v. It fails tb unless token has three
// parts and that one is base64url-encoded JSON.
func Decode(tb testing.TB, token string, i int, v any) {
	tb.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		tb.Fatalf("token %q has %d parts, want 3 (a JWS)", token, len(parts))
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[i])
	if err != nil {
		tb.Fatalf("token part %d: %v", i, err)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		tb.Fatalf("token part %d %s: %v", i, raw, err)
	}
}

// Claims is the claims of token.
func Claims(tb testing.TB, token string) map[string]any {
	tb.Helper()
	var claims map[string]any
	Decode(tb, token, Payload, &claims)
	return claims
}
