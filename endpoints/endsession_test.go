package endpoints

import (
	"crypto/hmac"
	"crypto/sha256"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/tokengate/tokengate/tokens"
)

func (f *fixture) idToken(clientID string) string {
	f.t.Helper()
	raw, err := f.minter.IDToken(tokens.IDToken{Subject: "alice", ClientID: clientID, TTL: time.Minute})
	if err != nil {
		f.t.Fatal(err)
	}
	return raw
}

// TestEndSessionRedirects: a post_logout_redirect_uri the identified client registered, byte for
// byte, gets the browser back with state; anything else the signed-out page and no Location. Either
// way the session is over.
func TestEndSessionRedirects(t *testing.T) {
	f := newFixture(t)
	webHint := f.idToken("web")
	spaHint := f.idToken("spa")
	other := newFixture(t)
	foreignHint := other.idToken("web")
	accessToken := f.accessToken("openid", "g1")
	// Expired hints are accepted: the session outlives the ID token.
	f.Advance(time.Hour)
	parts := strings.Split(webHint, ".")
	noneHint := b64.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + parts[1] + "."
	hsHint := hs256(`{"alg":"HS256","typ":"JWT","kid":"`+f.keys.Signing(f.Now()).ID+`"}`, parts[1], f.keys.JWKS())
	for _, tc := range []struct {
		name   string
		params url.Values
		to     string
	}{
		{"client_id", url.Values{"client_id": {"web"}, "post_logout_redirect_uri": {"https://web.example.com/bye"}, "state": {"s1"}},
			"https://web.example.com/bye?state=s1"},
		{"expired id_token_hint", url.Values{"id_token_hint": {webHint}, "post_logout_redirect_uri": {"https://web.example.com/bye"}},
			"https://web.example.com/bye"},
		{"hint and client_id agree", url.Values{"id_token_hint": {spaHint}, "client_id": {"spa"}, "post_logout_redirect_uri": {"https://spa.example.com/bye"}, "state": {"s2"}},
			"https://spa.example.com/bye?state=s2"},
		{"no client", url.Values{"post_logout_redirect_uri": {"https://web.example.com/bye"}}, ""},
		{"unknown client", url.Values{"client_id": {"nobody"}, "post_logout_redirect_uri": {"https://web.example.com/bye"}}, ""},
		{"another client's URI", url.Values{"client_id": {"spa"}, "post_logout_redirect_uri": {"https://web.example.com/bye"}}, ""},
		{"hint of another client", url.Values{"id_token_hint": {spaHint}, "post_logout_redirect_uri": {"https://web.example.com/bye"}}, ""},
		{"hint and client_id disagree", url.Values{"id_token_hint": {spaHint}, "client_id": {"web"}, "post_logout_redirect_uri": {"https://web.example.com/bye"}}, ""},
		{"hint and client_id disagree, hint's URI", url.Values{"id_token_hint": {spaHint}, "client_id": {"web"}, "post_logout_redirect_uri": {"https://spa.example.com/bye"}}, ""},
		{"hint of another issuer, same key", url.Values{"id_token_hint": {f.signed(jwt.SigningMethodES256, "JWT", jwt.MapClaims{"iss": "https://other.example", "aud": "web", "azp": "web"})},
			"post_logout_redirect_uri": {"https://web.example.com/bye"}}, ""},
		{"at+jwt hint naming a client", url.Values{"id_token_hint": {f.signed(jwt.SigningMethodES256, "at+jwt", jwt.MapClaims{"iss": f.issuer, "aud": "web", "azp": "web"})},
			"post_logout_redirect_uri": {"https://web.example.com/bye"}}, ""},
		{"foreign hint", url.Values{"id_token_hint": {foreignHint}, "post_logout_redirect_uri": {"https://web.example.com/bye"}}, ""},
		{"alg none hint", url.Values{"id_token_hint": {noneHint}, "post_logout_redirect_uri": {"https://web.example.com/bye"}}, ""},
		{"HS256 hint keyed with the kid", url.Values{"id_token_hint": {hsHint}, "post_logout_redirect_uri": {"https://web.example.com/bye"}}, ""},
		{"access token as hint", url.Values{"id_token_hint": {accessToken}, "post_logout_redirect_uri": {"https://web.example.com/bye"}}, ""},
		{"garbage hint with client_id", url.Values{"id_token_hint": {"x.y.z"}, "client_id": {"web"}, "post_logout_redirect_uri": {"https://web.example.com/bye"}}, ""},
		{"trailing slash", url.Values{"client_id": {"web"}, "post_logout_redirect_uri": {"https://web.example.com/bye/"}}, ""},
		{"case", url.Values{"client_id": {"web"}, "post_logout_redirect_uri": {"https://WEB.example.com/bye"}}, ""},
		{"query added", url.Values{"client_id": {"web"}, "post_logout_redirect_uri": {"https://web.example.com/bye?next=//evil.example"}}, ""},
		{"evil", url.Values{"client_id": {"web"}, "post_logout_redirect_uri": {"https://evil.example/"}}, ""},
		{"scheme-relative", url.Values{"client_id": {"web"}, "post_logout_redirect_uri": {"//evil.example/"}}, ""},
		{"javascript", url.Values{"client_id": {"web"}, "post_logout_redirect_uri": {"javascript:alert(1)"}}, ""},
		{"a login redirect URI", url.Values{"client_id": {"web"}, "post_logout_redirect_uri": {"https://web.example.com/cb"}}, ""},
		{"repeated URI", url.Values{"client_id": {"web"}, "post_logout_redirect_uri": {"https://web.example.com/bye", "https://evil.example/"}}, ""},
	} {
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			b := f.signedIn()
			var got *page
			if method == http.MethodGet {
				got = b.get(EndSessionPath, tc.params)
			} else {
				got = b.post(EndSessionPath, tc.params)
			}
			if tc.to != "" {
				if got.status != http.StatusFound || got.header.Get("Location") != tc.to {
					t.Errorf("%s %s: endsession = %d %q, want 302 to %q", method, tc.name, got.status, got.header.Get("Location"), tc.to)
				}
			} else if got.status != http.StatusOK || got.header.Get("Location") != "" || !strings.Contains(got.body, "You are signed out.") {
				t.Errorf("%s %s: endsession = %d %q, want the signed-out page and no redirect", method, tc.name, got.status, got.header.Get("Location"))
			}
			if after := b.authorize(webRequest()); !after.isForm() {
				t.Errorf("%s %s: after endsession authorize = %d, want the form", method, tc.name, after.status)
			}
		}
	}
}

