// Package testkeys makes signing keys for tests: new keys, key sets of one key, and key files for
// signing_key_file. For tests only.
package testkeys

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tokengate/tokengate/tokens"
)

// New is a new key of alg that signs from signsFrom.
func New(tb testing.TB, alg string, signsFrom time.Time) tokens.Key {
	tb.Helper()
	signer, err := tokens.GenerateKey(alg)
	if err != nil {
		tb.Fatal(err)
	}
	key, err := tokens.NewKey(alg, signer, signsFrom)
	if err != nil {
		tb.Fatal(err)
	}
	return key
}

// Set is a key set of keys, the first signing.
func Set(tb testing.TB, keys ...tokens.Key) *tokens.KeySet {
	tb.Helper()
	ks, err := tokens.NewKeySet(keys...)
	if err != nil {
		tb.Fatal(err)
	}
	return ks
}

// WriteFile writes a new private key for alg, PEM-encoded as signing_key_file reads it, to name in
// dir and returns its path. It fails tb on any error.
func WriteFile(tb testing.TB, dir, alg, name string) string {
	tb.Helper()
	signer, err := tokens.GenerateKey(alg)
	if err != nil {
		tb.Fatal(err)
	}
	pem, err := tokens.MarshalPrivateKeyPEM(signer)
	if err != nil {
		tb.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem, 0o600); err != nil {
		tb.Fatal(err)
	}
	return path
}
