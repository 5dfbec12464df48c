package endpoints

import (
	"crypto/sha256"
	"crypto/subtle"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/tokengate/tokengate/grants"
	"github.com/tokengate/tokengate/internal/peeraddr"
	"github.com/tokengate/tokengate/store"
	"github.com/tokengate/tokengate/throttle"
)

// The device page's steps: the form each page holds, named by the hidden field "step" it posts.
const (
	DeviceStepCode   = "code"   // a text input user_code
	DeviceStepLogin  = "login"  // username and password
	DeviceStepDecide = "decide" // approve and deny buttons
)

const (
	// deviceCookie binds the page's forms to one browser (the double-submit cookie): every POST
	// must carry its value as the field "csrf".
	deviceCookie = "tokengate_device"
	// deviceSignInPrefix starts the one-time key of a sign-in waiting for its decision.
	deviceSignInPrefix = "device-signin:"
	// deviceMaxBody bounds a posted form: the largest holds a user code, a username and a password.
	deviceMaxBody = 16 << 10
	// deviceMaxUserCode bounds a user code taken from the URL to prefill the form.
	deviceMaxUserCode = 64
	// deviceCSP lets a page load nothing from elsewhere, post only here, and be framed by no one: a
	// framed approve button invites clickjacking.
	deviceCSP = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)

// NewDeviceGuesses returns the throttle of wrong user codes: from the 10th wrong code from one
// address within a minute, the page answers 429. A user code has 34 bits (RFC 8628 §5.1), so a
// guesser at that pace needs centuries for an even chance at one live code.
func NewDeviceGuesses() *throttle.Limiter { return throttle.New(9, time.Minute, 100000) }

