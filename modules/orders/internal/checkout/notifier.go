package checkout

import "sync"

// notifier wakes WaitOrder calls in this process when their order changes.
type notifier struct {
	mu      sync.Mutex
	waiters map[string]*waiter
}

type waiter struct {
	ch   chan struct{} // closed on the next change
	refs int
}

// wait returns a channel closed at the next change of order id, and a func to call
// when no longer waiting.
func (n *notifier) wait(id string) (<-chan struct{}, func()) {
	n.mu.Lock()
	defer n.mu.Unlock()
	w := n.waiters[id]
	if w == nil {
		w = &waiter{ch: make(chan struct{})}
		n.waiters[id] = w
	}
	w.refs++
	var once sync.Once
	return w.ch, func() {
		once.Do(func() {
			n.mu.Lock()
			defer n.mu.Unlock()
			w.refs--
			if w.refs == 0 && n.waiters[id] == w {
				delete(n.waiters, id)
			}
		})
	}
}

// notify wakes the waiters of order id.
func (n *notifier) notify(id string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if w := n.waiters[id]; w != nil {
		close(w.ch)
		delete(n.waiters, id)
	}
}
