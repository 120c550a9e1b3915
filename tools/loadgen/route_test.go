package loadgen

import (
	"math"
	"math/rand/v2"
	"testing"
)

func near(a, b point) bool { return distance(a, b) < 0.01 }

// TestDistance: a degree of latitude is about 111.2 km anywhere; a degree of
// longitude shrinks with the cosine of the latitude.
func TestDistance(t *testing.T) {
	if d := distance(point{52, 13}, point{53, 13}); math.Abs(d-111_195) > 10 {
		t.Errorf("one degree of latitude = %.0f m, want about 111195", d)
	}
	if d := distance(point{52, 13}, point{52, 14}); math.Abs(d-111_195*math.Cos(52*math.Pi/180)) > 100 {
		t.Errorf("one degree of longitude at 52°N = %.0f m", d)
	}
	if d := distance(point{52.5, 13.4}, point{52.5, 13.4}); d != 0 {
		t.Errorf("a point to itself = %v", d)
	}
}

// TestRouteAlong: along walks the polyline segment by segment, clamped to its
// ends; bounce turns back at each end.
func TestRouteAlong(t *testing.T) {
	a, b, c := point{52.50, 13.40}, point{52.51, 13.40}, point{52.51, 13.42}
	r := newRoute([]point{a, b, c})
	ab, bc := distance(a, b), distance(b, c)
	if math.Abs(r.length()-(ab+bc)) > 1e-6 {
		t.Fatalf("length = %v, want %v", r.length(), ab+bc)
	}
	mid := func(p, q point) point { return point{(p.Lat + q.Lat) / 2, (p.Lng + q.Lng) / 2} }
	for _, tc := range []struct {
		name string
		got  point
		want point
	}{
		{"before the start", r.along(-5), a},
		{"the start", r.along(0), a},
		{"half the first segment", r.along(ab / 2), mid(a, b)},
		{"the middle vertex", r.along(ab), b},
		{"half the second segment", r.along(ab + bc/2), mid(b, c)},
		{"the end", r.along(ab + bc), c},
		{"past the end", r.along(ab + bc + 100), c},
		{"bounce: back half the second segment", r.bounce(ab + bc + bc/2), mid(b, c)},
		{"bounce: back at the start", r.bounce(2 * (ab + bc)), a},
		{"bounce: a second lap", r.bounce(2*(ab+bc) + ab), b},
		{"bounce: negative", r.bounce(-ab / 2), mid(a, b)},
	} {
		if !near(tc.got, tc.want) {
			t.Errorf("%s: %+v, want %+v", tc.name, tc.got, tc.want)
		}
	}
	one := newRoute([]point{a})
	if one.along(10) != a || one.bounce(10) != a {
		t.Error("a one-point route moves")
	}
}

// TestWalkerMovesAtItsSpeed: a walker covers speed × time meters along its route
// (on a straight route, the distance between its positions).
func TestWalkerMovesAtItsSpeed(t *testing.T) {
	rt := newRoute([]point{{52.50, 13.40}, {52.60, 13.40}}) // 11 km north
	w := walker{route: &rt, offset: 100, speed: 10}
	if d := distance(w.at(0), w.at(30)); math.Abs(d-300) > 0.5 {
		t.Errorf("30 s at 10 m/s: moved %.1f m, want 300", d)
	}
	ws := newWalkers(100, []route{rt}, rand.New(rand.NewPCG(1, 2)))
	for _, w := range ws {
		if w.speed < 5 || w.speed > 15 || w.offset < 0 || w.offset > 2*rt.length() {
			t.Fatalf("walker out of bounds: %+v", w)
		}
	}
}
