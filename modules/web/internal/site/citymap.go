package site

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/message"
	"github.com/agora-commerce/agora/modules/fleet"
)

// The map's viewBox: mapWidth units wide (the height follows the city's
// proportions), with mapMargin around it so that dots at the edge show whole.
const (
	mapWidth  = 1000.0
	mapMargin = 20.0
)

// cityMap is the simulated city as the ride pages draw it: fleet's streets
// projected into an SVG viewBox (map tiles cannot be had offline; the
// simulation's own geometry can), and the named places a rider can choose
// without a pointer.
type cityMap struct {
	Name    string
	Height  float64 // of the viewBox, without the margin; the width is mapWidth
	Streets []svgStreet
	Places  []place
	proj    projection
}

// svgStreet is a street as an SVG polyline's points ("x,y x,y …").
type svgStreet struct {
	Name, Points string
}

// place is a named spot on the city's streets: a street corner, or the middle
// of a street. Value is its point as a form sends it ("lat,lng").
type place struct {
	Name, Value string
}

// mark is a labelled point on the map (the pickup "A", the drop-off "B").
type mark struct {
	X, Y  float64
	Label string
}

// dot is a driver on the map, available or busy.
type dot struct {
	X, Y float64
	Busy bool
}

// ViewBox is the SVG's viewBox attribute.
func (c *cityMap) ViewBox() string {
	return fmt.Sprintf("%g %g %g %g", -mapMargin, -mapMargin, mapWidth+2*mapMargin, math.Round(c.Height+2*mapMargin))
}

// Projection is the projection's parameters as site.js reads them to turn a
// click back into a place: "west north kx ky" (see projection).
func (c *cityMap) Projection() string {
	p := c.proj
	return strconv.FormatFloat(p.west, 'f', -1, 64) + " " + strconv.FormatFloat(p.north, 'f', -1, 64) + " " +
		strconv.FormatFloat(p.kx, 'f', -1, 64) + " " + strconv.FormatFloat(p.ky, 'f', -1, 64)
}

// mark projects p as a labelled point.
func (c *cityMap) mark(p message.Point, label string) *mark {
	x, y := c.proj.xy(p)
	return &mark{X: x, Y: y, Label: label}
}

// dots projects fleet's drivers.
func (c *cityMap) dots(drivers []fleet.DriverDot) []dot {
	out := make([]dot, 0, len(drivers))
	for _, d := range drivers {
		x, y := c.proj.xy(d.Point)
		out = append(out, dot{X: x, Y: y, Busy: d.Status == fleet.StatusBusy})
	}
	return out
}

// projection is an equirectangular projection of the city's box onto the
// viewBox: x = (lng - west)·kx grows east, y = (north - lat)·ky grows south, and
// kx = ky·cos(middle latitude), so a unit is about the same distance both ways
// (plenty for a city).
type projection struct {
	west, north, kx, ky float64
}

func (p projection) xy(pt message.Point) (x, y float64) {
	return (pt.Lng - p.west) * p.kx, (p.north - pt.Lat) * p.ky
}

// newCityMap projects fleet's city.
func newCityMap(c fleet.CityMap) (*cityMap, error) {
	sw, ne := c.SouthWest, c.NorthEast
	if !sw.Valid() || !ne.Valid() || ne.Lat <= sw.Lat || ne.Lng <= sw.Lng {
		return nil, fmt.Errorf("web: fleet's city has an empty box (%v, %v)", sw, ne)
	}
	cos := math.Cos((sw.Lat + ne.Lat) / 2 * math.Pi / 180)
	kx := mapWidth / (ne.Lng - sw.Lng)
	p := projection{west: sw.Lng, north: ne.Lat, kx: kx, ky: kx / cos}
	m := &cityMap{Name: c.Name, Height: (ne.Lat - sw.Lat) * p.ky, proj: p, Places: cityPlaces(c.Streets)}
	for _, s := range c.Streets {
		var b strings.Builder
		for i, pt := range s.Points {
			if i > 0 {
				b.WriteByte(' ')
			}
			x, y := p.xy(pt)
			fmt.Fprintf(&b, "%.1f,%.1f", x, y)
		}
		m.Streets = append(m.Streets, svgStreet{Name: s.Name, Points: b.String()})
	}
	return m, nil
}

// Bounds on the places offered in the pickup and drop-off lists, and on the
// work of finding street corners (pairs of segments compared).
const (
	maxPlaces        = 200
	maxCornerSegment = 4000
)

// segment is a piece of a named street.
type segment struct {
	street string
	a, b   message.Point
}

