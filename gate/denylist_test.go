package gate

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/tokengate/tokengate/internal/testclock"
	"github.com/tokengate/tokengate/store"
	"github.com/tokengate/tokengate/tokens"
)

var t0 = time.Unix(1_700_000_000, 0)

// fakeLog is a store.Revocations whose cursor is the number of entries read.
type fakeLog struct {
	mu      sync.Mutex
	entries []store.Revocation
	err     error
	since   []uint64
}

func (l *fakeLog) Revoke(_ context.Context, r store.Revocation) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.entries = append(l.entries, r)
	return nil
}

func (l *fakeLog) RevocationsSince(_ context.Context, cursor uint64) ([]store.Revocation, uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.since = append(l.since, cursor)
	if l.err != nil {
		return nil, 0, l.err
	}
	return append([]store.Revocation(nil), l.entries[cursor:]...), uint64(len(l.entries)), nil
}

type clock = testclock.Clock

func TestDenyListAdd(t *testing.T) {
	d := NewDenyList(&fakeLog{}, testclock.New(t0).Now)
	d.Add(store.Revocation{Kind: store.RevokedToken, ID: "j1", Until: t0.Add(time.Hour)})
	d.Add(store.Revocation{Kind: store.RevokedFamily, ID: "g1", Until: t0.Add(time.Hour)})
	d.Add(store.Revocation{Kind: store.RevokedToken, ID: ""})
	d.Add(store.Revocation{Kind: "user", ID: "j2"})
	cases := []struct {
		jti, gid    string
		derivedFrom []string
		want        bool
	}{
		{"j1", "", nil, true},
		{"j1", "g2", nil, true},
		{"j2", "g1", nil, true},
		{"j2", "", nil, false},
		{"", "", nil, false},
		{"g1", "", nil, false}, // a family id is not a jti
		{"", "j1", nil, false}, // nor the reverse
		{"J1", "G1", nil, false},
		// A token exchanged from a revoked token, directly or through another exchange.
		{"j3", "", []string{"j1"}, true},
		{"j3", "", []string{"j2", "j1"}, true},
		{"j3", "", []string{"j2"}, false},
		{"j3", "", []string{"g1"}, false}, // a family id is not a jti
	}
	for _, c := range cases {
		if got := d.Revoked(c.jti, c.gid, c.derivedFrom...); got != c.want {
			t.Errorf("Revoked(%q, %q, %q) = %v, want %v", c.jti, c.gid, c.derivedFrom, got, c.want)
		}
	}
}

func TestDenyListSync(t *testing.T) {
	clk := testclock.New(t0)
	log := &fakeLog{}
	d := NewDenyList(log, clk.Now)
	ctx := context.Background()
	log.Revoke(ctx, store.Revocation{Kind: store.RevokedToken, ID: "j1", Until: t0.Add(time.Minute)})
	log.Revoke(ctx, store.Revocation{Kind: store.RevokedFamily, ID: "g1", Until: t0.Add(time.Hour)})
	if err := d.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if !d.Revoked("j1", "") || !d.Revoked("x", "g1") {
		t.Errorf("after Sync, Revoked(j1), Revoked(g1) = %v, %v; want true, true", d.Revoked("j1", ""), d.Revoked("x", "g1"))
	}
	// Another instance revokes; a failed read keeps the cursor; the next read resumes from it.
	log.Revoke(ctx, store.Revocation{Kind: store.RevokedToken, ID: "j2", Until: t0.Add(time.Hour)})
	log.err = errors.New("disk on fire")
	if err := d.Sync(ctx); err == nil {
		t.Errorf("Sync() with a failing store = nil, want the error")
	}
	log.err = nil
	clk.Set(t0.Add(2 * time.Minute))
	if err := d.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if want := []uint64{0, 2, 2}; !slices.Equal(log.since, want) {
		t.Errorf("RevocationsSince cursors = %v, want %v", log.since, want)
	}
	if !d.Revoked("j2", "") {
		t.Errorf("Revoked(j2) = false after Sync, want true")
	}
	// j1's tokens have all expired: forgotten. g1's have not.
	if d.Revoked("j1", "") || !d.Revoked("", "g1") {
		t.Errorf("after expiry Revoked(j1), Revoked(g1) = %v, %v; want false, true", d.Revoked("j1", ""), d.Revoked("", "g1"))
	}
}

