package caddymodule

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/tokengate/tokengate/assertion"
	"github.com/tokengate/tokengate/endpoints"
	"github.com/tokengate/tokengate/gate"
	"github.com/tokengate/tokengate/grants"
	"github.com/tokengate/tokengate/metrics"
	"github.com/tokengate/tokengate/store"
	"github.com/tokengate/tokengate/throttle"
)

func init() {
	// go-redis writes a line to stderr, past Caddy's logs, for every dial that fails while Redis is
	// down. The outage logs below say what matters once per 30 s; go-redis's own lines go to
	// Caddy's log at debug level, for whoever needs the detail.
	redis.SetLogger(new(redisLogger))
}

// redisLogger sends go-redis's log lines to Caddy's logger at debug level.
type redisLogger struct{}

// Printf implements go-redis's internal.Logging.
func (*redisLogger) Printf(_ context.Context, format string, v ...any) {
	if ce := caddy.Log().Named("tokengate.redis").Check(zapcore.DebugLevel, "go-redis"); ce != nil {
		ce.Write(zap.String("detail", fmt.Sprintf(format, v...)))
	}
}

// pool holds the state that outlives one configuration, keyed by the store's identity. A reload
// provisions the new configuration while the old one still serves: both must use one open store
// (bolt's file lock would deadlock a second open), one deny-list and one set of throttle counters
// (a reload must not forgive an attacker).
var pool = caddy.NewUsagePool()

// sharedState is what configurations on one store share.
type sharedState struct {
	store store.Store
	// backups copies the store while it serves; nil for the stores that are not embedded.
	backups store.Backups
	deny    *gate.DenyList
	cache   *gate.Cache
	limits  *grants.Limits
	// deviceGuesses counts wrong user codes per address, across reloads.
	deviceGuesses *throttle.Limiter
	// registrations count client registrations per address across reloads, one limiter per rate
	// a configuration named.
	registrationsMu sync.Mutex
	registrations   map[registrationRate]*throttle.Limiter
	// clients are the client ids of the configuration provisioned last, so that the next one can
	// tell which clients a reload removed.
	clientsMu sync.Mutex
	clients   map[string]bool
	// stop ends the deny-list's sync; done closes when it has ended.
	stop context.CancelFunc
	done chan struct{}
}

// registrationRate is a registration block's rate: requests per window.
type registrationRate struct {
	requests int
	window   time.Duration
}

// registrationLimiter returns the limiter of registrations per address at rate, the one a
// configuration before this one used when it named the same rate.
func (s *sharedState) registrationLimiter(rate registrationRate) *throttle.Limiter {
	s.registrationsMu.Lock()
	defer s.registrationsMu.Unlock()
	if s.registrations == nil {
		s.registrations = map[registrationRate]*throttle.Limiter{}
	}
	l, ok := s.registrations[rate]
	if !ok {
		l = throttle.New(rate.requests, rate.window, 100000)
		s.registrations[rate] = l
	}
	return l
}

// replaceClients records ids as the configured clients and returns the ones the previous
// configuration had and this one has not.
func (s *sharedState) replaceClients(ids map[string]bool) []string {
	s.clientsMu.Lock()
	defer s.clientsMu.Unlock()
	var removed []string
	for id := range s.clients {
		if !ids[id] {
			removed = append(removed, id)
		}
	}
	s.clients = ids
	return removed
}

// Destruct stops the sync and closes the store, once the last configuration using them is gone.
func (s *sharedState) Destruct() error {
	s.stop()
	<-s.done
	return s.store.Close()
}

