package endpoints

import "net/http"

// crossOrigin lets a page of any origin call h with methods (a comma-separated list) and read the
// answer: browser apps and browser-based MCP clients, public clients all, call the token,
// revocation, registration and userinfo endpoints from their own origin. These endpoints
// authenticate by what the request carries (a code and its verifier, a refresh token, a bearer
// token), never by a cookie, and the answer allows no credentials, so a page learns nothing it
// could not already ask for. A preflight (OPTIONS) is answered here and never reaches h.
func crossOrigin(methods string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		header := w.Header()
		header.Set("Access-Control-Allow-Origin", "*")
		if r.Method != http.MethodOptions {
			h.ServeHTTP(w, r)
			return
		}
		header.Set("Access-Control-Allow-Methods", methods)
		header.Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
		header.Set("Access-Control-Max-Age", "600")
		w.WriteHeader(http.StatusNoContent)
	})
}
