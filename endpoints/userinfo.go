package endpoints

import (
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/tokengate/tokengate/gate"
	"github.com/tokengate/tokengate/grants"
	"github.com/tokengate/tokengate/internal/nostore"
	"github.com/tokengate/tokengate/tokens"
)

// scopeClaims are the standard claims (OIDC Core §5.1) and the scope that releases each (§5.4).
// Other claims of the user (their own `claim` lines, tenant) are returned with any openid token, as
// they are in the ID token.
var scopeClaims = map[string]string{
	"name": "profile", "family_name": "profile", "given_name": "profile", "middle_name": "profile",
	"nickname": "profile", "preferred_username": "profile", "profile": "profile", "picture": "profile",
	"website": "profile", "gender": "profile", "birthdate": "profile", "zoneinfo": "profile",
	"locale": "profile", "updated_at": "profile",
	"email": "email", "email_verified": "email",
	"address":      "address",
	"phone_number": "phone", "phone_number_verified": "phone",
}

// Userinfo serves GET and POST /connect/userinfo (OIDC Core §5.3): the claims about the person an
// access token speaks for. g checks the token as bearer_auth does (signature, typ, iss, exp,
// audience, revocation, a client still configured) and answers refusals with RFC 6750 §3
// challenges; its Requirements are replaced by the scope openid (§5.3: the token must have been
// granted for OpenID Connect). clients looks up the token's client, whose static claims are not
// the user's and are left out.
func Userinfo(g *gate.Gate, clients func(id string) (*grants.Client, bool)) http.Handler {
	ug := *g
	ug.Req = gate.Requirements{ScopeSets: [][]string{{"openid"}}}
	return crossOrigin("GET, POST", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		switch r.Method {
		case http.MethodGet, http.MethodPost:
		default:
			h.Set("Allow", "GET, POST, OPTIONS")
			http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
			return
		}
		c, ok := ug.Authenticate(w, bodyToken(r))
		if !ok {
			return
		}
		var static map[string]string
		if client, ok := clients(c.ClientID); ok {
			static = client.Claims
		}
		h.Set("Content-Type", "application/json")
		nostore.Set(h)
		json.NewEncoder(w).Encode(userClaims(c, static))
	}))
}

// bodyToken moves a token sent as the form parameter access_token (RFC 6750 §2.2, which OIDC Core
// §5.3.1 allows with POST) into the Authorization header, where the gate reads tokens. A request
// that has the header too keeps its body, so that the gate refuses the two methods (RFC 6750 §2).
func bodyToken(r *http.Request) *http.Request {
	if r.Method != http.MethodPost || r.Header.Get("Authorization") != "" {
		return r
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/x-www-form-urlencoded" {
		return r
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxFormBody))
	if err != nil {
		return r
	}
	form, err := url.ParseQuery(string(body))
	if err != nil || len(form["access_token"]) != 1 {
		return r
	}
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+form.Get("access_token"))
	r.Body = http.NoBody
	return r
}

// userClaims is the userinfo response (OIDC Core §5.3.2): sub, the standard claims the token's
// scope releases, and the user's other claims; never the token's own (iss, exp, client_id...) nor
// the client's static claims (static).
func userClaims(c *tokens.Claims, static map[string]string) map[string]any {
	scope := strings.Fields(c.Scope)
	out := map[string]any{"sub": c.Subject}
	for name, v := range c.All {
		if tokens.RegisteredClaim(name) {
			continue
		}
		if needed, standard := scopeClaims[name]; standard && !slices.Contains(scope, needed) {
			continue
		}
		// The user's claims replace the client's in the token, so a value that differs is the user's.
		if value, ok := static[name]; ok && v == value {
			continue
		}
		out[name] = v
	}
	return out
}
