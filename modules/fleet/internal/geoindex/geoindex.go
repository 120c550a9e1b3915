// Package geoindex is fleet's in-memory geo index of drivers: each driver's live
// state (status, ride, newest position) and, for the available ones, their place
// in S2 cells at a few levels, so that the nearest available drivers to a point
// are found by looking at a handful of cells rather than at every driver.
//
// The geometry is github.com/golang/geo's: S2 cell ids of positions, caps
// (discs on the sphere) covered by cells of a fixed level, great-circle
// distances. An Index is safe for concurrent use; queries share a read lock, and
// writes (a batch of positions, a status change) take the write lock briefly.
package geoindex

import (
	"slices"
	"sync"
	"time"

	"github.com/golang/geo/s1"
	"github.com/golang/geo/s2"

	"github.com/agora-commerce/agora/modules/fleet"
)

// earthRadiusMeters is the Earth's mean radius, which turns angles on the unit
// sphere into meters on the ground.
const earthRadiusMeters = 6_371_010.0

// levels are the S2 cell levels the index buckets available drivers by, coarse to
// fine (a level-8 cell is some 30 km wide, a level-16 cell some 120 m). A query
// covers its disc with cells of the finest level at least as wide as its radius,
// so it looks at a few cells whatever the radius.
var levels = [...]int{8, 10, 12, 14, 16}

// Driver is a driver's state as the index holds it.
type Driver struct {
	ID     string
	Status fleet.Status
	RideID string
	// Point is the newest position; nil before the first report.
	Point      *fleet.Point
	PositionAt time.Time // when the app took Point
	SeenAt     time.Time // when fleet last heard from the driver
	UpdatedAt  time.Time // when Status last changed
	// Version orders status changes: a change with a lower version than the one
	// held is older and ignored.
	Version int64
}

// Contract returns d as the fleet contract shows it.
func (d Driver) Contract() fleet.Driver {
	out := fleet.Driver{ID: d.ID, Status: d.Status, RideID: d.RideID, PositionAt: d.PositionAt, UpdatedAt: d.UpdatedAt}
	if d.Point != nil {
		p := *d.Point
		out.Position = &p
	}
	return out
}

// entry is a driver in the index.
type entry struct {
	Driver
	leaf   s2.CellID // the leaf cell of Point
	ll     s2.LatLng
	dirty  bool // the position changed since the last Checkpoint
	bucket bool // in the cell buckets (available with a position)
}

// Index is the geo index. The zero value is not usable; call New.
type Index struct {
	staleAfter time.Duration
	now        func() time.Time

	mu      sync.RWMutex
	drivers map[string]*entry
	buckets [len(levels)]map[s2.CellID]map[*entry]struct{}
}

// New returns an empty index in which a driver not heard from for staleAfter is not
// available; now tells the time (time.Now when nil).
func New(staleAfter time.Duration, now func() time.Time) *Index {
	if now == nil {
		now = time.Now
	}
	x := &Index{staleAfter: staleAfter, now: now, drivers: map[string]*entry{}}
	for i := range x.buckets {
		x.buckets[i] = map[s2.CellID]map[*entry]struct{}{}
	}
	return x
}

// Get returns the driver with id.
func (x *Index) Get(id string) (Driver, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	e, ok := x.drivers[id]
	if !ok {
		return Driver{}, false
	}
	return e.copy(), true
}

func (e *entry) copy() Driver {
	d := e.Driver
	if d.Point != nil {
		p := *d.Point
		d.Point = &p
	}
	return d
}

// Put sets a driver's status, ride and (when d.Point is not nil) position, unless
// the index holds a newer version of it. It reports whether it did.
func (x *Index) Put(d Driver) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	e, ok := x.drivers[d.ID]
	if ok && e.Version > d.Version {
		return false
	}
	if !ok {
		e = &entry{Driver: Driver{ID: d.ID}}
		x.drivers[d.ID] = e
	}
	x.unbucket(e)
	e.Status, e.RideID, e.UpdatedAt, e.Version = d.Status, d.RideID, d.UpdatedAt, d.Version
	if d.SeenAt.After(e.SeenAt) {
		e.SeenAt = d.SeenAt
	}
	if d.Point != nil && !d.PositionAt.Before(e.PositionAt) {
		x.place(e, *d.Point, d.PositionAt)
	}
	x.rebucket(e)
	return true
}

