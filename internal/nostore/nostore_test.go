package nostore

import (
	"net/http"
	"testing"
)

func TestSet(t *testing.T) {
	h := http.Header{"Cache-Control": {"public, max-age=60"}}
	Set(h)
	for name, want := range map[string]string{"Cache-Control": "no-store", "Pragma": "no-cache"} {
		if got := h.Values(name); len(got) != 1 || got[0] != want {
			t.Errorf("%s = %q, want exactly %q", name, got, want)
		}
	}
}
