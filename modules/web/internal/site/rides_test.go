package site

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/message"
	"github.com/agora-commerce/agora/modules/fleet"
	"github.com/agora-commerce/agora/modules/identity"
	"github.com/agora-commerce/agora/modules/rides"
)

const (
	ride1  = "0190a8b2-0000-7000-8000-00000000a1d1" // alice's, scripted: requested → driver assigned → completed
	ride2  = "0190a8b2-0000-7000-8000-00000000a1d2" // what RequestRide creates
	driver = "0190a8b2-0000-7000-8000-0000000d71ef"
)

// The fake city: a square of four streets, 0.02° on a side.
var (
	southWest = message.Point{Lat: 52.50, Lng: 13.38}
	northEast = message.Point{Lat: 52.52, Lng: 13.42}
	fakeCity  = fleet.CityMap{Name: "Testville", SouthWest: southWest, NorthEast: northEast, Streets: []fleet.Street{
		{Name: "North Street", Points: []message.Point{{Lat: 52.52, Lng: 13.38}, {Lat: 52.52, Lng: 13.42}}},
		{Name: "South Street", Points: []message.Point{{Lat: 52.50, Lng: 13.38}, {Lat: 52.50, Lng: 13.42}}},
		{Name: "West Avenue", Points: []message.Point{{Lat: 52.50, Lng: 13.38}, {Lat: 52.51, Lng: 13.38}, {Lat: 52.52, Lng: 13.38}}},
		{Name: "East Avenue", Points: []message.Point{{Lat: 52.50, Lng: 13.42}, {Lat: 52.52, Lng: 13.42}}},
	}}
	fare = message.Money{Amount: 1230, Currency: "EUR"}
)

// fakeRides answers fleet's and rides' requests: one scripted ride of alice's,
// a fleet of two drivers, and a record of what it was asked.
type fakeRides struct {
	mu        sync.Mutex
	script    []rides.Ride // ride1 at versions 1, 2, 3
	requested []rides.RequestRide
	cancelled []rides.CancelRide
	busy      bool  // RequestRide answers ErrRiderBusy
	current   int64 // the version GetRide answers
	listed    int64 // the version ListRides answers
	snapshots atomic.Int64
	cities    atomic.Int64
}

func newFakeRides() *fakeRides {
	at := time.Date(2026, 12, 3, 15, 0, 0, 0, time.UTC)
	base := rides.Ride{ID: ride1, RiderID: alice, Status: rides.StatusRequested, Pickup: message.Point{Lat: 52.50, Lng: 13.39},
		Dropoff: message.Point{Lat: 52.52, Lng: 13.41}, DistanceMeters: 3200, DurationSeconds: 600, Surge: 1.5, Fare: fare,
		Version: 1, CreatedAt: at, UpdatedAt: at}
	assigned := base
	assigned.Status, assigned.DriverID, assigned.Version = rides.StatusDriverAssigned, driver, 2
	done := assigned
	done.Status, done.Version, done.CompletedAt = rides.StatusCompleted, 3, at.Add(10*time.Minute)
	done.Charged = &message.Money{Amount: 1230, Currency: "EUR"}
	return &fakeRides{script: []rides.Ride{base, assigned, done}, current: 1, listed: 3}
}

// at returns ride1 at version v (1…3).
func (fr *fakeRides) at(v int64) rides.Ride { return fr.script[min(max(v, 1), 3)-1] }

