package endpoints

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/golang-jwt/jwt/v5"
	"github.com/tokengate/tokengate/tokens"
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
		azp, err := p.idTokenClient(hint)
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

// idTokenClient returns the client an ID token this tokengate signed was issued to. Only the
// signature, the type and the issuer are checked: RP-Initiated Logout §2 accepts an expired
// id_token_hint, since the session it names may well have outlived it.
func (p *Pages) idTokenClient(raw string) (string, error) {
	if len(raw) > tokens.MaxTokenLen {
		return "", errors.New("id_token_hint is too long")
	}
	keys := p.keys()
	parser := jwt.NewParser(jwt.WithoutClaimsValidation(), jwt.WithStrictDecoding())
	claims := jwt.MapClaims{}
	_, err := parser.ParseWithClaims(raw, claims, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		key, ok := keys.Lookup(kid)
		// RFC 8725 §3.1: the key decides the algorithm, which refuses none and HS256 keyed with the
		// public key. §3.11: an access token (at+jwt) is not an ID token.
		if !ok || t.Method.Alg() != key.Alg {
			return nil, errors.New("unknown key or algorithm")
		}
		if typ, _ := t.Header["typ"].(string); !strings.EqualFold(typ, "JWT") {
			return nil, errors.New("not an ID token")
		}
		return key.Signer.Public(), nil
	})
	if err != nil {
		return "", err
	}
	if iss, _ := claims.GetIssuer(); iss != p.issuer {
		return "", errors.New("id_token_hint from another issuer")
	}
	// OIDC Core §2: azp is the party the ID token was issued to; tokengate sets it and a single aud.
	azp, _ := claims["azp"].(string)
	aud, _ := claims.GetAudience()
	if azp == "" || !slices.Contains(aud, azp) {
		return "", errors.New("id_token_hint names no client")
	}
	return azp, nil
}
