// Package identity checks a person's username and password against an identity provider: a
// `users` block of the Caddyfile (bcrypt hashes) or a legacy application's own login (http_login).
package identity

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"runtime"
	"strings"

	"github.com/tokengate/tokengate/credential"
	"golang.org/x/crypto/bcrypt"
)

// User is an authenticated person.
type User struct {
	// Subject is the sub of their tokens: the username.
	Subject string
	// Claims go into their access and ID tokens and userinfo.
	Claims map[string]any
	// Tenants, when not empty, are the only tenants they may sign in to (acr_values tenant:).
	Tenants []string
}

// Provider checks credentials. Wrong credentials are (User{}, false, nil); the error is only for
// technical failures (a login backend that is unreachable or answers 5xx), which callers report as
// 503 and never as a wrong password.
type Provider interface {
	Authenticate(ctx context.Context, username, password string) (User, bool, error)
}

// ErrUnavailable wraps the failures of a login backend.
var ErrUnavailable = errors.New("identity: login backend unavailable")

// StaticUser is a user declared in a `users` block.
type StaticUser struct {
	Username string
	// Hash is a bcrypt hash of the password, as `caddy hash-password` prints it.
	Hash    string
	Claims  map[string]string
	Tenants []string
}

// Static is a `users` block.
type Static struct {
	users   map[string]staticEntry
	cost    int // of the dearest hash, spent on unknown usernames too
	checker *credential.Checker
}

type staticEntry struct {
	hash []byte
	user User
}

// NewStatic checks the users' hashes once, at provision time.
func NewStatic(users []StaticUser) (*Static, error) {
	s := &Static{
		users:   make(map[string]staticEntry, len(users)),
		cost:    bcrypt.MinCost,
		checker: credential.NewChecker(10000, runtime.NumCPU()),
	}
	for i, u := range users {
		if u.Username == "" {
			return nil, fmt.Errorf("user %d: empty username", i)
		}
		if _, dup := s.users[u.Username]; dup {
			return nil, fmt.Errorf("user %q: declared twice", u.Username)
		}
		if !credential.IsBcryptHash(u.Hash) {
			return nil, fmt.Errorf("user %q: password must be a bcrypt hash (caddy hash-password)", u.Username)
		}
		cost, _ := bcrypt.Cost([]byte(u.Hash))
		s.cost = max(s.cost, cost)
		claims := make(map[string]any, len(u.Claims))
		for k, v := range u.Claims {
			claims[k] = v
		}
		s.users[u.Username] = staticEntry{
			hash: []byte(u.Hash),
			user: User{Subject: u.Username, Claims: claims, Tenants: u.Tenants},
		}
	}
	return s, nil
}

// Authenticate checks a password; an unknown username costs what a wrong password costs.
func (s *Static) Authenticate(ctx context.Context, username, password string) (User, bool, error) {
	e, ok := s.users[username]
	if !ok {
		s.checker.Begin(s.cost).Failed(ctx)
		return User{}, false, nil
	}
	ok, err := s.checker.Check(ctx, e.hash, username, password)
	if !ok || err != nil {
		return User{}, false, err
	}
	return e.user, true, nil
}

// HTTPLogin delegates the password check to a legacy application: it POSTs the form fields
// `username` and `password`; 2xx means valid (a JSON object body adds claims), 401 and 403 mean
// wrong, anything else means the backend is unavailable.
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

// Authenticate asks the backend.
func (h *HTTPLogin) Authenticate(ctx context.Context, username, password string) (User, bool, error) {
	form := url.Values{"username": {username}, "password": {password}}
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
	return user, true, nil
}
