package cimd

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sync/singleflight"

	"github.com/tokengate/tokengate/grants"
	"github.com/tokengate/tokengate/throttle"
)

// The bounds of a fetch: a document is a few hundred bytes, and an authorization request waits
// for it.
const (
	MaxDocumentSize = 5 << 10
	FetchTimeout    = 5 * time.Second
)

// fetchesPerHost bounds the fetches of one host under way at once.
const fetchesPerHost = 8

// Config is what a Resolver is built from.
type Config struct {
	// Allow are the hosts a client_id may name: a name (any case), an IP literal (an IPv6 one
	// bracketed or not), or "*.<domain>" for any subdomain of domain (not domain itself). Empty
	// accepts every host.
	Allow []string
	// Scopes are what the clients may ask for; asking for none means all of them. Read at each
	// use: the resources' scopes are known only once every route is set up.
	Scopes func() []string
	// AllowLoopback also accepts client_ids on loopback hosts (127.0.0.0/8, [::1], localhost),
	// over http as well as https, and lets the fetch dial loopback addresses, and no other
	// special-use one. For tests and local development only.
	AllowLoopback bool
	// Roots verify the certificates of the documents' servers; nil means the system's trust store
	// (where SSL_CERT_FILE and SSL_CERT_DIR are honoured).
	Roots *x509.CertPool
	// Logger hears, at debug level, why a document was refused, with the cause; nil means none.
	Logger *zap.Logger
	// Now is the clock the cache runs on; nil means time.Now.
	Now func() time.Time
}

// Resolver fetches, validates and caches the documents of client_ids; it is a grants.ClientSource.
type Resolver struct {
	allow         []string
	scopes        func() []string
	allowLoopback bool
	http          *http.Client
	cache         *cache
	fetches       singleflight.Group
	perHost       *throttle.InFlight
	logger        *zap.Logger
	now           func() time.Time
}

