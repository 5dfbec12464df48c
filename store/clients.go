package store

import (
	"context"
	"time"
)

// RegisteredClient is a client registered at run time (RFC 7591 dynamic client registration).
type RegisteredClient struct {
	// Metadata is the caller's encoding of the client's registration; opaque here.
	Metadata []byte `json:"metadata"`
	// ExpiresAt is when the store forgets the client, unless ExtendClient moves it on.
	ExpiresAt time.Time `json:"expires_at"`
}

// RegisteredClients keeps the clients registered at run time, so that they survive restarts and
// reloads, and every instance on a shared store knows them.
type RegisteredClients interface {
	// RegisterClient stores c under id, unless max live clients are stored already: then it
	// stores nothing and returns false. Of concurrent registrations at most max are stored.
	RegisterClient(ctx context.Context, id string, c RegisteredClient, max int) (bool, error)
	// RegisteredClient returns the live client under id; ErrNotFound when it is unknown or expired.
	RegisteredClient(ctx context.Context, id string) (RegisteredClient, error)
	// ExtendClient moves the expiry of the live client under id to until; ErrNotFound when there
	// is none.
	ExtendClient(ctx context.Context, id string, until time.Time) error
}
