package loadgen

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"
)

// fakeRides is just enough of Agora's fleet, rides and identity APIs, in memory,
// to run the rides scenario against; sign-in is fakeShop's.
type fakeRides struct {
	shop *fakeShop

	mu        sync.Mutex
	roles     map[string]string // user id → role
	versions  map[string]int64
	online    map[string]bool // fleet drivers online, by id
	positions int64           // positions of online drivers received
	ignored   int64
	batches   int
	streams   map[string]*websocket.Conn // driver id → its stream
	free      []string                   // drivers with a stream and no ride
	rides     map[string]*fakeRide
	waiting   []string // rides not yet offered
	keys      map[string]bool
	problems  []string
}

type fakeRide struct {
	ID       string `json:"id"`
	Rider    string `json:"rider_id"`
	DriverID string `json:"driver_id,omitempty"`
	Status   string `json:"status"`
	Version  int64  `json:"version"`
	Pickup   point  `json:"pickup"`
	Dropoff  point  `json:"dropoff"`
}

func newFakeRides() *fakeRides {
	shop := newFakeShop()
	shop.accounts["admin@example.com"] = "demo-admin-password"
	shop.logins = 2 // no rate limit here
	return &fakeRides{shop: shop, roles: map[string]string{}, versions: map[string]int64{}, online: map[string]bool{},
		streams: map[string]*websocket.Conn{}, rides: map[string]*fakeRide{}, keys: map[string]bool{}}
}

// caller is the signed-in user's id (its email) and role, or "" after a 401.
func (f *fakeRides) caller(w http.ResponseWriter, r *http.Request) (string, string) {
	f.shop.mu.Lock()
	email := f.shop.tokens[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")]
	f.shop.mu.Unlock()
	if email == "" {
		writeProblem(w, http.StatusUnauthorized, "")
		return "", ""
	}
	if email == "admin@example.com" {
		return email, "admin"
	}
	return email, f.roles[email]
}

func (f *fakeRides) problem(format string, args ...any) {
	f.problems = append(f.problems, fmt.Sprintf(format, args...))
}

func (f *fakeRides) handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/v1/auth/", f.shop.handler())
	f.identityRoutes(mux)
	f.fleetRoutes(mux)
	f.rideRoutes(mux)
	mux.HandleFunc("GET /v1/drivers/me/stream", f.stream)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/v1/auth/") || strings.HasSuffix(r.URL.Path, "/stream") || strings.HasSuffix(r.URL.Path, "/events") {
			mux.ServeHTTP(w, r) // their handlers lock what they touch
			return
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		mux.ServeHTTP(w, r)
	})
}

func (f *fakeRides) identityRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/me", func(w http.ResponseWriter, r *http.Request) {
		if id, role := f.caller(w, r); id != "" {
			writeJSON(w, http.StatusOK, map[string]string{"id": id, "role": role})
		}
	})
	mux.HandleFunc("GET /v1/users/{id}", func(w http.ResponseWriter, r *http.Request) {
		if _, role := f.caller(w, r); role == "admin" {
			writeJSON(w, http.StatusOK, map[string]any{"id": r.PathValue("id"), "version": f.versions[r.PathValue("id")] + 1})
		}
	})
	mux.HandleFunc("PUT /v1/users/{id}/role", func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		if _, role := f.caller(w, r); role != "admin" || r.Header.Get("If-Match") != fmt.Sprintf(`"%d"`, f.versions[id]+1) {
			f.problem("role of %s set by %s with If-Match %q", id, role, r.Header.Get("If-Match"))
			writeProblem(w, http.StatusPreconditionFailed, "")
			return
		}
		f.roles[id] = "driver"
		f.versions[id]++
		writeJSON(w, http.StatusOK, map[string]any{"id": id})
	})
}

