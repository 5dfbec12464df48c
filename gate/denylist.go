package gate

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/tokengate/tokengate/store"
	"github.com/tokengate/tokengate/tokens"
)

// DenyList is the in-memory set of revoked access tokens (by jti) and dead grants (by gid). The
// process that revokes adds to it directly, so its own gate refuses from the very next request;
// Sync follows the store's revocation log so other instances and restarts learn within one polling
// interval.
//
// It stays bounded however many tokens one client or one grant revokes: RevocationFor turns a
// revocation past maxTokensPerGroup of one grant into the grant's, and of a client's tokens
// without a grant into a cut-off of them all. A dead grant issues no more tokens, so its listed
// jtis stay until they expire; a cut-off drops the jtis it covers, since the client keeps getting
// new tokens.
type DenyList struct {
	src store.Revocations
	now func() time.Time

	// mu guards the sets; readers (every request) only take the read lock.
	mu       sync.RWMutex
	jtis     map[string]revokedToken
	families map[string]time.Time
	// clients holds the clients removed from the configuration, and cutoffs the clients whose
	// tokens without a grant are all refused: from when, and until when it matters.
	clients map[string]cutoff
	cutoffs map[string]cutoff
	// groups indexes jtis by what would replace them: their grant ("g:" + gid), or their client
	// for tokens without one ("c:" + client_id).
	groups map[string]map[string]struct{}

	// syncMu serializes Sync, so that the cursor only moves forward.
	syncMu    sync.Mutex
	cursor    uint64
	nextPrune time.Time
}

// maxTokensPerGroup is how many revoked tokens of one grant, or of one client's tokens without a
// grant, are listed one by one; revoking another revokes them all.
const maxTokensPerGroup = 8

// pruneEvery spaces the scans for expired entries, so that a Sync after each revocation costs what
// the revocation added, not a scan of the whole list.
const pruneEvery = 10 * time.Second

// revokedToken is a RevokedToken entry.
type revokedToken struct {
	until time.Time
	group string
}

// cutoff is a RevokedClient or RevokedClientTokens entry: the client's tokens issued before at are
// refused.
type cutoff struct {
	at, until time.Time
}

func (c cutoff) merge(r store.Revocation, until time.Time) cutoff {
	return cutoff{at: later(c.at, r.At), until: later(c.until, until)}
}

// forever is the Until of an entry that gave none: it is kept for the life of the process rather
// than forgotten at the next Sync.
var forever = time.Unix(1<<62, 0)

// NewDenyList returns an empty DenyList that Sync fills from src; now is the clock.
func NewDenyList(src store.Revocations, now func() time.Time) *DenyList {
	return &DenyList{src: src, now: now, jtis: map[string]revokedToken{}, families: map[string]time.Time{},
		clients: map[string]cutoff{}, cutoffs: map[string]cutoff{}, groups: map[string]map[string]struct{}{}}
}

// groupOf names the group a token's revocation counts in: its grant, or its client's tokens
// without one.
func groupOf(gid, clientID string) string {
	if gid != "" {
		return "g:" + gid
	}
	return "c:" + clientID
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
	switch r.Kind {
	case store.RevokedClient:
		d.clients[r.ID] = d.clients[r.ID].merge(r, until)
	case store.RevokedClientTokens:
		// The jtis the cut-off covers stay listed until they expire: a token exchanged from one of
		// them (RFC 8693) names it in derived_from, not its client, so only the jti refuses it. The
		// list stays small all the same: with the client's group full, every later revocation of
		// an older token is this cut-off moved on, and only tokens of the cut-off's own second are
		// listed one by one.
		d.cutoffs[r.ID] = d.cutoffs[r.ID].merge(r, until)
	case store.RevokedFamily:
		if old, ok := d.families[r.ID]; !ok || until.After(old) {
			d.families[r.ID] = until
		}
	case store.RevokedToken:
		old, ok := d.jtis[r.ID]
		if ok && !until.After(old.until) {
			return
		}
		group := groupOf(r.Grant, r.Client)
		d.jtis[r.ID] = revokedToken{until: until, group: group}
		if !ok {
			if d.groups[group] == nil {
				d.groups[group] = map[string]struct{}{}
			}
			d.groups[group][r.ID] = struct{}{}
		}
	}
}

