package endpoints

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/tokengate/tokengate/grants"
)

// The cookies the pages set (see setCookie).
const (
	sessionCookie = "tokengate_session"
	csrfCookie    = "tokengate_csrf"
)

// DefaultSessionTTL is how long a sign-in lasts before the login form is shown again.
const DefaultSessionTTL = 8 * time.Hour

// MinSessionKeyLen is the shortest session key accepted: HMAC-SHA256 wants a key of at least its
// output size (RFC 2104 §3).
const MinSessionKeyLen = 32

// maxCookieValue keeps a session cookie under the 4096 bytes per cookie that browsers store (RFC 6265
// §6.1); a bigger one would be dropped silently and every authorization would show the form again.
const maxCookieValue = 3800

// session is who signed in on this browser and when. It lives only in the cookie, signed, so every
// instance sharing the key reads it and nothing is stored.
type session struct {
	// ID (sid) names this sign-in, for a future front-channel logout.
	ID       string         `json:"sid"`
	Subject  string         `json:"sub"`
	Claims   map[string]any `json:"claims,omitempty"`
	AuthTime int64          `json:"auth_time"`
	// IdP is the identity provider that checked the password: a client that may not use it, or a
	// request naming another one (acr_values idp:), gets the form again.
	IdP     string `json:"idp"`
	Expires int64  `json:"exp"`
}

// tenant is the tenant the user signed in to, or "".
func (s *session) tenant() string {
	t, _ := s.Claims["tenant"].(string)
	return t
}

// mac is HMAC-SHA256 over label and parts, each length-prefixed so that no two different inputs
// give the same message. The label keeps a value signed for one purpose (a session) from verifying
// for another (a CSRF token).
func (p *Pages) mac(label string, parts ...[]byte) []byte {
	h := hmac.New(sha256.New, p.sessionKey)
	for _, part := range append([][]byte{[]byte(label)}, parts...) {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(part)))
		h.Write(n[:])
		h.Write(part)
	}
	return h.Sum(nil)
}

var b64 = base64.RawURLEncoding

// readSession returns the signed-in person of r, when its cookie carries a session signed with the
// key that has not expired.
func (p *Pages) readSession(r *http.Request) (*session, bool) {
	value, ok := cookie(r, sessionCookie)
	if !ok || len(value) > maxCookieValue {
		return nil, false
	}
	payloadPart, macPart, ok := strings.Cut(value, ".")
	if !ok {
		return nil, false
	}
	payload, err1 := b64.DecodeString(payloadPart)
	sum, err2 := b64.DecodeString(macPart)
	if err1 != nil || err2 != nil || !hmac.Equal(sum, p.mac("session", payload)) {
		return nil, false
	}
	var s session
	if json.Unmarshal(payload, &s) != nil || s.Subject == "" || p.now().Unix() >= s.Expires {
		return nil, false
	}
	return &s, true
}

// startSession puts the person who just signed in into a new session cookie and returns the
// session. A session too big for a cookie is not set (the person signs in again next time); the
// sign-in itself still counts.
func (p *Pages) startSession(w http.ResponseWriter, r *http.Request, user grants.SignedIn) *session {
	now := p.now()
	s := &session{
		ID:       randomString(),
		Subject:  user.Subject,
		Claims:   user.Claims,
		AuthTime: user.AuthTime.Unix(),
		IdP:      user.IdP,
		Expires:  now.Add(p.sessionTTL).Unix(),
	}
	payload, err := json.Marshal(s)
	if err != nil {
		p.logger.Error("encoding a session failed")
		return s
	}
	value := b64.EncodeToString(payload) + "." + b64.EncodeToString(p.mac("session", payload))
	if len(value) > maxCookieValue {
		p.logger.Warn("a session is too large for a cookie: the user's claims are too many; they will sign in at every authorization")
		return s
	}
	setCookie(w, r, sessionCookie, value, int(p.sessionTTL/time.Second))
	return s
}

// setCookie sets a cookie named base that no script reads (HttpOnly), sent on top-level navigations
// from other sites (a client redirecting to /connect/authorize) but not on their subrequests or
// cross-site POSTs (SameSite=Lax), and only over TLS when it came over TLS. maxAge 0 makes a
// browser-session cookie; a negative one deletes it.
func setCookie(w http.ResponseWriter, r *http.Request, base, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name:     cookieName(r, base),
		Value:    value,
		Path:     "/",
		MaxAge:   maxAge,
		HttpOnly: true,
		Secure:   r.TLS != nil,
		SameSite: http.SameSiteLaxMode,
	})
}

// cookie returns the value of the cookie named base.
func cookie(r *http.Request, base string) (string, bool) {
	c, err := r.Cookie(cookieName(r, base))
	if err != nil {
		return "", false
	}
	return c.Value, true
}

// cookieName is base, with the __Host- prefix over TLS: a browser then keeps the cookie only when
// this host set it Secure with Path=/ and no Domain, so a sibling subdomain cannot plant a session or
// CSRF cookie of its own (RFC 6265bis §4.1.3.2).
func cookieName(r *http.Request, base string) string {
	if r.TLS != nil {
		return "__Host-" + base
	}
	return base
}

// randomString is 256 random bits, base64url.
func randomString() string {
	var b [32]byte
	rand.Read(b[:])
	return b64.EncodeToString(b[:])
}
