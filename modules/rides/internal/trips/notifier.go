package trips

import "sync"

// notifier wakes long polls in this process (WaitRide, WaitOffer) when what they
// wait on changes: a ride by its id, a driver's offers by "driver:" and its id.
type notifier struct {
	mu      sync.Mutex
	waiters map[string]*waiter
}

type waiter struct {
	ch   chan struct{} // closed on the next change
	refs int
}

// wait returns a channel closed at the next change of key, and a func to call when
// no longer waiting.
func (n *notifier) wait(key string) (<-chan struct{}, func()) {
	n.mu.Lock()
	defer n.mu.Unlock()
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

// notify wakes the waiters of key.
func (n *notifier) notify(key string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if w := n.waiters[key]; w != nil {
		close(w.ch)
		delete(n.waiters, key)
	}
}

func driverKey(id string) string { return "driver:" + id }
