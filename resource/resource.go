// Package resource knows the protected resources this tokengate issues tokens for: each one's
// canonical URI (RFC 8707 §2), the scopes its routes name, and where it publishes its metadata
// (RFC 9728 §3.1). It imports no Caddy package.
package resource

import (
	"errors"
	"net/url"
	"slices"
	"sync"
)

// MetadataSuffix is the well-known URI suffix of protected resource metadata (RFC 9728 §3).
const MetadataSuffix = "/.well-known/oauth-protected-resource"

// MetadataURL is where the metadata of the resource uri is served: RFC 9728 §3.1 inserts the
// well-known suffix between the host and the path, a path of "/" counting as none, so
// https://mcp.example.com/mcp publishes at https://mcp.example.com/.well-known/oauth-protected-resource/mcp.
// The URL is built from uri alone, never from a request.
func MetadataURL(uri string) (string, error) {
	u, err := url.Parse(uri)
	if err != nil {
		return "", err
	}
	if u.Scheme == "" || u.Host == "" {
		return "", errors.New("resource: an absolute URI is required")
	}
	return u.Scheme + "://" + u.Host + MetadataPath(u), nil
}

// MetadataPath is the path of MetadataURL(u).
func MetadataPath(u *url.URL) string {
	path := u.EscapedPath()
	if path == "/" {
		path = ""
	}
	return MetadataSuffix + path
}

// Known is the set of known resources, each with the scopes its routes require. Routes add to it
// as they are set up; requests read it. It is safe for concurrent use.
type Known struct {
	mu     sync.RWMutex
	scopes map[string][]string
	// all is every resource's scopes, each once, sorted: kept by Add, which runs at provision, so
	// that AllScopes, which client lookups call per request, only reads.
	all []string
}

// Add makes uri a known resource, and scopes (each once) its scopes.
func (k *Known) Add(uri string, scopes ...string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.scopes == nil {
		k.scopes = map[string][]string{}
	}
	have := k.scopes[uri]
	for _, s := range scopes {
		if !slices.Contains(have, s) {
			have = append(have, s)
		}
	}
	k.scopes[uri] = have
	k.all = slices.Compact(slices.Sorted(slices.Values(append(slices.Clone(k.all), scopes...))))
}

// Has reports whether uri is a known resource, by exact string comparison. A nil Known knows none.
func (k *Known) Has(uri string) bool {
	if k == nil {
		return false
	}
	k.mu.RLock()
	defer k.mu.RUnlock()
	_, ok := k.scopes[uri]
	return ok
}

// AllScopes are the scopes of every known resource, each once, sorted; the caller must not change
// the slice.
func (k *Known) AllScopes() []string {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.all
}

// Scopes are the scopes the routes of the resource uri name, sorted: the order in which Caddy
// sets routes up is its own (it sorts them by path), so none is kept. Nil for an unknown resource
// or one whose routes name none.
func (k *Known) Scopes(uri string) []string {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return slices.Sorted(slices.Values(k.scopes[uri]))
}
