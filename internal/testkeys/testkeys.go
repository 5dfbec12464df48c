// Package testkeys writes signing key files for tests of signing_key_file. For tests only.
package testkeys

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/tokengate/tokengate/tokens"
)

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
