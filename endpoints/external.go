package endpoints

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/tokengate/tokengate/federation"
	"github.com/tokengate/tokengate/grants"
)

// externalCookie binds a sign-in under way at an external provider to the browser that began it.
const externalCookie = "tokengate_external"

// externalTTL is how long a person may take at the external provider.
const externalTTL = 10 * time.Minute

// pendingExternal is what the callback needs of a sign-in begun at an external provider. It lives
// in the browser's cookie, signed: a callback from another browser, or for another provider,
// finds no match. A store marker makes it serve once.
type pendingExternal struct {
	Provider string `json:"idp"`
	federation.Pending
	// Params are the client's authorization request, validated again at the callback.
	Params  url.Values `json:"params"`
	Expires int64      `json:"exp"`
}

// ExternalLink is a sign-in page's way to an external provider.
type ExternalLink struct {
	// Name is the provider's name, DisplayName its label.
	Name, DisplayName string
	// URL starts the sign-in with that provider for this authorization request: a URL of this
	// site.
	URL string
}

// external is the external provider that a sign-in for req goes straight to: the only provider
// req accepts (named by idp:, or the client's only one), when it is external.
func (p *Pages) external(req *authRequest) (*federation.Provider, bool) {
	if len(req.idps) != 1 {
		return nil, false
	}
	provider, ok := p.externals[req.idps[0]]
	return provider, ok
}

// externalLinks are the buttons of the sign-in page for req: one per external provider it
// accepts, in the client's order, each the authorization request again naming it with idp:.
func (p *Pages) externalLinks(req *authRequest) []ExternalLink {
	var links []ExternalLink
	for _, name := range req.idps {
		provider, ok := p.externals[name]
		if !ok {
			continue
		}
		params := url.Values{}
		for k, v := range req.carried {
			params[k] = v
		}
		acr := slices.DeleteFunc(strings.Fields(req.acrValues), func(v string) bool { return strings.HasPrefix(v, "idp:") })
		params.Set("acr_values", strings.Join(append(acr, "idp:"+name), " "))
		links = append(links, ExternalLink{Name: name, DisplayName: provider.DisplayName(), URL: p.authorizePath + "?" + params.Encode()})
	}
	return links
}

// hasPasswordProvider reports whether req accepts an identity provider that checks passwords here.
func (p *Pages) hasPasswordProvider(req *authRequest) bool {
	return slices.ContainsFunc(req.idps, func(name string) bool { return p.externals[name] == nil })
}

// startExternal sends the browser to provider's authorization endpoint for req, the pending
// sign-in in its cookie.
func (p *Pages) startExternal(w http.ResponseWriter, r *http.Request, req *authRequest, provider *federation.Provider) {
	if aerr := p.externalTenant(req, provider); aerr != nil {
		p.refuse(w, aerr)
		return
	}
	to, pending, err := provider.Start(r.Context(), federation.Hints{LoginHint: req.loginHint, ForceLogin: req.forceLogin})
	if err != nil {
		p.refuseExternal(w, req, provider, err)
		return
	}
	payload, err := json.Marshal(pendingExternal{
		Provider: provider.Name(),
		Pending:  pending,
		Params:   req.carried,
		Expires:  p.now().Add(externalTTL).Unix(),
	})
	if err != nil {
		p.logger.Error("encoding a pending sign-in failed", zap.Error(err))
		p.refuse(w, req.fail("server_error", "the sign-in could not begin"))
		return
	}
	value := b64.EncodeToString(payload) + "." + b64.EncodeToString(p.mac("external", payload))
	if len(value) > maxCookieValue {
		p.refuse(w, req.fail("invalid_request", "the authorization request is too large to sign in through another provider"))
		return
	}
	setCookie(w, r, externalCookie, value, int(externalTTL/time.Second))
	h := w.Header()
	h.Set("Location", to)
	h.Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(http.StatusFound)
}

// externalTenant checks acr_values tenant: against the tenants provider declares.
func (p *Pages) externalTenant(req *authRequest, provider *federation.Provider) *authError {
	if req.tenant != "" && !slices.Contains(provider.Tenants(), req.tenant) {
		return req.fail("invalid_request", "the tenant is not one of the identity provider's")
	}
	return nil
}

// refuseExternal ends a sign-in at an external provider that failed, at the client's redirect URI.
func (p *Pages) refuseExternal(w http.ResponseWriter, req *authRequest, provider *federation.Provider, err error) {
	var ferr *federation.Error
	if !errors.As(err, &ferr) {
		ferr = &federation.Error{Code: federation.CodeServerError, Description: "the sign-in failed", Err: err}
	}
	if ferr.Code == federation.CodeAccessDenied {
		p.logger.Info("an external sign-in was refused", zap.String("idp", provider.Name()), zap.Error(ferr))
	} else {
		p.logger.Warn("an external sign-in failed", zap.String("idp", provider.Name()), zap.Error(ferr))
	}
	p.refuse(w, req.fail(ferr.Code, ferr.Description))
}

