package identity

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// HTTPLoginConfig is an `http_login` line.
type HTTPLoginConfig struct {
	// URL is where the form is POSTed: an absolute http or https URL. Required.
	URL string
	// SuccessLocation, when set, is the page a legacy login redirects to after a valid login: a
	// redirect to it (same scheme, host and path; the query ignored) is a valid login. Default:
	// none, every redirect is a wrong password.
	SuccessLocation string
	// Client sends the POST and should carry a timeout; its redirects are never followed. Default:
	// an http.Client without a timeout.
	Client *http.Client
}

// HTTPLogin delegates the password check to a legacy application: it POSTs the form fields
// `username`, `password`, and `tenant` when one is asked for. A 2xx answer is a valid login (a JSON
// object body adds claims); 401, 403 and every redirect are a wrong password, unless the redirect
// goes to the success location; anything else means the backend is unavailable.
type HTTPLogin struct {
	url     *url.URL
	success *url.URL // nil: no redirect is a valid login
	client  *http.Client
}

// NewHTTPLogin returns the provider cfg describes.
func NewHTTPLogin(cfg HTTPLoginConfig) (*HTTPLogin, error) {
	u, err := ParseHTTPLoginURL(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("http_login: %w", err)
	}
	h := &HTTPLogin{url: u, client: &http.Client{}}
	if cfg.SuccessLocation != "" {
		if h.success, err = ParseHTTPLoginURL(cfg.SuccessLocation); err != nil {
			return nil, fmt.Errorf("success_location: %w", err)
		}
	}
	if cfg.Client != nil {
		c := *cfg.Client
		h.client = &c
	}
	// Following a redirect would take a wrong password's 302 to an error page that answers 200 for
	// a valid login, and a 307 or 308 would re-post the password to wherever it points.
	h.client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return h, nil
}

// ParseHTTPLoginURL parses an http_login or success_location URL, which must be absolute http or
// https.
func ParseHTTPLoginURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "https" && u.Scheme != "http" || u.Host == "" {
		return nil, fmt.Errorf("%q: want an absolute http or https URL", raw)
	}
	return u, nil
}

// maxLoginResponse bounds what a login backend may make us read.
const maxLoginResponse = 64 << 10

// Authenticate asks the backend. The backend vouches for a tenant by a 2xx JSON object whose
// `tenant` member is exactly that tenant; a tenant it names is never replaced by the one asked for.
func (h *HTTPLogin) Authenticate(ctx context.Context, username, password, tenant string) (User, bool, error) {
	if strings.Contains(username, "|") {
		// `|` separates an external provider's name from its person's subject: a legacy login
		// must not vouch for a sub that names someone of an external provider.
		return User{}, false, nil
	}
	form := url.Values{"username": {username}, "password": {password}}
	if tenant != "" {
		form.Set("tenant", tenant)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.url.String(), strings.NewReader(form.Encode()))
	if err != nil {
		return User{}, false, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := h.client.Do(req)
	if err != nil {
		return User{}, false, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	defer resp.Body.Close()
	var body []byte
	if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		if body, err = io.ReadAll(io.LimitReader(resp.Body, maxLoginResponse)); err != nil {
			return User{}, false, fmt.Errorf("%w: reading the answer: %v", ErrUnavailable, err)
		}
	}
	return h.answer(resp.StatusCode, resp.Header.Get("Location"), body, username, tenant)
}

// answer reads the backend's answer to a sign-in: its status, its Location header and (for a 2xx)
// its body, at most maxLoginResponse bytes.
func (h *HTTPLogin) answer(status int, location string, body []byte, username, tenant string) (User, bool, error) {
	user := User{Subject: username, Claims: map[string]any{}}
	switch {
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return User{}, false, nil
	case status >= 300 && status <= 399:
		if !h.isSuccessLocation(location) {
			return User{}, false, nil
		}
		// A redirect has no body to vouch for a tenant with.
		redirected, ok := user.signedInTo(tenant, false)
		return redirected, ok, nil
	case status < 200 || status > 299:
		return User{}, false, fmt.Errorf("%w: status %d", ErrUnavailable, status)
	}
	if strings.HasPrefix(strings.TrimSpace(string(body)), "{") {
		// A body that is not a JSON object adds nothing; it does not make a valid login invalid.
		// Nor does one that breaks off: what it held before the break is dropped with it.
		if json.Unmarshal(body, &user.Claims) != nil {
			user.Claims = map[string]any{}
		}
	}
	user, ok := user.signedInTo(tenant, user.Claims[tenantClaim] == tenant)
	return user, ok, nil
}

// isSuccessLocation reports whether a redirect's Location, resolved against the login URL (RFC 9110
// §10.2.2), has the success location's scheme, host and path.
func (h *HTTPLogin) isSuccessLocation(location string) bool {
	if h.success == nil || location == "" {
		return false
	}
	ref, err := url.Parse(location)
	if err != nil {
		return false
	}
	loc := h.url.ResolveReference(ref)
	return loc.Scheme == h.success.Scheme && strings.EqualFold(loc.Host, h.success.Host) && loc.Path == h.success.Path
}