func (fr *fakeRides) handlers() []bus.RequestHandler {
	return append(fr.fleetHandlers(), []bus.RequestHandler{
		bus.Handle(rides.QuoteRideRequest, func(_ context.Context, q rides.QuoteRide) (rides.Quote, error) {
			if q.Pickup == q.Dropoff {
				return rides.Quote{}, rides.ErrSamePlace
			}
			return rides.Quote{Pickup: q.Pickup, Dropoff: q.Dropoff, DistanceMeters: 3200, DurationSeconds: 600,
				PickupETA: 240, Surge: 1.5, Fare: fare, ExpiresAt: time.Now().Add(time.Minute)}, nil
		}),
		bus.Handle(rides.RequestRideRequest, func(_ context.Context, q rides.RequestRide) (rides.Requested, error) {
			fr.mu.Lock()
			defer fr.mu.Unlock()
			if fr.busy {
				return rides.Requested{}, rides.ErrRiderBusy
			}
			fr.requested = append(fr.requested, q)
			return rides.Requested{Ride: rides.Ride{ID: ride2, RiderID: q.RiderID, Status: rides.StatusRequested}}, nil
		}),
		bus.Handle(rides.GetRideRequest, func(_ context.Context, q rides.GetRide) (rides.Ride, error) {
			if q.ID != ride1 {
				return rides.Ride{}, rides.ErrRideNotFound
			}
			return fr.at(fr.current), nil
		}),
		bus.Handle(rides.WaitRideRequest, func(_ context.Context, q rides.WaitRide) (rides.Ride, error) {
			return fr.at(q.AfterVersion + 1), nil // each wait sees the next step at once
		}),
		bus.Handle(rides.ListRidesRequest, func(_ context.Context, q rides.ListRides) (rides.RidePage, error) {
			if q.RiderID != alice {
				return rides.RidePage{}, nil
			}
			return rides.RidePage{Items: []rides.Ride{fr.at(fr.listed)}}, nil
		}),
		bus.Handle(rides.CancelRideRequest, func(_ context.Context, q rides.CancelRide) (rides.Ride, error) {
			fr.mu.Lock()
			defer fr.mu.Unlock()
			fr.cancelled = append(fr.cancelled, q)
			return fr.at(1), nil
		}),
	}...)
}

func (fr *fakeRides) fleetHandlers() []bus.RequestHandler {
	return []bus.RequestHandler{
		bus.Handle(fleet.CityRequest, func(context.Context, fleet.City) (fleet.CityMap, error) {
			fr.cities.Add(1)
			return fakeCity, nil
		}),
		bus.Handle(fleet.SnapshotRequest, func(context.Context, fleet.Snapshot) (fleet.FleetSnapshot, error) {
			fr.snapshots.Add(1)
			return fleet.FleetSnapshot{Drivers: []fleet.DriverDot{
				{DriverID: driver, Status: fleet.StatusAvailable, Point: message.Point{Lat: 52.51, Lng: 13.40}},
				{DriverID: bob, Status: fleet.StatusBusy, Point: message.Point{Lat: 52.52, Lng: 13.41}},
			}}, nil
		}),
		bus.Handle(fleet.GetDriverRequest, func(_ context.Context, q fleet.GetDriver) (fleet.Driver, error) {
			if q.DriverID != driver {
				return fleet.Driver{}, fleet.ErrDriverNotFound
			}
			return fleet.Driver{ID: driver, Status: fleet.StatusBusy, RideID: ride1, Position: &message.Point{Lat: 52.505, Lng: 13.39}}, nil
		}),
	}
}

// TestRidesAccess checks who sees the ride pages: anonymous visitors are sent
// to sign in (and back), another rider's ride is answered exactly like a
// missing one, and admins see any ride.
func TestRidesAccess(t *testing.T) {
	f := newFixture(t)
	rider := f.token(alice, identity.RoleCustomer, time.Hour) + "|r"
	stranger := f.token(bob, identity.RoleCustomer, time.Hour) + "|r"
	admin := f.token(root, identity.RoleAdmin, time.Hour) + "|r"
	tests := []accessCase{
		{"anonymous rides", "/rides", "", 303, "/signin?next=" + url.QueryEscape("/rides"), ""},
		{"anonymous ride", "/rides/" + ride1, "", 303, "/signin?next=" + url.QueryEscape("/rides/"+ride1), ""},
		{"anonymous map stream", "/rides/live", "", 303, "/signin?next=" + url.QueryEscape("/rides/live"), ""},
		{"own ride", "/rides/" + ride1, rider, 200, "", "EUR 12.30"},
		{"another's ride", "/rides/" + ride1, stranger, 404, "", "ride not found"},
		{"another's ride stream", "/rides/" + ride1 + "/live", stranger, 404, "", "ride not found"},
		{"missing ride", "/rides/0190a8b2-0000-7000-8000-00000000a1d9", rider, 404, "", "ride not found"},
		{"overlong id", "/rides/" + strings.Repeat("x", 100), rider, 404, "", "ride not found"},
		{"admin, any ride", "/rides/" + ride1, admin, 200, "", "EUR 12.30"},
	}
	f.checkAccess(t, tests)
}

