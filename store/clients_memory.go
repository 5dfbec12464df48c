package store

import (
	"bytes"
	"context"
	"time"
)

// RegisterClient implements RegisteredClients; registering prunes the expired clients.
func (m *Memory) RegisterClient(_ context.Context, id string, c RegisteredClient, max int) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	for key, held := range m.clients {
		if expired(held.ExpiresAt, now) {
			delete(m.clients, key)
		}
	}
	if _, taken := m.clients[id]; taken || len(m.clients) >= max {
		return false, nil
	}
	c.Metadata = bytes.Clone(c.Metadata)
	m.clients[id] = c
	return true, nil
}

// RegisteredClient implements RegisteredClients.
func (m *Memory) RegisteredClient(_ context.Context, id string) (RegisteredClient, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.clients[id]
	if !ok || expired(c.ExpiresAt, m.now()) {
		return RegisteredClient{}, ErrNotFound
	}
	c.Metadata = bytes.Clone(c.Metadata)
	return c, nil
}

// ExtendClient implements RegisteredClients.
func (m *Memory) ExtendClient(_ context.Context, id string, until time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.clients[id]
	if !ok || expired(c.ExpiresAt, m.now()) {
		return ErrNotFound
	}
	c.ExpiresAt = until
	m.clients[id] = c
	return nil
}
