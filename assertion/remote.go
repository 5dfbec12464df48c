package assertion

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Bounds of a RemoteJWKS. An attacker can send tokens with any kid; none of these lets that
// become load on the issuer or on us.
const (
	// defaultTTL is how long a fetched set is used when the response says nothing about caching.
	defaultTTL = 5 * time.Minute
	// minTTL and maxTTL bound what Cache-Control max-age may ask for: no-store must not make us
	// fetch per request, and a year-long max-age must not keep a revoked key.
	minTTL = time.Minute
	maxTTL = 24 * time.Hour
	// defaultCoolDown is the least time between two fetches, whatever triggers them: an unknown
	// kid, or a failed fetch.
	defaultCoolDown = 30 * time.Second
	// defaultFetchTimeout bounds one fetch, body included, whatever the injected client's timeout.
	defaultFetchTimeout = 10 * time.Second
	// defaultMaxBody bounds a JWK Set's size: a few keys take a few KiB.
	defaultMaxBody = 256 << 10
	// maxStale is how long keys stay in use after their last successful fetch while refetches fail:
	// an issuer's outage should not stop its tokens at once, nor keep its old keys forever.
	maxStale = 48 * time.Hour
)

// RemoteJWKS is a JWK Set fetched from a jwks_uri and cached. It is fetched on first use, again
// when its cache lifetime ends (Cache-Control max-age, within bounds, else 5 minutes), and early
// when a token names a kid it does not hold (the issuer may have rotated), at most once per
// cool-down. Concurrent fetches coalesce into one. Safe for concurrent use.
type RemoteJWKS struct {
	uri    string
	client *http.Client
	now    func() time.Time
	// Bounds, the package defaults; tests shorten them.
	coolDown time.Duration
	timeout  time.Duration
	maxBody  int64

	mu        sync.Mutex
	keys      []Key
	lastErr   error     // the last fetch's error; nil after a success
	fetchedAt time.Time // last successful fetch
	triedAt   time.Time // last fetch, for the cool-down
	freshTill time.Time // when the cache must be refetched
	inflight  chan struct{}
}

// NewRemoteJWKS returns the key set at uri, fetched with client (nil: a new http.Client) and timed
// by now (nil: time.Now). uri must be https, or http on a loopback host (development), since the
// keys decide who may sign. A redirect is never followed: it fails the fetch. Nothing is fetched
// until the first Keys call.
func NewRemoteJWKS(uri string, client *http.Client, now func() time.Time) (*RemoteJWKS, error) {
	u, err := url.Parse(uri)
	if err != nil {
		return nil, fmt.Errorf("jwks_uri: %w", err)
	}
	if err := checkKeySetURL(u); err != nil {
		return nil, fmt.Errorf("jwks_uri %q: %w", uri, err)
	}
	fetcher := &http.Client{}
	if client != nil {
		c := *client
		fetcher = &c
	}
	// The URL was checked, not where it redirects to: following a redirect would let a key set's
	// host point tokengate at an internal address (server-side request forgery) or at plain http.
	fetcher.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	if now == nil {
		now = time.Now
	}
	return &RemoteJWKS{
		uri:      uri,
		client:   fetcher,
		now:      now,
		coolDown: defaultCoolDown,
		timeout:  defaultFetchTimeout,
		maxBody:  defaultMaxBody,
	}, nil
}

// checkKeySetURL refuses a key set URL that a network attacker could answer.
func checkKeySetURL(u *url.URL) error {
	if u.Host == "" {
		return errors.New("no host")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		host := u.Hostname()
		if ip := net.ParseIP(host); host == "localhost" || (ip != nil && ip.IsLoopback()) {
			return nil
		}
		return errors.New("http is accepted only on a loopback host; use https")
	}
	return fmt.Errorf("scheme %q; use https", u.Scheme)
}

