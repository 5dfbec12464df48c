package endpoints

import (
	"cmp"
	"context"
	"errors"
	"html/template"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/tokengate/tokengate/federation"
	"github.com/tokengate/tokengate/grants"
	"github.com/tokengate/tokengate/internal/nostore"
	"github.com/tokengate/tokengate/internal/peeraddr"
	"github.com/tokengate/tokengate/store"
	"github.com/tokengate/tokengate/tokens"
)

// PagesConfig is what Pages is built from.
type PagesConfig struct {
	// Issuer is the iss of every token, sent as iss with every authorization response (RFC 9207)
	// and required in an id_token_hint; required.
	Issuer string
	// Server knows the clients, checks passwords (throttled) and issues codes: a grants.Server;
	// required.
	Server SignInService
	// ClientIP names the address a request comes from, for the password throttle: the same as the
	// grants.Server's, so the page and the password grant count an address alike. Nil means the TCP
	// peer.
	ClientIP func(*http.Request) string
	// SessionKey signs session cookies and CSRF tokens (HMAC-SHA256): at least MinSessionKeyLen
	// random bytes, the same on every instance and kept across restarts, or sessions end with it.
	// Required.
	SessionKey []byte
	// SessionTTL is how long a sign-in lasts; zero means DefaultSessionTTL.
	SessionTTL time.Duration
	// Keys are the signing keys, to verify an id_token_hint at the end-session endpoint; required.
	Keys func() *tokens.KeySet
	// Template renders every page (sign-in, errors, signed out) from a Page; nil means the built-in
	// one. A replacement must keep the sign-in form's contract, described at LoginForm.
	Template *template.Template
	// External are the external identity providers (upstream federation), which sign people in
	// on their own pages; the clients name them like `users` blocks. Default: none.
	External []*federation.Provider
	// Used records the state of each external sign-in that came back, so that it serves once;
	// required with External.
	Used store.OneTime
	// Logger gets server faults; nil means none.
	Logger *zap.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Pages serves the endpoints a person's browser visits: the authorization endpoint with its
// sign-in form, and the end-session endpoint.
type Pages struct {
	issuer     string
	server     SignInService
	clientIP   func(*http.Request) string
	sessionKey []byte
	sessionTTL time.Duration
	keys       func() *tokens.KeySet
	tmpl       *template.Template
	logger     *zap.Logger
	now        func() time.Time
	externals  map[string]*federation.Provider
	used       store.OneTime
	// authorizePath is where the sign-in form posts: the authorization endpoint under the issuer's
	// path, never a URL the request supplied.
	authorizePath string
}

// NewPages checks cfg and returns the pages.
func NewPages(cfg PagesConfig) (*Pages, error) {
	issuer, err := url.Parse(cfg.Issuer)
	switch {
	case cfg.Issuer == "" || err != nil:
		return nil, errors.New("endpoints: a valid issuer is required")
	case cfg.Server == nil || cfg.Keys == nil:
		return nil, errors.New("endpoints: a grants server and the signing keys are required")
	case len(cfg.SessionKey) < MinSessionKeyLen:
		return nil, errors.New("endpoints: the session key must hold at least 32 bytes")
	case len(cfg.External) > 0 && cfg.Used == nil:
		return nil, errors.New("endpoints: external identity providers need a store of used states")
	}
	p := &Pages{
		issuer:        cfg.Issuer,
		server:        cfg.Server,
		clientIP:      cfg.ClientIP,
		sessionKey:    cfg.SessionKey,
		sessionTTL:    cfg.SessionTTL,
		keys:          cfg.Keys,
		tmpl:          cfg.Template,
		logger:        cfg.Logger,
		now:           cfg.Now,
		externals:     make(map[string]*federation.Provider, len(cfg.External)),
		used:          cfg.Used,
		authorizePath: strings.TrimSuffix(issuer.Path, "/") + AuthorizePath,
	}
	for _, provider := range cfg.External {
		p.externals[provider.Name()] = provider
	}
	if p.sessionTTL == 0 {
		p.sessionTTL = DefaultSessionTTL
	}
	if p.tmpl == nil {
		p.tmpl = builtinTemplate
	}
	if p.clientIP == nil {
		p.clientIP = peeraddr.Of
	}
	if p.logger == nil {
		p.logger = zap.NewNop()
	}
	if p.now == nil {
		p.now = time.Now
	}
	return p, nil
}

// maxParamLen bounds each authorization parameter that is kept (state, nonce, login_hint...): real
// ones are well under a kilobyte, and each ends up in a code, a cookie or a page.
const maxParamLen = 4096

// carriedParams are the authorization request's parameters that the sign-in form posts back as
// hidden fields, to be validated again like a new request: the form never carries a return URL.
var carriedParams = []string{
	"client_id", "redirect_uri", "response_type", "response_mode", "scope", "state", "nonce",
	"code_challenge", "code_challenge_method", "prompt", "max_age", "acr_values", grants.ResourceParam,
}

// The fields only a sign-in form posts.
const (
	fieldUsername = "username"
	fieldPassword = "password"
	fieldCSRF     = "csrf_token"
)

// authRequest is a validated authorization request (RFC 6749 §4.1.1, OIDC Core §3.1.2.1).
type authRequest struct {
	client      *grants.Client
	redirectURI string
	state       string
	scope       []string
	// resources are the resource indicators (RFC 8707), checked against the client; nil for none.
	resources []string
	nonce     string
	// challenge and method are the PKCE code_challenge and its method (RFC 7636 §4.3); empty
	// without PKCE.
	challenge, method string
	promptNone        bool
	// forceLogin: prompt=login or select_account, so a session does not answer the request.
	forceLogin bool
	// maxAge is max_age in seconds, -1 when absent.
	maxAge    int64
	loginHint string
	acrValues string
	// idps are the identity providers whose session answers the request, the first being the one a
	// sign-in uses; tenant is the acr_values tenant, or "".
	idps   []string
	tenant string
	// carried are the parameters the sign-in form posts back.
	carried url.Values
}

// authError refuses an authorization request. With a redirectURI it goes back to the client as
// RFC 6749 §4.1.2.1 says, code and description as error and error_description; without one the
// client or its redirect_uri cannot be trusted, and the person sees description on an error page
// instead: never a redirect to a URI the client did not register.
type authError struct {
	redirectURI string
	state       string
	code        string
	description string
	// status is the error page's; zero means 400.
	status int
}

// Authorize serves GET and POST /connect/authorize: the authorization code flow (RFC 6749 §4.1)
// with PKCE (RFC 7636) and OpenID Connect's parameters (OIDC Core §3.1.2), and a sign-in form for a
// person without a session. The form posts back here.
func (p *Pages) Authorize(w http.ResponseWriter, r *http.Request) {
	params, ok := p.params(w, r)
	if !ok {
		return
	}
	// A POST that speaks of a password must come from a form this site served to this browser, or
	// another site could sign a person in as someone else (login CSRF).
	// The same holds for a consent page's answer, or another site could approve on a person's
	// behalf.
	submitted := params.Has(fieldUsername) || params.Has(fieldPassword) || params.Has(fieldCSRF) || params.Has(fieldConsent)
	if submitted && (r.Method != http.MethodPost || !p.csrfOK(r, params.Get(fieldCSRF))) {
		p.showError(w, http.StatusForbidden, "This form has expired or was not sent by this site. Go back to the application and try again.")
		return
	}
	req, aerr := p.parseAuthorize(r.Context(), params)
	if aerr != nil {
		p.refuse(w, aerr)
		return
	}
	if params.Has(fieldConsent) {
		decision, repeated := single(params, fieldConsent)
		if repeated {
			decision = ""
		}
		p.decideConsent(w, r, req, decision)
		return
	}
	if submitted {
		p.signIn(w, r, req, params)
		return
	}
	s, ok := p.readSession(r)
	// A session lives in its cookie; whether its user still exists is asked at each use, so that
	// removing the user ends it.
	if !ok || !req.servedBy(s, p.now()) || !p.server.UserKnown(s.IdP, s.Subject) {
		// OIDC Core §3.1.2.6: prompt=none may show nothing; the client learns that a sign-in is needed.
		if req.promptNone {
			p.refuse(w, req.fail("login_required", "the user is not signed in"))
			return
		}
		if provider, ok := p.external(req); ok {
			p.startExternal(w, r, req, provider)
			return
		}
		p.showLogin(w, r, req, req.loginHint, "", http.StatusOK)
		return
	}
	p.issueCode(w, r, req, s)
}

// maxFormBody bounds a POSTed authorization request, sign-in form or logout request: real ones
// are a few kilobytes.
const maxFormBody = 64 << 10

// params reads a request's parameters: a GET's from its query, a POST's from its form-encoded body
// only, never the two merged (OIDC Core §3.1.2.1 and RP-Initiated Logout §2 accept both methods).
// On failure it answers and returns false.
func (p *Pages) params(w http.ResponseWriter, r *http.Request) (url.Values, bool) {
	raw := r.URL.RawQuery
	switch r.Method {
	case http.MethodGet:
	case http.MethodPost:
		mediaType, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if err != nil || mediaType != "application/x-www-form-urlencoded" {
			p.showError(w, http.StatusBadRequest, "The request must be a form.")
			return nil, false
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxFormBody))
		if err != nil {
			p.showError(w, http.StatusRequestEntityTooLarge, "The request is too large.")
			return nil, false
		}
		raw = string(body)
	default:
		w.Header().Set("Allow", "GET, POST")
		p.showError(w, http.StatusMethodNotAllowed, "This address takes GET and POST.")
		return nil, false
	}
	// ParseQuery, unlike URL.Query, refuses what it cannot decode ("%zz", ";") instead of dropping
	// it, so a parameter cannot be hidden from one reader and seen by another.
	values, err := url.ParseQuery(raw)
	if err != nil {
		p.showError(w, http.StatusBadRequest, "The request is malformed.")
		return nil, false
	}
	return values, true
}