func TestDenyListKeepsTheLaterUntil(t *testing.T) {
	clk := testclock.New(t0)
	d := NewDenyList(&fakeLog{}, clk.Now)
	d.Add(store.Revocation{Kind: store.RevokedFamily, ID: "g", Until: t0.Add(time.Hour)})
	d.Add(store.Revocation{Kind: store.RevokedFamily, ID: "g", Until: t0.Add(time.Minute)})
	d.Add(store.Revocation{Kind: store.RevokedToken, ID: "forever"})
	clk.Set(t0.Add(30 * time.Minute))
	if err := d.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !d.Revoked("", "g") || !d.Revoked("forever", "") {
		t.Errorf("Revoked(g), Revoked(forever) = %v, %v; want true, true", d.Revoked("", "g"), d.Revoked("forever", ""))
	}
}

func TestDenyListRun(t *testing.T) {
	log := &fakeLog{}
	log.Revoke(context.Background(), store.Revocation{Kind: store.RevokedToken, ID: "j1", Until: t0.Add(time.Hour)})
	d := NewDenyList(log, testclock.New(t0).Now)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		d.Run(ctx, time.Millisecond, func(err error) { t.Errorf("Run reported %v", err) })
		close(done)
	}()
	deadline := time.Now().Add(5 * time.Second)
	for !d.Revoked("j1", "") && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	log.Revoke(context.Background(), store.Revocation{Kind: store.RevokedFamily, ID: "g1", Until: t0.Add(time.Hour)})
	for !d.Revoked("", "g1") && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	cancel()
	<-done
	if !d.Revoked("j1", "") || !d.Revoked("", "g1") {
		t.Errorf("Run did not pick up the log's entries")
	}
}

// A client removed from the configuration keeps its old tokens refused even when declared again:
// only tokens issued after the removal pass.
func TestDenyListClientRemoval(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	d := NewDenyList(nil, func() time.Time { return now })
	d.Add(store.Revocation{Kind: store.RevokedClient, ID: "partner", At: now, Until: now.Add(time.Hour)})
	for _, tc := range []struct {
		client string
		iat    time.Time
		want   bool
	}{
		{"partner", now.Add(-time.Second), true},
		{"partner", now.Add(time.Second), false},
		{"other", now.Add(-time.Second), false},
	} {
		if got := d.ClientRevoked(tc.client, tc.iat); got != tc.want {
			t.Errorf("ClientRevoked(%q, %v) = %v, want %v", tc.client, tc.iat, got, tc.want)
		}
	}
	now = now.Add(2 * time.Hour)
	d.prune()
	if d.ClientRevoked("partner", now.Add(-3*time.Hour)) {
		t.Error("the removal was kept past its Until")
	}
}

// revokeAll revokes each token as the revocation endpoint does, and returns what each recorded.
func revokeAll(d *DenyList, list []*tokens.Claims) []*store.Revocation {
	var recorded []*store.Revocation
	for _, c := range list {
		r := d.RevocationFor(c, time.Hour)
		if r != nil {
			d.Add(*r)
		}
		recorded = append(recorded, r)
	}
	return recorded
}