// acquireShared takes a hold on the shared state of a's store, opening it if no configuration
// holds it yet. Cleanup releases the hold.
func (a *App) acquireShared() error {
	// Configurations with equal keys share one sharedState. A memory store belongs to its issuer:
	// a reload keeps it, another issuer gets its own.
	key, name, open := "memory:"+a.Issuer, "memory", func() (store.Store, error) { return store.NewMemory(a.now), nil }
	switch a.Store.Backend {
	case "bolt", "pebble":
		path, err := filepath.Abs(a.Store.Path)
		if err != nil {
			return fmt.Errorf("store: %w", err)
		}
		a.Store.Path = path
		backend := a.Store.Backend
		key, name = backend+":"+path, backend+" "+path
		from := a.Store.migrateFrom
		open = func() (store.Store, error) {
			if backend == "bolt" {
				return store.OpenBolt(path, a.now)
			}
			if from != "" {
				migrated, err := store.MigrateBolt(from, path)
				if err != nil {
					return nil, err
				}
				if migrated {
					a.logger.Info("moved the store from bolt to pebble", zap.String("from", from), zap.String("to", path), zap.String("kept", from+".migrated"))
				}
			}
			return store.OpenPebble(path, a.now)
		}
	case "redis":
		// Replaced here rather than at adapt time, the password can stay out of the config.
		rawURL, err := caddy.NewReplacer().ReplaceOrErr(a.Store.URL, true, true)
		if err != nil {
			return fmt.Errorf("store redis: %w", err)
		}
		if err := checkRedisURL(rawURL); err != nil {
			return err
		}
		// The pool's keys are not secret, so the URL is hashed: it may hold the password.
		sum := sha256.Sum256([]byte(rawURL))
		key, name = "redis:"+hex.EncodeToString(sum[:]), "redis "+redactURL(rawURL)
		open = func() (store.Store, error) {
			st, err := store.OpenRedis(rawURL, a.now)
			if err != nil {
				// A configuration whose store cannot be reached does not start: it could issue
				// no refresh token and follow no revocation.
				return nil, fmt.Errorf("store redis: %w", err)
			}
			return st, nil
		}
	}
	v, _, err := pool.LoadOrNew(key, func() (caddy.Destructor, error) {
		st, err := open()
		if err != nil {
			return nil, err
		}
		shared, err := a.openShared(store.Observed(st, metrics.ForStore(a.Store.Backend).Observe), name)
		if err != nil {
			return nil, err
		}
		shared.backups, _ = st.(store.Backups)
		return shared, nil
	})
	if err != nil {
		return err
	}
	a.poolKey = key
	a.storeName = name
	a.shared = v.(*sharedState)
	return nil
}

// redactURL is rawURL without its user information (the password) for the log.
func redactURL(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "(unparsable URL)"
	}
	u.User = nil
	return u.String()
}

// openShared loads the deny-list from st before any request is served, so a restart refuses what
// was revoked before it; then it follows the list every second, logging when it cannot.
func (a *App) openShared(st store.Store, name string) (*sharedState, error) {
	health := &outageLog{
		logger:    a.logger.With(zap.String("store", name)),
		now:       a.now,
		failing:   "revocations may be stale",
		recovered: "revocations are current again",
	}
	deny := gate.NewDenyList(&watchedRevocations{Revocations: st, health: health}, a.now)
	syncCtx, cancelSync := context.WithTimeout(context.Background(), storeTimeout)
	defer cancelSync()
	if err := deny.Sync(syncCtx); err != nil {
		return nil, errors.Join(fmt.Errorf("reading the revocation list: %w", err), st.Close())
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		// watchedRevocations logs the failures.
		deny.Run(ctx, denyListSyncEvery, nil)
	}()
	return &sharedState{
		store:         st,
		deny:          deny,
		cache:         gate.NewCache(verifiedTokenCacheSize, a.now),
		limits:        grants.NewLimits(),
		deviceGuesses: endpoints.NewDeviceGuesses(),
		stop:          stop,
		done:          done,
	}, nil
}

// watchedRevocations reports the outcome of each read of the revocation log to health, so the log
// says when revocations may be stale and when they are current again: gate.DenyList.Run reports
// only failures. While reads fail, bearer_auth keeps accepting tokens by their signature, with the
// revocations it learnt before: a store outage must not take every gated route down.
type watchedRevocations struct {
	store.Revocations
	health *outageLog
}

// RevocationsSince implements store.Revocations.
func (w *watchedRevocations) RevocationsSince(ctx context.Context, cursor uint64) ([]store.Revocation, uint64, error) {
	list, next, err := w.Revocations.RevocationsSince(ctx, cursor)
	// A read cut short by a request or a shutdown says nothing about the store.
	if ctx.Err() == nil {
		w.health.report(err)
	}
	return list, next, err
}

// jwksFetchTimeout bounds one fetch of a jwks_uri (RemoteJWKS bounds it too, body included).
const jwksFetchTimeout = 10 * time.Second

// jwksPool holds the remote key sets (jwks_uri) by URI, so a reload keeps their caches and does
// not refetch every issuer's keys, and configurations naming one URI share one fetcher.
var jwksPool = caddy.NewUsagePool()

// pooledJWKS is a remote key set in jwksPool; it holds nothing to release.
type pooledJWKS struct {
	*assertion.RemoteJWKS
}

// Destruct implements caddy.Destructor.
func (*pooledJWKS) Destruct() error { return nil }

// remoteKeys takes a hold on the key set at uri, creating it if no configuration holds it yet.
// Cleanup releases the hold.
func (a *App) remoteKeys(uri string) (assertion.KeySource, error) {
	v, _, err := jwksPool.LoadOrNew(uri, func() (caddy.Destructor, error) {
		remote, err := assertion.NewRemoteJWKS(uri, &http.Client{Timeout: jwksFetchTimeout}, a.now)
		if err != nil {
			return nil, err
		}
		return &pooledJWKS{remote}, nil
	})
	if err != nil {
		return nil, err
	}
	a.jwksKeys = append(a.jwksKeys, uri)
	return v.(*pooledJWKS).RemoteJWKS, nil
}
