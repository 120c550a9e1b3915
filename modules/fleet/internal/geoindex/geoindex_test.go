package geoindex_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/golang/geo/s2"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/agora-commerce/agora/modules/fleet"
	"github.com/agora-commerce/agora/modules/fleet/internal/geoindex"
)

var t0 = time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)

// world is an index with drivers scattered over central Berlin, and the same
// drivers in a plain list for brute-force answers.
type world struct {
	idx     *geoindex.Index
	drivers []geoindex.Driver
	now     time.Time
}

func clock(w *world) func() time.Time { return func() time.Time { return w.now } }

// newWorld puts n drivers in the index: most available, some busy, some offline,
// some silent beyond the stale bound.
func newWorld(n int, seed uint64) *world {
	w := &world{now: t0}
	w.idx = geoindex.New(2*time.Minute, clock(w))
	r := rand.New(rand.NewPCG(seed, 1))
	for i := range n {
		d := geoindex.Driver{ID: fmt.Sprintf("d%05d", i), Status: fleet.StatusAvailable, Version: 1,
			Point: &fleet.Point{Lat: 52.47 + r.Float64()*0.1, Lng: 13.33 + r.Float64()*0.15}, PositionAt: t0, SeenAt: t0}
		switch i % 10 {
		case 7:
			d.Status, d.RideID = fleet.StatusBusy, "ride"
		case 8:
			d.Status = fleet.StatusOffline
		case 9:
			d.SeenAt = t0.Add(-3 * time.Minute) // stale
		}
		w.idx.Put(d)
		w.drivers = append(w.drivers, d)
	}
	return w
}

func meters(a, b fleet.Point) float64 {
	return float64(s2.LatLngFromDegrees(a.Lat, a.Lng).Distance(s2.LatLngFromDegrees(b.Lat, b.Lng))) * 6_371_010.0
}

// bruteNearest is FindNearest by looking at every driver.
func (w *world) bruteNearest(p fleet.Point, radius float64, limit int, exclude []string) []string {
	type cand struct {
		id string
		d  float64
	}
	var cs []cand
	for _, d := range w.drivers {
		if d.Status != fleet.StatusAvailable || w.now.Sub(d.SeenAt) > 2*time.Minute || slices.Contains(exclude, d.ID) {
			continue
		}
		if m := meters(p, *d.Point); m <= radius {
			cs = append(cs, cand{d.ID, m})
		}
	}
	sort.Slice(cs, func(i, j int) bool {
		if cs[i].d != cs[j].d {
			return cs[i].d < cs[j].d
		}
		return cs[i].id < cs[j].id
	})
	var ids []string
	for i := 0; i < len(cs) && i < limit; i++ {
		ids = append(ids, cs[i].id)
	}
	return ids
}

func ids(cs []fleet.Candidate) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.DriverID)
	}
	return out
}

// TestNearestMatchesBruteForce: for many points, radii, limits and exclusions,
// Nearest answers exactly the brute-force answer — the nearest available, fresh
// drivers within the radius, nearest first — and never a busy, offline or stale one.
func TestNearestMatchesBruteForce(t *testing.T) {
	w := newWorld(3000, 7)
	r := rand.New(rand.NewPCG(42, 2))
	w.check(t, r)
	// Every driver moves: most a few meters (mostly within their cells), some far.
	var moves []geoindex.Move
	for i := range w.drivers {
		d := &w.drivers[i]
		step := 0.0005
		if i%5 == 0 {
			step = 0.02
		}
		p := fleet.Point{Lat: d.Point.Lat + (r.Float64()-0.5)*step, Lng: d.Point.Lng + (r.Float64()-0.5)*step}
		d.Point = &p
		moves = append(moves, geoindex.Move{DriverID: d.ID, Point: p, At: t0.Add(time.Second), SeenAt: d.SeenAt})
	}
	w.idx.Apply(moves)
	w.check(t, r)
}

// check compares Nearest with the brute-force answer for random queries.
func (w *world) check(t *testing.T, r *rand.Rand) {
	t.Helper()
	radii := []float64{50, 300, 1000, 2500, 8000, 50_000}
	for q := range 300 {
		p := fleet.Point{Lat: 52.46 + r.Float64()*0.12, Lng: 13.32 + r.Float64()*0.17}
		radius, limit := radii[q%len(radii)], 1+r.IntN(fleet.MaxNearest)
		var exclude []string
		if q%3 == 0 {
			exclude = w.bruteNearest(p, radius, 3, nil)
		}
		got := w.idx.Nearest(p, radius, limit, exclude)
		want := w.bruteNearest(p, radius, limit, exclude)
		if diff := cmp.Diff(want, ids(got), cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("query %d at %v r=%v limit=%d (-want +got):\n%s", q, p, radius, limit, diff)
		}
		for _, c := range got {
			if m := meters(p, c.Position); m-c.DistanceMeters > 0.01 || c.DistanceMeters-m > 0.01 {
				t.Fatalf("driver %s: distance %v, want %v", c.DriverID, c.DistanceMeters, m)
			}
		}
	}
}

