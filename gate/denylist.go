package gate

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/tokengate/tokengate/store"
)

// DenyList is the in-memory set of revoked access tokens (by jti) and dead grants (by gid). The
// process that revokes adds to it directly, so its own gate refuses from the very next request;
// Sync follows the store's revocation log so other instances and restarts learn within one polling
// interval.
type DenyList struct {
	src store.Revocations
	now func() time.Time

	// mu guards the sets; readers (every request) only take the read lock.
	mu       sync.RWMutex
	jtis     map[string]time.Time
	families map[string]time.Time
	// clients holds the clients removed from the configuration: when, and until when it matters.
	clients map[string]removedClient

	// syncMu serializes Sync, so that the cursor only moves forward.
	syncMu sync.Mutex
	cursor uint64
}

// removedClient is a RevokedClient entry: the client's tokens issued before at are refused.
type removedClient struct {
	at, until time.Time
}

// forever is the Until of an entry that gave none: it is kept for the life of the process rather
// than forgotten at the next Sync.
var forever = time.Unix(1<<62, 0)

// NewDenyList returns an empty DenyList that Sync fills from src; now is the clock.
func NewDenyList(src store.Revocations, now func() time.Time) *DenyList {
	return &DenyList{src: src, now: now, jtis: map[string]time.Time{}, families: map[string]time.Time{},
		clients: map[string]removedClient{}}
}

// Add puts r on the list; Revoked sees it at once. An entry of unknown kind or without an id is
// ignored; one with a zero Until is kept for the life of the process.
func (d *DenyList) Add(r store.Revocation) {
	if r.ID == "" {
		return
	}
	until := r.Until
	if until.IsZero() {
		until = forever
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if r.Kind == store.RevokedClient {
		old := d.clients[r.ID]
		d.clients[r.ID] = removedClient{at: later(old.at, r.At), until: later(old.until, until)}
		return
	}
	set := d.set(r.Kind)
	if set == nil {
		return
	}
	if old, ok := set[r.ID]; !ok || until.After(old) {
		set[r.ID] = until
	}
}

// set returns the map for kind, or nil for an unknown kind. The caller holds mu.
func (d *DenyList) set(kind store.RevocationKind) map[string]time.Time {
	switch kind {
	case store.RevokedToken:
		return d.jtis
	case store.RevokedFamily:
		return d.families
	}
	return nil
}

// Revoked reports whether the token with this jti, the grant gid it came from, or any token it
// was derived from (by their jtis: a token exchange's subject token) is revoked. Add never stores
// an empty id, so a token without a gid matches no family.
func (d *DenyList) Revoked(jti, gid string, derivedFrom ...string) bool {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if _, ok := d.jtis[jti]; ok {
		return true
	}
	if _, ok := d.families[gid]; ok {
		return true
	}
	for _, id := range derivedFrom {
		if _, ok := d.jtis[id]; ok {
			return true
		}
	}
	return false
}

// ClientRevoked reports whether a token issued to clientID at issuedAt predates the client's removal
// from the configuration: such a token stays refused even once the client is declared again.
func (d *DenyList) ClientRevoked(clientID string, issuedAt time.Time) bool {
	d.mu.RLock()
	removed, ok := d.clients[clientID]
	d.mu.RUnlock()
	return ok && issuedAt.Before(removed.at)
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// Sync adds the entries appended to the store's log since the last Sync and forgets expired ones.
// A failed read leaves the cursor where it was, so nothing is skipped.
func (d *DenyList) Sync(ctx context.Context) error {
	d.syncMu.Lock()
	defer d.syncMu.Unlock()
	list, next, err := d.src.RevocationsSince(ctx, d.cursor)
	if err != nil {
		return fmt.Errorf("gate: read revocations since %d: %w", d.cursor, err)
	}
	for _, r := range list {
		d.Add(r)
	}
	d.cursor = next
	d.prune()
	return nil
}

// prune forgets entries whose tokens have all expired. It finds them under the read lock, so the
// requests of a large list are not held up while it looks, and deletes under the write lock.
func (d *DenyList) prune() {
	now := d.now()
	var jtis, families, clients []string
	d.mu.RLock()
	for id, removed := range d.clients {
		if removed.until.Before(now) {
			clients = append(clients, id)
		}
	}
	for id, until := range d.jtis {
		if until.Before(now) {
			jtis = append(jtis, id)
		}
	}
	for id, until := range d.families {
		if until.Before(now) {
			families = append(families, id)
		}
	}
	d.mu.RUnlock()
	if len(jtis) == 0 && len(families) == 0 && len(clients) == 0 {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, id := range clients {
		if d.clients[id].until.Before(now) {
			delete(d.clients, id)
		}
	}
	for _, id := range jtis {
		// An Add since the scan may have extended it.
		if d.jtis[id].Before(now) {
			delete(d.jtis, id)
		}
	}
	for _, id := range families {
		if d.families[id].Before(now) {
			delete(d.families, id)
		}
	}
}

// Run calls Sync now and then every interval until ctx is done, passing each error to onErr (which
// may be nil). Errors do not stop it: the next tick retries from the same cursor.
func (d *DenyList) Run(ctx context.Context, every time.Duration, onErr func(error)) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		if err := d.Sync(ctx); err != nil && onErr != nil && ctx.Err() == nil {
			onErr(err)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