// forget removes jti, listed as t, from the list and from its group. The caller holds mu.
func (d *DenyList) forget(jti string, t revokedToken) {
	delete(d.jtis, jti)
	delete(d.groups[t.group], jti)
	if len(d.groups[t.group]) == 0 {
		delete(d.groups, t.group)
	}
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

// GrantlessRevoked reports whether an access token of clientID without a grant (gid ""), issued at
// issuedAt, predates a cut-off of the client's tokens without a grant. It takes no lock for a token
// with a grant.
func (d *DenyList) GrantlessRevoked(clientID, gid string, issuedAt time.Time) bool {
	if gid != "" {
		return false
	}
	d.mu.RLock()
	cut, ok := d.cutoffs[clientID]
	d.mu.RUnlock()
	return ok && issuedAt.Before(cut.at)
}

// RevocationFor returns what revoking the access token c records, nil when the list refuses it
// already (so revoking one token again and again adds nothing). That is c's jti until c expires,
// unless maxTokensPerGroup tokens of c's group are listed already; then it is c's whole grant (RFC
// 7009 §2.1 lets revoking an access token revoke its grant), or, for a token without a grant, every
// such token of its client issued before this second. ttl is how long the client's tokens issued
// now live, which the wider entry must outlast.
func (d *DenyList) RevocationFor(c *tokens.Claims, ttl time.Duration) *store.Revocation {
	now := d.now()
	d.mu.RLock()
	defer d.mu.RUnlock()
	_, listed := d.jtis[c.JTI]
	_, dead := d.families[c.GrantID]
	cut, cutOff := d.cutoffs[c.ClientID]
	removed, gone := d.clients[c.ClientID]
	if listed || dead || (cutOff && c.GrantID == "" && c.IssuedAt.Before(cut.at)) || (gone && c.IssuedAt.Before(removed.at)) {
		return nil
	}
	// iat counts whole seconds (RFC 7519 §2 NumericDate), so a cut-off starts at a whole second:
	// it then spares the tokens issued after it, and lists the ones of its own second one by one.
	at := now.Truncate(time.Second)
	switch {
	case len(d.groups[groupOf(c.GrantID, c.ClientID)]) < maxTokensPerGroup:
	case c.GrantID != "":
		return &store.Revocation{Kind: store.RevokedFamily, ID: c.GrantID, Until: later(c.ExpiresAt, now.Add(ttl))}
	case c.IssuedAt.Before(at):
		return &store.Revocation{Kind: store.RevokedClientTokens, ID: c.ClientID, At: at, Until: later(c.ExpiresAt, at.Add(ttl))}
	}
	return &store.Revocation{Kind: store.RevokedToken, ID: c.JTI, Until: c.ExpiresAt, Grant: c.GrantID, Client: c.ClientID}
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// Sync adds the entries appended to the store's log since the last Sync and, at most every
// pruneEvery, forgets expired ones. A failed read leaves the cursor where it was, so nothing is
// skipped.
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
	if now := d.now(); !now.Before(d.nextPrune) {
		d.nextPrune = now.Add(pruneEvery)
		d.prune()
	}
	return nil
}

// prune forgets entries whose tokens have all expired, leeway included (the verifier accepts a
// token that long past its exp). It finds them under the read lock, so the requests of a large
// list are not held up while it looks, and deletes under the write lock.
func (d *DenyList) prune() {
	gone := d.now().Add(-tokens.ClockLeeway)
	tokenGone := func(t revokedToken) bool { return t.until.Before(gone) }
	familyGone := func(until time.Time) bool { return until.Before(gone) }
	cutoffGone := func(c cutoff) bool { return c.until.Before(gone) }
	d.mu.RLock()
	jtis := expiredIDs(d.jtis, tokenGone)
	families := expiredIDs(d.families, familyGone)
	clients := expiredIDs(d.clients, cutoffGone)
	cutoffs := expiredIDs(d.cutoffs, cutoffGone)
	d.mu.RUnlock()
	if len(jtis) == 0 && len(families) == 0 && len(clients) == 0 && len(cutoffs) == 0 {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, id := range jtis {
		if t, ok := d.jtis[id]; ok && tokenGone(t) {
			d.forget(id, t)
		}
	}
	deleteExpired(d.families, families, familyGone)
	deleteExpired(d.clients, clients, cutoffGone)
	deleteExpired(d.cutoffs, cutoffs, cutoffGone)
}

// deleteExpired deletes the entries of m named by ids that are still expired: an Add since they
// were found may have extended one.
func deleteExpired[V any](m map[string]V, ids []string, expired func(V) bool) {
	for _, id := range ids {
		if v, ok := m[id]; ok && expired(v) {
			delete(m, id)
		}
	}
}

// expiredIDs returns the keys of m whose values expired says are gone.
func expiredIDs[V any](m map[string]V, expired func(V) bool) []string {
	var ids []string
	for id, v := range m {
		if expired(v) {
			ids = append(ids, id)
		}
	}
	return ids
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
