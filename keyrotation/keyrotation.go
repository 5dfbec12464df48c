// Package keyrotation schedules tokengate's generated signing keys: which key signs, which is
// published ahead of signing, and which retired keys stay published. Every instance on one store
// computes the same schedule, so they agree without talking to each other. It imports no Caddy
// package.
//
// Time is cut into generations of one rotation interval, counted from the Unix epoch. The key of
// a generation is created, in a store slot that only one instance can fill, half an interval
// before the generation starts, so clients that cache the JWKS know it before it signs anything
// (OIDC Core §10.1.1 has a verifier fetch the JWKS again on an unfamiliar kid, and many limit how
// often they do). It signs from the generation's start until the next key starts, and stays
// published until every token it signed has expired.
package keyrotation

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tokengate/tokengate/store"
	"github.com/tokengate/tokengate/tokens"
)

// DefaultInterval is the rotation interval when the configuration gives none: a new key signs
// every 30 days, published 15 days before.
const DefaultInterval = 720 * time.Hour

const (
	// MinInterval is the shortest rotation interval (any duration of at least 1s).
	MinInterval = time.Second
	// maxRefreshEvery bounds how long an instance takes to see a key another instance created.
	maxRefreshEvery = time.Minute
	// retireMargin is how long a retired key stays published after its last token's exp: tokengate
	// allows 5 s of clock skew, other verifiers of its tokens commonly up to a minute.
	retireMargin = time.Minute
	// slotPrefix starts every slot of a generated key: signing/<alg>/<generation start, Unix ms>.
	slotPrefix = "signing/"
)

// Config is what a Manager needs. Every field is required.
type Config struct {
	// Store keeps the keys; instances sharing it share the keys.
	Store store.SigningKeys
	// Alg is the JWS algorithm new keys sign with: tokens.ES256, RS256, PS256 or EdDSA.
	Alg string
	// Interval is how long each key signs; at least MinInterval.
	Interval time.Duration
	// MaxTokenTTL is the longest lifetime of a token signed with these keys (access and ID
	// tokens): a retired key is published for that long after it stopped signing.
	MaxTokenTTL time.Duration
	// Now is the clock.
	Now func() time.Time
}

// Manager creates, publishes and prunes the signing keys of one algorithm in a store. Every Load
// works from what the store holds, so any number of Managers, in one process or many, may share a
// store. It is safe for concurrent use.
type Manager struct {
	cfg Config
	// refresh is how often Run reads the store.
	refresh time.Duration
	// lead is how long before its generation starts a key is created: half an interval, plus two
	// refresh periods so that every instance, reading the store once per period, has it in its
	// JWKS at least half an interval before it signs.
	lead time.Duration

	// mu guards the last KeySet built and a description of the keys it was built from: most
	// refreshes find the keys unchanged and return it as it is, and a change parses only the new
	// keys (a short interval beside a long token lifetime keeps thousands published).
	mu       sync.Mutex
	last     *tokens.KeySet
	lastFrom string
}

// NewManager checks cfg and returns its Manager.
func NewManager(cfg Config) (*Manager, error) {
	switch {
	case cfg.Store == nil || cfg.Now == nil:
		return nil, errors.New("keys: a store and a clock are required")
	case cfg.Interval < MinInterval:
		return nil, fmt.Errorf("keys: rotation interval %v is under the minimum of %v", cfg.Interval, MinInterval)
	case cfg.MaxTokenTTL <= 0:
		return nil, fmt.Errorf("keys: max token lifetime %v is not positive", cfg.MaxTokenTTL)
	}
	if !slices.Contains([]string{tokens.ES256, tokens.RS256, tokens.PS256, tokens.EdDSA}, cfg.Alg) {
		return nil, fmt.Errorf("keys: unsupported signing algorithm %q", cfg.Alg)
	}
	refresh := min(cfg.Interval/8, maxRefreshEvery)
	return &Manager{cfg: cfg, refresh: refresh, lead: cfg.Interval/2 + 2*refresh}, nil
}

// RefreshEvery is how often Run reads the store: an eighth of the interval, at most a minute.
func (m *Manager) RefreshEvery() time.Duration { return m.refresh }

// generation is the number of the generation that t falls in.
func (m *Manager) generation(t time.Time) int64 {
	return t.UnixNano() / int64(m.cfg.Interval)
}