// TestRidesPage checks /rides: the city's streets and drivers drawn (busy and
// available by shape), the places to choose from, the rider's rides, and the
// quote for two places, with the request form carrying them, a fresh
// idempotency key and the test cards; a refused quote shows on the form; a ride
// under way is pointed to.
func TestRidesPage(t *testing.T) {
	f := newFixture(t)
	rider := f.token(alice, identity.RoleCustomer, time.Hour) + "|r"
	pickup, dropoff := "52.500000,13.380000", "52.520000,13.420000" // two corners
	quote := "/rides?" + url.Values{"pickup": {pickup}, "dropoff": {dropoff}}.Encode()
	tests := []struct {
		name, path string
		status     int
		want, not  []string
	}{
		{"map", "/rides", 200, []string{
			`<polyline points="0.0,0.0 1000.0,0.0"/>`, `class="dot available"`, `class="dot busy"`, `data-live="/rides/live"`,
			`<option value="52.500000,13.380000">South Street and West Avenue</option>`,
			`href="/rides/` + ride1 + `"`, `href="/rides" aria-current="page"`,
		}, []string{`id="quote"`, "under way"}},
		{"pickup only", "/rides?pickup=" + pickup, 200, []string{`<text x="0.0" y="`, `>A</text>`,
			`<option value="52.500000,13.380000" selected>`}, []string{">B</text>", `id="quote"`}},
		{"quote", quote, 200, []string{`id="quote"`, "Fare EUR 12.30", "3.2 km", "about 10 min", "a driver in about 4 min", "×1.5",
			`name="pickup" value="` + pickup + `"`, `name="dropoff" value="` + dropoff + `"`, `name="idempotency_key" value="`,
			`id="card-tok_visa"`, "Request ride — EUR 12.30", ">B</text>"}, nil},
		{"a point chosen on the map", "/rides?pickup=52.51,13.40", 200, []string{`<option value="52.51,13.40" selected>Chosen on the map</option>`}, nil},
		{"same place", "/rides?pickup=" + pickup + "&dropoff=" + pickup, 422, []string{`role="alert"`, "pickup and drop-off are the same place"},
			[]string{`id="quote"`}},
		{"not a place", "/rides?pickup=here&dropoff=there", 422, []string{"Choose the places on the map or from the lists."}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := f.send("GET", tt.path, rider)
			b := body(t, res)
			if res.StatusCode != tt.status {
				t.Fatalf("status %d, want %d:\n%s", res.StatusCode, tt.status, b)
			}
			for _, w := range tt.want {
				if !strings.Contains(b, w) {
					t.Errorf("page lacks %s", w)
				}
			}
			for _, n := range tt.not {
				if strings.Contains(b, n) {
					t.Errorf("page has %s", n)
				}
			}
		})
	}
	f.rides.listed = 2
	if b := body(t, f.send("GET", "/rides", rider)); !strings.Contains(b, `under way (driver on the way): <a href="/rides/`+ride1+`">`) {
		t.Errorf("a ride under way is not pointed to:\n%s", b)
	}
	if n := f.rides.cities.Load(); n != 1 {
		t.Errorf("fleet was asked for the city %d times, want once (it is cached)", n)
	}
}

// TestRequestRide checks the request form: the ride is requested for the
// signed-in rider with the form's places, card and idempotency key, and the
// browser goes to its page; a rider with an active ride gets the form back with
// why; a form without a card is refused.
func TestRequestRide(t *testing.T) {
	f := newFixture(t)
	rider := f.token(alice, identity.RoleCustomer, time.Hour) + "|r"
	form := url.Values{"pickup": {"52.500000,13.390000"}, "dropoff": {"52.520000,13.410000"},
		"payment_token": {"tok_visa"}, "idempotency_key": {"k-1"}}
	res := f.post("/rides", rider, form)
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/rides/"+ride2 {
		t.Fatalf("request: %d %s, want 303 to the ride's page", res.StatusCode, res.Header.Get("Location"))
	}
	if len(f.rides.requested) != 1 {
		t.Fatalf("rides got %d requests, want 1", len(f.rides.requested))
	}
	got := f.rides.requested[0]
	want := rides.RequestRide{RiderID: alice, Pickup: message.Point{Lat: 52.5, Lng: 13.39}, Dropoff: message.Point{Lat: 52.52, Lng: 13.41},
		PaymentToken: "tok_visa", IdempotencyKey: "web:k-1", RequestHash: got.RequestHash}
	if got != want || len(got.RequestHash) != 64 {
		t.Errorf("rides was asked for %+v, want %+v with a request hash", got, want)
	}

	f.rides.busy = true
	res = f.post("/rides", rider, form)
	if b := body(t, res); res.StatusCode != http.StatusConflict || !strings.Contains(b, "you already have an active ride") ||
		!strings.Contains(b, `id="quote"`) {
		t.Errorf("a busy rider: %d, want 409 with the form and why:\n%s", res.StatusCode, b)
	}
	form.Del("payment_token")
	if res := f.post("/rides", rider, form); res.StatusCode != http.StatusUnprocessableEntity {
		t.Errorf("a form without a card: %d, want 422", res.StatusCode)
	}
}

