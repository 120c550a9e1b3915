package loadgen

import (
	"math"
	"math/rand/v2"
)

// point is a place on Earth, as the fleet and rides APIs write it.
type point struct {
	Lat float64 `json:"lat"`
	Lng float64 `json:"lng"`
}

// earthRadius is the mean radius of the Earth in meters.
const earthRadius = 6_371_008.8

// distance is the great-circle distance from a to b in meters (haversine).
func distance(a, b point) float64 {
	const rad = math.Pi / 180
	dLat, dLng := (b.Lat-a.Lat)*rad, (b.Lng-a.Lng)*rad
	h := math.Sin(dLat/2)*math.Sin(dLat/2) + math.Cos(a.Lat*rad)*math.Cos(b.Lat*rad)*math.Sin(dLng/2)*math.Sin(dLng/2)
	return 2 * earthRadius * math.Asin(math.Min(1, math.Sqrt(h)))
}

// route is a polyline walked at a constant speed. Over the few hundred meters
// between two vertices of a street, interpolating latitude and longitude linearly
// is as good as the great circle.
type route struct {
	pts []point
	cum []float64 // cum[i]: meters from pts[0] to pts[i] along the line
}

// newRoute returns the route along pts (at least one point).
func newRoute(pts []point) route {
	r := route{pts: pts, cum: make([]float64, len(pts))}
	for i := 1; i < len(pts); i++ {
		r.cum[i] = r.cum[i-1] + distance(pts[i-1], pts[i])
	}
	return r
}

// length is the route's length in meters.
func (r route) length() float64 { return r.cum[len(r.cum)-1] }

// along is the point d meters from the route's start, clamped to its ends.
func (r route) along(d float64) point {
	n := len(r.pts)
	if d <= 0 || n == 1 {
		return r.pts[0]
	}
	if d >= r.length() {
		return r.pts[n-1]
	}
	// The first vertex beyond d: binary search, routes can have many vertices.
	lo, hi := 1, n-1
	for lo < hi {
		mid := (lo + hi) / 2
		if r.cum[mid] < d {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	a, b := r.pts[lo-1], r.pts[lo]
	seg := r.cum[lo] - r.cum[lo-1]
	if seg == 0 {
		return b
	}
	f := (d - r.cum[lo-1]) / seg
	return point{Lat: a.Lat + f*(b.Lat-a.Lat), Lng: a.Lng + f*(b.Lng-a.Lng)}
}

// bounce is the point d meters into a walk that goes to the route's end, turns
// back to its start, and so on: a vehicle driving up and down its street.
func (r route) bounce(d float64) point {
	l := r.length()
	if l == 0 {
		return r.pts[0]
	}
	d = math.Mod(d, 2*l)
	if d < 0 {
		d += 2 * l
	}
	if d > l {
		d = 2*l - d
	}
	return r.along(d)
}

// walker is one simulated vehicle: where on which route it was at the start of the
// run and how fast it drives. Its position is a function of time alone, so
// concurrent batches can read it without locks.
type walker struct {
	route  *route
	offset float64 // meters along the bounce walk at time 0
	speed  float64 // meters a second
}

// at is the walker's position secs seconds after the start.
func (w walker) at(secs float64) point { return w.route.bounce(w.offset + w.speed*secs) }

// newWalkers puts n walkers on random routes at random places, driving at 5 to
// 15 m/s (18 to 54 km/h, city traffic).
func newWalkers(n int, routes []route, r *rand.Rand) []walker {
	ws := make([]walker, n)
	for i := range ws {
		rt := &routes[r.IntN(len(routes))]
		ws[i] = walker{route: rt, offset: r.Float64() * 2 * rt.length(), speed: 5 + 10*r.Float64()}
	}
	return ws
}
