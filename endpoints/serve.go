package endpoints

import (
	"net/http"
	"strconv"
)

// serveJSON answers a GET or HEAD with body, cacheable for maxAge seconds; other methods get 405.
// Both documents are public by design, so any origin may read them: a browser app (a public client)
// fetches them itself.
func serveJSON(w http.ResponseWriter, r *http.Request, body []byte, maxAge int) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("Cache-Control", "public, max-age="+strconv.Itoa(maxAge))
	h.Set("Access-Control-Allow-Origin", "*")
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(body)
}
