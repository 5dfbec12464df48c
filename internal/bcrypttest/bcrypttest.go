// Package bcrypttest hashes known secrets with bcrypt, as `caddy hash-password` does, for tests that
// configure users and client secrets. For tests only.
package bcrypttest

import (
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// Hash is a bcrypt hash of secret at the lowest cost, so that tests stay fast.
func Hash(tb testing.TB, secret string) string {
	tb.Helper()
	return HashAt(tb, secret, bcrypt.MinCost)
}

// HashAt is a bcrypt hash of secret at cost, for tests of what the cost changes.
func HashAt(tb testing.TB, secret string, cost int) string {
	tb.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(secret), cost)
	if err != nil {
		tb.Fatal(err)
	}
	return string(h)
}