// One grant, or one client's tokens without a grant, cannot grow the list without bound: past
// maxTokensPerGroup revoked tokens the grant, or the client's grant-less tokens, are revoked whole,
// and what that covers is dropped. Every revoked token stays refused.
func TestDenyListStaysBounded(t *testing.T) {
	for _, gid := range []string{"g1", ""} {
		clk := testclock.New(t0)
		d := NewDenyList(&fakeLog{}, clk.Now)
		var list []*tokens.Claims
		for i := range 1000 {
			list = append(list, &tokens.Claims{JTI: "j" + strconv.Itoa(i), GrantID: gid, ClientID: "svc",
				IssuedAt: clk.Now(), ExpiresAt: clk.Now().Add(time.Hour)})
			clk.Advance(time.Millisecond)
		}
		other := &tokens.Claims{JTI: "other", GrantID: "g2", ClientID: "svc", IssuedAt: t0, ExpiresAt: t0.Add(time.Hour)}
		recorded := revokeAll(d, list)
		d.mu.RLock()
		size := len(d.jtis) + len(d.families) + len(d.cutoffs)
		d.mu.RUnlock()
		if size > maxTokensPerGroup+1 {
			t.Errorf("gid %q: after revoking %d tokens the list holds %d entries, want at most %d", gid, len(list), size, maxTokensPerGroup+1)
		}
		wantWider := store.RevokedFamily
		if gid == "" {
			wantWider = store.RevokedClientTokens
		}
		if r := recorded[maxTokensPerGroup]; r == nil || r.Kind != wantWider {
			t.Errorf("gid %q: revocation %d recorded %+v, want a %s entry", gid, maxTokensPerGroup, r, wantWider)
		}
		for i, c := range list {
			if !d.Revoked(c.JTI, c.GrantID) && !d.GrantlessRevoked(c.ClientID, c.GrantID, c.IssuedAt) {
				t.Fatalf("gid %q: revoked token %d is not refused", gid, i)
			}
		}
		if d.Revoked(other.JTI, other.GrantID) || d.GrantlessRevoked(other.ClientID, other.GrantID, other.IssuedAt) {
			t.Errorf("gid %q: a token of the client's other grant is refused", gid)
		}
		// Revoking a refused token again records nothing.
		if r := d.RevocationFor(list[0], time.Hour); r != nil {
			t.Errorf("gid %q: revoking a revoked token again records %+v, want nothing", gid, r)
		}
	}
}

// A cut-off of a client's tokens without a grant spares the tokens issued after it, and its tokens
// with a grant.
func TestDenyListGrantlessCutoff(t *testing.T) {
	d := NewDenyList(&fakeLog{}, testclock.New(t0).Now)
	d.Add(store.Revocation{Kind: store.RevokedClientTokens, ID: "svc", At: t0, Until: t0.Add(time.Hour)})
	for _, tc := range []struct {
		client, gid string
		iat         time.Time
		want        bool
	}{
		{"svc", "", t0.Add(-time.Second), true},
		{"svc", "", t0.Add(time.Second), false},
		{"svc", "g1", t0.Add(-time.Second), false},
		{"web", "", t0.Add(-time.Second), false},
	} {
		if got := d.GrantlessRevoked(tc.client, tc.gid, tc.iat); got != tc.want {
			t.Errorf("GrantlessRevoked(%q, %q, %v) = %v, want %v", tc.client, tc.gid, tc.iat, got, tc.want)
		}
	}
}

// A token exchanged from a revoked token without a grant stays refused when a cut-off of the
// subject's client comes to cover the subject: the exchanged token names its subject only by jti.
func TestDenyListCutoffKeepsDerivedRefused(t *testing.T) {
	clk := testclock.New(t0)
	d := NewDenyList(&fakeLog{}, clk.Now)
	var list []*tokens.Claims
	for i := range 3 * maxTokensPerGroup {
		list = append(list, &tokens.Claims{JTI: "j" + strconv.Itoa(i), ClientID: "svc",
			IssuedAt: clk.Now().Add(-time.Minute), ExpiresAt: clk.Now().Add(time.Hour - time.Minute)})
	}
	subject := list[0]
	recorded := revokeAll(d, list)
	if !slices.ContainsFunc(recorded, func(r *store.Revocation) bool { return r != nil && r.Kind == store.RevokedClientTokens }) {
		t.Fatalf("no cut-off among %d revocations of one client's tokens", len(list))
	}
	if !d.Revoked("exchanged", "", subject.JTI) {
		t.Errorf("Revoked(a token derived from %s) = false after a cut-off covered it, want true", subject.JTI)
	}
}

// Revoking one token again and again records it once.
func TestDenyListRevokesATokenOnce(t *testing.T) {
	d := NewDenyList(&fakeLog{}, testclock.New(t0).Now)
	c := &tokens.Claims{JTI: "j1", GrantID: "g1", ClientID: "web", IssuedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	if recorded := revokeAll(d, []*tokens.Claims{c, c, c}); recorded[0] == nil || recorded[1] != nil || recorded[2] != nil {
		t.Errorf("revoking one token three times recorded %v, want one entry then nothing", recorded)
	}
}