// TestCancelRide checks that the rider cancels their ride (as its rider) and
// that another customer cannot.
func TestCancelRide(t *testing.T) {
	f := newFixture(t)
	res := f.post("/rides/"+ride1+"/cancel", f.token(bob, identity.RoleCustomer, time.Hour)+"|r", nil)
	if res.StatusCode != http.StatusNotFound || len(f.rides.cancelled) != 0 {
		t.Fatalf("another customer cancelling: %d and %d cancellations, want 404 and none", res.StatusCode, len(f.rides.cancelled))
	}
	res = f.post("/rides/"+ride1+"/cancel", f.token(alice, identity.RoleCustomer, time.Hour)+"|r", nil)
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/rides/"+ride1 {
		t.Fatalf("cancel: %d %s", res.StatusCode, res.Header.Get("Location"))
	}
	want := rides.CancelRide{ID: ride1, Actor: alice}
	if len(f.rides.cancelled) != 1 || f.rides.cancelled[0] != want {
		t.Errorf("rides was asked to cancel %+v, want %+v", f.rides.cancelled, want)
	}
}

// TestRidePage checks the ride's page: its status panel following the ride
// live, the cancel button while it may be cancelled, and the driver on the map.
func TestRidePage(t *testing.T) {
	f := newFixture(t)
	b := body(t, f.send("GET", "/rides/"+ride1, f.token(alice, identity.RoleCustomer, time.Hour)+"|r"))
	for _, want := range []string{`data-live="/rides/` + ride1 + `/live?after=1"`, `data-events="status driver"`, `data-event="driver"`,
		`data-status="requested"`, `action="/rides/` + ride1 + `/cancel"`, ">A</text>", ">B</text>", `class="route"`,
		`<noscript><meta http-equiv="refresh" content="5"></noscript>`} {
		if !strings.Contains(b, want) {
			t.Errorf("page lacks %s", want)
		}
	}
}

// event is one server-sent event.
type event struct{ name, id, data string }

// readEvents reads a stream's events until it ends or n were read.
func readEvents(t *testing.T, res *http.Response, n int) []event {
	t.Helper()
	if ct := res.Header.Get("Content-Type"); res.StatusCode != 200 || ct != "text/event-stream" {
		t.Fatalf("%d %s, want an event stream", res.StatusCode, ct)
	}
	var out []event
	var ev event
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(nil, 1<<20)
	for len(out) < n && sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if ev.name != "" {
				out = append(out, ev)
			}
			ev = event{}
		case strings.HasPrefix(line, "event: "):
			ev.name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "id: "):
			ev.id = strings.TrimPrefix(line, "id: ")
		case strings.HasPrefix(line, "data: "):
			ev.data += strings.TrimPrefix(line, "data: ") + "\n"
		}
	}
	return out
}

