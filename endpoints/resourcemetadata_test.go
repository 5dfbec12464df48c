package endpoints

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"

	"github.com/tokengate/tokengate/resource"
)

func TestResourceMetadata(t *testing.T) {
	var known resource.Known
	const mcp = "https://mcp.example.com/mcp"
	h := ResourceMetadata("https://auth.example.com/tenant", mcp, &known)
	// Routes naming the resource are set up after the handler; the first request sees them all.
	known.Add(mcp, "mcp.tools")
	known.Add(mcp, "mcp.tools", "mcp.admin")
	known.Add("https://other.example.com", "other")

	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/.well-known/oauth-protected-resource/mcp", nil))
	var got map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
		t.Fatalf("body %q: %v", w.Body, err)
	}
	want := map[string]any{
		"resource":                 mcp,
		"authorization_servers":    []any{"https://auth.example.com/tenant"},
		"scopes_supported":         []any{"mcp.admin", "mcp.tools"},
		"bearer_methods_supported": []any{"header"},
	}
	if w.Code != http.StatusOK || !reflect.DeepEqual(got, want) {
		t.Errorf("GET = %d %v, want 200 %v", w.Code, got, want)
	}
	if ct, cors := w.Header().Get("Content-Type"), w.Header().Get("Access-Control-Allow-Origin"); ct != "application/json" || cors != "*" {
		t.Errorf("Content-Type %q, Access-Control-Allow-Origin %q; want application/json and *", ct, cors)
	}

	w = httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/.well-known/oauth-protected-resource/mcp", nil))
	if w.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST = %d, want 405", w.Code)
	}
}

// A resource whose routes name no scope has no scopes_supported.
func TestResourceMetadataWithoutScopes(t *testing.T) {
	var known resource.Known
	known.Add("https://mcp.example.com")
	w := httptest.NewRecorder()
	ResourceMetadata("https://auth.example.com", "https://mcp.example.com", &known).
		ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/.well-known/oauth-protected-resource", nil))
	want := `{"resource":"https://mcp.example.com","authorization_servers":["https://auth.example.com"],"bearer_methods_supported":["header"]}`
	if w.Body.String() != want {
		t.Errorf("body = %s, want %s", w.Body, want)
	}
}
