package federation

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"
)

// idTokenAlgs are the ID token algorithms accepted, when the upstream's discovery lists them:
// asymmetric only, never none nor an HMAC keyed with a secret the upstream shares with others.
var idTokenAlgs = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// clockLeeway is how far past its exp an ID token is still taken, for clocks a little apart.
const clockLeeway = 5 * time.Second

// discovery is an OIDC provider's discovery document and key set, fetched when first needed (so
// Caddy starts whether or not the upstream answers), kept, and after a failure fetched again at
// the next sign-in, no sooner than refetchInterval.
type discovery struct {
	issuer, clientID string
	client           *http.Client
	now              func() time.Time

	mu      sync.Mutex
	got     *upstream
	lastErr error
	tried   time.Time
}

// upstream is what discovery told.
type upstream struct {
	provider *oidc.Provider
	verifier *oidc.IDTokenVerifier
	keys     *keySet
	// userinfo is the userinfo endpoint, "" when discovery lists none.
	userinfo string
}

// get returns the discovered upstream, fetching it when needed.
func (d *discovery) get(ctx context.Context) (*upstream, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.got != nil {
		return d.got, nil
	}
	if d.lastErr != nil && d.now().Sub(d.tried) < refetchInterval {
		return nil, unavailable("discovery", d.lastErr)
	}
	d.tried = d.now()
	d.got, d.lastErr = d.fetch(ctx)
	if d.lastErr != nil {
		return nil, unavailable("discovery", d.lastErr)
	}
	return d.got, nil
}

func (d *discovery) fetch(ctx context.Context) (*upstream, error) {
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	// go-oidc checks that the document names the issuer it was fetched for (OIDC Discovery §4.3).
	provider, err := oidc.NewProvider(oidc.ClientContext(ctx, d.client), d.issuer)
	if err != nil {
		return nil, err
	}
	var doc struct {
		JWKSURI  string   `json:"jwks_uri"`
		Userinfo string   `json:"userinfo_endpoint"`
		Algs     []string `json:"id_token_signing_alg_values_supported"`
	}
	if err := provider.Claims(&doc); err != nil {
		return nil, err
	}
	if doc.JWKSURI == "" {
		return nil, errors.New("the discovery document has no jwks_uri")
	}
	algs := signingAlgs(doc.Algs)
	if len(algs) == 0 {
		return nil, errors.New("the discovery document lists no acceptable ID token algorithm")
	}
	keys := &keySet{uri: doc.JWKSURI, client: d.client, now: d.now}
	for _, a := range algs {
		keys.algs = append(keys.algs, jose.SignatureAlgorithm(a))
	}
	verifier := oidc.NewVerifier(d.issuer, keys, &oidc.Config{
		ClientID:             d.clientID,
		SupportedSigningAlgs: algs,
		Now:                  func() time.Time { return d.now().Add(-clockLeeway) },
	})
	return &upstream{provider: provider, verifier: verifier, keys: keys, userinfo: doc.Userinfo}, nil
}

// signingAlgs are the listed algorithms that idTokenAlgs accepts; RS256 when none is listed
// (OIDC Discovery §3 makes RS256 the one every provider supports).
func signingAlgs(listed []string) []string {
	if len(listed) == 0 {
		return []string{"RS256"}
	}
	var algs []string
	for _, a := range listed {
		if slices.Contains(idTokenAlgs, a) {
			algs = append(algs, a)
		}
	}
	return algs
}
