package registration

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
	"golang.org/x/crypto/bcrypt"

	"github.com/tokengate/tokengate/grants"
	"github.com/tokengate/tokengate/internal/nostore"
	"github.com/tokengate/tokengate/internal/peeraddr"
	"github.com/tokengate/tokengate/store"
	"github.com/tokengate/tokengate/throttle"
)

// Config is what a Registry is built from. Zero values take the defaults noted.
type Config struct {
	// Store keeps the registered clients; required.
	Store store.RegisteredClients
	// Scopes are what registered clients may ask for; required. Read at each use: the resources'
	// scopes are known only once every route is set up.
	Scopes func() []string
	// MaxClients bounds the registered clients in the store; zero means DefaultMaxClients.
	MaxClients int
	// Rate counts the registrations per address, refusing those past its bound; it should outlive
	// a reload, so that a reload does not forgive a flood. Nil means a new one allowing
	// DefaultRate in DefaultRateWindow.
	Rate *throttle.Limiter
	// UnusedTTL is how long a registered client lives without being used; zero means
	// DefaultUnusedTTL.
	UnusedTTL time.Duration
	// ClientIP names the address a request comes from; nil means the TCP peer.
	ClientIP func(*http.Request) string
	// Logger gets store faults; nil means none.
	Logger *zap.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// The defaults of Config.
const (
	DefaultMaxClients = 1000
	DefaultRate       = 20
	DefaultRateWindow = time.Hour
	DefaultUnusedTTL  = 720 * time.Hour
)

// idPrefix starts every registered client_id, so that Owns needs no store read; an https
// client_id is a metadata document's, never a registered one's.
const idPrefix = "dcr_"

// Registry is the registration endpoint and the registered clients.
type Registry struct {
	cfg Config
}

// New returns a Registry for cfg.
func New(cfg Config) *Registry {
	if cfg.MaxClients == 0 {
		cfg.MaxClients = DefaultMaxClients
	}
	if cfg.Rate == nil {
		cfg.Rate = throttle.New(DefaultRate, DefaultRateWindow, 100000)
	}
	if cfg.UnusedTTL == 0 {
		cfg.UnusedTTL = DefaultUnusedTTL
	}
	if cfg.ClientIP == nil {
		cfg.ClientIP = peeraddr.Of
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Registry{cfg: cfg}
}

// maxBody bounds a registration request: real ones are a few hundred bytes.
const maxBody = 16 << 10

// ServeHTTP serves POST /connect/register (RFC 7591 §3.1): open, no initial access token.
func (g *Registry) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, http.StatusMethodNotAllowed, "invalid_request", "registration takes POST")
		return
	}
	now := g.cfg.Now()
	if wait, ok := g.cfg.Rate.Allow(g.cfg.ClientIP(r), now); !ok {
		w.Header().Set("Retry-After", strconv.Itoa(int((wait+time.Second-1)/time.Second)))
		writeError(w, http.StatusTooManyRequests, "temporarily_unavailable", "too many registrations from this address; retry later")
		return
	}
	var body map[string]json.RawMessage
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody)).Decode(&body); err != nil || body == nil {
		writeError(w, http.StatusBadRequest, codeInvalidMetadata, "the body is not a JSON object")
		return
	}
	m, code, err := g.parse(body)
	if err != nil {
		writeError(w, http.StatusBadRequest, code, err.Error())
		return
	}
	m.ClientID, m.IssuedAt = idPrefix+random(), now.Unix()
	var secret string
	if m.AuthMethod != grants.AuthNone {
		secret = random()
		hash, err := bcrypt.GenerateFromPassword([]byte(secret), bcrypt.MinCost)
		if err != nil {
			g.fault(w, err)
			return
		}
		m.SecretHash = string(hash)
	}
	stored, err := g.store(r.Context(), m, now)
	switch {
	case err != nil:
		g.fault(w, err)
		return
	case !stored:
		writeError(w, http.StatusTooManyRequests, "temporarily_unavailable", "no more clients may register here")
		return
	}
	nostore.WriteJSON(w, http.StatusCreated, m.response(secret))
}

// store keeps m for UnusedTTL; false when the store holds MaxClients already.
func (g *Registry) store(ctx context.Context, m *metadata, now time.Time) (bool, error) {
	data, err := json.Marshal(m)
	if err != nil {
		return false, err
	}
	return g.cfg.Store.RegisterClient(ctx, m.ClientID, store.RegisteredClient{Metadata: data, ExpiresAt: now.Add(g.cfg.UnusedTTL)}, g.cfg.MaxClients)
}

func (g *Registry) fault(w http.ResponseWriter, err error) {
	g.cfg.Logger.Error("registering a client failed", zap.Error(err))
	writeError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "the service is temporarily unavailable; retry later")
}

// Owns reports whether id is a registered client's: it has the prefix they all have.
func (g *Registry) Owns(id string) bool { return strings.HasPrefix(id, idPrefix) }

// LookupClient returns the registered client id names. Using it keeps it alive: its expiry moves
// to UnusedTTL from now, at most once a day, so a busy client costs a store write a day.
func (g *Registry) LookupClient(ctx context.Context, id string) (*grants.Client, error) {
	if !g.Owns(id) {
		return nil, grants.ErrNotOwned
	}
	rec, err := g.cfg.Store.RegisteredClient(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, errors.New("the client is not registered here, or its registration expired")
	case err != nil:
		return nil, fmt.Errorf("%w: reading a registered client: %w", grants.ErrSourceUnavailable, err)
	}
	var m metadata
	if err := json.Unmarshal(rec.Metadata, &m); err != nil {
		return nil, fmt.Errorf("the registered client's record is damaged")
	}
	now := g.cfg.Now()
	if until := now.Add(g.cfg.UnusedTTL); until.Sub(rec.ExpiresAt) > min(24*time.Hour, g.cfg.UnusedTTL/2) {
		if err := g.cfg.Store.ExtendClient(ctx, id, until); err != nil && !errors.Is(err, store.ErrNotFound) {
			g.cfg.Logger.Warn("keeping a registered client alive failed", zap.Error(err))
		}
	}
	return m.client(g.cfg.Scopes())
}

func random() string {
	var b [32]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// writeError answers RFC 7591 §3.2.2's error response.
func writeError(w http.ResponseWriter, status int, code, description string) {
	nostore.WriteJSON(w, status, map[string]string{"error": code, "error_description": description})
}
