package keyrotation

import (
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"github.com/tokengate/tokengate/internal/testclock"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokengate/tokengate/internal/testkeys"
	"github.com/tokengate/tokengate/store"
	"github.com/tokengate/tokengate/tokens"
)

var ctx = context.Background()

type clock = testclock.Clock

const (
	testInterval = time.Hour
	testTTL      = 10 * time.Minute
)

// genStart is the start of a generation of testInterval, in 2026.
var genStart = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

// newManager returns a Manager for alg with testInterval and testTTL on st.
func newManager(t *testing.T, st store.SigningKeys, alg string, c *clock) *Manager {
	t.Helper()
	m, err := NewManager(Config{Store: st, Algs: []string{alg}, Interval: testInterval, MaxTokenTTL: testTTL, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func load(t *testing.T, m *Manager) *tokens.KeySet {
	t.Helper()
	ks, err := m.Load(ctx)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return ks
}

// published returns the kids of the JWKS, in its order.
func published(t *testing.T, ks *tokens.KeySet) []string {
	t.Helper()
	var doc struct {
		Keys []struct {
			Kid string `json:"kid"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(ks.JWKS(), &doc); err != nil {
		t.Fatal(err)
	}
	var kids []string
	for _, k := range doc.Keys {
		kids = append(kids, k.Kid)
	}
	return kids
}

func slots(t *testing.T, st store.SigningKeys) []string {
	t.Helper()
	all, err := st.SigningKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for slot := range all {
		out = append(out, slot)
	}
	slices.Sort(out)
	return out
}

func TestGenerationStart(t *testing.T) {
	m := newManager(t, store.NewMemory(time.Now), tokens.ES256, testclock.New(time.Time{}))
	for _, at := range []time.Time{genStart, genStart.Add(time.Nanosecond), genStart.Add(testInterval - time.Nanosecond)} {
		if got := m.start(m.generation(at)); !got.Equal(genStart) {
			t.Errorf("start(generation(%v)) = %v, want %v", at, got, genStart)
		}
	}
	if got, want := slot(tokens.ES256, genStart), "signing/ES256/"+"1772359200000"; got != want {
		t.Errorf("slot(%v) = %q, want %q", genStart, got, want)
	}
}

// TestRotation follows one key through its life: the first signs at once; the next is published
// at least half an interval before it signs, signs from its generation's start, and the one before
// stays published until every token it signed has expired, then leaves the JWKS and the store.
func TestRotation(t *testing.T) {
	c := testclock.New(genStart.Add(10 * time.Minute))
	st := store.NewMemory(c.Now)
	m := newManager(t, st, tokens.ES256, c)
	first := load(t, m).Signing(c.Now()).ID
	next := genStart.Add(testInterval)
	lead := testInterval/2 + 2*m.RefreshEvery()

	var second string
	for _, step := range []struct {
		at        time.Time
		published int
		signing   string // "first" or "second"
	}{
		{genStart.Add(10 * time.Minute), 1, "first"},
		{next.Add(-lead - time.Nanosecond), 1, "first"},
		{next.Add(-lead), 2, "first"},
		{next.Add(-time.Nanosecond), 2, "first"},
		{next, 2, "second"},
		{next.Add(testTTL + retireMargin - time.Nanosecond), 2, "second"},
		{next.Add(testTTL + retireMargin), 1, "second"},
	} {
		c.Set(step.at)
		ks := load(t, m)
		kids := published(t, ks)
		if len(kids) != step.published {
			t.Errorf("at next%+v: JWKS holds %d keys, want %d", step.at.Sub(next), len(kids), step.published)
		}
		if second == "" && len(kids) == 2 {
			second = kids[1]
			if k, _ := ks.Lookup(second); !k.SignsFrom.Equal(next) {
				t.Errorf("the second key signs from next%+v, want next", k.SignsFrom.Sub(next))
			}
		}
		want := map[string]string{"first": first, "second": second}[step.signing]
		if got := ks.Signing(step.at).ID; got != want {
			t.Errorf("at next%+v: Signing = %q, want the %s key %q", step.at.Sub(next), got, step.signing, want)
		}
		if step.published == 1 && !slices.Contains(kids, want) {
			t.Errorf("at next%+v: JWKS %q lacks the signing key", step.at.Sub(next), kids)
		}
	}
	if got := slots(t, st); len(got) != 1 || !strings.HasSuffix(got[0], "/1772362800000") {
		t.Errorf("store slots after the first key retired = %q, want only the second generation's", got)
	}
}

// TestLateKey: when no instance ran while the next key fell due, the key created late is still
// published a lead before it signs, and the old key signs until then.
func TestLateKey(t *testing.T) {
	c := testclock.New(genStart)
	st := store.NewMemory(c.Now)
	m := newManager(t, st, tokens.ES256, c)
	old := load(t, m).Signing(c.Now()).ID

	late := genStart.Add(5*testInterval + 40*time.Minute) // within the next key's lead
	c.Set(late)
	ks := load(t, m)
	kids := published(t, ks)
	if len(kids) != 2 {
		t.Fatalf("JWKS after a long pause = %q, want the old key and a new one", kids)
	}
	lead := testInterval/2 + 2*m.RefreshEvery()
	fresh, _ := ks.Lookup(kids[1])
	if !fresh.SignsFrom.Equal(late.Add(lead)) {
		t.Errorf("the late key signs from now%+v, want now+%v", fresh.SignsFrom.Sub(late), lead)
	}
	if got := ks.Signing(late).ID; got != old {
		t.Errorf("Signing before the late key's time = %q, want the old key %q", got, old)
	}
	c.Set(late.Add(lead))
	if got := load(t, m).Signing(c.Now()).ID; got != fresh.ID {
		t.Errorf("Signing at the late key's time = %q, want %q", got, fresh.ID)
	}
	c.Set(late.Add(lead + testTTL + retireMargin))
	if got := published(t, load(t, m)); !slices.Equal(got, []string{fresh.ID}) {
		t.Errorf("JWKS once the old key's tokens expired = %q, want only %q", got, fresh.ID)
	}
}

// TestManagersAgree: managers that start together on one store (instances sharing Redis) create
// each key once between them and publish the same keys.
func TestManagersAgree(t *testing.T) {
	// With no next key due, with one due in time, and with one due late.
	for _, at := range []time.Duration{time.Minute, 29 * time.Minute, 40 * time.Minute} {
		c := testclock.New(genStart.Add(at))
		st := store.NewMemory(c.Now)
		sets := make([]*tokens.KeySet, 8)
		var wg sync.WaitGroup
		for i := range sets {
			m := newManager(t, st, tokens.ES256, c)
			wg.Go(func() {
				ks, err := m.Load(ctx)
				if err != nil {
					t.Error(err)
				}
				sets[i] = ks
			})
		}
		wg.Wait()
		if t.Failed() {
			return
		}
		for i, ks := range sets[1:] {
			if !slices.Equal(ks.JWKS(), sets[0].JWKS()) || ks.Signing(c.Now()).ID != sets[0].Signing(c.Now()).ID {
				t.Errorf("at gen%+v manager %d publishes %s, signs with %q; manager 0 %s, %q", at, i+1,
					ks.JWKS(), ks.Signing(c.Now()).ID, sets[0].JWKS(), sets[0].Signing(c.Now()).ID)
			}
		}
		if got, want := len(slots(t, st)), len(published(t, sets[0])); got != want {
			t.Errorf("at gen%+v the store holds %d keys, want the %d published", at, got, want)
		}
	}
}

// TestAlgorithmChange: after signing_key changes algorithm, the old algorithm's keys stay published
// (their tokens still verify) but never sign, and go once their tokens have expired.
func TestAlgorithmChange(t *testing.T) {
	c := testclock.New(genStart.Add(29 * time.Minute)) // the next ES256 key falls due
	st := store.NewMemory(c.Now)
	es := load(t, newManager(t, st, tokens.ES256, c))
	esKids := published(t, es)

	c.Set(genStart.Add(50 * time.Minute))
	m := newManager(t, st, tokens.EdDSA, c)
	ks := load(t, m)
	for _, kid := range esKids {
		if _, ok := ks.Lookup(kid); !ok {
			t.Errorf("after the change to EdDSA the ES256 key %q is not published", kid)
		}
	}
	for _, at := range []time.Time{time.Unix(0, 0), genStart, c.Now(), genStart.Add(testInterval), genStart.Add(100 * testInterval)} {
		if k := ks.Signing(at); k.Alg != tokens.EdDSA {
			t.Errorf("Signing(%v) = a %s key, want EdDSA", at, k.Alg)
		}
	}
	// The newest ES256 key would have been followed by the end of its generation.
	c.Set(genStart.Add(2*testInterval + testTTL + retireMargin - time.Nanosecond))
	if _, ok := load(t, m).Lookup(esKids[1]); !ok {
		t.Error("the newest ES256 key left before its generation's tokens could have expired")
	}
	c.Set(genStart.Add(2*testInterval + testTTL + retireMargin))
	ks = load(t, m)
	if algs := ks.Algs(); !slices.Equal(algs, []string{tokens.EdDSA}) {
		t.Errorf("algorithms published once the ES256 tokens expired = %q, want only EdDSA", algs)
	}
	for _, slot := range slots(t, st) {
		if strings.HasPrefix(slot, "signing/ES256/") {
			t.Errorf("the store still holds %s", slot)
		}
	}
}

// TestTwoAlgorithms: each algorithm has its own schedule, the first is the primary, and a key of
// the second retires as one of the first does.
func TestTwoAlgorithms(t *testing.T) {
	c := testclock.New(genStart.Add(time.Minute))
	st := store.NewMemory(c.Now)
	m, err := NewManager(Config{Store: st, Algs: []string{tokens.ES256, tokens.RS256}, Interval: testInterval, MaxTokenTTL: testTTL, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	ks := load(t, m)
	if ks.Primary() != tokens.ES256 || !slices.Equal(ks.Algs(), []string{tokens.ES256, tokens.RS256}) {
		t.Fatalf("primary %s, algorithms %q; want ES256 leading ES256 and RS256", ks.Primary(), ks.Algs())
	}
	first := published(t, ks)
	// Past the second generation and its tokens' lifetime, each algorithm has moved on to new keys.
	for _, at := range []time.Duration{40 * time.Minute, testInterval + 40*time.Minute, 2*testInterval + testTTL + retireMargin + time.Minute} {
		c.Set(genStart.Add(at))
		ks = load(t, m)
	}
	if ks.Signing(c.Now()).Alg != tokens.ES256 {
		t.Errorf("the primary signs with a %s key, want ES256", ks.Signing(c.Now()).Alg)
	}
	for _, kid := range first {
		if _, ok := ks.Lookup(kid); ok {
			t.Errorf("key %q of the first generation is still published after its tokens expired", kid)
		}
	}
	var rsa int
	for _, sl := range slots(t, st) {
		if strings.HasPrefix(sl, "signing/RS256/") {
			rsa++
		}
	}
	if rsa < 2 {
		t.Errorf("the store holds %d RS256 keys, want the current and the next", rsa)
	}
}

// TestFixedKey: a key from a file leads the set and signs, beside the generated keys of another
// algorithm, and never enters the store.
func TestFixedKey(t *testing.T) {
	fixed := testkeys.New(t, tokens.EdDSA, time.Time{})
	c := testclock.New(genStart)
	st := store.NewMemory(c.Now)
	// A generated EdDSA key left by an earlier configuration does not displace the file's.
	load(t, newManager(t, st, tokens.EdDSA, c))
	m, err := NewManager(Config{Store: st, Algs: []string{tokens.RS256}, Fixed: []tokens.Key{fixed}, Interval: testInterval, MaxTokenTTL: testTTL, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	ks := load(t, m)
	if k := ks.Signing(c.Now()); k.ID != fixed.ID || ks.Primary() != tokens.EdDSA {
		t.Errorf("Signing = %q (primary %s), want the fixed key %q", k.ID, ks.Primary(), fixed.ID)
	}
	if !slices.Contains(ks.Algs(), tokens.RS256) {
		t.Errorf("algorithms %q, want RS256 beside the fixed key", ks.Algs())
	}
	all, err := st.SigningKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for sl, k := range all {
		if k.ID == fixed.ID {
			t.Errorf("the store holds the fixed key in %s", sl)
		}
	}
}

// TestOtherSlotsAreLeftAlone: slots that a Manager did not write (the earlier single-slot scheme)
// are neither published nor deleted.
func TestOtherSlotsAreLeftAlone(t *testing.T) {
	c := testclock.New(genStart)
	st := store.NewMemory(c.Now)
	signer, err := tokens.GenerateKey(tokens.ES256)
	if err != nil {
		t.Fatal(err)
	}
	pem, err := tokens.MarshalPrivateKeyPEM(signer)
	if err != nil {
		t.Fatal(err)
	}
	for _, slot := range []string{"signing/ES256", "signing/ES256/x", "signing/EdDSA/1"} {
		if _, err := st.AddSigningKey(ctx, slot, store.SigningKey{ID: "old-" + slot, Alg: tokens.ES256, PEM: pem}); err != nil {
			t.Fatal(err)
		}
	}
	m := newManager(t, st, tokens.ES256, c)
	c.Set(genStart.Add(100 * testInterval))
	if kids := published(t, load(t, m)); len(kids) != 1 || strings.HasPrefix(kids[0], "old-") {
		t.Errorf("JWKS = %q, want one generated key", kids)
	}
	if got := slots(t, st); len(got) != 4 {
		t.Errorf("store slots = %q, want the three foreign ones and one generated", got)
	}
}

// failing is a store whose reads fail while down is set.
type failing struct {
	*store.Memory
	mu   sync.Mutex
	down bool
}

var errDown = errors.New("store down")

func (f *failing) setDown(down bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down = down
}

func (f *failing) SigningKeys(ctx context.Context) (map[string]store.SigningKey, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return nil, errDown
	}
	return f.Memory.SigningKeys(ctx)
}

// TestRunKeepsKeysThroughOutage: Run reports a failed read and publishes nothing then, and
// publishes again once the store answers.
func TestRunKeepsKeysThroughOutage(t *testing.T) {
	c := testclock.New(genStart)
	st := &failing{Memory: store.NewMemory(c.Now), down: true}
	m, err := NewManager(Config{Store: st, Algs: []string{tokens.ES256}, Interval: time.Second, MaxTokenTTL: time.Second, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Load(ctx); !errors.Is(err, errDown) {
		t.Fatalf("Load on a store that is down = %v, want %v", err, errDown)
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	published := make(chan *tokens.KeySet, 100)
	reports := make(chan error, 100)
	go m.Run(runCtx, func(ks *tokens.KeySet) { published <- ks }, func(err error) { reports <- err })

	if err := <-reports; !errors.Is(err, errDown) {
		t.Errorf("Run's first report = %v, want %v", err, errDown)
	}
	if len(published) != 0 {
		t.Error("Run published a key set while the store was down")
	}
	st.setDown(false)
	for err := range reports {
		if err == nil {
			break
		}
	}
	if ks := <-published; ks == nil {
		t.Error("Run published nil")
	}
}

func TestRefreshEvery(t *testing.T) {
	for _, tc := range []struct{ interval, want time.Duration }{
		{time.Second, 125 * time.Millisecond},
		{2 * time.Second, 250 * time.Millisecond},
		{4 * time.Minute, 30 * time.Second},
		{DefaultInterval, time.Minute},
	} {
		m, err := NewManager(Config{Store: store.NewMemory(time.Now), Algs: []string{tokens.ES256}, Interval: tc.interval, MaxTokenTTL: time.Hour, Now: time.Now})
		if err != nil {
			t.Fatal(err)
		}
		if got := m.RefreshEvery(); got != tc.want {
			t.Errorf("RefreshEvery(interval %v) = %v, want %v", tc.interval, got, tc.want)
		}
	}
}

func TestNewManagerRefuses(t *testing.T) {
	ok := Config{Store: store.NewMemory(time.Now), Algs: []string{tokens.ES256}, Interval: time.Second, MaxTokenTTL: time.Second, Now: time.Now}
	for _, tc := range []struct {
		name   string
		change func(*Config)
		want   string
	}{
		{"short interval", func(c *Config) { c.Interval = time.Second - 1 }, "under the minimum"},
		{"no lifetime", func(c *Config) { c.MaxTokenTTL = 0 }, "not positive"},
		{"unknown alg", func(c *Config) { c.Algs = []string{"HS256"} }, "unsupported"},
		{"no alg", func(c *Config) { c.Algs = nil }, "no algorithm"},
		{"an alg twice", func(c *Config) { c.Algs = []string{tokens.ES256, tokens.RS256, tokens.ES256} }, "two schedules"},
		{"the fixed key's alg generated", func(c *Config) { c.Fixed = []tokens.Key{{Alg: tokens.ES256}} }, "two schedules"},
		{"no store", func(c *Config) { c.Store = nil }, "required"},
		{"no clock", func(c *Config) { c.Now = nil }, "required"},
	} {
		cfg := ok
		tc.change(&cfg)
		if _, err := NewManager(cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("NewManager(%s) = %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
}

// TestUnchangedKeysAreNotRebuilt: a refresh that finds the keys as they were returns the KeySet
// it built before, and one that finds a new key parses only that one.
func TestUnchangedKeysAreNotRebuilt(t *testing.T) {
	c := testclock.New(genStart)
	m := newManager(t, store.NewMemory(c.Now), tokens.ES256, c)
	first := load(t, m)
	c.Set(genStart.Add(time.Minute))
	if again := load(t, m); again != first {
		t.Error("Load with the keys unchanged built a new KeySet")
	}
	c.Set(genStart.Add(29 * time.Minute)) // the next key falls due
	next := load(t, m)
	if next == first {
		t.Fatal("Load with a new key returned the old KeySet")
	}
	kid := first.Signing(c.Now()).ID
	before, _ := first.Lookup(kid)
	after, _ := next.Lookup(kid)
	if before.Signer != after.Signer {
		t.Errorf("key %q was parsed again, want its private key reused", kid)
	}
}

// TestSparesAreUsed: the key Load creates has the private key generated ahead of it, so Load
// waits for no generation (an RSA key's takes a while).
func TestSparesAreUsed(t *testing.T) {
	c := testclock.New(genStart)
	m := newManager(t, store.NewMemory(c.Now), tokens.RS256, c)
	if err := m.spares.fill([]string{tokens.RS256}); err != nil {
		t.Fatal(err)
	}
	spare := m.spares.byAlg[tokens.RS256]
	k := load(t, m).Signing(c.Now())
	if pub, ok := k.Signer.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(spare.Public()) {
		t.Error("the first key is not the spare generated ahead")
	}
	if len(m.spares.byAlg) != 0 {
		t.Error("the spare is still there after a key was made of it")
	}
}
