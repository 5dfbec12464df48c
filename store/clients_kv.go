package store

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// RegisterClient implements RegisteredClients: counting the live clients, and deleting the expired
// ones, happens in the transaction that stores the new one, so concurrent registrations never
// store more than max. Registrations are rare, so the scan costs little. The write may run twice
// (a group commit), so it sets its result afresh.
func (s *kvStore) RegisterClient(_ context.Context, id string, c RegisteredClient, max int) (bool, error) {
	var stored bool
	err := s.writes.write(func(tx kvTx) error {
		stored = false
		now, live, taken := s.now(), 0, false
		var dead [][]byte
		var bad error
		err := tx.scan(bucketClients, nil, func(k, v []byte) bool {
			var held RegisteredClient
			if err := json.Unmarshal(v, &held); err != nil {
				bad = fmt.Errorf("store: %s record: %w", bucketClients, err)
				return false
			}
			if expired(held.ExpiresAt, now) {
				dead = append(dead, append([]byte(nil), k...))
				return true
			}
			live++
			taken = taken || string(k) == id
			return true
		})
		if err != nil || bad != nil {
			return cmp.Or(err, bad)
		}
		for _, k := range dead {
			if err := tx.delete(bucketClients, k); err != nil {
				return err
			}
		}
		if taken || live >= max {
			return nil
		}
		stored = true
		return records{tx}.put(bucketClients, id, c)
	})
	return stored && err == nil, err
}

// RegisteredClient implements RegisteredClients, in a read transaction.
func (s *kvStore) RegisteredClient(_ context.Context, id string) (RegisteredClient, error) {
	var c RegisteredClient
	err := s.engine.view(func(tx kvTx) error {
		found, err := records{tx}.get(bucketClients, id, &c)
		if err == nil && (!found || expired(c.ExpiresAt, s.now())) {
			return ErrNotFound
		}
		return err
	})
	return c, err
}

// ExtendClient implements RegisteredClients.
func (s *kvStore) ExtendClient(_ context.Context, id string, until time.Time) error {
	return s.writes.write(func(tx kvTx) error {
		recs := records{tx}
		var c RegisteredClient
		found, err := recs.get(bucketClients, id, &c)
		if err == nil && (!found || expired(c.ExpiresAt, s.now())) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		c.ExpiresAt = until
		return recs.put(bucketClients, id, c)
	})
}
