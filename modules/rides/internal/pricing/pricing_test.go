package pricing

import (
	"math"
	"testing"
	"time"

	"github.com/agora-commerce/agora/modules/rides"
)

var (
	brandenburgGate = rides.Point{Lat: 52.5163, Lng: 13.3777}
	alexanderplatz  = rides.Point{Lat: 52.5219, Lng: 13.4132}
)

func TestDistance(t *testing.T) {
	// Brandenburger Tor to Alexanderplatz is about 2.5 km as the crow flies.
	if d := Distance(brandenburgGate, alexanderplatz); math.Abs(d-2480) > 50 {
		t.Errorf("distance = %.0f m, want about 2480", d)
	}
	if d := Distance(brandenburgGate, brandenburgGate); d != 0 {
		t.Errorf("distance to itself = %f", d)
	}
}

func TestFare(t *testing.T) {
	tf := Tariff{Currency: "EUR", Base: 250, PerKm: 120, PerMinute: 30, Minimum: 600, Detour: 1.3, SpeedKmh: 36}
	for _, tc := range []struct {
		meters, seconds int64
		surge           float64
		want            int64
	}{
		{10_000, 1200, 1, 250 + 1200 + 600},
		{10_000, 1200, 1.5, 3075},
		{100, 10, 1, 600}, // the minimum
	} {
		if got := tf.Fare(tc.meters, tc.seconds, tc.surge); got != (rides.Money{Amount: tc.want, Currency: "EUR"}) {
			t.Errorf("Fare(%d m, %d s, ×%.1f) = %v, want %d", tc.meters, tc.seconds, tc.surge, got, tc.want)
		}
	}
	m, s := tf.Trip(brandenburgGate, alexanderplatz)
	if want := int64(math.Round(Distance(brandenburgGate, alexanderplatz) * 1.3)); m != want || s != int64(math.Round(float64(m)/10)) {
		t.Errorf("Trip = %d m, %d s; want %d m at 10 m/s", m, s, want)
	}
}

func TestMultiplier(t *testing.T) {
	r := SurgeRule{K: 0.5, Threshold: 1, Cap: 3}
	for _, tc := range []struct {
		demand, supply int
		want           float64
	}{
		{0, 0, 1}, {1, 5, 1}, {5, 5, 1}, {6, 2, 2}, {3, 0, 2}, {100, 1, 3}, {7, 4, 1.3},
	} {
		if got := r.Multiplier(tc.demand, tc.supply); got != tc.want {
			t.Errorf("Multiplier(%d, %d) = %v, want %v", tc.demand, tc.supply, got, tc.want)
		}
	}
}

func TestSurgeWindowSlides(t *testing.T) {
	rule := DefaultSurgeRule()
	s := NewSurge(rule)
	t0 := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	for i := range 6 {
		s.Record(brandenburgGate, t0.Add(time.Duration(i)*time.Second))
	}
	s.SetSupply(map[string]int{rule.Cell(brandenburgGate): 2})
	if d, sup, m := s.At(brandenburgGate, t0.Add(time.Minute)); d != 6 || sup != 2 || m != 2 {
		t.Errorf("a minute later: demand %d supply %d surge %v, want 6, 2, 2", d, sup, m)
	}
	if d, _, _ := s.At(alexanderplatz, t0.Add(time.Minute)); d != 0 {
		t.Errorf("another cell has demand %d", d)
	}
	if d, _, m := s.At(brandenburgGate, t0.Add(rule.Window+time.Minute)); d != 0 || m != 1 {
		t.Errorf("after the window: demand %d surge %v, want 0 and 1", d, m)
	}
	// A slot reused by a later bucket starts again from zero.
	s.Record(brandenburgGate, t0.Add(rule.Window))
	if d, _, _ := s.At(brandenburgGate, t0.Add(rule.Window)); d != 1 {
		t.Errorf("after reuse: demand %d, want 1", d)
	}
}

func TestSurgeIsBounded(t *testing.T) {
	rule := DefaultSurgeRule()
	rule.MaxCells = 3
	s := NewSurge(rule)
	t0 := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	for i := range 10 {
		s.Record(rides.Point{Lat: 52 + float64(i)*0.1, Lng: 13}, t0.Add(time.Duration(i)*time.Minute))
	}
	if n := s.Cells(); n != 3 {
		t.Errorf("%d cells tracked, want 3", n)
	}
	if d, _, _ := s.At(rides.Point{Lat: 52.9, Lng: 13}, t0.Add(9*time.Minute)); d != 1 {
		t.Errorf("the newest cell was forgotten")
	}
}

// BenchmarkSurge measures recording a request and reading a cell's surge, as each
// ride request and quote does.
func BenchmarkSurge(b *testing.B) {
	s := NewSurge(DefaultSurgeRule())
	t0 := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	i := 0
	for b.Loop() {
		p := rides.Point{Lat: 52.45 + float64(i%100)*0.001, Lng: 13.3 + float64(i%77)*0.002}
		s.Record(p, t0.Add(time.Duration(i)*time.Millisecond))
		s.At(p, t0.Add(time.Duration(i)*time.Millisecond))
		i++
	}
}