// start is when generation g starts.
func (m *Manager) start(g int64) time.Time {
	return time.Unix(0, g*int64(m.cfg.Interval))
}

// slot names the store slot of the key whose generation starts at start. Naming it by its start
// rather than by its number keeps two interval settings from ever claiming one slot for two
// different moments.
func (m *Manager) slot(start time.Time) string {
	return slotPrefix + m.cfg.Alg + "/" + strconv.FormatInt(start.UnixMilli(), 10)
}

// stored is a generated key as read from the store.
type stored struct {
	slot string
	store.SigningKey
}

// Load brings the store up to date and returns the key set to publish and sign with: it creates
// the key of the current generation when the store holds none of this algorithm (a first start:
// that key signs at once) and the key of the next generation once it is due, deletes the keys
// whose tokens have all expired, and builds a KeySet of the rest. Two Managers that Load at the
// same moment create each slot once between them and return the same keys.
func (m *Manager) Load(ctx context.Context) (*tokens.KeySet, error) {
	all, err := m.cfg.Store.SigningKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("keys: read the signing keys: %w", err)
	}
	byAlg := groupByAlg(all)
	own := byAlg[m.cfg.Alg]
	now := m.cfg.Now()
	if len(own) == 0 {
		first := m.start(m.generation(now))
		k, err := m.create(ctx, first, first)
		if err != nil {
			return nil, err
		}
		own = append(own, k)
	}
	if next := m.start(m.generation(now.Add(m.lead))); own[len(own)-1].SignsFrom.Before(next) {
		// In time, it signs from its generation's start. Late, because no instance ran when it
		// fell due, it signs a full lead from now instead, so it is still published before it
		// signs; the key before it signs until then.
		signsFrom := next
		if now.After(next.Add(-m.cfg.Interval / 2)) {
			signsFrom = now.Add(m.lead)
		}
		k, err := m.create(ctx, next, signsFrom)
		if err != nil {
			return nil, err
		}
		own = insert(own, k)
	}
	byAlg[m.cfg.Alg] = own
	if err := m.prune(ctx, byAlg, now); err != nil {
		return nil, err
	}
	return m.keySet(byAlg)
}

// groupByAlg groups the generated keys by algorithm, each group ordered by SignsFrom. Slots of
// another form (not generated by a Manager) are left out.
func groupByAlg(all map[string]store.SigningKey) map[string][]stored {
	out := make(map[string][]stored)
	for slot, k := range all {
		alg, start, ok := strings.Cut(strings.TrimPrefix(slot, slotPrefix), "/")
		if !strings.HasPrefix(slot, slotPrefix) || !ok || alg != k.Alg {
			continue
		}
		if _, err := strconv.ParseInt(start, 10, 64); err != nil {
			continue
		}
		out[alg] = insert(out[alg], stored{slot, k})
	}
	return out
}

// insert adds k to keys, keeping them ordered by SignsFrom, then slot.
func insert(keys []stored, k stored) []stored {
	i, _ := slices.BinarySearchFunc(keys, k, func(a, b stored) int {
		return cmp.Or(a.SignsFrom.Compare(b.SignsFrom), strings.Compare(a.slot, b.slot))
	})
	return slices.Insert(keys, i, k)
}

// create generates a key that signs from signsFrom and adds it to the slot of the generation
// starting at start, unless another instance did first; it returns what the slot holds.
func (m *Manager) create(ctx context.Context, start, signsFrom time.Time) (stored, error) {
	signer, err := tokens.GenerateKey(m.cfg.Alg)
	if err != nil {
		return stored{}, fmt.Errorf("keys: %w", err)
	}
	pem, err := tokens.MarshalPrivateKeyPEM(signer)
	if err != nil {
		return stored{}, fmt.Errorf("keys: %w", err)
	}
	k, err := tokens.NewKey(m.cfg.Alg, signer, signsFrom)
	if err != nil {
		return stored{}, fmt.Errorf("keys: %w", err)
	}
	slot := m.slot(start)
	held, err := m.cfg.Store.AddSigningKey(ctx, slot, store.SigningKey{ID: k.ID, Alg: k.Alg, PEM: pem, SignsFrom: signsFrom})
	if err != nil {
		return stored{}, fmt.Errorf("keys: add the signing key %s: %w", slot, err)
	}
	return stored{slot, held}, nil
}

