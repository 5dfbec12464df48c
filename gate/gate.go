// Package gate decides whether a request may pass a bearer_auth route, in plain net/http: it
// takes the access token from the Authorization header (RFC 6750 §2.1), verifies it through a
// cache, refuses revoked tokens, checks audience, claims and scope, and either sets the identity
// headers the upstream reads or returns the refusal with its RFC 6750 §3 challenge. It imports no
// Caddy package.
package gate

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/tokengate/tokengate/resource"
	"github.com/tokengate/tokengate/tokens"
)

// HeaderCopy copies a claim into a header of the upstream request.
type HeaderCopy struct {
	// Claim is the claim's name (sub, client_id, scope, or any other).
	Claim string
	// Header is the request header to set. An incoming header of that name is always removed.
	Header string
}

// Requirements are what a route asks of a valid token beyond being valid.
type Requirements struct {
	// ScopeSets: any one set suffices, and every scope in that set is required. None means no
	// scope is checked.
	ScopeSets [][]string
	// Audience the token's aud must contain; "" accepts any audience in Gate.Audiences.
	Audience string
	// Resource makes the route an OAuth protected resource (RFC 9728) of this canonical URI: the
	// token's aud must contain it, checked before the scopes, and every challenge names where its
	// metadata lives and, when there are ScopeSets, the first set. "" is no resource. Not with
	// Audience.
	Resource string
	// Claims are required claim values: a string claim must equal the value, an array claim must
	// contain it. Numbers and booleans compare in their JSON form ("42", "true").
	Claims map[string]string
	// Headers are the identity headers set on the upstream request.
	Headers []HeaderCopy
	// ForwardToken leaves the validated Authorization header on the request. By default Check
	// removes it: forwarded, the token would land in the upstream's logs, and it stays valid at
	// every other route of its audience.
	ForwardToken bool
}

// Gate checks bearer tokens for one route. Verifier and Deny are required; the other fields may be
// left zero where noted.
type Gate struct {
	Verifier *tokens.Verifier
	Deny     *DenyList
	// Cache of verified tokens; nil verifies every request.
	Cache *Cache
	// Realm is the realm of the challenges; "" leaves it out.
	Realm string
	// Audiences are the audiences this tokengate issues: with no Req.Audience, a token must carry
	// one of them. Empty refuses every token that Req.Audience does not name.
	Audiences map[string]bool
	// ClientKnown reports whether a client is still configured; a client removed from the
	// configuration has its tokens refused. nil accepts every client.
	ClientKnown func(clientID string) bool
	Req         Requirements
}

// The RFC 6750 §3.1 error codes.
const (
	errInvalidRequest    = "invalid_request"
	errInvalidToken      = "invalid_token"
	errInsufficientScope = "insufficient_scope"
)

// Why a request was refused: the Err of a Refusal, for the server's log. None carries the token.
var (
	errNoToken       = errors.New("no bearer token")
	errTwoHeaders    = errors.New("more than one Authorization header")
	errTokenInQuery  = errors.New("access token in the query")
	errTwoMethods    = errors.New("access token sent by more than one method")
	errEmptyToken    = errors.New("empty bearer token")
	errTokenInvalid  = errors.New("token malformed, forged, expired or foreign")
	errTokenRevoked  = errors.New("token revoked, or its client removed")
	errWrongAudience = errors.New("token not issued for this audience")
	errClaimMissing  = errors.New("token lacks a required claim value")
	errScopeMissing  = errors.New("token lacks the required scope")
)

// maxFormPeek bounds how much of a form body is read to look for a second copy of the token.
const maxFormPeek = 64 << 10

// Refusal is a request the gate turns away, and the RFC 6750 §3 answer it gets.
type Refusal struct {
	// Status is 400 (invalid_request), 401 (no token, or invalid_token) or 403 (insufficient_scope).
	Status int
	// Code is the RFC 6750 §3.1 error code; "" when the request carried no bearer token, which
	// §3.1 answers with a bare challenge.
	Code string
	// Challenge is the WWW-Authenticate value: Bearer with the realm, the error code, the scope
	// that would do when it is insufficient, and for a protected resource its resource_metadata
	// (RFC 9728 §5.1).
	Challenge string
	// Err says which check failed, for the server's log. It never carries the token.
	Err error
	// Subject is the sub of a token refused though valid (revoked, for another audience, without
	// the scope); "" when the token was not valid.
	Subject string
}