func (f *fakeRides) fleetRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/fleet/city", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"streets": []map[string]any{
			{"points": []point{{52.50, 13.40}, {52.52, 13.40}}}, {"points": []point{{52.51, 13.38}, {52.51, 13.42}}}}})
	})
	mux.HandleFunc("POST /v1/fleet/drivers/{id}/{state}", func(w http.ResponseWriter, r *http.Request) {
		if _, role := f.caller(w, r); role == "admin" {
			f.online[r.PathValue("id")] = r.PathValue("state") == "online"
			writeJSON(w, http.StatusOK, map[string]any{})
		}
	})
	mux.HandleFunc("POST /v1/fleet/positions", func(w http.ResponseWriter, r *http.Request) {
		if _, role := f.caller(w, r); role != "admin" {
			return
		}
		if f.batches++; f.batches == 3 { // saturated once
			w.Header().Set("Retry-After", "1")
			writeProblem(w, http.StatusTooManyRequests, "urn:agora:problem:fleet.saturated")
			return
		}
		var b struct{ Positions []positionIn }
		json.NewDecoder(r.Body).Decode(&b)
		var accepted, ignored int64
		for _, p := range b.Positions {
			if f.online[p.DriverID] {
				accepted++
			} else {
				ignored++
			}
		}
		f.positions += accepted
		f.ignored += ignored
		writeJSON(w, http.StatusOK, map[string]int64{"accepted": accepted, "ignored": ignored})
	})
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "# TYPE %s counter\n# TYPE %s histogram\n# TYPE %s gauge\n", metricUpdates, metricVisible, metricRSS)
		fmt.Fprintf(w, "%s{outcome=\"received\"} %d\n%s{outcome=\"accepted\"} %d\n", metricUpdates, f.positions+f.ignored, metricUpdates, f.positions)
		fmt.Fprintf(w, "%s_bucket{le=\"0.001\"} %d\n%s_bucket{le=\"+Inf\"} %d\n%s_sum 0\n%s_count %d\n",
			metricVisible, f.positions, metricVisible, f.positions, metricVisible, metricVisible, f.positions)
		fmt.Fprintf(w, "%s 1.5e+08\n", metricRSS)
	})
	for _, state := range []string{"online", "offline"} {
		mux.HandleFunc("POST /v1/drivers/me/"+state, func(w http.ResponseWriter, r *http.Request) {
			if id, role := f.caller(w, r); id != "" && role != "driver" {
				f.problem("%s went %s as a %q", id, state, role)
			}
			writeJSON(w, http.StatusOK, map[string]any{})
		})
	}
}

func (f *fakeRides) rideRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /v1/rides/quotes", func(w http.ResponseWriter, r *http.Request) {
		if id, _ := f.caller(w, r); id != "" {
			writeJSON(w, http.StatusOK, map[string]any{"fare": map[string]any{"amount": 1200, "currency": "EUR"}})
		}
	})
	mux.HandleFunc("POST /v1/rides", func(w http.ResponseWriter, r *http.Request) {
		rider, _ := f.caller(w, r)
		if rider == "" {
			return
		}
		key := r.Header.Get("Idempotency-Key")
		if key == "" || f.keys[key] {
			f.problem("ride requested with Idempotency-Key %q", key)
		}
		f.keys[key] = true
		var b struct {
			Pickup, Dropoff point
			PaymentToken    string `json:"payment_token"`
		}
		json.NewDecoder(r.Body).Decode(&b)
		if b.PaymentToken == "" || b.Pickup == b.Dropoff {
			f.problem("ride requested with %+v", b)
		}
		ride := &fakeRide{ID: fmt.Sprintf("r-%d", len(f.rides)+1), Rider: rider, Status: "requested", Version: 1, Pickup: b.Pickup, Dropoff: b.Dropoff}
		f.rides[ride.ID] = ride
		f.waiting = append(f.waiting, ride.ID)
		f.dispatch()
		writeJSON(w, http.StatusAccepted, ride)
	})
	mux.HandleFunc("GET /v1/rides/{id}/events", f.rideEvents)
}

// dispatch offers waiting rides to free drivers. f.mu is held.
func (f *fakeRides) dispatch() {
	for len(f.waiting) > 0 && len(f.free) > 0 {
		ride, driver := f.rides[f.waiting[0]], f.free[0]
		f.waiting, f.free = f.waiting[1:], f.free[1:]
		conn := f.streams[driver]
		offer := map[string]any{"type": "offer", "offer": map[string]any{"ride_id": ride.ID, "pickup": ride.Pickup, "dropoff": ride.Dropoff}}
		go wsjson.Write(context.Background(), conn, offer)
	}
}

