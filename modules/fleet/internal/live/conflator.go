package live

import (
	"sync"
	"time"

	"github.com/agora-commerce/agora/modules/fleet/internal/geoindex"
)

// Conflator is the ingestion buffer between position reports and the index: at
// most one pending position per driver, the newest (latest-value conflation), and
// at most Capacity drivers pending. However slowly its consumer takes, it holds
// no more than Capacity positions: a report for a driver already pending replaces
// that position, and a report that would need room beyond Capacity is refused
// (Offer's saturated result) rather than queued.
type Conflator struct {
	capacity int
	mu       sync.Mutex
	pending  map[string]Pending
	spare    map[string]Pending // the map Take handed back last time, reused
	wake     chan struct{}
}

// Pending is a position waiting for the index, and when fleet received it.
type Pending struct {
	geoindex.Move
	Received time.Time
}

// NewConflator returns an empty buffer of capacity drivers.
func NewConflator(capacity int) *Conflator {
	return &Conflator{capacity: max(capacity, 1), pending: map[string]Pending{}, wake: make(chan struct{}, 1)}
}

// Counted is what Offer made of a batch.
type Counted struct {
	Accepted, Conflated, Stale int
}

// Offer buffers moves, all or none: when the drivers not yet pending would not fit,
// it buffers nothing and reports saturated. A move older than the one pending for
// its driver is Stale; one that replaces a pending one counts that one Conflated.
func (c *Conflator) Offer(moves []Pending) (n Counted, saturated bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.fits(moves) {
		return Counted{}, true
	}
	for _, m := range moves {
		old, ok := c.pending[m.DriverID]
		switch {
		case ok && m.At.Before(old.At):
			n.Stale++
			continue
		case ok:
			n.Conflated++
		}
		c.pending[m.DriverID] = m
		n.Accepted++
	}
	select {
	case c.wake <- struct{}{}:
	default: // a wake-up is already due
	}
	return n, false
}

// fits reports whether the drivers of moves not yet pending fit in the buffer.
func (c *Conflator) fits(moves []Pending) bool {
	room := c.capacity - len(c.pending)
	if room >= len(moves) {
		return true // even if every driver is new
	}
	fresh := make(map[string]struct{}, len(moves))
	for _, m := range moves {
		if _, ok := c.pending[m.DriverID]; !ok {
			fresh[m.DriverID] = struct{}{}
		}
	}
	return len(fresh) <= room
}

// Wake is signalled when positions are pending; one signal may stand for many Offers.
func (c *Conflator) Wake() <-chan struct{} { return c.wake }

// Len returns how many drivers have a position pending.
func (c *Conflator) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.pending)
}

// Take returns every pending position and empties the buffer. The result is the
// caller's until its next Take.
func (c *Conflator) Take() []Pending {
	c.mu.Lock()
	taken := c.pending
	if c.spare != nil {
		clear(c.spare)
		c.pending = c.spare
	} else {
		c.pending = make(map[string]Pending, len(taken))
	}
	c.spare = taken
	c.mu.Unlock()
	out := make([]Pending, 0, len(taken))
	for _, p := range taken {
		out = append(out, p)
	}
	return out
}