// cityPlaces names places on the streets for the pickup and drop-off lists: the
// corners where two streets cross, or, for a city without crossings, the middle
// of each street. Sorted by name, at most maxPlaces.
func cityPlaces(streets []fleet.Street) []place {
	var segs []segment
	for _, s := range streets {
		name := cmp.Or(strings.TrimSpace(s.Name), "Unnamed street")
		for i := 1; i < len(s.Points); i++ {
			segs = append(segs, segment{name, s.Points[i-1], s.Points[i]})
		}
	}
	var places []place
	if len(segs) <= maxCornerSegment {
		places = corners(segs)
	}
	if len(places) < 2 {
		places = places[:0]
		for _, s := range streets {
			if len(s.Points) > 0 {
				mid := s.Points[len(s.Points)/2]
				places = append(places, place{Name: cmp.Or(strings.TrimSpace(s.Name), "Unnamed street"), Value: pointValue(mid)})
			}
		}
	}
	slices.SortFunc(places, func(a, b place) int { return cmp.Compare(a.Name, b.Name) })
	places = slices.CompactFunc(places, func(a, b place) bool { return a.Name == b.Name })
	return places[:min(len(places), maxPlaces)]
}

// corners finds where streets of different names cross, one place per pair.
func corners(segs []segment) []place {
	seen := map[[2]string]bool{}
	var out []place
	for i := range segs {
		for j := i + 1; j < len(segs); j++ {
			a, b := segs[i], segs[j]
			if a.street == b.street {
				continue
			}
			names := [2]string{min(a.street, b.street), max(a.street, b.street)}
			if seen[names] {
				continue
			}
			if pt, ok := crossing(a, b); ok {
				seen[names] = true
				out = append(out, place{Name: names[0] + " and " + names[1], Value: pointValue(pt)})
			}
		}
	}
	return out
}

// crossing returns where two segments meet, ends included (a street that ends
// on another meets it), treating degrees as a plane: fine at a city's scale.
func crossing(s, t segment) (message.Point, bool) {
	const eps = 1e-9
	rx, ry := s.b.Lng-s.a.Lng, s.b.Lat-s.a.Lat
	qx, qy := t.b.Lng-t.a.Lng, t.b.Lat-t.a.Lat
	den := rx*qy - ry*qx
	if math.Abs(den) < 1e-18 {
		return message.Point{}, false // parallel
	}
	dx, dy := t.a.Lng-s.a.Lng, t.a.Lat-s.a.Lat
	u := (dx*qy - dy*qx) / den
	v := (dx*ry - dy*rx) / den
	if u < -eps || u > 1+eps || v < -eps || v > 1+eps {
		return message.Point{}, false
	}
	return message.Point{Lat: s.a.Lat + u*ry, Lng: s.a.Lng + u*rx}, true
}

// pointValue writes p as forms carry it: "lat,lng", to about 10 cm.
func pointValue(p message.Point) string {
	return strconv.FormatFloat(p.Lat, 'f', 6, 64) + "," + strconv.FormatFloat(p.Lng, 'f', 6, 64)
}

// parsePoint reads a point a form sent ("lat,lng"); ok is false for anything else.
func parsePoint(s string) (message.Point, bool) {
	if len(s) > 64 {
		return message.Point{}, false
	}
	lat, lng, found := strings.Cut(strings.TrimSpace(s), ",")
	if !found {
		return message.Point{}, false
	}
	var p message.Point
	var err1, err2 error
	p.Lat, err1 = strconv.ParseFloat(strings.TrimSpace(lat), 64)
	p.Lng, err2 = strconv.ParseFloat(strings.TrimSpace(lng), 64)
	return p, err1 == nil && err2 == nil && p.Valid() && !math.IsInf(p.Lat, 0) && !math.IsInf(p.Lng, 0)
}

// cityFor is how long the city is kept before fleet is asked again: the
// simulation's city does not change while fleet runs, but a fleet restarted
// with another city shows within the hour.
const cityFor = time.Hour

// cityCache keeps the projected city: every ride page draws it, and it is
// fleet's largest answer.
type cityCache struct {
	mu   sync.Mutex
	at   time.Time
	city *cityMap
}

// city returns the projected city, asking fleet when it has none or it is old.
// Concurrent first callers share one request.
func (s *Site) city(ctx context.Context) (*cityMap, error) {
	c := s.cityCache
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.city != nil && time.Since(c.at) < cityFor {
		return c.city, nil
	}
	raw, err := bus.Call(ctx, s.bus, fleet.CityRequest, fleet.City{})
	if err != nil {
		if c.city != nil {
			return c.city, nil // an old city beats no map
		}
		return nil, err
	}
	m, err := newCityMap(raw)
	if err != nil {
		return nil, err
	}
	c.city, c.at = m, time.Now()
	return m, nil
}

// fleetFeed shares fleet's snapshot among the pages and event streams of this
// process: however many riders watch the map, fleet is asked at most once per
// period (positions are conflated by nature: only the newest matters).
type fleetFeed struct {
	bus   *bus.Bus
	every time.Duration
	mu    sync.Mutex
	at    time.Time
	snap  fleet.FleetSnapshot
	err   error
}

// latest returns a snapshot at most every old, asking fleet when it is older.
func (f *fleetFeed) latest(ctx context.Context) (fleet.FleetSnapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.at.IsZero() && time.Since(f.at) < f.every {
		return f.snap, f.err
	}
	snap, err := bus.Call(ctx, f.bus, fleet.SnapshotRequest, fleet.Snapshot{})
	if ctx.Err() != nil {
		return snap, err // this caller went away: its failure is not the feed's
	}
	f.snap, f.err, f.at = snap, err, time.Now()
	return snap, err
}
