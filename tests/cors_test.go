package tests

import (
	"net/http"
	"strings"
	"testing"
)

// A page of another origin (a browser app, a browser-based MCP client such as the MCP Inspector's
// web UI) may call the token, revocation, registration and userinfo endpoints and read their
// answers: a preflight is answered 204 and every answer allows any origin, never credentials. The
// endpoints a page has no business calling from elsewhere, introspection (confidential clients)
// and the authorization endpoint (a page the person sees), allow no origin.
func TestCrossOriginEndpoints(t *testing.T) {
	t.Parallel()
	c := startCaddy(t, strings.ReplaceAll(`{
	tokengate {
		issuer {{BASE}}
		store memory
		registration
		users staff {
			user alice {{ALICE_HASH}}
		}
	}
}

{{BASE}} {
	tokengate
}
`, "{{ALICE_HASH}}", aliceHash()))
	origin := http.Header{"Origin": {"https://inspector.example"}}
	for _, path := range []string{"/connect/token", "/connect/revocation", "/connect/register", "/connect/userinfo"} {
		preflight := send(t, c, request{method: http.MethodOptions, path: path, header: http.Header{
			"Origin": {"https://inspector.example"}, "Access-Control-Request-Method": {"POST"},
			"Access-Control-Request-Headers": {"content-type"}}})
		if preflight.status != http.StatusNoContent || preflight.header.Get("Access-Control-Allow-Origin") != "*" ||
			!strings.Contains(preflight.header.Get("Access-Control-Allow-Methods"), "POST") ||
			!strings.Contains(preflight.header.Get("Access-Control-Allow-Headers"), "Content-Type") {
			t.Errorf("OPTIONS %s: HTTP %d %v, want 204 allowing any origin to POST with a Content-Type", path, preflight.status, preflight.header)
		}
		if preflight.header.Get("Access-Control-Allow-Credentials") != "" {
			t.Errorf("OPTIONS %s allows credentials", path)
		}
		answer := send(t, c, request{path: path, header: origin, body: "grant_type=nothing"})
		if answer.header.Get("Access-Control-Allow-Origin") != "*" {
			t.Errorf("POST %s from another origin: HTTP %d without Access-Control-Allow-Origin", path, answer.status)
		}
	}
	for _, path := range []string{"/connect/introspect", "/connect/authorize"} {
		r := send(t, c, request{method: http.MethodOptions, path: path, header: origin})
		if got := r.header.Get("Access-Control-Allow-Origin"); got != "" {
			t.Errorf("OPTIONS %s: Access-Control-Allow-Origin %q, want none", path, got)
		}
	}
}