// single returns a parameter sent at most once. RFC 6749 §3.1: a parameter sent without a value is
// treated as omitted, and none may be sent twice (repeated is then true).
func single(params url.Values, name string) (value string, repeated bool) {
	vs := params[name]
	if len(vs) > 1 {
		return "", true
	}
	if len(vs) == 1 {
		return vs[0], false
	}
	return "", false
}

// parseAuthorize validates an authorization request against its client. Until client_id and
// redirect_uri are known good, errors are for the person (RFC 6749 §4.1.2.1); after that,
// they go back to the client.
func (p *Pages) parseAuthorize(ctx context.Context, params url.Values) (*authRequest, *authError) {
	clientID, repeated := single(params, "client_id")
	if clientID == "" || repeated {
		return nil, &authError{description: "The application did not say which application it is (client_id)."}
	}
	client, err := p.server.LookupClient(ctx, clientID)
	switch {
	case errors.Is(err, grants.ErrNotOwned):
		return nil, &authError{description: "The application is not registered here."}
	case errors.Is(err, grants.ErrSourceUnavailable):
		p.logger.Error("resolving a client failed", zap.Error(err))
		return nil, &authError{status: http.StatusServiceUnavailable, description: "Signing in is not possible right now. Try again later."}
	case err != nil:
		// The source's reason holds no secret nor address, and tells the application's developer
		// what to fix.
		return nil, &authError{description: "The application's registration cannot be used: " + err.Error() + "."}
	}
	redirectURI, repeated := single(params, "redirect_uri")
	switch {
	case repeated:
		return nil, &authError{description: "The request names more than one redirect URI."}
	case redirectURI == "" && len(client.RedirectURIs) == 1:
		// RFC 6749 §3.1.2.3: a client with one registered redirection URI may leave it out.
		redirectURI = client.RedirectURIs[0]
	case redirectURI == "":
		return nil, &authError{description: "The request does not say where to return (redirect_uri)."}
	case !client.RedirectsTo(redirectURI):
		// Byte for byte, so no case, path, query or fragment variant of a registered URI passes
		// (fosite CVE-2020-15234, CVE-2020-15233).
		return nil, &authError{description: "The application asked to return to an address it has not registered."}
	}
	req := &authRequest{client: client, redirectURI: redirectURI, maxAge: -1, carried: url.Values{}}
	if state, repeated := single(params, "state"); !repeated && len(state) <= maxParamLen {
		req.state = state
	}
	for _, name := range carriedParams {
		vs := params[name]
		// RFC 8707 §2: resource alone may be repeated.
		if len(vs) > 1 && name != grants.ResourceParam {
			return nil, req.fail("invalid_request", name+" is repeated")
		}
		for _, v := range vs {
			if len(v) > maxParamLen {
				return nil, req.fail("invalid_request", name+" is too long")
			}
			if v != "" {
				req.carried.Add(name, v)
			}
		}
	}
	return req, req.validate(p, params)
}

