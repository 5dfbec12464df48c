package peeraddr

import (
	"net/http"
	"testing"
)

func TestOf(t *testing.T) {
	for remote, want := range map[string]string{
		"192.0.2.7:54321":   "192.0.2.7",
		"[2001:db8::1]:443": "2001:db8::1",
		"@":                 "@",
	} {
		r := &http.Request{RemoteAddr: remote}
		if got := Of(r); got != want {
			t.Errorf("Of(%q) = %q, want %q", remote, got, want)
		}
	}
}