// refused is a Refusal whose challenge Check has yet to write.
func refused(status int, code string, why error) *Refusal {
	return &Refusal{Status: status, Code: code, Err: why}
}

// Check decides on the bearer token of r without writing a response, so that the caller answers a
// refusal its own way. On success it removes the Authorization header (unless Req.ForwardToken)
// and every configured identity header from r (whether or not the claim is present), sets those
// whose claims the token carries, and returns the claims, which are shared with the cache and must
// not be modified. Otherwise it returns the refusal.
func (g *Gate) Check(r *http.Request) (*tokens.Claims, *Refusal) {
	c, fail := g.check(r)
	if fail != nil {
		if c != nil {
			fail.Subject = c.Subject
		}
		fail.Challenge = g.challenge(fail)
		return nil, fail
	}
	if !g.Req.ForwardToken {
		r.Header.Del("Authorization")
	}
	g.setHeaders(r, c)
	return c, nil
}

// Authenticate is Check for a handler that lets the gate answer a refusal (userinfo): it writes the
// RFC 6750 §3 response, the challenge with a short plain-text body, and returns false.
func (g *Gate) Authenticate(w http.ResponseWriter, r *http.Request) (*tokens.Claims, bool) {
	c, fail := g.Check(r)
	if fail != nil {
		fail.write(w)
		return nil, false
	}
	return c, true
}

// check returns the claims of r's token, or the refusal with the claims of a valid token it refuses.
func (g *Gate) check(r *http.Request) (*tokens.Claims, *Refusal) {
	raw, fail := bearerToken(r)
	if fail != nil {
		return nil, fail
	}
	c, ok := g.verify(raw)
	if !ok {
		return nil, refused(http.StatusUnauthorized, errInvalidToken, errTokenInvalid)
	}
	// Revocation and the client's removal are checked after the cache, never instead of it: a
	// revoked token cannot be used again (RFC 7009 §2.1), from the very next request on.
	if g.Deny.Revoked(c.JTI, c.GrantID, c.DerivedFrom...) || g.Deny.ClientRevoked(c.ClientID, c.IssuedAt) ||
		g.Deny.GrantlessRevoked(c.ClientID, c.GrantID, c.IssuedAt) ||
		(g.ClientKnown != nil && !g.ClientKnown(c.ClientID)) {
		return c, refused(http.StatusUnauthorized, errInvalidToken, errTokenRevoked)
	}
	// RFC 9068 §4: the resource must be among the token's audiences; a token for another resource
	// is as foreign as one from another issuer.
	if !g.audienceOK(c.Audience) {
		return c, refused(http.StatusUnauthorized, errInvalidToken, errWrongAudience)
	}
	// RFC 6750 §3.1: a valid token without the privileges the route needs is a 403.
	if !g.Req.claimsOK(c.All) {
		return c, refused(http.StatusForbidden, errInsufficientScope, errClaimMissing)
	}
	if !g.Req.scopeOK(c.Scope) {
		return c, refused(http.StatusForbidden, errInsufficientScope, errScopeMissing)
	}
	return c, nil
}

// verify returns the claims of raw from the cache, or verifies and caches them.
func (g *Gate) verify(raw string) (*tokens.Claims, bool) {
	// Refused before the cache, so that an oversized token costs no hash (CVE-2025-30204).
	if len(raw) > tokens.MaxTokenLen {
		return nil, false
	}
	if g.Cache != nil {
		if c, ok := g.Cache.Get(raw); ok {
			// The cache outlives reloads: a hit counts only while the issuer and the key that
			// verified it are still this configuration's. Otherwise the signature check would
			// fail too, so there is no point in making it.
			return c, g.Verifier.Trusts(c)
		}
	}
	c, err := g.Verifier.VerifyAccessToken(raw)
	if err != nil {
		return nil, false
	}
	if g.Cache != nil {
		g.Cache.Put(raw, c)
	}
	return c, true
}

