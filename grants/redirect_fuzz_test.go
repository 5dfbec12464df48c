package grants

import (
	"net/url"
	"testing"
)

// FuzzRedirectsTo attacks the one loosening of exact redirect URI matching, a dynamic client's
// loopback URI on any port (RFC 8252 §7.3): whatever URI is presented, it matches a registered one
// only byte for byte or as an http URI on the same loopback host with the same path, query and
// fragment, differing in the port alone; and a configured client's only byte for byte.
func FuzzRedirectsTo(f *testing.F) {
	for _, seed := range [][2]string{
		{"http://127.0.0.1/callback", "http://127.0.0.1:53682/callback"},
		{"http://127.0.0.1/callback", "http://127.0.0.1:1@evil.example/callback"},
		{"http://127.0.0.1/callback", "http://evil.example@127.0.0.1:1/callback"},
		{"http://[::1]:8080/cb?x=1", "http://[::1]/cb?x=1"},
		{"http://localhost/cb", "http://localhost:99/cb#frag"},
		{"https://app.example/cb", "https://app.example:443/cb"},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, registered, presented string) {
		if CheckDynamicRedirectURI(registered) != nil {
			return
		}
		configured := &Client{ID: "c", RedirectURIs: []string{registered}}
		if configured.RedirectsTo(presented) != (presented == registered) {
			t.Fatalf("a configured client registered %q: RedirectsTo(%q) = %v", registered, presented, !(presented == registered))
		}
		dynamic := &Client{ID: "d", Dynamic: true, RedirectURIs: []string{registered}}
		if !dynamic.RedirectsTo(presented) || presented == registered {
			return
		}
		want, err1 := url.Parse(registered)
		got, err2 := url.Parse(presented)
		switch {
		case err1 != nil || err2 != nil:
			t.Fatalf("%q matched %q, but one does not parse: %v %v", presented, registered, err1, err2)
		case got.Scheme != "http" || want.Scheme != "http":
			t.Fatalf("%q matched %q on a port, but not both are http", presented, registered)
		case got.User != nil || got.Hostname() != want.Hostname():
			t.Fatalf("%q matched %q but reaches host %q (user %v)", presented, registered, got.Hostname(), got.User)
		case got.Hostname() != "127.0.0.1" && got.Hostname() != "::1" && got.Hostname() != "localhost":
			t.Fatalf("%q matched %q on a port, but its host is not loopback", presented, registered)
		case got.EscapedPath() != want.EscapedPath() || got.RawQuery != want.RawQuery || got.Fragment != want.Fragment:
			t.Fatalf("%q matched %q but differs beyond the port", presented, registered)
		}
	})
}
