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

// HTTPLogin delegates the password check to a legacy application: it POSTs the form fields
// `username`, `password`, and `tenant` when one is asked for; 2xx means valid (a JSON object body
// adds claims), 401 and 403 mean wrong, anything else means the backend is unavailable.
type HTTPLogin struct {
	url    string
	client *http.Client
}

// NewHTTPLogin returns a provider posting to url with client (which should carry a timeout).
func NewHTTPLogin(url string, client *http.Client) *HTTPLogin {
	return &HTTPLogin{url: url, client: client}
}

// maxLoginResponse bounds what a login backend may make us read.
const maxLoginResponse = 64 << 10

// Authenticate asks the backend. The backend vouches for a tenant by a 2xx JSON object whose
// `tenant` member is exactly that tenant; a tenant it names is never replaced by the one asked for.
func (h *HTTPLogin) Authenticate(ctx context.Context, username, password, tenant string) (User, bool, error) {
	form := url.Values{"username": {username}, "password": {password}}
	if tenant != "" {
		form.Set("tenant", tenant)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.url, strings.NewReader(form.Encode()))
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
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxLoginResponse))
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return User{}, false, nil
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		return User{}, false, fmt.Errorf("%w: status %d", ErrUnavailable, resp.StatusCode)
	case err != nil:
		return User{}, false, fmt.Errorf("%w: reading the answer: %v", ErrUnavailable, err)
	}
	user := User{Subject: username, Claims: map[string]any{}}
	if strings.HasPrefix(strings.TrimSpace(string(body)), "{") {
		// A body that is not a JSON object adds nothing; it does not make a valid login invalid.
		json.Unmarshal(body, &user.Claims)
	}
	user, ok := user.signedInTo(tenant, user.Claims[tenantClaim] == tenant)
	return user, ok, nil
}
