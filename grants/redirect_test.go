package grants

import (
	"slices"
	"testing"
)

func TestRedirectsTo(t *testing.T) {
	dynamic := &Client{Dynamic: true, RedirectURIs: []string{"http://127.0.0.1/callback", "http://[::1]:3000/cb?x=1",
		"http://localhost:8080/cb", "https://app.example.com/cb", "com.example.app:/cb"}}
	configured := &Client{RedirectURIs: dynamic.RedirectURIs}
	for _, tc := range []struct {
		uri              string
		dynamic, configd bool
	}{
		{"http://127.0.0.1/callback", true, true},
		{"http://127.0.0.1:49152/callback", true, false},
		{"http://127.0.0.1:/callback", true, false},
		{"http://[::1]:5000/cb?x=1", true, false},
		{"http://[::1]/cb?x=1", true, false},
		{"http://localhost/cb", true, false},
		{"https://app.example.com/cb", true, true},
		{"com.example.app:/cb", true, true},
		// Only the port is free: not the path, the query, the host, the scheme or the case.
		{"http://127.0.0.1:49152/callback/x", false, false},
		{"http://127.0.0.1:49152/callback?x", false, false},
		{"http://127.0.0.1:49152/Callback", false, false},
		{"http://127.0.0.2:49152/callback", false, false},
		{"http://[::1]:5000/cb", false, false},
		{"https://127.0.0.1:49152/callback", false, false},
		{"http://127.0.0.1:4x/callback", false, false},
		{"http://127.0.0.1@evil.example/callback", false, false},
		{"http://127.0.0.1:1/callback#frag", false, false},
		{"https://app.example.com:8443/cb", false, false},
		{"https://app.example.com/cb/", false, false},
	} {
		if got := dynamic.RedirectsTo(tc.uri); got != tc.dynamic {
			t.Errorf("dynamic client: RedirectsTo(%q) = %v, want %v", tc.uri, got, tc.dynamic)
		}
		if got := configured.RedirectsTo(tc.uri); got != tc.configd {
			t.Errorf("configured client: RedirectsTo(%q) = %v, want %v", tc.uri, got, tc.configd)
		}
	}
}

func TestCheckDynamicRedirectURI(t *testing.T) {
	for uri, ok := range map[string]bool{
		"https://app.example.com/cb":   true,
		"http://127.0.0.1/cb":          true,
		"http://127.0.0.1:8080/cb":     true,
		"http://[::1]/cb":              true,
		"http://localhost:3000/cb":     true,
		"com.example.app:/oauth2redir": true,
		"https:///cb":                  false,
		"https://app.example.com/cb#x": false,
		"http://app.example.com/cb":    false,
		"http://127.0.0.2/cb":          false,
		"http://10.0.0.1/cb":           false,
		"javascript:alert(1)":          false,
		"JavaScript:alert(1)":          false,
		"data:text/html,x":             false,
		"myapp:/cb":                    false,
		"/relative":                    false,
		"":                             false,
		"%zz":                          false,
	} {
		if err := CheckDynamicRedirectURI(uri); (err == nil) != ok {
			t.Errorf("CheckDynamicRedirectURI(%q) = %v, want ok %v", uri, err, ok)
		}
	}
}

// A dynamic client may name only the code flow and refresh: no client_credentials, password or
// implicit response, whichever way it registers.
func TestCheckDynamicFlows(t *testing.T) {
	for _, tc := range []struct {
		grants, responses []string
		ok                bool
	}{
		{nil, nil, true},
		{[]string{"authorization_code", "refresh_token"}, []string{"code"}, true},
		{[]string{"authorization_code", "client_credentials"}, nil, false},
		{[]string{"password"}, []string{"code"}, false},
		{nil, []string{"token"}, false},
		{[]string{"authorization_code"}, []string{"code", "id_token"}, false},
	} {
		if err := CheckDynamicFlows(tc.grants, tc.responses); (err == nil) != tc.ok {
			t.Errorf("CheckDynamicFlows(%q, %q) = %v, want ok %v", tc.grants, tc.responses, err, tc.ok)
		}
	}
}

// A dynamic client that names no grant_types gets the authorization code grant (RFC 7591 §2);
// the ones it names, once each.
func TestDynamicClientGrants(t *testing.T) {
	for _, tc := range []struct{ named, want []string }{
		{nil, []string{"authorization_code"}},
		{[]string{"refresh_token", "authorization_code", "refresh_token"}, []string{"authorization_code", "refresh_token"}},
	} {
		if got := DynamicClientGrants(tc.named); !slices.Equal(got, tc.want) {
			t.Errorf("DynamicClientGrants(%q) = %q, want %q", tc.named, got, tc.want)
		}
	}
}