// Keys implements KeySource. It fetches when the cache is stale, or when kid is unknown and the
// cool-down has passed; otherwise it answers from the cache. Its error means no usable keys: never
// fetched successfully, or not for longer than maxStale.
func (r *RemoteJWKS) Keys(ctx context.Context, kid string) ([]Key, error) {
	r.mu.Lock()
	if r.needsFetch(kid) {
		done := r.inflight
		if done == nil {
			done = make(chan struct{})
			r.inflight = done
			r.mu.Unlock()
			r.refresh(ctx, done)
		} else {
			r.mu.Unlock()
		}
		select {
		case <-done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		r.mu.Lock()
	}
	defer r.mu.Unlock()
	if r.keys == nil {
		return nil, fmt.Errorf("jwks_uri %s: %w", r.uri, r.lastErr)
	}
	if r.now().Sub(r.fetchedAt) > maxStale {
		return nil, fmt.Errorf("jwks_uri %s: no successful fetch for %v: %w", r.uri, maxStale, r.lastErr)
	}
	return matchKID(r.keys, kid), nil
}

// needsFetch reports, with r.mu held, whether a request for kid should wait for a fetch.
func (r *RemoteJWKS) needsFetch(kid string) bool {
	now := r.now()
	if !now.Before(r.freshTill) {
		return true
	}
	return kid != "" && len(matchKID(r.keys, kid)) == 0 && now.Sub(r.triedAt) >= r.coolDown
}

// refresh fetches the set, records the outcome and closes done. A failure keeps the keys already
// held and delays the next attempt by the cool-down, so an unreachable issuer is not hammered.
func (r *RemoteJWKS) refresh(ctx context.Context, done chan struct{}) {
	keys, ttl, err := r.fetch(ctx)
	r.mu.Lock()
	now := r.now()
	r.triedAt = now
	if err != nil {
		r.lastErr = err
		r.freshTill = now.Add(r.coolDown)
	} else {
		r.keys, r.lastErr, r.fetchedAt, r.freshTill = keys, nil, now, now.Add(ttl)
	}
	r.inflight = nil
	r.mu.Unlock()
	close(done)
}

// fetch GETs the set. Its context is detached from the caller's, so one caller giving up does not
// fail the others waiting on the same fetch, and bounded by r.timeout.
func (r *RemoteJWKS) fetch(ctx context.Context) ([]Key, time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.uri, nil)
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 && resp.StatusCode <= 399 {
		to := "nowhere"
		if loc, err := resp.Location(); err == nil {
			to = loc.Redacted()
		}
		return nil, 0, fmt.Errorf("status %d: a redirect to %s, not followed", resp.StatusCode, to)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, 0, fmt.Errorf("status %d", resp.StatusCode)
	}
	// Read one byte past the cap to tell a set of exactly maxBody bytes from a longer one.
	body, err := io.ReadAll(io.LimitReader(resp.Body, r.maxBody+1))
	if err != nil {
		return nil, 0, err
	}
	if int64(len(body)) > r.maxBody {
		return nil, 0, fmt.Errorf("a JWK Set over %d bytes", r.maxBody)
	}
	// Keys this server cannot use (an oct key, a new kty) are skipped: they are the issuer's
	// business, and must not stop its other keys.
	keys, _, err := parseJWKS(body)
	if err != nil {
		// A server whose handler saw our deadline pass may still answer, empty: the deadline is
		// the cause worth reporting.
		return nil, 0, cmp.Or(ctx.Err(), err)
	}
	return keys, cacheTTL(resp.Header), nil
}

// cacheTTL is how long a response may be used: its Cache-Control max-age (RFC 9111 §5.2.2.1)
// within [minTTL, maxTTL], minTTL for no-store or no-cache, defaultTTL when it says nothing.
func cacheTTL(h http.Header) time.Duration {
	ttl := defaultTTL
	for _, line := range h.Values("Cache-Control") {
		for _, directive := range strings.Split(line, ",") {
			name, value, _ := strings.Cut(strings.TrimSpace(directive), "=")
			switch strings.ToLower(name) {
			case "no-store", "no-cache":
				return minTTL
			case "max-age":
				// On overflow ParseUint returns its maximum with ErrRange: a huge max-age is maxTTL.
				secs, err := strconv.ParseUint(strings.Trim(value, `"`), 10, 64)
				if err != nil && !errors.Is(err, strconv.ErrRange) {
					continue
				}
				ttl = time.Duration(min(secs, uint64(maxTTL/time.Second))) * time.Second
			}
		}
	}
	return min(max(ttl, minTTL), maxTTL)
}

// Interface guards
var _ KeySource = (*RemoteJWKS)(nil)
