package grants

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// The hot path: a client whose bcrypt secret was verified once asks for a token again. Client
// authentication must cost it no more than a cache lookup.
func BenchmarkClientCredentialsCachedSecret(b *testing.B) {
	f := newFixture(b)
	f.expectOK("first request", f.post(vals("grant_type", "client_credentials")))
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		f.srv.ServeHTTP(w, cachedSecretRequest())
		if w.Code != 200 {
			b.Fatalf("HTTP %d %s", w.Code, w.Body)
		}
	}
}

// The client authentication part of the hot path alone.
func BenchmarkAuthenticateCachedSecret(b *testing.B) {
	f := newFixture(b)
	f.expectOK("first request", f.post(vals("grant_type", "client_credentials")))
	r := cachedSecretRequest()
	form := form{"grant_type": "client_credentials"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.srv.authenticateClient(context.Background(), r, form, f.Now()); err != nil {
			b.Fatal(err)
		}
	}
}

// cachedSecretRequest is a client_credentials request from app, whose secret the benchmarks verify
// before they start.
func cachedSecretRequest() *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/connect/token", strings.NewReader("grant_type=client_credentials"))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.SetBasicAuth("app", "app-secret")
	return r
}