// bearerToken takes the token from the Authorization header (RFC 6750 §2.1), the only place the
// gate accepts it.
func bearerToken(r *http.Request) (string, *Refusal) {
	auth := r.Header.Values("Authorization")
	if len(auth) > 1 {
		return "", refused(http.StatusBadRequest, errInvalidRequest, errTwoHeaders)
	}
	var scheme, token string
	if len(auth) == 1 {
		scheme, token, _ = strings.Cut(strings.TrimSpace(auth[0]), " ")
	}
	// RFC 7235 §2.1: the scheme is case-insensitive ("bearer", "BEARER").
	if !strings.EqualFold(scheme, "Bearer") {
		// RFC 6750 §2.3, §5.3: a token in the URI leaks into logs and Referer, so it is refused
		// rather than used.
		if queryHasToken(r) {
			return "", refused(http.StatusBadRequest, errInvalidRequest, errTokenInQuery)
		}
		// RFC 6750 §3.1: no credentials, or another scheme such as Basic: a bare challenge.
		return "", refused(http.StatusUnauthorized, "", errNoToken)
	}
	// RFC 6750 §2: a client must not use more than one method to send the token.
	if queryHasToken(r) || formHasToken(r) {
		return "", refused(http.StatusBadRequest, errInvalidRequest, errTwoMethods)
	}
	token = strings.TrimLeft(token, " ")
	if token == "" {
		return "", refused(http.StatusUnauthorized, errInvalidToken, errEmptyToken)
	}
	return token, nil
}

func queryHasToken(r *http.Request) bool {
	return r.URL.RawQuery != "" && r.URL.Query().Has("access_token")
}

// formHasToken reports whether a form-encoded body (RFC 6750 §2.2) carries access_token. It reads
// at most maxFormPeek bytes and puts them back in front of the rest of the body for the upstream.
func formHasToken(r *http.Request) bool {
	if r.Body == nil || r.Body == http.NoBody {
		return false
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/x-www-form-urlencoded" {
		return false
	}
	head, _ := io.ReadAll(io.LimitReader(r.Body, maxFormPeek))
	r.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(head), r.Body), r.Body}
	// ParseQuery keeps parsing past a malformed pair, so a broken body cannot hide the token.
	form, _ := url.ParseQuery(string(head))
	return form.Has("access_token")
}

func (g *Gate) audienceOK(aud []string) bool {
	// RFC 8707 §2 and RFC 9068 §4: the resource's URI, compared as a string.
	if g.Req.Resource != "" {
		return slices.Contains(aud, g.Req.Resource)
	}
	if g.Req.Audience != "" {
		return slices.Contains(aud, g.Req.Audience)
	}
	return slices.ContainsFunc(aud, func(a string) bool { return g.Audiences[a] })
}

// claimsOK reports whether every required claim has its value.
func (q *Requirements) claimsOK(claims map[string]any) bool {
	for name, want := range q.Claims {
		if !claimHas(claims[name], want) {
			return false
		}
	}
	return true
}

// claimHas reports whether a claim equals want or, being an array, has an element that does.
func claimHas(v any, want string) bool {
	if list, ok := v.([]any); ok {
		return slices.ContainsFunc(list, func(e any) bool { return claimHas(e, want) })
	}
	s, ok := scalar(v)
	return ok && s == want
}

// scalar renders a JSON string, number or boolean as text; other values are not scalars.
func scalar(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, true
	case bool:
		return strconv.FormatBool(v), true
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64), true
	case json.Number:
		return v.String(), true
	}
	return "", false
}

// scopeOK reports whether scope (space-separated, RFC 6749 §3.3) holds every scope of at least one
// required set.
func (q *Requirements) scopeOK(scope string) bool {
	if len(q.ScopeSets) == 0 {
		return true
	}
	have := strings.Fields(scope)
	for _, set := range q.ScopeSets {
		if !slices.ContainsFunc(set, func(s string) bool { return !slices.Contains(have, s) }) {
			return true
		}
	}
	return false
}

// setHeaders removes every configured identity header, in any spelling an upstream might read as
// the same name, then sets those whose claims are present. Removing them even when the claim is
// absent stops a client from supplying its own identity (Caddy CVE-2026-30851).
func (g *Gate) setHeaders(r *http.Request, c *tokens.Claims) {
	if len(g.Req.Headers) == 0 {
		return
	}
	for name := range r.Header {
		if slices.ContainsFunc(g.Req.Headers, func(h HeaderCopy) bool { return sameHeader(name, h.Header) }) {
			delete(r.Header, name)
		}
	}
	for _, h := range g.Req.Headers {
		if v := headerValue(c.All[h.Claim]); v != "" {
			r.Header.Set(h.Header, v)
		}
	}
}

