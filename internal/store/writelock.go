package store

import (
	"context"
	"sync"
)

// writeLock is the queue of SQLite write transactions (one writer at a time),
// with two classes of waiter: work already in progress (relays delivering
// messages, workers recording outcomes — see WithPriority) goes before new work
// (HTTP requests). Under load this finishes what was accepted before it accepts
// more — the pipeline drains instead of growing a backlog — while every
// fairShare-th hand-over still goes to the oldest new work, so nothing starves.
type writeLock struct {
	mu        sync.Mutex
	held      bool
	high, low []chan struct{}
	handed    int // hand-overs to high waiters since the last to a low one
}

const fairShare = 8

type priorityKey struct{}

// WithPriority marks the write transactions run under ctx as work in progress
// (delivering or recording the outcome of accepted work), which SQLite's single
// writer serves before new work.
func WithPriority(ctx context.Context) context.Context {
	return context.WithValue(ctx, priorityKey{}, true)
}

func (l *writeLock) lock(ctx context.Context) error {
	l.mu.Lock()
	if !l.held {
		l.held = true
		l.mu.Unlock()
		return nil
	}
	ch := make(chan struct{})
	high := ctx.Value(priorityKey{}) != nil
	if high {
		l.high = append(l.high, ch)
	} else {
		l.low = append(l.low, ch)
	}
	l.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		l.mu.Lock()
		if removeWaiter(&l.high, ch) || removeWaiter(&l.low, ch) {
			l.mu.Unlock()
			return context.Cause(ctx)
		}
		l.mu.Unlock()
		l.unlock() // handed over just as ctx ended: pass it on
		return context.Cause(ctx)
	}
}

func (l *writeLock) unlock() {
	l.mu.Lock()
	defer l.mu.Unlock()
	var next chan struct{}
	switch {
	case len(l.low) > 0 && (len(l.high) == 0 || l.handed >= fairShare):
		next, l.low, l.handed = l.low[0], l.low[1:], 0
	case len(l.high) > 0:
		next, l.high = l.high[0], l.high[1:]
		l.handed++
	default:
		l.held = false
		return
	}
	close(next) // the lock passes to next: held stays true
}

func removeWaiter(q *[]chan struct{}, ch chan struct{}) bool {
	for i, c := range *q {
		if c == ch {
			*q = append((*q)[:i], (*q)[i+1:]...)
			return true
		}
	}
	return false
}
