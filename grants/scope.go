package grants

import (
	"slices"
	"strings"
)

// Scopes that speak of the user rather than an API: meaningless without one.
var userScopes = []string{"openid", "profile", "email", "address", "phone", "offline_access"}

const (
	scopeOpenID        = "openid"
	scopeOfflineAccess = "offline_access"
)

// IsScopeToken reports whether s is a scope-token (RFC 6749 §3.3: 1*( %x21 / %x23-5B / %x5D-7E )):
// the rule for the scopes a request asks for and for those configuration names.
func IsScopeToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c == '"' || c == '\\' || c > 0x7E {
			return false
		}
	}
	return true
}

// parseScope splits a scope parameter (RFC 6749 §3.3: space-delimited scope-tokens). Anything
// else is invalid_scope, never echoed.
func parseScope(param string) ([]string, *Error) {
	var scopes []string
	for _, token := range strings.Split(param, " ") {
		if token == "" {
			continue
		}
		if !IsScopeToken(token) {
			// "section", not "§": an error_description is ASCII (RFC 6749 §5.2, §4.1.2.1).
			return nil, errorf(CodeInvalidScope, "the scope holds a character RFC 6749 section 3.3 does not allow")
		}
		if !slices.Contains(scopes, token) {
			scopes = append(scopes, token)
		}
	}
	return scopes, nil
}

// GrantedScope decides the scope of a grant from a request's scope parameter: what was asked for
// if every part is a valid scope-token found in allowed, or all that is allowed when nothing was
// asked for (IdentityServer's rule). The token endpoint and the authorization endpoint both use
// it, so a code and a token are granted alike. Its errors are invalid_scope.
func GrantedScope(param string, allowed []string) ([]string, *Error) {
	requested, err := parseScope(param)
	if err != nil {
		return nil, err
	}
	if len(requested) == 0 {
		if len(allowed) == 0 {
			return nil, errorf(CodeInvalidScope, "the client has no scope to grant")
		}
		return allowed, nil
	}
	for _, s := range requested {
		if !slices.Contains(allowed, s) {
			return nil, errorf(CodeInvalidScope, "the scope "+s+" is not allowed")
		}
	}
	return requested, nil
}

// apiScopes drops the user scopes from a client's scopes: a grant with no user cannot carry them.
func apiScopes(scopes []string) []string {
	return slices.DeleteFunc(slices.Clone(scopes), func(s string) bool { return slices.Contains(userScopes, s) })
}
