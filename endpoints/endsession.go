package endpoints

import (
	"net/http"
	"net/url"
	"slices"
)

// EndSession serves GET and POST /connect/endsession (OpenID Connect RP-Initiated Logout 1.0): it
// ends the browser's session, then returns to the client when the request names a
// post_logout_redirect_uri the client registered, and otherwise says the person is signed out.
func (p *Pages) EndSession(w http.ResponseWriter, r *http.Request) {
	params, ok := p.params(w, r)
	if !ok {
		return
	}
	setCookie(w, r, sessionCookie, "", -1)
	if to, ok := p.postLogoutRedirect(params); ok {
		redirect(w, to, stateOf(params))
		return
	}
	p.render(w, http.StatusOK, &Page{Title: "Signed out", Message: "You are signed out."})
}

// stateOf is the state to return with the post-logout redirect (RP-Initiated Logout §3).
func stateOf(params url.Values) url.Values {
	state, repeated := single(params, "state")
	if state == "" || repeated || len(state) > maxParamLen {
		return url.Values{}
	}
	return url.Values{"state": {state}}
}

// postLogoutRedirect returns where to send the browser after logout: only a URI the identified
// client registered, byte for byte (RP-Initiated Logout §3). The client is the one id_token_hint
// was issued to, or client_id; when both are sent they must agree (§2), and a hint that does not
// verify identifies no one.
func (p *Pages) postLogoutRedirect(params url.Values) (string, bool) {
	to, repeated := single(params, "post_logout_redirect_uri")
	if to == "" || repeated {
		return "", false
	}
	clientID, repeated := single(params, "client_id")
	if repeated {
		return "", false
	}
	if hint, repeated := single(params, "id_token_hint"); repeated {
		return "", false
	} else if hint != "" {
		// Only an ID token this tokengate signed, expired or not, names its client.
		azp, err := p.keys().VerifyIDTokenHint(hint, p.issuer)
		if err != nil || (clientID != "" && clientID != azp) {
			return "", false
		}
		clientID = azp
	}
	client, ok := p.server.Client(clientID)
	if !ok || !slices.Contains(client.PostLogoutRedirectURIs, to) {
		return "", false
	}
	return to, true
}