// DeviceConfig is what a DevicePage is built from.
type DeviceConfig struct {
	// Issuer is the iss of every token; the page posts to DevicePath under its path. Required.
	Issuer string
	// Server finds pending requests, checks passwords (throttled per username and address) and
	// records decisions: a grants.Server; required.
	Server DeviceService
	// ClientIP names the address a request comes from, for the throttles of wrong user codes and
	// passwords: the same as the grants.Server's. Nil means the TCP peer.
	ClientIP func(*http.Request) string
	// SignIns carries a person's sign-in from the login step to the decision as a one-time value,
	// so that any instance on the store can take it, once; required (the store).
	SignIns store.OneTime
	// Guesses counts wrong user codes per address. It must outlive config reloads, or a reload
	// forgives a guesser; nil means NewDeviceGuesses().
	Guesses *throttle.Limiter
	// Template renders every device page from a DeviceView; nil means the built-in one. A
	// replacement must keep the forms' contract, described at DeviceView.
	Template *template.Template
	// Observe hears of the user code guessing it throttles (the grants.Server's observer); nil
	// means none.
	Observe grants.Observer
	// Logger gets server faults; nil means none.
	Logger *zap.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// DevicePage serves the verification URI (RFC 8628 §3.3): the person types the user code, signs
// in, and approves or denies the device's request.
type DevicePage struct {
	server   DeviceService
	clientIP func(*http.Request) string
	signIns  store.OneTime
	guesses  *throttle.Limiter
	observe  grants.Observer
	tmpl     *template.Template
	logger   *zap.Logger
	now      func() time.Time
	// action is where the forms post, and the cookie's path: DevicePath under the issuer's path.
	action string
}

// DeviceView is what the device template is executed with. Every form posts (method post) to
// Action, with hidden fields "csrf" (CSRF) and "step" (Step). By Step:
//   - DeviceStepCode: a text input "user_code", prefilled with UserCode, and a submit button;
//   - DeviceStepLogin: a text input "username" (prefilled with Username), an <input
//     type="password"> "password", a hidden "user_code" (UserCode), and a submit button;
//   - DeviceStepDecide: a hidden "ticket" (Ticket) and two submit buttons, "approve" first, then
//     one named "deny";
//   - "": no form; Message says what happened.
type DeviceView struct {
	// Title names the page.
	Title string
	// Message is one sentence for the person: why a form is shown again, or what happened.
	Message string
	// Problem is set when Message reports a failure.
	Problem bool
	Action  string
	CSRF    string
	Step    string
	// UserCode is the code typed so far, or the request's code (XXXX-XXXX) from the login step on.
	UserCode string
	// ClientID, ClientName (its display name, or else its client_id) and Scope describe the
	// request from the login step on.
	ClientID   string
	ClientName string
	Scope      []string
	Username   string
	Ticket     string
}

//go:embed templates/device.html
var deviceHTML string

// deviceTemplate is the device page used without a replacement: no script, no external asset.
var deviceTemplate = template.Must(template.New("device").Parse(deviceHTML))

// deviceSignIn is a sign-in waiting for the person's decision, kept under a hash of its ticket.
type deviceSignIn struct {
	UserCode string `json:"user_code"`
	// CSRF is a hash of the browser's CSRF cookie: the ticket counts only from the browser that
	// signed in.
	CSRF     []byte         `json:"csrf"`
	Subject  string         `json:"sub"`
	Claims   map[string]any `json:"claims,omitempty"`
	AuthTime time.Time      `json:"auth_time"`
	// IdP is the identity provider that checked the password: the approval's tokens name it, and
	// each refresh asks it whether the person still exists.
	IdP string `json:"idp,omitempty"`
}

// NewDevicePage checks cfg and returns the page.
func NewDevicePage(cfg DeviceConfig) (*DevicePage, error) {
	issuer, err := url.Parse(cfg.Issuer)
	switch {
	case cfg.Issuer == "" || err != nil:
		return nil, errors.New("endpoints: a valid issuer is required")
	case cfg.Server == nil || cfg.SignIns == nil:
		return nil, errors.New("endpoints: the device page needs a grants server and a store")
	}
	p := &DevicePage{
		server:   cfg.Server,
		clientIP: cfg.ClientIP,
		signIns:  cfg.SignIns,
		guesses:  cfg.Guesses,
		observe:  cfg.Observe,
		tmpl:     cfg.Template,
		logger:   cfg.Logger,
		now:      cfg.Now,
		action:   strings.TrimSuffix(issuer.Path, "/") + DevicePath,
	}
	if p.clientIP == nil {
		p.clientIP = peeraddr.Of
	}
	if p.guesses == nil {
		p.guesses = NewDeviceGuesses()
	}
	if p.observe == nil {
		p.observe = func(grants.Event) {}
	}
	if p.tmpl == nil {
		p.tmpl = deviceTemplate
	}
	if p.logger == nil {
		p.logger = zap.NewNop()
	}
	if p.now == nil {
		p.now = time.Now
	}
	return p, nil
}

// ServeHTTP shows the code form to GET (prefilled from verification_uri_complete's user_code) and
// runs the step a POST names.
func (p *DevicePage) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		typed := r.URL.Query().Get("user_code")
		if len(typed) > deviceMaxUserCode {
			typed = ""
		}
		p.showCode(w, r, typed, http.StatusOK, "")
	case http.MethodPost:
		p.post(w, r)
	default:
		w.Header().Set("Allow", "GET, HEAD, POST")
		http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
	}
}

// deviceForm is a posted form: each field once, from the body only.
type deviceForm url.Values

func (f deviceForm) get(name string) string {
	if vs := f[name]; len(vs) == 1 {
		return vs[0]
	}
	return ""
}

func (p *DevicePage) post(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, deviceMaxBody)
	if err := r.ParseForm(); err != nil {
		p.showCode(w, r, "", http.StatusBadRequest, "The form could not be read. Enter the code again.")
		return
	}
	form := deviceForm(r.PostForm)
	// The double-submit check: a page on another site can make the browser post here, and the
	// cookie goes along, but it cannot read the cookie to put its value in the form.
	csrf, ok := deviceCookieValue(r)
	if !ok || subtle.ConstantTimeCompare([]byte(form.get("csrf")), []byte(csrf)) != 1 {
		p.showCode(w, r, "", http.StatusForbidden, "This form has expired. Enter the code again.")
		return
	}
	switch form.get("step") {
	case DeviceStepCode:
		if req, ok := p.pending(w, r, form.get("user_code")); ok {
			p.showLogin(w, r, req, "", http.StatusOK, "")
		}
	case DeviceStepLogin:
		if req, ok := p.pending(w, r, form.get("user_code")); ok {
			p.signIn(w, r, req, form, csrf)
		}
	case DeviceStepDecide:
		p.decide(w, r, form.get("ticket"), csrf, form.get("approve") != "" && form.get("deny") == "")
	default:
		p.showCode(w, r, "", http.StatusBadRequest, "Enter the code shown on your device.")
	}
}

