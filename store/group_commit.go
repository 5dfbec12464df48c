package store

import (
	"errors"
	"fmt"
	"slices"
	"sync"
)

// groupCommit runs concurrent write transactions as one, so that they share its fsyncs: a write
// that finds no commit under way commits at once; writes that arrive while one is under way queue,
// and the next commit takes the whole queue. A group is therefore as large as the load makes it,
// and a write never waits for a timer (bolt's own DB.Batch waits MaxBatchDelay, then queues whole
// batches behind the writer lock: under 32 concurrent refreshes, a dozen batches of 3 or 4).
// On pebble, whose batches carry no reads, the group's one indexed batch is also what makes each
// read-check-write atomic: the functions run one after another, each seeing the writes before it.
//
// As with DB.Batch, a function may run more than once (when another in its group fails, the rest
// run again without it), so each must set its results afresh on every run.
type groupCommit struct {
	// update runs a write transaction and commits it durably (kvEngine.update).
	update func(func(kvTx) error) error
	mu     sync.Mutex
	// queue holds the writes waiting for the next commit; busy says a commit is under way, whose
	// leader hands the queue to the next leader when it is done.
	queue []*groupWrite
	busy  bool
}

// groupWrite is one caller's function and where its outcome goes: the outcome of its commit, or
// errLead when the caller is to commit the queue itself.
type groupWrite struct {
	fn   func(kvTx) error
	done chan error
}

// errLead tells a queued writer that the commit before its own has ended: it commits the queue now.
var errLead = errors.New("store: lead the next commit")

// write runs fn in a write transaction shared with the writes queued beside it, and returns once
// that transaction has committed durably (or fn's error).
func (g *groupCommit) write(fn func(kvTx) error) error {
	w := &groupWrite{fn: fn, done: make(chan error, 1)}
	g.mu.Lock()
	g.queue = append(g.queue, w)
	lead := !g.busy
	g.busy = true
	g.mu.Unlock()
	if !lead {
		if err := <-w.done; err != errLead {
			return err
		}
	}
	g.mu.Lock()
	group := g.queue
	g.queue = nil
	g.mu.Unlock()
	g.commit(group)
	g.mu.Lock()
	if len(g.queue) > 0 {
		g.queue[0].done <- errLead
	} else {
		g.busy = false
	}
	g.mu.Unlock()
	return <-w.done
}

// commit runs group in one transaction and tells each write its outcome. A function that fails
// rolls the transaction back: it is run again alone, for an outcome that depends on nothing the
// others did, and the others are committed without it.
func (g *groupCommit) commit(group []*groupWrite) {
	for len(group) > 0 {
		failed := -1
		err := g.update(func(tx kvTx) error {
			for i, w := range group {
				if err := safely(w.fn, tx); err != nil {
					failed = i
					return err
				}
			}
			return nil
		})
		if failed < 0 {
			for _, w := range group {
				w.done <- err
			}
			return
		}
		alone := group[failed]
		alone.done <- g.update(func(tx kvTx) error { return safely(alone.fn, tx) })
		group = slices.Delete(group, failed, failed+1)
	}
}

// safely runs fn, turning a panic into its error: a panic would otherwise end the leader with the
// queue still waiting on it.
func safely(fn func(kvTx) error, tx kvTx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("store: panic in a write: %v", p)
		}
	}()
	return fn(tx)
}
