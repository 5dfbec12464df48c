package federation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"
)

// refetchInterval is the least time between two fetches of an upstream's key set, or of its
// discovery after a failure: an attacker sending ID tokens with made-up key ids must not turn
// into load on the upstream.
const refetchInterval = 10 * time.Second

// keySet is an upstream's jwks_uri, fetched when first needed, kept, and fetched again when an ID
// token names a key id it lacks, at most once per refetchInterval. go-oidc's RemoteKeySet
// refetches on every unknown kid, hence this one.
type keySet struct {
	uri    string
	algs   []jose.SignatureAlgorithm
	client *http.Client
	now    func() time.Time

	mu      sync.Mutex
	keys    []jose.JSONWebKey
	fetched bool      // a fetch has succeeded
	tried   time.Time // the last fetch, for refetchInterval
}

// errNoKey is an ID token signed by no key of the set.
var errNoKey = errors.New("no key of the upstream's key set verifies the signature")

// ready fetches the set if it never was, so that an upstream whose keys cannot be had is told
// apart (temporarily_unavailable) from a token they do not verify (server_error).
func (k *keySet) ready(ctx context.Context) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.fetched {
		return nil
	}
	return k.fetchLocked(ctx)
}

// VerifySignature implements oidc.KeySet.
func (k *keySet) VerifySignature(ctx context.Context, raw string) ([]byte, error) {
	jws, err := jose.ParseSigned(raw, k.algs)
	if err != nil {
		return nil, err
	}
	if len(jws.Signatures) != 1 {
		return nil, errors.New("the ID token must carry one signature")
	}
	kid := jws.Signatures[0].Header.KeyID
	for _, key := range k.candidates(ctx, kid) {
		if payload, err := jws.Verify(key); err == nil {
			return payload, nil
		}
	}
	return nil, errNoKey
}

// candidates are the keys that may have signed a token naming kid (every key when it names
// none), fetching the set again when none does and refetchInterval has passed.
func (k *keySet) candidates(ctx context.Context, kid string) []jose.JSONWebKey {
	k.mu.Lock()
	defer k.mu.Unlock()
	match := k.matching(kid)
	if len(match) == 0 && k.now().Sub(k.tried) >= refetchInterval {
		if k.fetchLocked(ctx) == nil {
			match = k.matching(kid)
		}
	}
	return match
}

func (k *keySet) matching(kid string) []jose.JSONWebKey {
	var match []jose.JSONWebKey
	for _, key := range k.keys {
		if kid == "" || key.KeyID == kid {
			match = append(match, key)
		}
	}
	return match
}

// fetchLocked GETs the set with k.mu held; a failure keeps the keys already held.
func (k *keySet) fetchLocked(ctx context.Context) error {
	k.tried = k.now()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.uri, nil)
	if err != nil {
		return err
	}
	resp, err := k.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("jwks_uri: %w %d", errUpstreamStatus, resp.StatusCode)
	}
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		return fmt.Errorf("jwks_uri: %w", err)
	}
	var public []jose.JSONWebKey
	for _, key := range set.Keys {
		// A key meant for encryption only signs nothing (RFC 7517 §4.2).
		if key.IsPublic() && key.Use != "enc" {
			public = append(public, key)
		}
	}
	k.keys, k.fetched = public, true
	return nil
}

// Interface guards
var _ oidc.KeySet = (*keySet)(nil)