// rideEvents is the ride's event stream: the ride, a driver position, and the ride
// after each change, until it is final.
func (f *fakeRides) rideEvents(w http.ResponseWriter, r *http.Request) {
	rider, _ := f.caller(w, r)
	f.mu.Lock()
	ride := f.rides[r.PathValue("id")]
	f.mu.Unlock()
	if rider == "" || ride == nil || ride.Rider != rider {
		writeProblem(w, http.StatusNotFound, "")
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	fmt.Fprint(w, "event: position\ndata: {\"driver_id\":\"d\",\"point\":{\"lat\":52.5,\"lng\":13.4}}\n\n")
	var sent int64
	for r.Context().Err() == nil {
		f.mu.Lock()
		view := *ride
		f.mu.Unlock()
		if view.Version > sent {
			b, _ := json.Marshal(view)
			fmt.Fprintf(w, "event: status\nid: %d\ndata: %s\n\n", view.Version, b)
			w.(http.Flusher).Flush()
			sent = view.Version
		}
		if view.Status == "completed" {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// stream is a driver's WebSocket: offers out, accepts and trip actions in.
func (f *fakeRides) stream(w http.ResponseWriter, r *http.Request) {
	driver, role := f.caller(w, r)
	if role != "driver" {
		f.problem("a stream opened by %q, a %q", driver, role)
		return
	}
	conn, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	defer conn.CloseNow()
	f.mu.Lock()
	f.streams[driver] = conn
	f.free = append(f.free, driver)
	f.dispatch()
	f.mu.Unlock()
	for {
		var m streamMsg
		if err := wsjson.Read(r.Context(), conn, &m); err != nil {
			return
		}
		if m.Type == "position" {
			continue
		}
		f.mu.Lock()
		reply := f.answer(driver, m)
		f.mu.Unlock()
		if err := wsjson.Write(r.Context(), conn, reply); err != nil {
			return
		}
	}
}

// answer carries out a driver's accept or trip action. f.mu is held.
func (f *fakeRides) answer(driver string, m streamMsg) map[string]any {
	ride := f.rides[m.RideID]
	next := map[string]string{"arrive": "arriving", "start": "in_trip", "complete": "completed"}[m.Action]
	switch {
	case ride == nil:
		f.problem("%s for unknown ride %q", m.Type, m.RideID)
		return map[string]any{"type": "error", "of": m.Type, "code": "rides.not_found"}
	case m.Type == "accept":
		ride.DriverID, ride.Status = driver, "driver_assigned"
	case m.Type == "trip" && m.Action == "arrive" && ride.Status == "driver_assigned" && ride.Version == 2:
		ride.Version++ // the first arrival comes too early, as it can from rides
		return map[string]any{"type": "error", "of": "trip", "code": "rides.wrong_status"}
	case m.Type == "trip" && next != "":
		ride.Status = next
		if next == "completed" {
			f.free = append(f.free, driver)
			defer f.dispatch()
		}
	default:
		f.problem("unexpected %+v", m)
	}
	ride.Version++
	return map[string]any{"type": "ack", "of": m.Type, "ride": *ride}
}

// A whole rides run against the fake: the ingest phase brings its drivers online,
// sends every slot's batch but those it holds back for the 429's Retry-After, and
// takes them offline again; the server's metrics are read; the dispatch phase
// promotes the drivers, and every ride launched is offered, accepted, driven and
// followed to completion.
func TestRidesRunAgainstAFake(t *testing.T) {
	f := newFakeRides()
	ts := httptest.NewServer(f.handler())
	defer ts.Close()
	cfg := DefaultConfig()
	cfg.URLs = []string{ts.URL}
	cfg.Scenario = ScenarioRides
	cfg.Seed = 3
	cfg.Drain = 10 * time.Second
	cfg.Rides = RidesConfig{Drivers: 50, PositionRate: 200, Ingest: 1500 * time.Millisecond, Batch: 20, Concurrency: 2,
		RideDrivers: 3, Riders: 4, RideRate: 20, Dispatch: 500 * time.Millisecond, TripSpeed: 100_000, RideTimeout: 10 * time.Second}
	rep, err := Run(context.Background(), cfg, tWriter{t})
	if err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, p := range append(f.problems, f.shop.problems...) {
		t.Error("the fake saw:", p)
	}
	in := rep.Rides.Ingest
	// 1.5 s at 200/s in batches of 20: 15 batch slots; the third answered 429 and
	// Retry-After 1 s held back the next slots.
	if in.RefusedBatches != 1 || in.Refused != 20 || in.DroppedBackoff == 0 || in.Batches*20+in.Dropped+in.DroppedBackoff != 15*20 {
		t.Errorf("ingest %+v: want 15 slots, one batch refused, the next held back", in)
	}
	if in.Sent != in.Accepted+in.Refused || in.Accepted != f.positions || f.ignored != 0 {
		t.Errorf("ingest %+v; the fake took %d, ignored %d", in, f.positions, f.ignored)
	}
	if in.Server == nil || in.Server.Accepted != f.positions || in.Server.RSSBytes != 150e6 || *in.Server.VisibleP99MS != 1 {
		t.Errorf("server metrics %+v", in.Server)
	}
	for id, on := range f.online {
		if on {
			t.Errorf("fleet driver %s left online", id)
		}
	}
	d := rep.Rides.Dispatch
	if d.Launched == 0 || d.Launched != d.Completed || d.OffersAccepted != d.Launched || d.RequestToAssigned.Count != d.Launched ||
		d.RequestToCompleted.Count != d.Completed || d.Drivers != 3 || d.Launched+d.Dropped != 10 {
		t.Errorf("dispatch %+v: every ride launched must be completed, of 10 slots", d)
	}
	if rep.ErrorsTotal != int64(len(f.rides)) || rep.Errors[0].Operation != "driver_trip_arrive" {
		t.Errorf("errors %+v: want only each ride's early arrival", rep.Errors)
	}
	if err := rep.WriteText(tWriter{t}); err != nil {
		t.Fatal(err)
	}
}
