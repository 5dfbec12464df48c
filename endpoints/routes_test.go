package endpoints

import (
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/tokengate/tokengate/tokens"
)

// clientEndpoints answers each endpoint with its own status, so a test sees which one a path reached.
type clientEndpoints struct{}

func (clientEndpoints) ServeHTTP(w http.ResponseWriter, _ *http.Request)  { w.WriteHeader(601) }
func (clientEndpoints) Introspect(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(602) }
func (clientEndpoints) Revoke(w http.ResponseWriter, _ *http.Request)     { w.WriteHeader(603) }
func (clientEndpoints) DeviceAuthorization(w http.ResponseWriter, _ *http.Request) {
	w.WriteHeader(604)
}

// Routes puts every endpoint under the issuer's path, the client endpoints each at its own.
func TestRoutes(t *testing.T) {
	keys := testKeySet(t, tokens.ES256)
	site := Site{
		Issuer:   "https://auth.example.com/tenant/",
		Clients:  clientEndpoints{},
		Pages:    new(Pages),
		Device:   new(DevicePage),
		Userinfo: http.NotFoundHandler(),
		Keys:     func() *tokens.KeySet { return keys },
	}
	routes, err := Routes(site)
	if err != nil {
		t.Fatal(err)
	}
	paths := slices.Sorted(maps.Keys(routes))
	want := []string{"/tenant" + DiscoveryPath, "/tenant" + JWKSPath, "/tenant" + AuthorizePath, "/tenant" + DeviceAuthorizationPath,
		"/tenant" + DevicePath, "/tenant" + EndSessionPath, "/tenant" + IntrospectionPath, "/tenant" + RevocationPath,
		"/tenant" + TokenPath, "/tenant" + UserinfoPath, AuthorizationServerMetadataPath + "/tenant"}
	slices.Sort(want)
	if !slices.Equal(paths, want) {
		t.Errorf("Routes paths = %q, want %q", paths, want)
	}
	for path, status := range map[string]int{TokenPath: 601, IntrospectionPath: 602, RevocationPath: 603, DeviceAuthorizationPath: 604} {
		rec := httptest.NewRecorder()
		routes["/tenant"+path].ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/tenant"+path, nil))
		if rec.Code != status {
			t.Errorf("POST /tenant%s reached the endpoint answering %d, want %d", path, rec.Code, status)
		}
	}
	discovery, metadata := httptest.NewRecorder(), httptest.NewRecorder()
	routes["/tenant"+DiscoveryPath].ServeHTTP(discovery, httptest.NewRequest(http.MethodGet, "/tenant"+DiscoveryPath, nil))
	routes[AuthorizationServerMetadataPath+"/tenant"].ServeHTTP(metadata, httptest.NewRequest(http.MethodGet, AuthorizationServerMetadataPath+"/tenant", nil))
	if metadata.Code != http.StatusOK || metadata.Body.String() != discovery.Body.String() {
		t.Errorf("authorization server metadata = %d %s, want 200 and discovery's %s", metadata.Code, metadata.Body, discovery.Body)
	}
	site.Device = nil
	if _, err := Routes(site); err == nil {
		t.Error("Routes without the device page = nil error, want one")
	}
}
