package products

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/agora-commerce/agora/modules/catalog"
)

// readCache keeps recently read products for GetProduct and GetProducts (checkout
// prices every cart through them), so that they rarely reach the database.
//
// Consistency: every write of this service to a product invalidates it as soon as
// it commits, and a read that overlapped any such write is not cached (the write
// generation changed under it). Availability changes with every order, so it is
// not invalidated but written through: a committed change (setAvailability) lays
// the new availability over the cached product, the newest stock version winning.
// So in one process the cache never serves a product or an availability older than
// the database's. When several processes write the same catalog database (replicas
// on PostgreSQL), another process's write becomes visible here within ttl.
type readCache struct {
	ttl     time.Duration
	max     int
	gen     atomic.Uint64 // bumped by every product write, before and after it commits
	mu      sync.Mutex
	entries map[string]cached
	avail   map[string]overlay
}

type cached struct {
	p  catalog.Product
	at time.Time
}

// overlay is an availability committed by this process, at the inventory's stock
// version.
type overlay struct {
	a     catalog.Availability
	stock int64
	at    time.Time
}

func newReadCache(ttl time.Duration, max int) *readCache {
	if ttl <= 0 {
		return nil // disabled
	}
	return &readCache{ttl: ttl, max: max, entries: make(map[string]cached, max), avail: make(map[string]overlay, max)}
}

// get returns a copy of the cached product id, if it is fresh, with the
// availability this process committed last if that is fresh too.
func (c *readCache) get(id string, now time.Time) (catalog.Product, bool) {
	if c == nil {
		return catalog.Product{}, false
	}
	c.mu.Lock()
	e, ok := c.entries[id]
	o, over := c.avail[id]
	c.mu.Unlock()
	if !ok || now.Sub(e.at) > c.ttl {
		return catalog.Product{}, false
	}
	p := e.p.Clone()
	if over && now.Sub(o.at) <= c.ttl {
		a := o.a
		p.Availability = &a
	}
	return p, true
}

// setAvailability records the availability of product id committed at stock
// version stock, unless a newer one is recorded.
func (c *readCache) setAvailability(id string, a catalog.Availability, stock int64, now time.Time) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if cur, ok := c.avail[id]; ok && cur.stock >= stock {
		return
	}
	if len(c.avail) >= c.max {
		for k := range c.avail { // drop an arbitrary entry: the map's order is random
			delete(c.avail, k)
			break
		}
	}
	c.avail[id] = overlay{a: a, stock: stock, at: now}
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

// invalidate forgets id, and the availability laid over it; writers call it when
// they start and after they commit, so no read that overlapped the write can cache
// what it saw.
func (c *readCache) invalidate(id string) {
	if c == nil {
		return
	}
	c.gen.Add(1)
	c.mu.Lock()
	delete(c.entries, id)
	delete(c.avail, id)
	c.mu.Unlock()
}
