// Package pricing prices rides: the distance and duration of a trip, its fare, and
// the surge multiplier of the pickup's S2 cell from live demand and supply.
//
// Distance and duration. A ride's distance is the great-circle distance between
// pickup and drop-off times a detour factor (Tariff.Detour, 1.3 by default: city
// streets are about that much longer than the straight line); its duration is that
// distance at the average city speed (Tariff.SpeedKmh).
//
// A pickup ETA is the nearest available driver's great-circle distance, times the
// detour factor, at the average city speed (Tariff.Seconds).
//
// Fare, in minor units of Tariff.Currency:
//
//	fare = max(Minimum, round((Base + PerKm·km + PerMinute·minutes) × surge))
//
// Surge. Demand is the number of rides requested in a cell during the last Window
// (a sliding window of Buckets counters per cell, so memory per cell is fixed and
// the count moves as time passes); supply is the number of available drivers in
// the cell (fleet's Supply, refreshed every few seconds). Then
//
//	surge = clamp(1, Cap, 1 + K·(demand / max(supply, 1) − Threshold))
//
// rounded down to a tenth, so that one request more or less does not move prices
// by cents. A cell with no demand has no surge. At most MaxCells cells are
// tracked; when more are, the cell whose demand is oldest is forgotten.
package pricing

import (
	"math"
	"sync"
	"time"

	"github.com/golang/geo/s2"

	"github.com/agora-commerce/agora/modules/rides"
)

// EarthRadiusMeters is the mean Earth radius the distances use.
const EarthRadiusMeters = 6_371_008.8

// Distance returns the great-circle distance between a and b in meters.
func Distance(a, b rides.Point) float64 {
	return s2.LatLngFromDegrees(a.Lat, a.Lng).Distance(s2.LatLngFromDegrees(b.Lat, b.Lng)).Radians() * EarthRadiusMeters
}

// Tariff is how fares are computed.
type Tariff struct {
	Currency  string
	Base      int64   // minor units per ride
	PerKm     int64   // minor units per kilometre
	PerMinute int64   // minor units per minute
	Minimum   int64   // the least a ride costs
	Detour    float64 // road distance / great-circle distance
	SpeedKmh  float64 // average city speed, for durations and ETAs
}

// DefaultTariff is a plausible city tariff in EUR.
func DefaultTariff() Tariff {
	return Tariff{Currency: "EUR", Base: 250, PerKm: 120, PerMinute: 30, Minimum: 600, Detour: 1.3, SpeedKmh: 25}
}

// Trip returns the estimated road distance (meters) and duration (seconds) from
// pickup to dropoff.
func (t Tariff) Trip(pickup, dropoff rides.Point) (meters, seconds int64) {
	d := Distance(pickup, dropoff) * t.Detour
	return int64(math.Round(d)), t.Seconds(d)
}

// Seconds returns how long meters take at the average city speed.
func (t Tariff) Seconds(meters float64) int64 {
	return int64(math.Round(meters / (t.SpeedKmh / 3.6)))
}

// Fare returns the fare of a trip of meters and seconds at surge.
func (t Tariff) Fare(meters, seconds int64, surge float64) rides.Money {
	raw := float64(t.Base) + float64(t.PerKm)*float64(meters)/1000 + float64(t.PerMinute)*float64(seconds)/60
	return rides.Money{Amount: max(t.Minimum, int64(math.Round(raw*surge))), Currency: t.Currency}
}

// SurgeRule is the surge formula's parameters (see the package doc).
type SurgeRule struct {
	Level     int           // S2 cell level (13: cells of about 1 km²)
	Window    time.Duration // how far back demand counts
	Buckets   int           // the window's resolution
	K         float64
	Threshold float64
	Cap       float64
	MaxCells  int
}

// DefaultSurgeRule returns the default surge parameters.
func DefaultSurgeRule() SurgeRule {
	return SurgeRule{Level: 13, Window: 5 * time.Minute, Buckets: 30, K: 0.5, Threshold: 1, Cap: 3, MaxCells: 10_000}
}

// Multiplier returns the surge for demand and supply.
func (r SurgeRule) Multiplier(demand, supply int) float64 {
	if demand == 0 {
		return 1
	}
	m := 1 + r.K*(float64(demand)/float64(max(supply, 1))-r.Threshold)
	m = math.Min(r.Cap, math.Max(1, m))
	return math.Floor(m*10+1e-9) / 10
}

// Cell returns the token of p's cell at the rule's level.
func (r SurgeRule) Cell(p rides.Point) string {
	return s2.CellIDFromLatLng(s2.LatLngFromDegrees(p.Lat, p.Lng)).Parent(r.Level).ToToken()
}

// window is one cell's demand: counts per bucket, the bucket of each slot.
type window struct {
	counts []int
	slots  []int64 // the bucket number each count belongs to
	last   int64   // the newest bucket written
}

// Surge is the live surge of every cell: demand recorded as rides are requested,
// supply set from fleet. It is safe for concurrent use.
type Surge struct {
	rule SurgeRule

	mu     sync.Mutex
	demand map[string]*window
	supply map[string]int
}

// NewSurge returns an empty Surge under rule.
func NewSurge(rule SurgeRule) *Surge {
	return &Surge{rule: rule, demand: map[string]*window{}, supply: map[string]int{}}
}

// Rule returns the surge's rule.
func (s *Surge) Rule() SurgeRule { return s.rule }

func (s *Surge) bucket(at time.Time) int64 {
	return at.UnixNano() / int64(s.rule.Window/time.Duration(s.rule.Buckets))
}

// Record counts a ride requested at p at time at.
func (s *Surge) Record(p rides.Point, at time.Time) {
	cell, b := s.rule.Cell(p), s.bucket(at)
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.demand[cell]
	if w == nil {
		if len(s.demand) >= s.rule.MaxCells {
			s.evictOldest()
		}
		w = &window{counts: make([]int, s.rule.Buckets), slots: make([]int64, s.rule.Buckets)}
		s.demand[cell] = w
	}
	i := int(b % int64(s.rule.Buckets))
	if w.slots[i] != b {
		w.slots[i], w.counts[i] = b, 0
	}
	w.counts[i]++
	w.last = max(w.last, b)
}

func (s *Surge) evictOldest() {
	var oldest string
	var at int64 = math.MaxInt64
	for cell, w := range s.demand {
		if w.last < at {
			oldest, at = cell, w.last
		}
	}
	delete(s.demand, oldest)
}

// SetSupply replaces the available drivers per cell (cell tokens at the rule's level).
func (s *Surge) SetSupply(cells map[string]int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.supply = cells
}

// At returns the demand and supply of p's cell and its surge at time at.
func (s *Surge) At(p rides.Point, at time.Time) (demand, supply int, surge float64) {
	cell, now := s.rule.Cell(p), s.bucket(at)
	s.mu.Lock()
	defer s.mu.Unlock()
	if w := s.demand[cell]; w != nil {
		for i, b := range w.slots {
			if b > now-int64(s.rule.Buckets) && b <= now {
				demand += w.counts[i]
			}
		}
	}
	supply = s.supply[cell]
	return demand, supply, s.rule.Multiplier(demand, supply)
}

// Cells returns how many cells have demand recorded.
func (s *Surge) Cells() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.demand)
}
