package store

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// queuedBehindCommit opens a bolt file and starts a write that holds its commit open until the
// returned release is called, so that writes made meanwhile queue for the next commit. queued
// waits until n writes are queued.
func queuedBehindCommit(t *testing.T) (g boltCommit, queued func(n int), release func()) {
	t.Helper()
	db, err := bolt.Open(filepath.Join(t.TempDir(), "commit.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("b")); return err }); err != nil {
		t.Fatal(err)
	}
	g = boltCommit{&groupCommit{update: boltEngine{db}.update}, db}
	held, hold := make(chan struct{}), make(chan struct{})
	var first sync.WaitGroup
	first.Go(func() {
		if err := g.write(func(tx kvTx) error { close(held); <-hold; return put("held")(tx) }); err != nil {
			t.Error(err)
		}
	})
	<-held
	queued = func(n int) {
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
			g.mu.Lock()
			l := len(g.queue)
			g.mu.Unlock()
			if l >= n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d writes queued, want %d", l, n)
			}
		}
	}
	return g, queued, func() { close(hold); first.Wait() }
}

// boltCommit is a group commit on a bolt file, which the tests read to count commits and records.
type boltCommit struct {
	*groupCommit
	db *bolt.DB
}

func put(key string) func(kvTx) error {
	return func(tx kvTx) error { return tx.put([]byte("b"), []byte(key), []byte("v")) }
}

// The writes that queue while a commit is under way share the next one: one transaction, one
// pair of fsyncs, for all of them.
func TestGroupCommitSharesOneTransaction(t *testing.T) {
	g, queued, release := queuedBehindCommit(t)
	const writers = 31
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() {
			if err := g.write(put(fmt.Sprint(i))); err != nil {
				t.Error(err)
			}
		})
	}
	queued(writers)
	before := txID(t, g.db)
	release()
	wg.Wait()
	if commits := txID(t, g.db) - before; commits != 2 {
		t.Errorf("%d writes behind a commit took %d commits, want 2 (the one held, then theirs)", writers, commits)
	}
	if err := g.db.View(func(tx *bolt.Tx) error {
		if n := tx.Bucket([]byte("b")).Stats().KeyN; n != writers+1 {
			return fmt.Errorf("%d keys stored, want %d (theirs and the held one's)", n, writers+1)
		}
		return nil
	}); err != nil {
		t.Error(err)
	}
}

// A write that fails (or panics) gets its own error and leaves nothing behind; the writes grouped
// with it commit all the same.
func TestGroupCommitFailureStaysAlone(t *testing.T) {
	g, queued, release := queuedBehindCommit(t)
	refused := errors.New("refused")
	writes := []struct {
		key  string
		fail func()
		want string
	}{
		{"kept-1", nil, ""},
		{"refused", func() {}, "refused"},
		{"panicked", func() { panic("boom") }, "store: panic in a write: boom"},
		{"kept-2", nil, ""},
	}
	var wg sync.WaitGroup
	for i, w := range writes {
		wg.Go(func() {
			err := g.write(func(tx kvTx) error {
				if err := put(w.key)(tx); err != nil || w.fail == nil {
					return err
				}
				w.fail()
				return refused
			})
			if got := fmt.Sprint(err); (err == nil) != (w.want == "") || err != nil && got != w.want {
				t.Errorf("write %s = %v, want %q", w.key, err, w.want)
			}
		})
		queued(i + 1)
	}
	release()
	wg.Wait()
	if err := g.db.View(func(tx *bolt.Tx) error {
		for _, w := range writes {
			if stored := tx.Bucket([]byte("b")).Get([]byte(w.key)) != nil; stored != (w.fail == nil) {
				return fmt.Errorf("%s stored: %v, want %v", w.key, stored, w.fail == nil)
			}
		}
		return nil
	}); err != nil {
		t.Error(err)
	}
}