// ExternalCallback serves GET /connect/external/<name>/callback, where provider's authorization
// responses arrive (RFC 6749 §4.1.2). The path names the provider, so an answer is only ever taken
// as from the provider it reached (RFC 9700 §4.4.2, distinct redirect URIs against mix-up).
func (p *Pages) ExternalCallback(provider *federation.Provider) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", "GET")
			p.showError(w, http.StatusMethodNotAllowed, "This address takes GET.")
			return
		}
		query, err := url.ParseQuery(r.URL.RawQuery)
		if err != nil {
			p.showError(w, http.StatusBadRequest, "The request is malformed.")
			return
		}
		pending, ok := p.takePending(w, r, provider, query)
		if !ok {
			return
		}
		// The client's request is checked again: its registration may have changed since.
		req, aerr := p.parseAuthorize(r.Context(), pending.Params)
		if aerr != nil {
			p.refuse(w, aerr)
			return
		}
		if aerr := p.externalTenant(req, provider); aerr != nil {
			p.refuse(w, aerr)
			return
		}
		// RFC 9207 §2.4: an iss that is not the provider's is a mix-up; the code goes nowhere.
		if iss, sent := query["iss"]; sent && (len(iss) != 1 || iss[0] != provider.Issuer()) {
			p.refuseExternal(w, req, provider, &federation.Error{Code: federation.CodeServerError,
				Description: "the identity provider's answer came from another issuer", Err: errors.New("iss mismatch")})
			return
		}
		if code := query.Get("error"); code != "" {
			p.refuseExternal(w, req, provider, federation.UpstreamError(code))
			return
		}
		code, repeated := single(query, "code")
		if code == "" || repeated {
			p.refuseExternal(w, req, provider, &federation.Error{Code: federation.CodeServerError,
				Description: "the identity provider sent no code", Err: errors.New("no code")})
			return
		}
		person, err := provider.Finish(r.Context(), code, pending.Pending)
		if err != nil {
			p.refuseExternal(w, req, provider, err)
			return
		}
		if req.tenant != "" {
			person.Claims["tenant"] = req.tenant
		}
		user := grants.SignedIn{Subject: person.Subject, Claims: person.Claims, AuthTime: p.now(), IdP: provider.Name()}
		p.issueCode(w, r, req, p.startSession(w, r, user))
	})
}

// takePending returns the sign-in this browser began at provider whose state the callback
// carries, and makes sure it serves once. When there is none it answers with an error page, never
// a redirect (RFC 6749 §10.12: a response this browser did not ask for is nobody's to deliver).
func (p *Pages) takePending(w http.ResponseWriter, r *http.Request, provider *federation.Provider, query url.Values) (pendingExternal, bool) {
	const stale = "This sign-in has expired or was not begun in this browser. Go back to the application and sign in again."
	var pending pendingExternal
	state, repeated := single(query, "state")
	value, ok := cookie(r, externalCookie)
	if !ok || state == "" || repeated || len(value) > maxCookieValue {
		p.showError(w, http.StatusBadRequest, stale)
		return pending, false
	}
	payloadPart, macPart, _ := strings.Cut(value, ".")
	payload, err1 := b64.DecodeString(payloadPart)
	sum, err2 := b64.DecodeString(macPart)
	if err1 != nil || err2 != nil || !hmac.Equal(sum, p.mac("external", payload)) ||
		json.Unmarshal(payload, &pending) != nil || p.now().Unix() >= pending.Expires ||
		pending.Provider != provider.Name() || !hmac.Equal([]byte(pending.State), []byte(state)) {
		p.showError(w, http.StatusBadRequest, stale)
		return pending, false
	}
	setCookie(w, r, externalCookie, "", -1)
	digest := sha256.Sum256([]byte(pending.State))
	fresh, err := p.used.PutOnce(r.Context(), "external-state/"+b64.EncodeToString(digest[:]), nil, time.Unix(pending.Expires, 0))
	switch {
	case err != nil:
		p.logger.Error("recording an external sign-in's state failed", zap.Error(err))
		p.showError(w, http.StatusServiceUnavailable, "Signing in is not possible right now. Try again later.")
		return pending, false
	case !fresh:
		p.showError(w, http.StatusBadRequest, stale)
		return pending, false
	}
	return pending, true
}