// fail refuses req with an error that goes back to its client.
func (req *authRequest) fail(code, description string) *authError {
	return &authError{redirectURI: req.redirectURI, state: req.state, code: code, description: description}
}

// validate checks what req's client asked for, once its redirect URI is trusted.
func (req *authRequest) validate(p *Pages, params url.Values) *authError {
	get := req.carried.Get
	// OIDC Core §6: request objects are not supported, and say so with their own codes.
	if params.Get("request") != "" {
		return req.fail("request_not_supported", "request objects are not supported")
	}
	if params.Get("request_uri") != "" {
		return req.fail("request_uri_not_supported", "request_uri is not supported")
	}
	switch rt := get("response_type"); {
	case rt == "":
		return req.fail("invalid_request", "response_type is missing")
	case rt != "code":
		return req.fail("unsupported_response_type", "only response_type=code is supported")
	}
	if mode := get("response_mode"); mode != "" && mode != "query" {
		return req.fail("invalid_request", "only response_mode=query is supported")
	}
	if !slices.Contains(req.client.Grants, "authorization_code") {
		return req.fail("unauthorized_client", "the client may not use the authorization code grant")
	}
	// The token endpoint's scope rule, so a code is granted what a token would be.
	var err *grants.Error
	if req.scope, err = grants.GrantedScope(get("scope"), req.client.Scopes); err != nil {
		return req.fail(err.Code, err.Description)
	}
	if req.resources, err = p.server.Resources(req.client, req.carried[grants.ResourceParam]); err != nil {
		return req.fail(err.Code, err.Description)
	}
	// A client that identified itself at run time has no audience of its own: it says which
	// resource it wants a token for (RFC 8707 §2 counts a missing one as invalid_target).
	if req.client.Dynamic && len(req.resources) == 0 {
		return req.fail(grants.CodeInvalidTarget, "resource is required")
	}
	if err := req.pkce(get("code_challenge"), get("code_challenge_method")); err != nil {
		return err
	}
	if err := req.prompt(get("prompt")); err != nil {
		return err
	}
	if v := get("max_age"); v != "" {
		age, err := strconv.ParseInt(v, 10, 64)
		if strings.TrimLeft(v, "0123456789") != "" || err != nil {
			return req.fail("invalid_request", "max_age is not a non-negative integer")
		}
		req.maxAge = age
	}
	req.nonce = get("nonce")
	req.acrValues = get("acr_values")
	if hint, repeated := single(params, "login_hint"); !repeated && len(hint) <= maxParamLen {
		req.loginHint = hint
	}
	// acr_values is read as SignIn reads it: a session answers the requests a password would.
	acr, err := p.server.ACRValues(req.client, req.acrValues)
	if err != nil {
		return req.fail(err.Code, err.Description)
	}
	req.idps, req.tenant = acr.IdPs, acr.Tenant
	return nil
}

