package resource

import (
	"slices"
	"sync"
	"testing"
)

func TestMetadataURL(t *testing.T) {
	for _, c := range []struct{ resource, want string }{
		{"https://mcp.example.com/mcp", "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"},
		{"https://mcp.example.com", "https://mcp.example.com/.well-known/oauth-protected-resource"},
		{"https://mcp.example.com/", "https://mcp.example.com/.well-known/oauth-protected-resource"},
		{"https://mcp.example.com/a/b/", "https://mcp.example.com/.well-known/oauth-protected-resource/a/b/"},
		{"http://127.0.0.1:8080/mcp", "http://127.0.0.1:8080/.well-known/oauth-protected-resource/mcp"},
		{"https://x.example/a%20b", "https://x.example/.well-known/oauth-protected-resource/a%20b"},
	} {
		if got, err := MetadataURL(c.resource); err != nil || got != c.want {
			t.Errorf("MetadataURL(%q) = %q, %v; want %q", c.resource, got, err, c.want)
		}
	}
	for _, bad := range []string{"/mcp", "mcp.example.com", "https://%zz"} {
		if got, err := MetadataURL(bad); err == nil {
			t.Errorf("MetadataURL(%q) = %q, want an error", bad, got)
		}
	}
}

func TestKnown(t *testing.T) {
	var k Known
	if k.Has("https://a.example") || (*Known)(nil).Has("https://a.example") {
		t.Fatal("an empty Known knows a resource")
	}
	var wg sync.WaitGroup
	for _, scopes := range [][]string{{"read", "write"}, {"write", "admin"}, nil} {
		wg.Go(func() { k.Add("https://a.example", scopes...) })
	}
	wg.Wait()
	got := k.Scopes("https://a.example")
	if !k.Has("https://a.example") || !slices.Equal(got, []string{"admin", "read", "write"}) {
		t.Errorf("after three Adds: Has = %v, Scopes = %q; want true and admin read write, each once, sorted", k.Has("https://a.example"), got)
	}
	if k.Has("https://a.example/") || k.Scopes("https://b.example") != nil {
		t.Error("Known matched another resource")
	}
	k.Add("https://b.example", "read", "mcp.tools")
	if all := k.AllScopes(); !slices.Equal(all, []string{"admin", "mcp.tools", "read", "write"}) {
		t.Errorf("AllScopes = %q, want every resource's scopes, each once, sorted", all)
	}
}
