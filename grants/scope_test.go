package grants

import (
	"slices"
	"testing"
)

// GrantedScope is the one scope rule of the token and authorization endpoints (RFC 6749 §3.3).
func TestGrantedScope(t *testing.T) {
	allowed := []string{"openid", "api.read", "api.write"}
	for _, tc := range []struct {
		param   string
		allowed []string
		want    []string
		code    string
	}{
		{"", allowed, allowed, ""},
		{"  ", allowed, allowed, ""},
		{"api.read", allowed, []string{"api.read"}, ""},
		{"api.read  openid api.read", allowed, []string{"api.read", "openid"}, ""},
		{"api.read admin", allowed, nil, CodeInvalidScope},
		{"", nil, nil, CodeInvalidScope},
		{"api.read", nil, nil, CodeInvalidScope},
		// Tokens are exact: no case or prefix variant of an allowed scope passes.
		{"API.read", allowed, nil, CodeInvalidScope},
		{"api", allowed, nil, CodeInvalidScope},
		// Characters outside %x21 / %x23-5B / %x5D-7E, even around an allowed scope.
		{"api.read\tapi.write", allowed, nil, CodeInvalidScope},
		{`"api.read"`, allowed, nil, CodeInvalidScope},
		{`api\read`, allowed, nil, CodeInvalidScope},
		{"café", []string{"café"}, nil, CodeInvalidScope},
	} {
		got, err := GrantedScope(tc.param, tc.allowed)
		var code string
		if err != nil {
			code = err.Code
			if d := wireSafe(err.Description); d != err.Description {
				t.Errorf("GrantedScope(%q) description = %q, want only RFC 6749 §5.2 characters", tc.param, err.Description)
			}
		}
		if code != tc.code || !slices.Equal(got, tc.want) {
			t.Errorf("GrantedScope(%q, %q) = %q, %q, want %q, %q", tc.param, tc.allowed, got, code, tc.want, tc.code)
		}
	}
}