// sameHeader compares header names case-insensitively and with "_" equal to "-": CGI, PHP and
// several proxies map X_User_Id to X-User-Id, so a client could otherwise slip a second copy past
// the removal.
func sameHeader(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if fold(a[i]) != fold(b[i]) {
			return false
		}
	}
	return true
}

func fold(c byte) byte {
	switch {
	case 'A' <= c && c <= 'Z':
		return c + 'a' - 'A'
	case c == '_':
		return '-'
	}
	return c
}

// headerValue renders a claim for a header: a scalar as text, an array of scalars comma-separated,
// anything else as JSON; control characters are dropped so a claim cannot split the header. An
// absent claim gives "".
func headerValue(v any) string {
	text, ok := scalar(v)
	if list, isList := v.([]any); isList {
		text, ok = joinScalars(list)
	}
	if !ok && v != nil {
		if b, err := json.Marshal(v); err == nil {
			text = string(b)
		}
	}
	return strings.TrimSpace(strings.Map(func(r rune) rune {
		if r < 0x20 && r != '\t' || r == 0x7f {
			return -1
		}
		return r
	}, text))
}

// joinScalars joins an array of scalars with ", "; ok is false when an element is not a scalar.
func joinScalars(list []any) (string, bool) {
	parts := make([]string, len(list))
	for i, e := range list {
		p, ok := scalar(e)
		if !ok {
			return "", false
		}
		parts[i] = p
	}
	return strings.Join(parts, ", "), true
}

// challenge is the RFC 6750 §3 WWW-Authenticate value for f. Every refusal asks for it, a flood of
// bad tokens included, so it is written into one buffer.
func (g *Gate) challenge(f *Refusal) string {
	var b strings.Builder
	b.Grow(len("Bearer realm=\"\", error=\"insufficient_scope\"") + len(g.Realm))
	b.WriteString("Bearer")
	sep := " "
	// param writes the separator and name=" of the next auth-param; the caller writes its value
	// and the closing quote.
	param := func(name string) {
		b.WriteString(sep)
		b.WriteString(name)
		b.WriteString(`="`)
		sep = ", "
	}
	if g.Realm != "" {
		param("realm")
		writeQuoted(&b, g.Realm)
		b.WriteByte('"')
	}
	if f.Code != "" {
		param("error")
		b.WriteString(f.Code)
		b.WriteByte('"')
	}
	// RFC 6750 §3: the scope attribute names what the resource needs; of several acceptable sets,
	// the first, whole, so that a client asks for all of it at once (MCP's scope challenge
	// handling). A protected resource names it on the bare 401 too, where a client learns it.
	if len(g.Req.ScopeSets) > 0 && (f.Code == errInsufficientScope || g.Req.Resource != "" && f.Code == "") {
		param("scope")
		for i, scope := range g.Req.ScopeSets[0] {
			if i > 0 {
				b.WriteByte(' ')
			}
			writeScopeChars(&b, scope)
		}
		b.WriteByte('"')
	}
	// RFC 9728 §5.1: where the resource's metadata lives, built from its URI, never from the
	// request's Host, which the client chose.
	if g.Req.Resource != "" {
		if where, err := resource.MetadataURL(g.Req.Resource); err == nil {
			param("resource_metadata")
			writeQuoted(&b, where)
			b.WriteByte('"')
		}
	}
	return b.String()
}

// write answers the refusal: the challenge, the status, and a short plain-text body that never
// carries the token.
func (f *Refusal) write(w http.ResponseWriter) {
	h := w.Header()
	h.Set("WWW-Authenticate", f.Challenge)
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(f.Status)
	text := f.Code
	if text == "" {
		text = http.StatusText(f.Status)
	}
	io.WriteString(w, text+"\n")
}

// writeQuoted writes s as the content of an RFC 7230 §3.2.6 quoted-string: `"` and `\` escaped,
// control characters (CR, LF) dropped.
func writeQuoted(b *strings.Builder, s string) {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c == 0x7f:
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
}

// writeScopeChars writes only what RFC 6750 §3 allows of s in the scope attribute: %x20-21 /
// %x23-5B / %x5D-7E. Every byte of a multi-byte UTF-8 character is above %x7E.
func writeScopeChars(b *strings.Builder, s string) {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 0x20 && c <= 0x7e && c != '"' && c != '\\' {
			b.WriteByte(c)
		}
	}
}