// Outcome is what became of one position report.
type Outcome int

// Outcomes of Move.
const (
	Moved   Outcome = iota // the index holds the position now
	Stale                  // older than the position the index holds
	Ignored                // the driver is offline or unknown
)

// Move is one position to apply.
type Move struct {
	DriverID string
	Point    fleet.Point
	At       time.Time // when the app took it
	SeenAt   time.Time // when fleet received it
}

// Check returns what Move would make of m now, without applying it.
func (x *Index) Check(m Move) Outcome {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.check(m)
}

func (x *Index) check(m Move) Outcome {
	e, ok := x.drivers[m.DriverID]
	switch {
	case !ok || e.Status == fleet.StatusOffline:
		return Ignored
	case e.Point != nil && m.At.Before(e.PositionAt):
		return Stale
	}
	return Moved
}

// Apply applies a batch of moves under one lock and returns how many were Moved.
func (x *Index) Apply(moves []Move) int {
	x.mu.Lock()
	defer x.mu.Unlock()
	n := 0
	for _, m := range moves {
		if x.check(m) != Moved {
			continue
		}
		e := x.drivers[m.DriverID]
		if m.SeenAt.After(e.SeenAt) {
			e.SeenAt = m.SeenAt
		}
		finest := levels[len(levels)-1]
		if e.bucket && leafOf(m.Point).Parent(finest) == e.leaf.Parent(finest) {
			// Still in the same cells (the common case: drivers move a few meters
			// between reports): no bucket changes.
			x.place(e, m.Point, m.At)
		} else {
			x.unbucket(e)
			x.place(e, m.Point, m.At)
			x.rebucket(e)
		}
		n++
	}
	return n
}

// place sets e's position.
func (x *Index) place(e *entry, p fleet.Point, at time.Time) {
	pp := p
	e.Point, e.PositionAt, e.dirty = &pp, at, true
	e.ll = s2.LatLngFromDegrees(p.Lat, p.Lng)
	e.leaf = s2.CellIDFromLatLng(e.ll)
}

// leafOf returns the leaf cell of p.
func leafOf(p fleet.Point) s2.CellID { return s2.CellIDFromLatLng(s2.LatLngFromDegrees(p.Lat, p.Lng)) }

// unbucket takes e out of the cell buckets.
func (x *Index) unbucket(e *entry) {
	if !e.bucket {
		return
	}
	for i, l := range levels {
		c := e.leaf.Parent(l)
		b := x.buckets[i][c]
		delete(b, e)
		if len(b) == 0 {
			delete(x.buckets[i], c)
		}
	}
	e.bucket = false
}

// rebucket puts e in the cell buckets when it is available with a position.
func (x *Index) rebucket(e *entry) {
	if e.Status != fleet.StatusAvailable || e.Point == nil {
		return
	}
	for i, l := range levels {
		c := e.leaf.Parent(l)
		b := x.buckets[i][c]
		if b == nil {
			b = map[*entry]struct{}{}
			x.buckets[i][c] = b
		}
		b[e] = struct{}{}
	}
	e.bucket = true
}

// fresh reports whether e was heard from within the stale bound of now.
func (x *Index) fresh(e *entry, now time.Time) bool {
	return now.Sub(e.SeenAt) <= x.staleAfter
}

