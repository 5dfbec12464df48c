package endpoints

import (
	"encoding/json"
	"net/http"
	"sync"

	"github.com/tokengate/tokengate/resource"
)

// ResourceMetadataDocument is a protected resource's metadata (RFC 9728 §2): what an MCP client
// reads, after a 401, to find the authorization server and the scopes to ask for.
type ResourceMetadataDocument struct {
	// Resource is the resource's URI exactly as configured (RFC 9728 §3.3: it must equal the URI
	// the metadata URL was built from).
	Resource string `json:"resource"`
	// AuthorizationServers is this tokengate's issuer, exactly as configured.
	AuthorizationServers []string `json:"authorization_servers"`
	// ScopesSupported are the scopes the resource's routes name, each once, sorted; omitted when
	// none do.
	ScopesSupported []string `json:"scopes_supported,omitempty"`
	// BearerMethodsSupported is ["header"]: bearer_auth takes a token from the Authorization
	// header only (RFC 6750 §2.1).
	BearerMethodsSupported []string `json:"bearer_methods_supported"`
}

// ResourceMetadata serves the metadata of the resource uri, issued for by issuer, to GET and HEAD,
// with CORS open as for discovery: a browser-based client reads it too. The scopes are read from
// known at the first request, once every route that names the resource has been set up.
func ResourceMetadata(issuer, uri string, known *resource.Known) http.Handler {
	body := sync.OnceValue(func() []byte {
		// Only strings and string slices, which always encode.
		b, _ := json.Marshal(ResourceMetadataDocument{
			Resource:               uri,
			AuthorizationServers:   []string{issuer},
			ScopesSupported:        known.Scopes(uri),
			BearerMethodsSupported: []string{"header"},
		})
		return b
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		serveJSON(w, r, body(), discoveryMaxAge)
	})
}
