package identity

import (
	"context"
	"fmt"
	"runtime"
	"slices"

	"github.com/tokengate/tokengate/credential"
	"golang.org/x/crypto/bcrypt"
)

// StaticUser is a user declared in a `users` block.
type StaticUser struct {
	Username string
	// Hash is a bcrypt hash of the password, as `caddy hash-password` prints it.
	Hash   string
	Claims map[string]string
	// Tenants are the tenants the user belongs to, the only ones they may sign in to. Default: none.
	Tenants []string
}

// Static is a `users` block.
type Static struct {
	users   map[string]staticEntry
	cost    int // of the dearest hash, spent on unknown usernames too
	checker *credential.Checker
}

type staticEntry struct {
	hash    []byte
	user    User
	tenants []string
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
			hash:    []byte(u.Hash),
			user:    User{Subject: u.Username, Claims: claims},
			tenants: u.Tenants,
		}
	}
	return s, nil
}

// Has reports whether username is declared in the block.
func (s *Static) Has(username string) bool {
	_, ok := s.users[username]
	return ok
}

// Authenticate checks a password; an unknown username costs what a wrong password costs. A user
// vouches for the tenants of their `tenant` lines only: with none, they belong to no tenant.
func (s *Static) Authenticate(ctx context.Context, username, password, tenant string) (User, bool, error) {
	e, ok := s.users[username]
	if !ok {
		s.checker.Begin(s.cost).Failed(ctx)
		return User{}, false, nil
	}
	ok, err := s.checker.Check(ctx, e.hash, username, password)
	if !ok || err != nil {
		return User{}, false, err
	}
	user, ok := e.user.signedInTo(tenant, slices.Contains(e.tenants, tenant))
	return user, ok, nil
}

// Interface guards
var _ Directory = (*Static)(nil)