// pkce checks the code challenge (RFC 7636 §4.3, §4.4.1): required of a client that RequiresPKCE;
// plain only for a client registered with pkce_plain (RFC 9700 §2.1.1).
func (req *authRequest) pkce(challenge, method string) *authError {
	if challenge == "" {
		switch {
		case method != "":
			return req.fail("invalid_request", "code_challenge_method without code_challenge")
		case req.client.RequiresPKCE():
			return req.fail("invalid_request", "code_challenge is required (PKCE)")
		}
		return nil
	}
	if method == "" {
		// RFC 7636 §4.3: a missing method means plain.
		method = grants.PKCEPlain
	}
	switch method {
	case grants.PKCES256:
		// The base64url encoding of a SHA-256 hash: 43 characters, no padding (RFC 7636 §4.2).
		if len(challenge) != 43 || !base64URLChars(challenge) {
			return req.fail("invalid_request", "code_challenge is not a base64url SHA-256 hash")
		}
	case grants.PKCEPlain:
		if !req.client.PKCEPlain {
			return req.fail("invalid_request", "code_challenge_method plain is not allowed; use S256")
		}
		if len(challenge) < 43 || len(challenge) > 128 || !unreservedChars(challenge) {
			return req.fail("invalid_request", "code_challenge is not 43 to 128 unreserved characters")
		}
	default:
		return req.fail("invalid_request", "code_challenge_method is not supported")
	}
	req.challenge, req.method = challenge, method
	return nil
}

