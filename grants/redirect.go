package grants

import (
	"errors"
	"net/url"
	"slices"
	"strings"
)

// RedirectsTo reports whether the client registered uri as a redirection endpoint: byte for byte
// (RFC 9700 §2.1, RFC 6749 §3.1.2.2), so no case, path, query or fragment variant passes; and, for
// a dynamic client, a registered loopback http URI also stands for the same URI on any port, since
// a native app listens on a port the system picks at each run (RFC 8252 §7.3).
func (c *Client) RedirectsTo(uri string) bool {
	if slices.Contains(c.RedirectURIs, uri) {
		return true
	}
	if !c.Dynamic {
		return false
	}
	host, rest, ok := splitLoopback(uri)
	if !ok {
		return false
	}
	return slices.ContainsFunc(c.RedirectURIs, func(registered string) bool {
		h, r, ok := splitLoopback(registered)
		return ok && h == host && r == rest
	})
}

// splitLoopback splits an http URI on a loopback host (RFC 8252 §7.3: 127.0.0.1, [::1] or
// localhost) into that host and what follows the authority, dropping a numeric port; ok is false
// for any other URI. It works on the string as sent, so the parts compare byte for byte.
func splitLoopback(uri string) (host, rest string, ok bool) {
	after, found := strings.CutPrefix(uri, "http://")
	if !found {
		return "", "", false
	}
	end := strings.IndexAny(after, "/?#")
	if end < 0 {
		end = len(after)
	}
	authority, rest := after[:end], after[end:]
	host = authority
	if i := strings.LastIndexByte(authority, ':'); i >= 0 && !strings.HasSuffix(authority, "]") {
		host = authority[:i]
		if strings.Trim(authority[i+1:], "0123456789") != "" {
			return "", "", false
		}
	}
	switch host {
	case "127.0.0.1", "[::1]", "localhost":
		return host, rest, true
	}
	return "", "", false
}

// dynamicGrants and dynamicResponseTypes are all a client the configuration does not declare may
// register: the authorization code flow and refresh.
var (
	dynamicGrants        = []string{"authorization_code", "refresh_token"}
	dynamicResponseTypes = []string{"code"}
)

// CheckDynamicFlows accepts the grant_types and response_types a dynamic client may name (RFC 7591
// §2, which a Client ID Metadata Document shares): within the code flow and refresh.
func CheckDynamicFlows(grantTypes, responseTypes []string) error {
	switch {
	case slices.ContainsFunc(grantTypes, func(g string) bool { return !slices.Contains(dynamicGrants, g) }):
		return errors.New("grant_types may name authorization_code and refresh_token only")
	case slices.ContainsFunc(responseTypes, func(r string) bool { return !slices.Contains(dynamicResponseTypes, r) }):
		return errors.New("response_types may name code only")
	}
	return nil
}

// DynamicClientGrants is the grants of a dynamic client whose grant_types, which
// CheckDynamicFlows accepted, are grantTypes: the authorization code grant when it names none
// (RFC 7591 §2).
func DynamicClientGrants(grantTypes []string) []string {
	if len(grantTypes) == 0 {
		return []string{"authorization_code"}
	}
	return slices.Compact(slices.Sorted(slices.Values(grantTypes)))
}

// CheckDynamicRedirectURI accepts a redirect URI a dynamic client may name: https; http only on a
// loopback host (RFC 8252 §7.3); or a private-use scheme holding a "." (RFC 8252 §7.1, a reversed
// domain name); never with a fragment (RFC 6749 §3.1.2), and never a javascript: or data: URI.
func CheckDynamicRedirectURI(uri string) error {
	u, err := url.Parse(uri)
	switch {
	case err != nil:
		return errors.New("a redirect URI is not a URI")
	case strings.Contains(uri, "#"):
		return errors.New("a redirect URI has a fragment")
	case u.Scheme == "https":
		if u.Host == "" {
			return errors.New("an https redirect URI has no host")
		}
		return nil
	case u.Scheme == "http":
		if _, _, ok := splitLoopback(uri); !ok {
			return errors.New("an http redirect URI is not on 127.0.0.1, [::1] or localhost")
		}
		return nil
	case u.Scheme == "javascript" || u.Scheme == "data" || !strings.Contains(u.Scheme, "."):
		return errors.New("a redirect URI is neither https, loopback http, nor a private-use scheme holding a dot")
	}
	return nil
}
