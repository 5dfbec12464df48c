package caddymodule

import (
	"context"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/tokengate/tokengate/endpoints"
	"github.com/tokengate/tokengate/keyrotation"
	"github.com/tokengate/tokengate/store"
	"github.com/tokengate/tokengate/tokens"
)

// sessionKeySlot holds the key that signs session cookies and CSRF tokens. It lives beside the
// signing keys (create-if-absent, then read back) so every instance and every restart agree, and a
// restart does not sign everybody out.
const sessionKeySlot = "session/hmac"

// sessionKeyPEMType marks the raw key bytes in the slot's PEM field.
const sessionKeyPEMType = "TOKENGATE SESSION KEY"

func (a *App) sessionKey(ctx context.Context) ([]byte, error) {
	fresh := make([]byte, endpoints.MinSessionKeyLen)
	if _, err := rand.Read(fresh); err != nil {
		return nil, err
	}
	stored, err := a.shared.store.AddSigningKey(ctx, sessionKeySlot, store.SigningKey{
		ID:  "session",
		Alg: "HS256",
		PEM: pem.EncodeToMemory(&pem.Block{Type: sessionKeyPEMType, Bytes: fresh}),
	})
	if err != nil {
		return nil, fmt.Errorf("session key: %w", err)
	}
	block, _ := pem.Decode(stored.PEM)
	if block == nil || block.Type != sessionKeyPEMType || len(block.Bytes) < endpoints.MinSessionKeyLen {
		return nil, errors.New("session key: the store holds something else in " + sessionKeySlot)
	}
	return block.Bytes, nil
}

// loadKeys sets the key set to sign with: the keys of the signing_key_file lines, never rotated,
// or the generated keys that the store keeps for the configured algorithm, generated now if it has
// none.
func (a *App) loadKeys(ctx context.Context) error {
	if len(a.SigningKeyFiles) > 0 {
		return a.loadKeyFiles()
	}
	alg, _ := signingAlg(a.SigningKey.Alg)
	m, err := keyrotation.NewManager(keyrotation.Config{
		Store:       a.shared.store,
		Alg:         alg,
		Interval:    time.Duration(a.SigningKeyRotation),
		MaxTokenTTL: a.maxTokenTTL(),
		Now:         a.now,
	})
	if err != nil {
		return fmt.Errorf("signing_key %s: %w", alg, err)
	}
	loadCtx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	ks, err := m.Load(loadCtx)
	if err != nil {
		return fmt.Errorf("signing_key %s: %w", alg, err)
	}
	a.keySet.Store(ks)
	a.rotation = m
	a.keyHealth = &outageLog{
		logger:    a.logger,
		now:       a.now,
		failing:   "signing keys may be stale; signing with the ones loaded before",
		recovered: "signing keys are read from the store again",
	}
	return nil
}

// maxTokenTTL is the longest lifetime of a token the keys sign: access and ID tokens share the
// app's or their client's access_token_ttl (refresh tokens are opaque, not signed).
func (a *App) maxTokenTTL() time.Duration {
	ttl := time.Duration(a.AccessTokenTTL)
	for _, c := range a.Clients {
		ttl = max(ttl, time.Duration(c.AccessTokenTTL))
	}
	return ttl
}

// loadKeyFiles sets the key set of the signing_key_file lines: the first key signs, the others
// are published and verify what they signed before, while an operator hands over from them.
func (a *App) loadKeyFiles() error {
	keys := make([]tokens.Key, len(a.SigningKeyFiles))
	for i, f := range a.SigningKeyFiles {
		key, err := keyFromFile(f)
		if err != nil {
			return fmt.Errorf("signing_key_file %s: %w", f.File, err)
		}
		key.VerifyOnly = i > 0
		keys[i] = key
	}
	ks, err := tokens.NewKeySet(keys...)
	if err != nil {
		return fmt.Errorf("signing_key_file: %w", err)
	}
	a.keySet.Store(ks)
	return nil
}

func keyFromFile(f *SigningKeyFileConfig) (tokens.Key, error) {
	data, err := os.ReadFile(f.File)
	if err != nil {
		return tokens.Key{}, err
	}
	signer, err := tokens.ParsePrivateKeyPEM(data)
	if err != nil {
		return tokens.Key{}, err
	}
	alg, _ := signingAlg(f.Alg)
	// It signs from the start: there is no earlier key for clients to move away from.
	key, err := tokens.NewKey(alg, signer, time.Time{})
	if err != nil {
		return tokens.Key{}, err
	}
	if f.KID != "" {
		key.ID = f.KID
	}
	return key, nil
}