// New returns a Resolver for cfg.
func New(cfg Config) *Resolver {
	r := &Resolver{
		scopes:        cfg.Scopes,
		allowLoopback: cfg.AllowLoopback,
		cache:         newCache(maxCached),
		perHost:       throttle.NewInFlight(fetchesPerHost),
		logger:        cfg.Logger,
		now:           cfg.Now,
	}
	for _, host := range cfg.Allow {
		// An IPv6 literal may come bracketed, as in a URL.
		r.allow = append(r.allow, strings.Trim(strings.ToLower(host), "[]"))
	}
	if r.logger == nil {
		r.logger = zap.NewNop()
	}
	if r.now == nil {
		r.now = time.Now
	}
	dialer := &net.Dialer{Timeout: FetchTimeout, Control: dialGuard(cfg.AllowLoopback)}
	r.http = &http.Client{
		Transport: &http.Transport{
			// No proxy: it would dial for us, past the address guard.
			Proxy:                  nil,
			DialContext:            dialer.DialContext,
			TLSClientConfig:        &tls.Config{RootCAs: cfg.Roots, MinVersion: tls.VersionTLS12},
			TLSHandshakeTimeout:    FetchTimeout,
			ResponseHeaderTimeout:  FetchTimeout,
			MaxResponseHeaderBytes: 16 << 10,
			ForceAttemptHTTP2:      true,
			MaxIdleConns:           16,
			IdleConnTimeout:        30 * time.Second,
		},
		Timeout: FetchTimeout,
		// A redirect is a failure, never followed: it could lead anywhere, the guard
		// notwithstanding, and the document must live at the client_id itself.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return r
}

// Error is why a client_id's document was refused. Reason holds no address and nothing the
// document's server sent, so the person may read it; Cause, for the log, may hold both.
type Error struct {
	Reason string
	Cause  error
}

func (e *Error) Error() string { return e.Reason }
func (e *Error) Unwrap() error { return e.Cause }

func refused(reason string, cause error) *Error { return &Error{Reason: reason, Cause: cause} }

// Owns reports whether id is a Client Identifier URL on an allowed host: one LookupClient would
// fetch.
func (r *Resolver) Owns(id string) bool {
	u, ok := r.clientIDURL(id)
	return ok && r.hostAllowed(u.Hostname())
}

// LookupClient returns the client whose document id names, from the cache or fetched now. An id
// that is no Client Identifier URL is grants.ErrNotOwned; any failure is an *Error and is never
// cached.
func (r *Resolver) LookupClient(ctx context.Context, id string) (*grants.Client, error) {
	u, ok := r.clientIDURL(id)
	if !ok {
		return nil, grants.ErrNotOwned
	}
	// The allow list is checked before anything is sent.
	if !r.hostAllowed(u.Hostname()) {
		return nil, refused("the client_id's host is not allowed here", nil)
	}
	if c, ok := r.cache.get(id, r.now()); ok {
		return c, nil
	}
	// Concurrent lookups of one client_id share one fetch, which outlives the request that began it
	// (it is bounded by FetchTimeout all the same).
	c, err, _ := r.fetches.Do(id, func() (any, error) {
		c, err := r.fetchOnce(context.WithoutCancel(ctx), u, id)
		if err != nil {
			return nil, err
		}
		return c, nil
	})
	if err != nil {
		return nil, err
	}
	return c.(*grants.Client), nil
}

// fetchOnce fetches and validates the document of id at u and caches its client. One host has at
// most fetchesPerHost fetches under way: anyone can send client_ids of a slow host, and each would
// hold an outbound connection for FetchTimeout.
func (r *Resolver) fetchOnce(ctx context.Context, u *url.URL, id string) (*grants.Client, *Error) {
	host := strings.ToLower(u.Hostname())
	if !r.perHost.Enter(host) {
		return nil, refused("too many client metadata documents of the client_id's host are being fetched; retry shortly", nil)
	}
	defer r.perHost.Leave(host)
	now := r.now()
	c, ttl, err := r.fetch(ctx, u, id)
	if err != nil {
		r.logger.Debug("client metadata document refused", zap.String("client_id", id), zap.String("reason", err.Reason), zap.Error(err.Cause))
		return nil, err
	}
	if ttl > 0 {
		r.cache.put(id, c, now, now.Add(ttl))
	}
	return c, nil
}

// clientIDURL parses id as a Client Identifier URL: https (or http on a loopback host, with
// AllowLoopback), a host, a path other than "/", no user information, no fragment, and no "." or
// ".." segment, which could make the document's URL differ from the client_id once resolved.
func (r *Resolver) clientIDURL(id string) (*url.URL, bool) {
	u, err := url.Parse(id)
	if err != nil || u.Host == "" || u.User != nil || u.Fragment != "" || strings.Contains(id, "#") {
		return nil, false
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && r.allowLoopback && loopbackHost(u.Hostname()):
	default:
		return nil, false
	}
	if u.Path == "" || u.Path == "/" {
		return nil, false
	}
	for _, segment := range strings.Split(u.Path, "/") {
		if segment == "." || segment == ".." {
			return nil, false
		}
	}
	return u, true
}

// hostAllowed reports whether the allow list accepts host; a loopback host needs AllowLoopback
// as well, whatever the list says.
func (r *Resolver) hostAllowed(host string) bool {
	host = strings.ToLower(host)
	if loopbackHost(host) && !r.allowLoopback {
		return false
	}
	if len(r.allow) == 0 {
		return true
	}
	ip, err := netip.ParseAddr(host)
	isIP := err == nil
	for _, allowed := range r.allow {
		if domain, ok := strings.CutPrefix(allowed, "*."); ok {
			if !isIP && strings.HasSuffix(host, "."+domain) {
				return true
			}
			continue
		}
		if a, err := netip.ParseAddr(allowed); err == nil {
			if isIP && a == ip {
				return true
			}
			continue
		}
		if allowed == host {
			return true
		}
	}
	return false
}

// loopbackHost reports whether host names the local machine: localhost or a loopback IP literal.
func loopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// fetch gets the document at u and validates it, returning its client and how long it may be
// reused.
func (r *Resolver) fetch(ctx context.Context, u *url.URL, id string) (*grants.Client, time.Duration, *Error) {
	ctx, cancel := context.WithTimeout(ctx, FetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, 0, refused("the client_id cannot be fetched", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := r.http.Do(req)
	if err != nil {
		return nil, 0, refused(fetchFailure(err), err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		return nil, 0, refused("the client_id's server answered with a redirect, which is not followed", nil)
	case resp.StatusCode != http.StatusOK:
		return nil, 0, refused("the client_id's server did not answer 200 OK", errors.New(resp.Status))
	}
	// One byte more than allowed tells a document that is too large from one that fits exactly.
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxDocumentSize+1))
	switch {
	case err != nil:
		return nil, 0, refused(fetchFailure(err), err)
	case len(body) > MaxDocumentSize:
		return nil, 0, refused("the client metadata document is larger than 5 KiB", nil)
	}
	c, bad := r.client(u, id, body)
	if bad != nil {
		return nil, 0, bad
	}
	return c, cacheTTL(resp.Header), nil
}

// fetchFailure says why a fetch failed, in words that name no address.
func fetchFailure(err error) string {
	var certErr *tls.CertificateVerificationError
	var netErr net.Error
	switch {
	case errors.Is(err, errSpecialUse):
		return "the client_id's host is a special-use address (loopback, private, link-local or reserved)"
	case errors.Is(err, context.DeadlineExceeded) || errors.As(err, &netErr) && netErr.Timeout():
		return "the client metadata document did not arrive within 5 s"
	case errors.As(err, &certErr):
		return "the client_id's server presented a certificate that is not trusted"
	}
	return "the client metadata document could not be fetched"
}
