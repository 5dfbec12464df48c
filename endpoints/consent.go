package endpoints

import (
	"net/http"
	"net/url"
)

// ClientView is what a page tells the person of the application that asks: its name and, for a
// client the configuration does not declare, that the name is its own claim and where the browser
// will go back to, since the name alone proves nothing.
type ClientView struct {
	// ID is the client_id; Name what the page calls the client: a configured client's display
	// name, a dynamic client's own client_name, or else its client_id's host or the client_id.
	ID   string
	Name string
	// Unverified is set for a client the configuration does not declare: this server has not
	// verified its name.
	Unverified bool
	// Host is the client_id's host for a client identified by the URL of its metadata document;
	// "" otherwise.
	Host string
	// RedirectHost is where the browser returns to with the answer: the redirect URI's host, or a
	// private-use scheme's name (RFC 8252 §7.1). Set with Unverified.
	RedirectHost string
}

// ConsentForm asks a person whether a client the configuration does not declare may act for them.
// A template must render it as one <form method="post"> to Action holding every Hidden field and
// two submit buttons named "consent", the first with the value "allow", the second "deny", and no
// other form with buttons before it.
type ConsentForm struct {
	// Action is where the form posts: the authorization endpoint's path.
	Action string
	// Username is who is signed in; Scope what the client asks for.
	Username string
	Scope    []string
	// Hidden are the fields to post back unchanged: the authorization request's parameters and
	// the CSRF token.
	Hidden []Field
}

// The consent form's field, and its two values.
const (
	fieldConsent = "consent"
	consentAllow = "allow"
	consentDeny  = "deny"
)

// clientView describes req's client for the pages.
func clientView(req *authRequest) *ClientView {
	c := req.client
	v := &ClientView{ID: c.ID, Name: c.Name()}
	if !c.Dynamic {
		return v
	}
	v.Unverified = true
	if u, err := url.Parse(c.ID); err == nil && (u.Scheme == "https" || u.Scheme == "http") {
		v.Host = u.Host
	}
	if u, err := url.Parse(req.redirectURI); err == nil {
		v.RedirectHost = u.Host
		if v.RedirectHost == "" {
			v.RedirectHost = u.Scheme + ":"
		}
	}
	return v
}

// askConsent shows the consent page for req to the person of session s: a client the
// configuration does not declare speaks only for itself, so the person decides each time, never
// silently. With prompt=none there is no page to show (OIDC Core §3.1.2.6).
func (p *Pages) askConsent(w http.ResponseWriter, r *http.Request, req *authRequest, s *session) {
	if req.promptNone {
		p.refuse(w, req.fail("consent_required", "the user must consent to this application"))
		return
	}
	hidden := p.hiddenFields(w, r, req)
	p.render(w, http.StatusOK, &Page{
		Title:   "Allow access?",
		Client:  clientView(req),
		Consent: &ConsentForm{Action: p.authorizePath, Username: s.Subject, Scope: req.scope, Hidden: hidden},
	})
}

// decideConsent records the person's answer to the consent page: allow sends the code, deny sends
// the client access_denied (RFC 6749 §4.1.2.1). Only a person still signed in, in a session the
// request accepts, may answer; prompt=login and max_age were met when the page was shown.
func (p *Pages) decideConsent(w http.ResponseWriter, r *http.Request, req *authRequest, decision string) {
	s, ok := p.readSession(r)
	asked := *req
	asked.forceLogin, asked.maxAge = false, -1
	if !ok || !asked.servedBy(s, p.now()) || !p.server.UserKnown(s.IdP, s.Subject) {
		p.showLogin(w, r, req, req.loginHint, "", http.StatusOK)
		return
	}
	switch decision {
	case consentAllow:
		p.sendCode(w, r, req, s)
	case consentDeny:
		p.refuse(w, req.fail("access_denied", "the user denied the request"))
	default:
		p.showError(w, http.StatusBadRequest, "The answer to the consent page is neither allow nor deny.")
	}
}
