package endpoints

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/tokengate/tokengate/tokens"
)

// TestGoOIDCDiscovers checks interoperability with a widely used relying-party library: it
// discovers the issuer, fetches the JWKS and verifies an ID token signed with it.
func TestGoOIDCDiscovers(t *testing.T) {
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	defer srv.Close()
	ks := testKeySet(t, tokens.ES256)
	meta := NewMetadata(srv.URL)
	meta.IDTokenSigningAlgValuesSupported = ks.Algs()
	mux.Handle(DiscoveryPath, Discovery(meta))
	mux.Handle(JWKSPath, JWKS(func() *tokens.KeySet { return ks }))

	ctx := context.Background()
	provider, err := oidc.NewProvider(ctx, srv.URL)
	if err != nil {
		t.Fatalf("oidc.NewProvider(%q): %v", srv.URL, err)
	}
	if got := provider.Endpoint().TokenURL; got != srv.URL+TokenPath {
		t.Errorf("token URL = %q, want %q", got, srv.URL+TokenPath)
	}
	minter := tokens.NewMinter(srv.URL, func() *tokens.KeySet { return ks }, time.Now)
	raw, err := minter.IDToken(tokens.IDToken{Subject: "alice", ClientID: "app", TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	idt, err := provider.Verifier(&oidc.Config{ClientID: "app"}).Verify(ctx, raw)
	if err != nil {
		t.Fatalf("go-oidc Verify: %v", err)
	}
	if idt.Subject != "alice" || !slices.Contains(idt.Audience, "app") {
		t.Errorf("verified ID token sub %q aud %q, want alice [app]", idt.Subject, idt.Audience)
	}
}
