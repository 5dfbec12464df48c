package tests

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// postToken POSTs body to /connect/token with the extra header (Authorization, mostly).
func postToken(t *testing.T, c *Caddy, header http.Header, body string) reply {
	t.Helper()
	return send(t, c, request{path: "/connect/token", header: header, body: body})
}

// wantToken checks r is a token response and decodes it.
func wantToken(t *testing.T, what string, r reply) tokenAnswer {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("%s: HTTP %d %s, want 200 and a token", what, r.status, r.body)
	}
	tok, err := r.tokenAnswer()
	if err != nil || tok.AccessToken == "" {
		t.Fatalf("%s: body %s (%v), want a token response", what, r.body, err)
	}
	return tok
}

// oauthError is an RFC 6749 §5.2 error body.
type oauthError struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

// wantError checks r is the RFC 6749 §5.2 error code, with one of statuses (400 when none is
// given), and that it passes readError's checks.
func wantError(t *testing.T, what string, r reply, code string, statuses ...int) {
	t.Helper()
	if len(statuses) == 0 {
		statuses = []int{http.StatusBadRequest}
	}
	if e, ok := readError(t, what, r); ok && (e.Error != code || !slices.Contains(statuses, r.status)) {
		t.Errorf("%s: error = %q (HTTP %d), want %q (HTTP %v); body %s", what, e.Error, r.status, code, statuses, r.body)
	}
}

// wantErrorIn checks r is one of the RFC 6749 §5.2 error codes, never a 500, and that it passes
// readError's checks.
func wantErrorIn(t *testing.T, what string, r reply, codes ...string) {
	t.Helper()
	if e, ok := readError(t, what, r); ok && (!slices.Contains(codes, e.Error) || r.status >= 500) {
		t.Errorf("%s: error = %q (HTTP %d), want one of %q; body %s", what, e.Error, r.status, codes, r.body)
	}
}

// readError decodes r as an RFC 6749 §5.2 error: JSON that must not be cached, whose text uses only
// the characters §5.2 allows. ok is false when r is no error at all.
func readError(t *testing.T, what string, r reply) (e oauthError, ok bool) {
	t.Helper()
	if err := json.Unmarshal(r.body, &e); err != nil || e.Error == "" {
		t.Errorf("%s: HTTP %d %.200q, want a JSON error", what, r.status, r.body)
		return e, false
	}
	if got := r.header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("%s: Cache-Control = %q, want %q", what, got, "no-store")
	}
	for _, s := range []string{e.Error, e.Description} {
		if bad := strings.IndexFunc(s, func(r rune) bool { return !errorChar(r) }); bad >= 0 {
			t.Errorf("%s: error text = %q, holding %q at %d, want only %%x20-21 / %%x23-5B / %%x5D-7E (RFC 6749 §5.2)", what, s, s[bad:bad+1], bad)
		}
	}
	return e, true
}

// errorChar reports whether RFC 6749 §5.2 allows r in error and error_description.
func errorChar(r rune) bool {
	return r == 0x20 || r == 0x21 || (r >= 0x23 && r <= 0x5B) || (r >= 0x5D && r <= 0x7E)
}

// wantInvalidClient checks an RFC 6749 §5.2 invalid_client: 401 with a Basic challenge when the
// request tried Basic (a MUST), 400 or 401 otherwise.
func wantInvalidClient(t *testing.T, what string, r reply, triedBasic bool) {
	t.Helper()
	if !triedBasic {
		wantError(t, what, r, "invalid_client", http.StatusBadRequest, http.StatusUnauthorized)
		return
	}
	wantError(t, what, r, "invalid_client", http.StatusUnauthorized)
	if got := r.header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Basic") {
		t.Errorf("%s: WWW-Authenticate = %q, want a Basic challenge", what, got)
	}
}