// TestRideLive checks the ride's event stream: each version of the ride once,
// as its status panel (ids are versions), the driver's dot while it is
// assigned, the receipt when completed, then the end; a browser that shows the
// final version already gets only the end.
func TestRideLive(t *testing.T) {
	f := newFixture(t)
	rider := f.token(alice, identity.RoleCustomer, time.Hour) + "|r"
	evs := readEvents(t, f.send("GET", "/rides/"+ride1+"/live?after=0", rider), 100)
	var got []string
	for _, e := range evs {
		got = append(got, e.name+":"+e.id)
	}
	if want := "status:1 status:2 driver: status:3 end:"; strings.Join(got, " ") != want {
		t.Fatalf("events %v, want %s", got, want)
	}
	if d := evs[2].data; !strings.Contains(d, `class="dot busy"`) {
		t.Errorf("the driver event is not its dot: %s", d)
	}
	if d := evs[3].data; !strings.Contains(d, "Receipt") || !strings.Contains(d, "EUR 12.30") || !strings.Contains(d, "3.2 km") ||
		strings.Contains(d, "/cancel") {
		t.Errorf("the completed ride's panel lacks the receipt, or offers to cancel: %s", d)
	}
	f.rides.current = 3
	evs = readEvents(t, f.send("GET", "/rides/"+ride1+"/live", rider, "Last-Event-ID", "3"), 100)
	if len(evs) != 1 || evs[0].name != "end" {
		t.Errorf("reconnecting at the final version: %v, want only the end", evs)
	}
}

// TestFleetLive checks the map's event stream: the drivers' dots, available
// and busy; and that streams share fleet's snapshot (fleet is asked once per
// period however many riders watch).
func TestFleetLive(t *testing.T) {
	f := newFixture(t)
	f.site.fleetFeed.every = time.Hour
	rider := f.token(alice, identity.RoleCustomer, time.Hour) + "|r"
	for range 3 {
		evs := readEvents(t, f.send("GET", "/rides/live", rider), 1)
		if len(evs) != 1 || evs[0].name != "drivers" {
			t.Fatalf("first events %v, want the drivers", evs)
		}
		if d := evs[0].data; strings.Count(d, `class="dot available"`) != 1 || strings.Count(d, `class="dot busy"`) != 1 {
			t.Errorf("the drivers are not one available and one busy dot: %s", d)
		}
	}
	if n := f.rides.snapshots.Load(); n != 1 {
		t.Errorf("fleet was asked for %d snapshots by three streams within its period, want 1", n)
	}
}

// post sends a same-origin form.
func (f *fixture) post(path, session string, form url.Values) *http.Response {
	f.t.Helper()
	req, _ := http.NewRequest("POST", f.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	req.AddCookie(&http.Cookie{Name: cookieName, Value: session})
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := c.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { res.Body.Close() })
	return res
}

// TestCityMap checks the projection (the box's corners at the viewBox's, north
// up, a degree of longitude shorter than one of latitude by the cosine), the
// corners found as places, and what forms may send as a place.
func TestCityMap(t *testing.T) {
	m, err := newCityMap(fakeCity)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		p    message.Point
		x, y float64
	}{{northEast, 1000, 0}, {message.Point{Lat: 52.50, Lng: 13.38}, 0, m.Height}} {
		if x, y := m.proj.xy(c.p); fmt.Sprintf("%.3f %.3f", x, y) != fmt.Sprintf("%.3f %.3f", c.x, c.y) {
			t.Errorf("%v at (%.3f, %.3f), want (%.3f, %.3f)", c.p, x, y, c.x, c.y)
		}
	}
	// 0.02° of latitude over 0.04° of longitude at 52.51°: 0.5 / cos(52.51°) ≈ 0.8215.
	if got := m.Height / mapWidth; got < 0.820 || got > 0.823 {
		t.Errorf("the map's height/width is %.4f, want ≈ 0.8215", got)
	}
	var names []string
	for _, p := range m.Places {
		names = append(names, p.Name)
	}
	want := "East Avenue and North Street|East Avenue and South Street|North Street and West Avenue|South Street and West Avenue"
	if strings.Join(names, "|") != want {
		t.Errorf("places %v, want the four corners", names)
	}
	for in, ok := range map[string]bool{"52.5,13.4": true, " 52.5 , 13.4 ": true, "91,0": false, "NaN,1": false,
		"1": false, "a,b": false, "Inf,0": false, strings.Repeat("1", 70) + ",1": false} {
		if _, got := parsePoint(in); got != ok {
			t.Errorf("parsePoint(%q) ok = %v, want %v", in, got, ok)
		}
	}
	if _, err := newCityMap(fleet.CityMap{SouthWest: northEast, NorthEast: southWest}); err == nil {
		t.Error("a city with an empty box was drawn")
	}
}
