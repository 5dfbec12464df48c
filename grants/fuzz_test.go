package grants

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzParseBody: any body gives a form or an invalid_request, never a panic; what it returns
// holds no empty value and no NUL, and resource values only apart from the form.
func FuzzParseBody(f *testing.F) {
	for _, seed := range []string{
		"grant_type=client_credentials&scope=api.read",
		"a=1&a=2", "%zz", "a=1;b=2", "a=%00", "=", "&&&", "scope=caf%C3%A9", "a=&b=",
		"resource=https%3A%2F%2Fa.example&resource=&resource=urn%3Ax",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body string) {
		got, resources, err := parseBody(body)
		if err != nil {
			if err.Code != CodeInvalidRequest {
				t.Fatalf("parseBody(%q) error code %q, want invalid_request", body, err.Code)
			}
			return
		}
		for name, v := range got {
			if v == "" || strings.ContainsRune(v, 0) || strings.ContainsRune(name, 0) {
				t.Fatalf("parseBody(%q) kept %q=%q", body, name, v)
			}
		}
		if _, ok := got[ResourceParam]; ok {
			t.Fatalf("parseBody(%q) kept resource in the form", body)
		}
		for _, v := range resources {
			if v == "" || strings.ContainsRune(v, 0) {
				t.Fatalf("parseBody(%q) kept resource %q", body, v)
			}
		}
	})
}

// FuzzReadCredentials: any Authorization header and body give credentials or an RFC 6749 error,
// never a panic; an error's description is always wire-safe.
func FuzzReadCredentials(f *testing.F) {
	for _, seed := range [][2]string{
		{"Basic YXBwOmFwcC1zZWNyZXQ=", "grant_type=client_credentials"},
		{"Basic %%%", ""},
		{"basic YXBw", "client_id=app"},
		{"Bearer x", "client_id=app&client_secret=s&client_assertion=a"},
		{"Basic YXBwJXp6OnNlY3JldA==", "client_id=other"},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, authorization, body string) {
		fm, _, ferr := parseBody(body)
		if ferr != nil {
			return
		}
		r := httptest.NewRequest(http.MethodPost, "/connect/token", nil)
		r.Header["Authorization"] = []string{authorization}
		creds, err := readCredentials(r, fm)
		if err != nil {
			if err.Code != CodeInvalidClient && err.Code != CodeInvalidRequest {
				t.Fatalf("readCredentials error code %q", err.Code)
			}
			if d := wireSafe(err.Description); d != err.Description || !utf8.ValidString(d) {
				t.Fatalf("description %q is not wire-safe", err.Description)
			}
			return
		}
		if creds.basic && fm["client_id"] != "" && fm["client_id"] != creds.clientID {
			t.Fatalf("Basic id %q accepted beside body client_id %q", creds.clientID, fm["client_id"])
		}
	})
}