// pending finds the request under a typed user code, counting wrong codes per address (RFC 8628
// §5.1: the user code is short, so guessing must be slowed). Each lookup holds a failure of its
// address until it is known, so codes typed at once are limited as if typed one after another.
// While an address is throttled every code is refused, a right one too, or a guesser would learn
// from the answers. When it returns false it has answered.
func (p *DevicePage) pending(w http.ResponseWriter, r *http.Request, typed string) (grants.DeviceRequest, bool) {
	address, now := p.clientIP(r), p.now()
	guess, wait, ok := p.guesses.Reserve(address, now)
	if !ok {
		p.observe(grants.Event{Kind: grants.EventThrottled, What: grants.ThrottledUserCode, RemoteIP: address})
		secs := int((wait + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		p.showCode(w, r, typed, http.StatusTooManyRequests, fmt.Sprintf("Too many wrong codes. Try again in %d s.", secs))
		return grants.DeviceRequest{}, false
	}
	defer guess.Release()
	req, ok, err := p.server.PendingDevice(r.Context(), typed)
	if err != nil {
		p.failed(w, http.StatusServiceUnavailable, "looking up a user code", err)
		return req, false
	}
	if !ok {
		guess.Fail(now)
		p.showCode(w, r, typed, http.StatusBadRequest, "That code is wrong or has expired. Check the code on your device.")
	}
	return req, ok
}

// signIn checks the password through the same throttled check as the password grant and, on
// success, shows the decision with a ticket for the sign-in.
func (p *DevicePage) signIn(w http.ResponseWriter, r *http.Request, req grants.DeviceRequest, form deviceForm, csrf string) {
	username, password := form.get("username"), form.get("password")
	if username == "" || password == "" {
		p.showLogin(w, r, req, username, http.StatusBadRequest, "Enter your username and password.")
		return
	}
	user, fail := p.server.SignIn(r.Context(), p.clientIP(r), req.Client, username, password, "")
	switch {
	case fail == nil:
	case fail.HTTPStatus() == http.StatusTooManyRequests:
		secs := int((fail.RetryAfter + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		p.showLogin(w, r, req, username, http.StatusTooManyRequests, fmt.Sprintf("Too many attempts. Try again in %d s.", secs))
		return
	case fail.Code == grants.CodeInvalidGrant:
		// One message whether the user exists or not: the page must not tell which accounts exist.
		p.showLogin(w, r, req, username, http.StatusUnauthorized, "The username or password is incorrect.")
		return
	case fail.HTTPStatus() >= http.StatusInternalServerError:
		p.failed(w, fail.HTTPStatus(), "signing in", fail)
		return
	default:
		// The client may use no identity provider: a configuration fault, not the person's.
		p.logger.Warn("device sign-in refused", zap.String("client_id", req.Client.ID), zap.String("error_code", fail.Code))
		p.show(w, http.StatusBadRequest, &DeviceView{Title: "Sign-in problem", Problem: true,
			Message: "Signing in to this application is not possible here."})
		return
	}
	ticket := randomString()
	binding := sha256.Sum256([]byte(csrf))
	payload, err := json.Marshal(deviceSignIn{UserCode: req.UserCode, CSRF: binding[:], Subject: user.Subject,
		Claims: user.Claims, AuthTime: user.AuthTime, IdP: user.IdP})
	if err == nil {
		_, err = p.signIns.PutOnce(r.Context(), deviceSignInKey(ticket), payload, req.ExpiresAt)
	}
	if err != nil {
		p.failed(w, http.StatusServiceUnavailable, "keeping a device sign-in", err)
		return
	}
	p.show(w, http.StatusOK, &DeviceView{Title: "Allow access?", Action: p.action, CSRF: csrf, Step: DeviceStepDecide,
		UserCode: req.UserCode, ClientID: req.Client.ID, ClientName: req.Client.Name(), Scope: req.Scope,
		Username: username, Ticket: ticket})
}

// decide records the person's decision for the sign-in the ticket names. The ticket is taken
// first, so a decision is posted once, and only from the browser that signed in. Anything but the
// approve button is a denial: any cancel control records one (RFC 8628 §3.3 lets the person deny).
func (p *DevicePage) decide(w http.ResponseWriter, r *http.Request, ticket, csrf string, approve bool) {
	payload, err := p.signIns.Take(r.Context(), deviceSignInKey(ticket))
	if errors.Is(err, store.ErrNotFound) || ticket == "" {
		p.showCode(w, r, "", http.StatusBadRequest, "This sign-in has expired or was used. Enter the code again.")
		return
	}
	if err != nil {
		p.failed(w, http.StatusServiceUnavailable, "taking a device sign-in", err)
		return
	}
	var s deviceSignIn
	if err := json.Unmarshal(payload, &s); err != nil {
		p.failed(w, http.StatusInternalServerError, "reading a device sign-in", err)
		return
	}
	binding := sha256.Sum256([]byte(csrf))
	if subtle.ConstantTimeCompare(s.CSRF, binding[:]) != 1 {
		p.showCode(w, r, "", http.StatusForbidden, "This form has expired. Enter the code again.")
		return
	}
	var recorded bool
	if approve {
		recorded, err = p.server.ApproveDevice(r.Context(), s.UserCode, grants.SignedIn{Subject: s.Subject, Claims: s.Claims, AuthTime: s.AuthTime, IdP: s.IdP})
	} else {
		recorded, err = p.server.DenyDevice(r.Context(), s.UserCode)
	}
	switch {
	case err != nil:
		p.failed(w, http.StatusServiceUnavailable, "recording a device decision", err)
	case !recorded:
		p.showCode(w, r, "", http.StatusBadRequest, "This request has expired or was decided already. Start again on your device.")
	case approve:
		p.show(w, http.StatusOK, &DeviceView{Title: "Device approved", UserCode: s.UserCode,
			Message: "You approved the device. You can return to it now."})
	default:
		p.show(w, http.StatusOK, &DeviceView{Title: "Device denied", UserCode: s.UserCode,
			Message: "You denied the device's request. It was given no access."})
	}
}

// showCode answers with the code form, typed prefilled.
func (p *DevicePage) showCode(w http.ResponseWriter, r *http.Request, typed string, status int, message string) {
	p.show(w, status, &DeviceView{Title: "Connect a device", Message: message, Problem: message != "",
		Action: p.action, CSRF: p.csrf(w, r), Step: DeviceStepCode, UserCode: typed})
}

// showLogin answers with the sign-in form for req.
func (p *DevicePage) showLogin(w http.ResponseWriter, r *http.Request, req grants.DeviceRequest, username string, status int, message string) {
	p.show(w, status, &DeviceView{Title: "Sign in", Message: message, Problem: message != "",
		Action: p.action, CSRF: p.csrf(w, r), Step: DeviceStepLogin, UserCode: req.UserCode,
		ClientID: req.Client.ID, ClientName: req.Client.Name(), Scope: req.Scope, Username: username})
}

// failed answers a server fault (the store, an identity provider) with status and no detail, and
// logs it.
func (p *DevicePage) failed(w http.ResponseWriter, status int, doing string, err error) {
	p.logger.Error("device page: "+doing+" failed", zap.Error(err))
	p.show(w, status, &DeviceView{Title: "Try again later", Problem: true,
		Message: "This is not possible right now. Try again in a moment."})
}

// show answers with the device page v, under deviceCSP.
func (p *DevicePage) show(w http.ResponseWriter, status int, v *DeviceView) {
	writePage(w, p.logger, p.tmpl, deviceCSP, status, v)
}

// csrf returns the browser's CSRF cookie value, setting a new cookie when it has none. The cookie
// lives for the browser session, on the device page's path only, out of scripts' reach, and is
// not sent with cross-site POSTs (SameSite=Lax).
func (p *DevicePage) csrf(w http.ResponseWriter, r *http.Request) string {
	if v, ok := deviceCookieValue(r); ok {
		return v
	}
	v := randomString()
	http.SetCookie(w, &http.Cookie{Name: deviceCookie, Value: v, Path: p.action, HttpOnly: true,
		Secure: r.TLS != nil, SameSite: http.SameSiteLaxMode})
	return v
}

// deviceCookieValue returns the CSRF cookie's value when it is one randomString could have made.
func deviceCookieValue(r *http.Request) (string, bool) {
	c, err := r.Cookie(deviceCookie)
	if err != nil || len(c.Value) != 43 || !base64URLChars(c.Value) {
		return "", false
	}
	return c.Value, true
}

// deviceSignInKey is the one-time key of a ticket: the store never sees the ticket itself.
func deviceSignInKey(ticket string) string {
	sum := sha256.Sum256([]byte(ticket))
	return deviceSignInPrefix + b64.EncodeToString(sum[:])
}

var _ http.Handler = (*DevicePage)(nil)
