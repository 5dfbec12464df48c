package endpoints

import (
	"crypto/hmac"
	"embed"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tokengate/tokengate/grants"
	"go.uber.org/zap"
)

// Page is what the page template is executed with, for every page a person sees: the sign-in form,
// an error, the signed-out notice. A template given as PagesConfig.Template (the Caddyfile's
// login_template) receives the same.
type Page struct {
	// Title names the page: "Sign in", "Signed out", "Sign-in problem".
	Title string
	// Message is one sentence for the person: why the form is shown again, what went wrong, or
	// what happened. Empty when there is nothing to say.
	Message string
	// Problem is set when Message reports a failure (a wrong password, a refused request).
	Problem bool
	// Client is the application the page is about; nil on pages about none.
	Client *ClientView
	// Login is the sign-in form; nil on pages without one.
	Login *LoginForm
	// Consent is the consent form; nil on pages without one.
	Consent *ConsentForm
}

// LoginForm is the sign-in form. When Password is set, a template must render it as one <form
// method="post"> to Action holding a text input named "username" (filled with Username), an
// <input type="password"> named "password", every Hidden field as <input type="hidden">, and a
// submit button; and each of External as a link to its URL labelled with its DisplayName.
type LoginForm struct {
	// Password is set when the person may sign in with a password here: the client may use a
	// `users` block.
	Password bool
	// External are the external identity providers the person may sign in through instead, in
	// the client's order.
	External []ExternalLink
	// Action is where the form posts: the authorization endpoint's path.
	Action string
	// Username prefills the username input: the login_hint, or what was typed before.
	Username string
	// ClientID is the client_id of the application the person signs in to, and ClientName what
	// the page calls it: its display name, or else its client_id.
	ClientID   string
	ClientName string
	// Hidden are the fields to post back unchanged: the authorization request's parameters and
	// the CSRF token.
	Hidden []Field
}

// Field is a hidden form field.
type Field struct {
	Name  string
	Value string
}

//go:embed templates/*.html
var templateFS embed.FS

// builtinTemplate is the page used without login_template: no script, no external asset.
var builtinTemplate = template.Must(template.ParseFS(templateFS, "templates/page.html"))

// pageCSP lets a page load nothing from elsewhere and be framed by no one (a framed sign-in form
// invites clickjacking). Inline styles and same-site assets remain for a login_template. There is
// no form-action: browsers apply it to the redirect that follows the form, which leaves the site.
const pageCSP = "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; script-src 'self'; frame-ancestors 'none'; base-uri 'none'"

// render answers with the page, under pageCSP.
func (p *Pages) render(w http.ResponseWriter, status int, page *Page) {
	writePage(w, p.logger, p.tmpl, pageCSP, status, page)
}

// showError answers with an error page.
func (p *Pages) showError(w http.ResponseWriter, status int, message string) {
	p.render(w, status, &Page{Title: "Sign-in problem", Message: message, Problem: true})
}

// showLogin answers with the sign-in form for req: username prefilled, message saying why it is
// shown again, if it is.
func (p *Pages) showLogin(w http.ResponseWriter, r *http.Request, req *authRequest, username, message string, status int) {
	p.render(w, status, &Page{
		Title:   "Sign in",
		Message: message,
		Problem: message != "",
		Client:  clientView(req),
		Login: &LoginForm{Action: p.authorizePath, Username: username, ClientID: req.client.ID,
			ClientName: req.client.Name(), Hidden: p.hiddenFields(w, r, req), Password: p.hasPasswordProvider(req), External: p.externalLinks(req)},
	})
}

// hiddenFields are what a form of the authorization endpoint posts back: req's parameters, to be
// validated again like a new request, and a CSRF token for this browser.
func (p *Pages) hiddenFields(w http.ResponseWriter, r *http.Request, req *authRequest) []Field {
	hidden := make([]Field, 0, len(req.carried)+1)
	for _, name := range carriedParams {
		for _, v := range req.carried[name] {
			hidden = append(hidden, Field{Name: name, Value: v})
		}
	}
	return append(hidden, Field{Name: fieldCSRF, Value: p.csrfToken(w, r)})
}

// csrfTTL is how long a sign-in form may stay open before it has to be loaded again.
const csrfTTL = time.Hour

// csrfToken returns a token for one form on this browser: its expiry and an HMAC binding it to the
// browser's CSRF cookie, set here when the browser has none (the signed double-submit cookie). A
// token from another browser, or forged without the key, does not match the cookie.
func (p *Pages) csrfToken(w http.ResponseWriter, r *http.Request) string {
	binding := ""
	if v, ok := cookie(r, csrfCookie); ok && len(v) == 43 && base64URLChars(v) {
		binding = v
	} else {
		binding = randomString()
		setCookie(w, r, csrfCookie, binding, 0)
	}
	exp := strconv.FormatInt(p.now().Add(csrfTTL).Unix(), 10)
	return exp + "." + b64.EncodeToString(p.mac("csrf", []byte(binding), []byte(exp)))
}

// csrfOK reports whether token was issued by csrfToken for r's CSRF cookie and has not expired.
func (p *Pages) csrfOK(r *http.Request, token string) bool {
	binding, ok := cookie(r, csrfCookie)
	if !ok {
		return false
	}
	exp, sum, ok := strings.Cut(token, ".")
	if !ok {
		return false
	}
	until, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || p.now().Unix() >= until {
		return false
	}
	got, err := b64.DecodeString(sum)
	return err == nil && hmac.Equal(got, p.mac("csrf", []byte(binding), []byte(exp)))
}

// signIn checks the password posted with the form, through the same throttled check as the password
// grant, and on success starts a session and sends the code.
func (p *Pages) signIn(w http.ResponseWriter, r *http.Request, req *authRequest, params url.Values) {
	username, repeatedUser := single(params, fieldUsername)
	password, repeatedPassword := single(params, fieldPassword)
	if username == "" || password == "" || repeatedUser || repeatedPassword {
		p.showLogin(w, r, req, username, "Enter your username and password.", http.StatusBadRequest)
		return
	}
	user, err := p.server.SignIn(r.Context(), p.clientIP(r), req.client, username, password, req.acrValues)
	switch {
	case err == nil:
	case err.HTTPStatus() == http.StatusTooManyRequests:
		wait := int((err.RetryAfter + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", strconv.Itoa(wait))
		p.showLogin(w, r, req, username, fmt.Sprintf("Too many attempts. Try again in %d s.", wait), http.StatusTooManyRequests)
		return
	case err.Code == grants.CodeInvalidGrant:
		// One message whether the user exists or not: the page must not tell which accounts exist.
		p.showLogin(w, r, req, username, "The username or password is incorrect.", http.StatusUnauthorized)
		return
	case err.HTTPStatus() >= http.StatusInternalServerError:
		p.logger.Error("signing in failed", zap.Error(err))
		p.showError(w, err.HTTPStatus(), "Signing in is not possible right now. Try again later.")
		return
	default:
		p.refuse(w, req.fail(err.Code, err.Description))
		return
	}
	p.issueCode(w, r, req, p.startSession(w, r, user))
}
