package endpoints

import (
	"net/http"

	"github.com/tokengate/tokengate/tokens"
)

// jwksMaxAge is how long a client may cache the JWKS, in seconds. A new key is published well before
// it signs, so a client that caches the set this long still knows every key a token names.
const jwksMaxAge = 60

// JWKS serves the public half of the current key set (RFC 7517 §5) to GET and HEAD. keys is called
// per request, so a rotation shows at once.
func JWKS(keys func() *tokens.KeySet) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		serveJSON(w, r, keys().JWKS(), jwksMaxAge)
	})
}
