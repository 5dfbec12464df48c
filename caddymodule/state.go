package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/tokengate/tokengate/gate"
	"github.com/tokengate/tokengate/grants"
	"github.com/tokengate/tokengate/store"
)

// pool holds the state that outlives one configuration, keyed by the store's identity. A reload
// provisions the new configuration while the old one still serves: both must use one open store
// (bolt's file lock would deadlock a second open), one deny-list and one set of throttle counters
// (a reload must not forgive an attacker).
var pool = caddy.NewUsagePool()

// sharedState is what configurations on one store share.
type sharedState struct {
	store  store.Store
	deny   *gate.DenyList
	cache  *gate.Cache
	limits *grants.Limits
	// stop ends the deny-list's sync; done closes when it has ended.
	stop context.CancelFunc
	done chan struct{}
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
	key := "memory:" + a.Issuer
	if a.Store.Backend == "bolt" {
		path, err := filepath.Abs(a.Store.Path)
		if err != nil {
			return fmt.Errorf("store: %w", err)
		}
		a.Store.Path = path
		key = "bolt:" + path
	}
	v, _, err := pool.LoadOrNew(key, func() (caddy.Destructor, error) {
		return a.openShared()
	})
	if err != nil {
		return err
	}
	a.poolKey = key
	a.shared = v.(*sharedState)
	return nil
}

// openShared opens the store and loads the deny-list from it before any request is served, so a
// restart refuses what was revoked before it; then it follows the list every second.
func (a *App) openShared() (*sharedState, error) {
	var st store.Store
	if a.Store.Backend == "memory" {
		st = store.NewMemory(a.now)
	} else {
		bolt, err := store.OpenBolt(a.Store.Path, a.now)
		if err != nil {
			return nil, err
		}
		st = bolt
	}
	deny := gate.NewDenyList(st, a.now)
	syncCtx, cancelSync := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancelSync()
	if err := deny.Sync(syncCtx); err != nil {
		return nil, errors.Join(fmt.Errorf("reading the revocation list: %w", err), st.Close())
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	logger := a.logger
	go func() {
		defer close(done)
		deny.Run(ctx, denyListSyncEvery, func(err error) {
			logger.Error("reading the revocation list", zap.Error(err))
		})
	}()
	return &sharedState{
		store:  st,
		deny:   deny,
		cache:  gate.NewCache(verifiedTokenCacheSize, a.now),
		limits: grants.NewLimits(),
		stop:   stop,
		done:   done,
	}, nil
}