func base64URLChars(s string) bool {
	return strings.TrimLeft(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") == ""
}

// unreservedChars: RFC 7636 §4.1's [A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~".
func unreservedChars(s string) bool {
	return strings.TrimLeft(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~") == ""
}

// prompt reads OIDC Core §3.1.2.1's prompt. consent is satisfied as it is: a configured client is
// first party, its consent given by its registration, and a dynamic client's is asked every time.
func (req *authRequest) prompt(param string) *authError {
	values := strings.Fields(param)
	for _, v := range values {
		switch v {
		case "none":
			req.promptNone = true
		case "login", "select_account":
			req.forceLogin = true
		case "consent":
		default:
			return req.fail("invalid_request", "prompt holds an unknown value")
		}
	}
	if req.promptNone && len(values) > 1 {
		return req.fail("invalid_request", "prompt=none cannot be combined with another value")
	}
	return nil
}

// servedBy reports whether the session s answers req without a password: no prompt=login, recent
// enough for max_age (OIDC Core §3.1.2.1), from an identity provider the request accepts, and in the
// tenant it names.
func (req *authRequest) servedBy(s *session, now time.Time) bool {
	switch {
	case req.forceLogin:
		return false
	case req.maxAge >= 0 && now.Unix()-s.AuthTime > req.maxAge:
		return false
	case !slices.Contains(req.idps, s.IdP):
		return false
	case req.tenant != "" && s.tenant() != req.tenant:
		return false
	}
	return true
}

// issueCode answers req for the person of session s: with a code, or first with the consent page
// when the client is one the configuration does not declare.
func (p *Pages) issueCode(w http.ResponseWriter, r *http.Request, req *authRequest, s *session) {
	if req.client.Dynamic {
		p.askConsent(w, r, req, s)
		return
	}
	p.sendCode(w, r, req, s)
}

// sendCode sends the browser back to the client with a code for the person of session s (RFC 6749
// §4.1.2).
func (p *Pages) sendCode(w http.ResponseWriter, r *http.Request, req *authRequest, s *session) {
	code, err := p.server.IssueCode(r.Context(), grants.CodeGrant{
		ClientID:        req.client.ID,
		RedirectURI:     req.redirectURI,
		Scope:           req.scope,
		Resources:       req.resources,
		Nonce:           req.nonce,
		CodeChallenge:   req.challenge,
		ChallengeMethod: req.method,
		Subject:         s.Subject,
		Claims:          s.Claims,
		AuthTime:        time.Unix(s.AuthTime, 0),
		IdP:             s.IdP,
	})
	if err != nil {
		p.logger.Error("issuing an authorization code failed", zap.Error(err))
		p.refuse(w, req.fail("temporarily_unavailable", "the service is temporarily unavailable; retry later"))
		return
	}
	p.respond(w, req.redirectURI, req.state, url.Values{"code": {code}})
}

// refuse answers a refused authorization request: back to the client when its redirect URI is
// trusted, else on an error page.
func (p *Pages) refuse(w http.ResponseWriter, e *authError) {
	if e.redirectURI == "" {
		p.showError(w, cmp.Or(e.status, http.StatusBadRequest), e.description)
		return
	}
	p.respond(w, e.redirectURI, e.state, url.Values{"error": {e.code}, "error_description": {e.description}})
}

// respond redirects to the client's redirect URI with an authorization response: params, state
// (RFC 6749 §4.1.2), and iss (RFC 9207 §2, against mix-up attacks).
func (p *Pages) respond(w http.ResponseWriter, redirectURI, state string, params url.Values) {
	if state != "" {
		params.Set("state", state)
	}
	params.Set("iss", p.issuer)
	redirect(w, redirectURI, params)
}

// redirect sends the browser to the registered URI to, with params added to the query it already
// has (RFC 6749 §3.1.2: that query must be kept).
func redirect(w http.ResponseWriter, to string, params url.Values) {
	sep := "?"
	if strings.Contains(to, "?") {
		sep = "&"
	}
	if len(params) > 0 {
		to += sep + params.Encode()
	}
	h := w.Header()
	h.Set("Location", to)
	// The Location holds the code (RFC 6749 §4.1.2): no cache keeps it.
	nostore.Set(h)
	// The code and state must not leak to the next site through Referer.
	h.Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(http.StatusFound)
}
