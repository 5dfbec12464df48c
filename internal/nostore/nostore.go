// Package nostore marks a response as one no cache may keep: every answer that carries a token, a
// credential or a person's data (RFC 6749 §5.1, OpenID Connect Core §5.3.2), and every page a person
// signs in on.
package nostore

import (
	"encoding/json"
	"net/http"
)

// Set adds the headers: Cache-Control: no-store (RFC 9111 §5.2.2.5), and Pragma: no-cache for the
// HTTP/1.0 caches RFC 6749 §5.1 still names.
func Set(h http.Header) {
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
}

// WriteJSON answers body as JSON with status, marked so.
func WriteJSON(w http.ResponseWriter, status int, body any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	Set(h)
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(body)
}
