package caddymodule

import (
	"context"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"slices"
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

// loadKeys sets the key set to sign with. The primary key, which signs access tokens, is the key
// of the first signing_key_file line, never rotated (the other lines' keys are published and only
// verify, for a hand-over), or the generated keys of signing_key's algorithm. Beside a
// primary of another algorithm, generated RS256 keys sign the ID tokens of clients that ask for
// RS256, which OIDC Discovery §3 requires a provider to offer. Generated keys are kept in the store,
// generated now if it has none, and rotated.
func (a *App) loadKeys(ctx context.Context) error {
	cfg := keyrotation.Config{
		Store:       a.shared.store,
		Interval:    time.Duration(a.SigningKeyRotation),
		MaxTokenTTL: a.maxTokenTTL(),
		Now:         a.now,
	}
	if len(a.SigningKeyFiles) > 0 {
		fixed, err := a.keyFiles()
		if err != nil {
			return err
		}
		cfg.Fixed = fixed
		// signing_key_rotation is the file key's, which is never rotated; the keys beside it
		// rotate at the default interval.
		cfg.Interval = keyrotation.DefaultInterval
	} else {
		cfg.Algs = []string{a.primaryAlg()}
	}
	if a.primaryAlg() != tokens.RS256 {
		cfg.Algs = append(cfg.Algs, tokens.RS256)
	}
	if len(cfg.Algs) == 0 {
		ks, err := tokens.NewKeySet(cfg.Fixed...)
		if err != nil {
			return fmt.Errorf("signing_key_file: %w", err)
		}
		a.publishKeys(ks)
		return nil
	}
	m, err := keyrotation.NewManager(cfg)
	if err != nil {
		return fmt.Errorf("signing keys %s: %w", cfg.Algs, err)
	}
	loadCtx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	ks, err := m.Load(loadCtx)
	if err != nil {
		return fmt.Errorf("signing keys %s: %w", cfg.Algs, err)
	}
	a.publishKeys(ks)
	a.rotation = m
	a.keyHealth = &outageLog{
		logger:    a.logger,
		now:       a.now,
		failing:   "signing keys may be stale; signing with the ones loaded before",
		recovered: "signing keys are read from the store again",
	}
	return nil
}

// primaryAlg is the algorithm of the key that signs access tokens: signing_key_file's or
// signing_key's, ES256 by default. Validate has checked the names.
func (a *App) primaryAlg() string {
	name := tokens.ES256
	switch {
	case len(a.SigningKeyFiles) > 0:
		name = a.SigningKeyFiles[0].Alg
	case a.SigningKey != nil && a.SigningKey.Alg != "":
		name = a.SigningKey.Alg
	}
	alg, _ := signingAlg(name)
	return alg
}

// idTokenAlgs are the algorithms ID tokens may be signed with: the primary's and RS256, sorted.
func (a *App) idTokenAlgs() []string {
	algs := []string{a.primaryAlg(), tokens.RS256}
	slices.Sort(algs)
	return slices.Compact(algs)
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

// keyFiles reads the keys of the signing_key_file lines: the first signs, the others are published
// and verify what they signed before, while an operator hands over from them.
func (a *App) keyFiles() ([]tokens.Key, error) {
	keys := make([]tokens.Key, len(a.SigningKeyFiles))
	for i, f := range a.SigningKeyFiles {
		key, err := keyFromFile(f)
		if err != nil {
			return nil, fmt.Errorf("signing_key_file %s: %w", f.File, err)
		}
		key.VerifyOnly = i > 0
		keys[i] = key
	}
	return keys, nil
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
