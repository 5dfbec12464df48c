package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// RegisterClient implements RegisteredClients: counting the live clients, and deleting the expired
// ones, happens in the transaction that stores the new one, so concurrent registrations never
// store more than max. Registrations are rare, so the scan costs little.
func (s *Bolt) RegisterClient(_ context.Context, id string, c RegisteredClient, max int) (bool, error) {
	var stored bool
	err := s.db.Update(func(tx *bolt.Tx) error {
		stored = false
		b := tx.Bucket(bucketClients)
		now, live, taken := s.now(), 0, false
		var dead [][]byte
		err := b.ForEach(func(k, v []byte) error {
			var held RegisteredClient
			if err := json.Unmarshal(v, &held); err != nil {
				return fmt.Errorf("store: %s record: %w", bucketClients, err)
			}
			if expired(held.ExpiresAt, now) {
				dead = append(dead, k)
				return nil
			}
			live++
			taken = taken || string(k) == id
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range dead {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		if taken || live >= max {
			return nil
		}
		stored = true
		return boltTx{tx}.put(bucketClients, id, c)
	})
	return stored && err == nil, err
}

// RegisteredClient implements RegisteredClients.
func (s *Bolt) RegisteredClient(_ context.Context, id string) (RegisteredClient, error) {
	var c RegisteredClient
	err := s.db.View(func(tx *bolt.Tx) error {
		found, err := boltTx{tx}.get(bucketClients, id, &c)
		if err == nil && (!found || expired(c.ExpiresAt, s.now())) {
			return ErrNotFound
		}
		return err
	})
	return c, err
}

// ExtendClient implements RegisteredClients.
func (s *Bolt) ExtendClient(_ context.Context, id string, until time.Time) error {
	return s.db.Batch(func(tx *bolt.Tx) error {
		btx := boltTx{tx}
		var c RegisteredClient
		found, err := btx.get(bucketClients, id, &c)
		if err == nil && (!found || expired(c.ExpiresAt, s.now())) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		c.ExpiresAt = until
		return btx.put(bucketClients, id, c)
	})
}
