// Package longpoll serves long polls that work in every topology: a Notifier wakes
// the polls of this process at once when a change of what they wait on commits, and
// Wait also reads again every poll interval, so a change another replica commits is
// seen within that interval.
package longpoll

import (
	"context"
	"sync"
	"time"
)

// Notifier wakes waiters by key (an order id, a ride id, "driver:" and a driver
// id…). The zero value is ready to use; a Notifier must not be copied after use.
type Notifier struct {
	mu      sync.Mutex
	waiters map[string]*waiter
}

type waiter struct {
	ch   chan struct{} // closed on the next change
	refs int
}

// Wait returns a channel closed at the next Notify of key, and a func to call when
// no longer waiting (calling it more than once is harmless). Call Wait before
// reading what is waited on, so that no change slips in between.
func (n *Notifier) Wait(key string) (<-chan struct{}, func()) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.waiters == nil {
		n.waiters = map[string]*waiter{}
	}
	w := n.waiters[key]
	if w == nil {
		w = &waiter{ch: make(chan struct{})}
		n.waiters[key] = w
	}
	w.refs++
	var once sync.Once
	return w.ch, func() {
		once.Do(func() {
			n.mu.Lock()
			defer n.mu.Unlock()
			w.refs--
			if w.refs == 0 && n.waiters[key] == w {
				delete(n.waiters, key)
			}
		})
	}
}

// Notify wakes the waiters of key. Call it once the change has committed (e.g.
// from store.Tx.OnCommit), so that a woken poll reads the change.
func (n *Notifier) Notify(key string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if w := n.waiters[key]; w != nil {
		close(w.ch)
		delete(n.waiters, key)
	}
}

// waiting returns how many keys have waiters, for tests of the bookkeeping.
func (n *Notifier) waiting() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.waiters)
}

// Bounds bound every long poll of a service.
type Bounds struct {
	MaxWait      time.Duration // the longest a poll waits, whatever it asks for
	PollInterval time.Duration // how often a poll reads again, to see other replicas' changes
}

// Wait reads with read until it says the result is worth answering (ok) or fails,
// or until wait has passed: wait is capped at b.MaxWait and ends a little before
// ctx's deadline, so that the caller gets an answer rather than a timeout. Between
// reads it sleeps until key is notified on n or b.PollInterval has passed. It
// returns the last read's result, or ctx's error (and the zero T) when ctx is done before that end.
func Wait[T any](ctx context.Context, n *Notifier, key string, wait time.Duration, b Bounds, read func() (T, bool, error)) (T, error) {
	deadline := time.Now().Add(min(max(wait, 0), b.MaxWait))
	if d, ok := ctx.Deadline(); ok {
		// Answer before the caller gives up, so a long poll ends with an answer.
		if early := d.Add(-min(time.Until(d)/10, time.Second)); early.Before(deadline) {
			deadline = early
		}
	}
	for {
		changed, done := n.Wait(key) // before the read: no change slips between
		v, ok, err := read()
		left := time.Until(deadline)
		if err != nil || ok || left <= 0 {
			done()
			return v, err
		}
		t := time.NewTimer(min(left, b.PollInterval))
		select {
		case <-changed:
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
		done()
		// The caller gave up before this wait's own (earlier) deadline: no answer.
		// Past that deadline, read once more and answer: a slow wake-up (a busy
		// machine) must not turn the answer the caller was promised into an error.
		if ctx.Err() != nil && time.Until(deadline) > 0 {
			var zero T
			return zero, ctx.Err()
		}
	}
}