// TestEndSessionHintAlgorithm: the key decides the algorithm (RFC 8725 §3.1): a PS256 signature by
// a key published for RS256 identifies no client, though the RSA key could verify it.
func TestEndSessionHintAlgorithm(t *testing.T) {
	f := newFixture(t)
	f.keys = testKeySet(t, tokens.RS256)
	claims := jwt.MapClaims{"iss": f.issuer, "aud": "web", "azp": "web"}
	for _, tc := range []struct {
		method jwt.SigningMethod
		to     string
	}{
		{jwt.SigningMethodRS256, "https://web.example.com/bye"},
		{jwt.SigningMethodPS256, ""},
	} {
		params := url.Values{"id_token_hint": {f.signed(tc.method, "JWT", claims)}, "post_logout_redirect_uri": {"https://web.example.com/bye"}}
		if got := f.browser().get(EndSessionPath, params); got.header.Get("Location") != tc.to {
			t.Errorf("endsession with a %s hint = %d %q, want Location %q", tc.method.Alg(), got.status, got.header.Get("Location"), tc.to)
		}
	}
}

// signed signs claims with the fixture's current key, with any alg and typ: what only a bug or a
// stolen key could produce, to show what the verifier checks beyond the signature.
func (f *fixture) signed(method jwt.SigningMethod, typ string, claims jwt.MapClaims) string {
	f.t.Helper()
	key := f.keys.Signing(f.Now())
	token := jwt.NewWithClaims(method, claims)
	token.Header["kid"] = key.ID
	token.Header["typ"] = typ
	raw, err := token.SignedString(key.Signer)
	if err != nil {
		f.t.Fatal(err)
	}
	return raw
}

// hs256 signs header.payload with HMAC-SHA256 keyed by the published public keys: the algorithm
// confusion a verifier that trusts the token's alg falls for (RFC 8725 §2.1).
func hs256(header, payload string, key []byte) string {
	signing := b64.EncodeToString([]byte(header)) + "." + payload
	m := hmac.New(sha256.New, key)
	m.Write([]byte(signing))
	return signing + "." + b64.EncodeToString(m.Sum(nil))
}
