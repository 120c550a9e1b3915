// Package city is the simulated city: a deterministic street grid over central
// Berlin (52.47–52.57 N, 13.33–13.48 E) with a few avenues across it. The demo
// fleet drives along its grid streets and maps draw exactly these streets, so what
// a map shows and where the demo's drivers go agree.
package city

import (
	"fmt"
	"math/rand/v2"

	"github.com/golang/geo/s2"

	"github.com/agora-commerce/agora/modules/fleet"
)

// Bounds of the simulated area, in degrees.
var (
	SouthWest = fleet.Point{Lat: 52.47, Lng: 13.33}
	NorthEast = fleet.Point{Lat: 52.57, Lng: 13.48}
)

// rows and cols are how many east–west and north–south streets the grid has.
const (
	rows = 12
	cols = 12
)

// earthRadiusMeters turns angles into meters.
const earthRadiusMeters = 6_371_010.0

// City is the simulated city: its map and its grid, for routing.
type City struct {
	Map  fleet.CityMap
	lats []float64 // the latitude of each east–west street, south to north
	lngs []float64 // the longitude of each north–south street, west to east
}

// Berlin returns the simulated city. It is the same on every call.
func Berlin() *City {
	c := &City{}
	for i := range rows {
		c.lats = append(c.lats, SouthWest.Lat+(NorthEast.Lat-SouthWest.Lat)*float64(i)/float64(rows-1))
	}
	for j := range cols {
		c.lngs = append(c.lngs, SouthWest.Lng+(NorthEast.Lng-SouthWest.Lng)*float64(j)/float64(cols-1))
	}
	m := fleet.CityMap{Name: "Berlin (simulated)", SouthWest: SouthWest, NorthEast: NorthEast}
	for i, lat := range c.lats {
		s := fleet.Street{Name: fmt.Sprintf("%d. Querstraße", i+1)}
		for _, lng := range c.lngs {
			s.Points = append(s.Points, fleet.Point{Lat: lat, Lng: lng})
		}
		m.Streets = append(m.Streets, s)
	}
	for j, lng := range c.lngs {
		s := fleet.Street{Name: fmt.Sprintf("%d. Längsstraße", j+1)}
		for _, lat := range c.lats {
			s.Points = append(s.Points, fleet.Point{Lat: lat, Lng: lng})
		}
		m.Streets = append(m.Streets, s)
	}
	// Avenues: the two diagonals of the grid and a ring road around its middle.
	m.Streets = append(m.Streets,
		fleet.Street{Name: "Diagonale Nord", Points: []fleet.Point{c.at(0, 0), c.at(rows-1, cols-1)}},
		fleet.Street{Name: "Diagonale Süd", Points: []fleet.Point{c.at(rows-1, 0), c.at(0, cols-1)}},
		fleet.Street{Name: "Ring", Points: []fleet.Point{c.at(3, 3), c.at(3, cols-4), c.at(rows-4, cols-4), c.at(rows-4, 3), c.at(3, 3)}},
	)
	c.Map = m
	return c
}

// at returns the crossing of east–west street i and north–south street j.
func (c *City) at(i, j int) fleet.Point { return fleet.Point{Lat: c.lats[i], Lng: c.lngs[j]} }

// Contains reports whether p lies within the city's bounds.
func (c *City) Contains(p fleet.Point) bool {
	return p.Lat >= SouthWest.Lat && p.Lat <= NorthEast.Lat && p.Lng >= SouthWest.Lng && p.Lng <= NorthEast.Lng
}

// RandomCrossing returns a crossing of the grid chosen by r.
func (c *City) RandomCrossing(r *rand.Rand) fleet.Point {
	return c.at(r.IntN(rows), r.IntN(cols))
}

// nearest returns the indexes of the grid crossing nearest to p.
func (c *City) nearest(p fleet.Point) (int, int) {
	return closest(c.lats, p.Lat), closest(c.lngs, p.Lng)
}

func closest(xs []float64, x float64) int {
	best := 0
	for i, v := range xs {
		if abs(v-x) < abs(xs[best]-x) {
			best = i
		}
	}
	return best
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

// Route returns a way from from to to along the grid's streets: to the crossing
// nearest from, along its east–west street to the column of the crossing nearest to,
// along that north–south street to it, and on to to. Its first point is from and
// its last is to.
func (c *City) Route(from, to fleet.Point) []fleet.Point {
	i0, j0 := c.nearest(from)
	i1, j1 := c.nearest(to)
	route := []fleet.Point{from, c.at(i0, j0)}
	for j := j0; j != j1; {
		j += sign(j1 - j)
		route = append(route, c.at(i0, j))
	}
	for i := i0; i != i1; {
		i += sign(i1 - i)
		route = append(route, c.at(i, j1))
	}
	return append(route, to)
}

func sign(x int) int {
	if x < 0 {
		return -1
	}
	return 1
}

// Meters returns the great-circle distance between a and b.
func Meters(a, b fleet.Point) float64 {
	return float64(s2.LatLngFromDegrees(a.Lat, a.Lng).Distance(s2.LatLngFromDegrees(b.Lat, b.Lng))) * earthRadiusMeters
}

// Toward returns the point d meters from a on the way to b (b itself when d
// reaches it), interpolated along the great circle.
func Toward(a, b fleet.Point, d float64) (fleet.Point, bool) {
	total := Meters(a, b)
	if total <= d || total == 0 {
		return b, true
	}
	pa := s2.PointFromLatLng(s2.LatLngFromDegrees(a.Lat, a.Lng))
	pb := s2.PointFromLatLng(s2.LatLngFromDegrees(b.Lat, b.Lng))
	ll := s2.LatLngFromPoint(s2.Interpolate(d/total, pa, pb))
	return fleet.Point{Lat: ll.Lat.Degrees(), Lng: ll.Lng.Degrees()}, false
}