// prune deletes, from the store and from byAlg, the keys no unexpired token can need. A key
// stopped signing when the next key of its algorithm started, and its tokens expired MaxTokenTTL
// later. The newest key of this Manager's algorithm is signing, or about to. The newest key of
// another algorithm (left by a configuration that signed with it) stopped signing by the end of
// its generation at the latest, since that configuration would have created a successor.
func (m *Manager) prune(ctx context.Context, byAlg map[string][]stored, now time.Time) error {
	var gone []stored
	for alg, keys := range byAlg {
		kept := keys[:0:0]
		for i, k := range keys {
			var stopped time.Time
			switch {
			case i+1 < len(keys) && !keys[i+1].SignsFrom.After(now):
				stopped = keys[i+1].SignsFrom
			case i+1 == len(keys) && alg != m.cfg.Alg:
				stopped = k.SignsFrom.Add(m.cfg.Interval)
			}
			if !stopped.IsZero() && !now.Before(stopped.Add(m.cfg.MaxTokenTTL+retireMargin)) {
				gone = append(gone, k)
				continue
			}
			kept = append(kept, k)
		}
		byAlg[alg] = kept
	}
	for _, k := range gone {
		if err := m.cfg.Store.DeleteSigningKey(ctx, k.slot); err != nil {
			return fmt.Errorf("keys: delete the retired signing key %s: %w", k.slot, err)
		}
	}
	return nil
}

// keySet builds the KeySet of byAlg's keys, this Manager's algorithm first and the others in a
// fixed order, so every instance publishes the same JWKS. Keys of another algorithm only verify:
// they are dated to the zero time, and the earliest key of this algorithm to the Unix epoch, so
// that however the instances' clocks differ, the key that signs is one of this algorithm.
func (m *Manager) keySet(byAlg map[string][]stored) (*tokens.KeySet, error) {
	others := slices.DeleteFunc(slices.Sorted(maps.Keys(byAlg)), func(alg string) bool { return alg == m.cfg.Alg })
	var ordered []stored
	var from strings.Builder
	for _, alg := range append([]string{m.cfg.Alg}, others...) {
		for i, k := range byAlg[alg] {
			switch {
			case alg != m.cfg.Alg:
				k.SignsFrom = time.Time{}
			case i == 0:
				k.SignsFrom = time.Unix(0, 0)
			}
			ordered = append(ordered, k)
			fmt.Fprintf(&from, "%s %s %d\n", k.slot, k.ID, k.SignsFrom.UnixNano())
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.last != nil && from.String() == m.lastFrom {
		return m.last, nil
	}
	keys := make([]tokens.Key, 0, len(ordered))
	for _, k := range ordered {
		key, err := m.parse(k)
		if err != nil {
			return nil, fmt.Errorf("keys: stored key %s: %w", k.slot, err)
		}
		keys = append(keys, key)
	}
	ks, err := tokens.NewKeySet(keys...)
	if err != nil {
		return nil, err
	}
	m.last, m.lastFrom = ks, from.String()
	return ks, nil
}

// parse returns the tokens.Key of k, reusing the private key of the last KeySet when it had k.
// The caller holds mu.
func (m *Manager) parse(k stored) (tokens.Key, error) {
	if m.last != nil {
		if prev, ok := m.last.Lookup(k.ID); ok && prev.Alg == k.Alg {
			prev.SignsFrom = k.SignsFrom
			return prev, nil
		}
	}
	signer, err := tokens.ParsePrivateKeyPEM(k.PEM)
	if err != nil {
		return tokens.Key{}, err
	}
	key, err := tokens.NewKey(k.Alg, signer, k.SignsFrom)
	if err != nil {
		return tokens.Key{}, err
	}
	key.ID = k.ID
	return key, nil
}

// Run calls Load every RefreshEvery until ctx is done, so that keys fall due, retire, and come in
// from other instances. It passes each new KeySet to publish, and the outcome of each Load to
// report (nil when it worked): on an error the caller keeps signing with the keys it has.
func (m *Manager) Run(ctx context.Context, publish func(*tokens.KeySet), report func(error)) {
	tick := time.NewTicker(m.refresh)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		ks, err := m.Load(ctx)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			publish(ks)
		}
		report(err)
	}
}