// Nearest returns up to limit available, fresh drivers within radius meters of p,
// nearest first, skipping those in exclude. It widens its search from a small disc
// until it holds limit drivers or reaches radius: every driver within the disc
// searched last is considered, so the answer is exact.
func (x *Index) Nearest(p fleet.Point, radius float64, limit int, exclude []string) []fleet.Candidate {
	if limit <= 0 || radius <= 0 {
		return nil
	}
	center := s2.LatLngFromDegrees(p.Lat, p.Lng)
	now := x.now()
	x.mu.RLock()
	defer x.mu.RUnlock()
	var found []fleet.Candidate
	for r := min(radius, 250.0); ; r = min(2*r, radius) {
		found = x.within(center, r, now, exclude, found[:0])
		if len(found) >= limit || r >= radius {
			break
		}
	}
	slices.SortFunc(found, func(a, b fleet.Candidate) int {
		if a.DistanceMeters != b.DistanceMeters {
			if a.DistanceMeters < b.DistanceMeters {
				return -1
			}
			return 1
		}
		return compareStrings(a.DriverID, b.DriverID)
	})
	if len(found) > limit {
		found = found[:limit]
	}
	return found
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// within appends to out every available, fresh driver within r meters of center.
func (x *Index) within(center s2.LatLng, r float64, now time.Time, exclude []string, out []fleet.Candidate) []fleet.Candidate {
	angle := s1.Angle(r / earthRadiusMeters)
	i := levelIndexFor(angle)
	rc := s2.RegionCoverer{MinLevel: levels[i], MaxLevel: levels[i], MaxCells: 8}
	cover := rc.Covering(s2.CapFromCenterAngle(s2.PointFromLatLng(center), angle))
	for _, c := range cover {
		for e := range x.buckets[i][c] {
			if !x.fresh(e, now) || slices.Contains(exclude, e.ID) {
				continue
			}
			d := center.Distance(e.ll)
			if d > angle {
				continue
			}
			out = append(out, fleet.Candidate{DriverID: e.ID, Position: *e.Point, DistanceMeters: float64(d) * earthRadiusMeters})
		}
	}
	return out
}

// levelIndexFor returns the index in levels of the finest level whose cells are at
// least as wide as angle (the coarsest level when none is), so that a disc of that
// radius is covered by a few cells.
func levelIndexFor(angle s1.Angle) int {
	want := s2.MinWidthMetric.MaxLevel(float64(angle))
	best := 0
	for i, l := range levels {
		if l <= want {
			best = i
		}
	}
	return best
}

// Supply returns how many available, fresh drivers each S2 cell of level holds,
// by cell token; cells with none are absent.
func (x *Index) Supply(level int) map[string]int {
	now := x.now()
	out := map[string]int{}
	x.mu.RLock()
	defer x.mu.RUnlock()
	for _, b := range x.buckets[0] {
		for e := range b {
			if x.fresh(e, now) {
				out[e.leaf.Parent(level).ToToken()]++
			}
		}
	}
	return out
}

// Snapshot returns up to limit online drivers with a position, fresh or not
// (a map shows where drivers were last seen), in no particular order.
func (x *Index) Snapshot(limit int) []fleet.DriverDot {
	x.mu.RLock()
	defer x.mu.RUnlock()
	out := make([]fleet.DriverDot, 0, min(limit, len(x.drivers)))
	for _, e := range x.drivers {
		if len(out) >= limit {
			break
		}
		if e.Status == fleet.StatusOffline || e.Point == nil {
			continue
		}
		out = append(out, fleet.DriverDot{DriverID: e.ID, Status: e.Status, Point: *e.Point})
	}
	return out
}

// Counts returns how many drivers are in each status; an online driver not heard
// from within the stale bound counts as "stale" rather than by its status.
func (x *Index) Counts() map[string]int {
	now := x.now()
	out := map[string]int{string(fleet.StatusOffline): 0, string(fleet.StatusAvailable): 0, string(fleet.StatusBusy): 0, "stale": 0}
	x.mu.RLock()
	defer x.mu.RUnlock()
	for _, e := range x.drivers {
		if e.Status != fleet.StatusOffline && !x.fresh(e, now) {
			out["stale"]++
			continue
		}
		out[string(e.Status)]++
	}
	return out
}

// TakeDirty returns the drivers whose position changed since the last call and
// marks them clean: what a checkpoint writes. A checkpoint that fails hands them
// back with MarkDirty.
func (x *Index) TakeDirty() []Driver {
	x.mu.Lock()
	defer x.mu.Unlock()
	var out []Driver
	for _, e := range x.drivers {
		if e.dirty {
			e.dirty = false
			out = append(out, e.copy())
		}
	}
	return out
}

// MarkDirty marks the drivers with ids dirty again, so the next checkpoint writes them.
func (x *Index) MarkDirty(ids []string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, id := range ids {
		if e, ok := x.drivers[id]; ok {
			e.dirty = true
		}
	}
}
