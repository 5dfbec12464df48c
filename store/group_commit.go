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
//
// A commit ends, for the next group, once its writes are visible; its writers are answered once
// they are durable. On bolt the two are one moment. On pebble the next group runs while the WAL
// fsyncs the one before, and its reads already see that group's writes: each write function runs
// after every one committed before it, which is what makes a read-check-write atomic on an
// engine whose batches cannot hold a read.
//
// As with DB.Batch, a function may run more than once (when another in its group fails, the rest
// run again without it), so each must set its results afresh on every run.
type groupCommit struct {
	// update runs a write transaction and makes it visible (kvEngine.update).
	update func(func(kvTx) error) (durable func() error, err error)
	mu     sync.Mutex
	// queue holds the writes waiting for the next commit; busy says a commit is under way, whose
	// leader hands the queue to the next leader once its writes are visible.
	queue []*groupWrite
	busy  bool
}

// groupWrite is one caller's function and where its outcome goes: the outcome of its commit, or
// errLead when the caller is to commit the queue itself.
type groupWrite struct {
	fn   func(kvTx) error
	done chan error
}

// errLead tells a queued writer that the commit before its own is visible: it commits the queue now.
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
	answers := g.commit(group)
	g.mu.Lock()
	if len(g.queue) > 0 {
		g.queue[0].done <- errLead
	} else {
		g.busy = false
	}
	g.mu.Unlock()
	for _, answer := range answers {
		answer()
	}
	return <-w.done
}

// commit runs group in one transaction, and returns what tells each write its outcome once the
// transaction is durable. A function that fails rolls the transaction back: it is run again alone,
// for an outcome that depends on nothing the others did, and the others are committed without it.
func (g *groupCommit) commit(group []*groupWrite) (answers []func()) {
	for len(group) > 0 {
		failed := -1
		durable, err := g.update(func(tx kvTx) error {
			for i, w := range group {
				if err := safely(w.fn, tx); err != nil {
					failed = i
					return err
				}
			}
			return nil
		})
		if failed < 0 {
			return append(answers, tell(group, durable, err))
		}
		alone := group[failed]
		durable, err = g.update(func(tx kvTx) error { return safely(alone.fn, tx) })
		answers = append(answers, tell([]*groupWrite{alone}, durable, err))
		group = slices.Delete(group, failed, failed+1)
	}
	return answers
}

// tell returns what gives writes the outcome of their transaction: err, or once it is durable,
// what making it durable returned.
func tell(writes []*groupWrite, durable func() error, err error) func() {
	return func() {
		if err == nil {
			err = durable()
		}
		for _, w := range writes {
			w.done <- err
		}
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
