package products

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/agora-commerce/agora/modules/catalog"
)

// readCache keeps recently read products for GetProduct, the hottest read of the
// shop, so that it rarely reaches the database.
//
// Consistency: every write of this service invalidates the product it changed as
// soon as it commits, and a read that overlapped any write is not cached (the write
// generation changed under it), so in one process the cache never serves a version
// older than the database's. When several processes write the same catalog database
// (replicas on PostgreSQL), another process's write becomes visible here within ttl.
type readCache struct {
	ttl     time.Duration
	max     int
	gen     atomic.Uint64 // bumped by every write, before and after it commits
	mu      sync.Mutex
	entries map[string]cached
}

type cached struct {
	p  catalog.Product
	at time.Time
}

func newReadCache(ttl time.Duration, max int) *readCache {
	if ttl <= 0 {
		return nil // disabled
	}
	return &readCache{ttl: ttl, max: max, entries: make(map[string]cached, max)}
}

// get returns a copy of the cached product id, if it is fresh.
func (c *readCache) get(id string, now time.Time) (catalog.Product, bool) {
	if c == nil {
		return catalog.Product{}, false
	}
	c.mu.Lock()
	e, ok := c.entries[id]
	c.mu.Unlock()
	if !ok || now.Sub(e.at) > c.ttl {
		return catalog.Product{}, false
	}
	return e.p.Clone(), true
}

// generation is read before a database read; put stores that read's result only if
// no write started since.
func (c *readCache) generation() uint64 {
	if c == nil {
		return 0
	}
	return c.gen.Load()
}

func (c *readCache) put(p catalog.Product, gen uint64, now time.Time) {
	if c == nil || c.gen.Load() != gen {
		return
	}
	p = p.Clone()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= c.max {
		for k := range c.entries { // drop an arbitrary entry: the map's order is random
			delete(c.entries, k)
			break
		}
	}
	c.entries[p.ID] = cached{p: p, at: now}
}

// invalidate forgets id; writers call it when they start and after they commit, so
// no read that overlapped the write can cache what it saw.
func (c *readCache) invalidate(id string) {
	if c == nil {
		return
	}
	c.gen.Add(1)
	c.mu.Lock()
	delete(c.entries, id)
	c.mu.Unlock()
}