// TestNearestFollowsStatusAndMoves: a driver engaged (busy) leaves the answers, a
// released one returns, a driver who moved is found where it moved to, and one
// that fell silent beyond the stale bound is no longer found.
func TestNearestFollowsStatusAndMoves(t *testing.T) {
	w := &world{now: t0}
	idx := geoindex.New(2*time.Minute, clock(w))
	here := fleet.Point{Lat: 52.52, Lng: 13.40}
	idx.Put(geoindex.Driver{ID: "a", Status: fleet.StatusAvailable, Point: &here, PositionAt: t0, SeenAt: t0, Version: 1})
	find := func() []string { return ids(idx.Nearest(here, 500, 5, nil)) }
	if got := find(); !slices.Equal(got, []string{"a"}) {
		t.Fatalf("available driver: got %v", got)
	}
	idx.Put(geoindex.Driver{ID: "a", Status: fleet.StatusBusy, RideID: "r1", Version: 2})
	if got := find(); len(got) != 0 {
		t.Fatalf("busy driver returned: %v", got)
	}
	if idx.Put(geoindex.Driver{ID: "a", Status: fleet.StatusAvailable, Version: 1}) {
		t.Fatal("an older version was applied")
	}
	idx.Put(geoindex.Driver{ID: "a", Status: fleet.StatusAvailable, Version: 3})
	if got := find(); !slices.Equal(got, []string{"a"}) {
		t.Fatalf("released driver: got %v", got)
	}
	far := fleet.Point{Lat: 52.55, Lng: 13.45}
	idx.Apply([]geoindex.Move{{DriverID: "a", Point: far, At: t0.Add(time.Second), SeenAt: t0.Add(time.Second)}})
	if got := find(); len(got) != 0 {
		t.Fatalf("driver found where it left: %v", got)
	}
	if got := ids(idx.Nearest(far, 100, 5, nil)); !slices.Equal(got, []string{"a"}) {
		t.Fatalf("driver not found where it moved: %v", got)
	}
	if idx.Check(geoindex.Move{DriverID: "a", Point: here, At: t0}) != geoindex.Stale {
		t.Fatal("an older position is not stale")
	}
	w.now = t0.Add(3 * time.Minute)
	if got := ids(idx.Nearest(far, 100, 5, nil)); len(got) != 0 {
		t.Fatalf("silent driver still found: %v", got)
	}
}

// TestSupplyCountsAvailableDriversPerCell: per S2 cell, the count of available,
// fresh drivers — busy, offline and stale ones are not supply.
func TestSupplyCountsAvailableDriversPerCell(t *testing.T) {
	w := newWorld(2000, 3)
	for _, level := range []int{10, 13, 16} {
		want := map[string]int{}
		for _, d := range w.drivers {
			if d.Status == fleet.StatusAvailable && w.now.Sub(d.SeenAt) <= 2*time.Minute {
				want[s2.CellIDFromLatLng(s2.LatLngFromDegrees(d.Point.Lat, d.Point.Lng)).Parent(level).ToToken()]++
			}
		}
		if diff := cmp.Diff(want, w.idx.Supply(level)); diff != "" {
			t.Errorf("level %d (-want +got):\n%s", level, diff)
		}
	}
}

// TestSnapshotShowsOnlineDrivers: every online driver with a position, busy or
// not, stale or not; no offline driver.
func TestSnapshotShowsOnlineDrivers(t *testing.T) {
	w := newWorld(500, 5)
	want := map[string]fleet.DriverDot{}
	for _, d := range w.drivers {
		if d.Status != fleet.StatusOffline {
			want[d.ID] = fleet.DriverDot{DriverID: d.ID, Status: d.Status, Point: *d.Point}
		}
	}
	got := map[string]fleet.DriverDot{}
	for _, dot := range w.idx.Snapshot(fleet.MaxSnapshot) {
		got[dot.DriverID] = dot
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("snapshot (-want +got):\n%s", diff)
	}
	if n := len(w.idx.Snapshot(10)); n != 10 {
		t.Fatalf("snapshot limited to 10 has %d", n)
	}
}
