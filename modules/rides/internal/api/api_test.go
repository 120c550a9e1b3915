package api_test

import (
	"bufio"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/agora-commerce/agora/internal/config"
	"github.com/agora-commerce/agora/internal/httpapi/apitest"
	"github.com/agora-commerce/agora/internal/modhost"
	"github.com/agora-commerce/agora/modules/rides"
	"github.com/agora-commerce/agora/modules/rides/internal/api"
	"github.com/agora-commerce/agora/modules/rides/internal/dispatch"
	"github.com/agora-commerce/agora/modules/rides/internal/ridetest"
	"github.com/agora-commerce/agora/modules/rides/internal/trips"
)

const (
	aliceID  = "0190a8b2-0000-7000-8000-00000000a11c"
	bobID    = "0190a8b2-0000-7000-8000-000000000b0b"
	adminID  = "0190a8b2-0000-7000-8000-00000000ad01"
	driverID = "0190a8b2-0000-7000-8000-0000000000d1"
	otherID  = "0190a8b2-0000-7000-8000-0000000000d2"
	unknown  = "0190a8b2-0000-7000-8000-000000000999"
)

var (
	aliceToken  = apitest.Token(aliceID, "customer")
	bobToken    = apitest.Token(bobID, "customer")
	adminToken  = apitest.Token(adminID, "admin")
	driverToken = apitest.Token(driverID, "driver")
	otherToken  = apitest.Token(otherID, "driver")
)

type req = apitest.Request

type server struct {
	*apitest.Server
	world *ridetest.World
}

func newServer(t *testing.T) *server {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	h, err := modhost.Open(t.Context(), cfg, "rides", apitest.Logger())
	if err != nil {
		t.Fatalf("modhost.Open: %v", err)
	}
	t.Cleanup(func() { _ = h.DB.Close() })
	w := ridetest.NewWorld(t, h, trips.Options{SweepEvery: 10 * time.Millisecond, PollInterval: 50 * time.Millisecond,
		Timing: dispatch.Timing{SearchRetry: 20 * time.Millisecond}})
	return &server{Server: apitest.New(t, api.Routes(w.Bus)), world: w}
}

var trip = map[string]any{"pickup": ridetest.BrandenburgGate, "dropoff": ridetest.Alexanderplatz, "payment_token": "tok_visa"}

func (s *server) request(t *testing.T, tok, key string, body any) *httptest.ResponseRecorder {
	t.Helper()
	return s.Do(t, req{Method: http.MethodPost, Path: "/v1/rides", Token: tok, Body: body, Header: map[string]string{"Idempotency-Key": key}})
}

func TestQuoteRoute(t *testing.T) {
	s := newServer(t)
	body := map[string]any{"pickup": ridetest.BrandenburgGate, "dropoff": ridetest.Alexanderplatz}
	if r := s.Do(t, req{Method: http.MethodPost, Path: "/v1/rides/quotes", Body: body}); r.Code != http.StatusUnauthorized {
		t.Errorf("quote without a token: %d", r.Code)
	}
	r := s.Do(t, req{Method: http.MethodPost, Path: "/v1/rides/quotes", Token: aliceToken, Body: body})
	q := apitest.Decode[rides.Quote](t, r)
	if r.Code != http.StatusOK || q.Fare.Amount <= 0 || q.Surge != 1 || q.PickupETA != -1 {
		t.Errorf("quote: %d %s", r.Code, r.Body)
	}
	for _, tc := range []struct {
		name     string
		body     any
		location string
	}{
		{"latitude out of range", map[string]any{"pickup": map[string]float64{"lat": 95, "lng": 13}, "dropoff": ridetest.Alexanderplatz}, "body.pickup.lat"},
		{"outside the city", map[string]any{"pickup": ridetest.BrandenburgGate, "dropoff": map[string]float64{"lat": 48.1, "lng": 11.5}}, "body.dropoff"},
		{"same place", map[string]any{"pickup": ridetest.BrandenburgGate, "dropoff": ridetest.BrandenburgGate}, "body.dropoff"},
	} {
		r := s.Do(t, req{Method: http.MethodPost, Path: "/v1/rides/quotes", Token: aliceToken, Body: tc.body})
		p := apitest.Problem(t, r)
		if r.Code != http.StatusUnprocessableEntity || len(p.Errors) == 0 || p.Errors[0].Location != tc.location {
			t.Errorf("%s: %d %s, want 422 on %s", tc.name, r.Code, r.Body, tc.location)
		}
	}
}

func TestRideRoutes(t *testing.T) {
	s := newServer(t)
	r := s.Do(t, req{Method: http.MethodPost, Path: "/v1/rides", Token: aliceToken, Body: trip})
	if p := apitest.Problem(t, r); r.Code != http.StatusUnprocessableEntity || len(p.Errors) == 0 || p.Errors[0].Location != "header.Idempotency-Key" {
		t.Errorf("request without Idempotency-Key: %d %s", r.Code, r.Body)
	}
	r = s.request(t, aliceToken, "k1", trip)
	ride := apitest.Decode[rides.Ride](t, r)
	if r.Code != http.StatusAccepted || r.Header().Get("Location") != "/v1/rides/"+ride.ID || ride.RiderID != aliceID {
		t.Fatalf("request: %d %v %s", r.Code, r.Header(), r.Body)
	}
	r = s.request(t, aliceToken, "k1", trip)
	if r.Code != http.StatusAccepted || r.Header().Get("Idempotent-Replayed") != "true" || apitest.Decode[rides.Ride](t, r).ID != ride.ID {
		t.Errorf("replay: %d %v %s", r.Code, r.Header(), r.Body)
	}
	other := map[string]any{"pickup": ridetest.Potsdamer, "dropoff": ridetest.Alexanderplatz, "payment_token": "tok_visa"}
	if r = s.request(t, aliceToken, "k1", other); r.Code != http.StatusUnprocessableEntity {
		t.Errorf("same key, other body: %d %s", r.Code, r.Body)
	}
	if r = s.request(t, aliceToken, "k2", other); r.Code != http.StatusConflict || !strings.Contains(r.Body.String(), "active ride") {
		t.Errorf("a second active ride: %d %s", r.Code, r.Body)
	}
	// Who sees the ride: its rider and admins; anyone else gets a 404 like an unknown ride.
	for _, tc := range []struct {
		name, tok, id string
		status        int
	}{
		{"rider", aliceToken, ride.ID, http.StatusOK},
		{"admin", adminToken, ride.ID, http.StatusOK},
		{"another rider", bobToken, ride.ID, http.StatusNotFound},
		{"a driver not assigned", driverToken, ride.ID, http.StatusNotFound},
		{"unknown", aliceToken, unknown, http.StatusNotFound},
		{"not a uuid", aliceToken, "nope", http.StatusUnprocessableEntity},
	} {
		r := s.Do(t, req{Method: http.MethodGet, Path: "/v1/rides/" + tc.id, Token: tc.tok})
		if r.Code != tc.status {
			t.Errorf("%s: %d %s, want %d", tc.name, r.Code, r.Body, tc.status)
		}
	}
	hidden := s.Do(t, req{Method: http.MethodGet, Path: "/v1/rides/" + ride.ID, Token: bobToken}).Body.String()
	if missing := s.Do(t, req{Method: http.MethodGet, Path: "/v1/rides/" + unknown, Token: bobToken}).Body.String(); strings.ReplaceAll(hidden, ride.ID, unknown) != missing {
		t.Errorf("another's ride %s differs from a missing one %s", hidden, missing)
	}
	list := apitest.Decode[api.RideList](t, s.Do(t, req{Method: http.MethodGet, Path: "/v1/rides", Token: aliceToken}))
	if len(list.Items) != 1 || list.Items[0].ID != ride.ID {
		t.Errorf("alice's rides: %+v", list)
	}
	if list := apitest.Decode[api.RideList](t, s.Do(t, req{Method: http.MethodGet, Path: "/v1/rides", Token: bobToken})); len(list.Items) != 0 {
		t.Errorf("bob's rides: %+v", list)
	}
	if r = s.Do(t, req{Method: http.MethodPost, Path: "/v1/rides/" + ride.ID + "/cancel", Token: bobToken}); r.Code != http.StatusNotFound {
		t.Errorf("bob cancels alice's ride: %d", r.Code)
	}
	r = s.Do(t, req{Method: http.MethodPost, Path: "/v1/rides/" + ride.ID + "/cancel", Token: aliceToken, Body: map[string]string{"reason": "plans changed"}})
	if c := apitest.Decode[rides.Ride](t, r); r.Code != http.StatusOK || c.Status != rides.StatusCancelled || c.Reason != rides.ReasonRiderCancelled {
		t.Errorf("cancel: %d %s", r.Code, r.Body)
	}
	if r = s.Do(t, req{Method: http.MethodPost, Path: "/v1/rides/" + ride.ID + "/cancel", Token: aliceToken}); r.Code != http.StatusConflict {
		t.Errorf("cancel twice: %d %s", r.Code, r.Body)
	}
}

func TestDriverRoutes(t *testing.T) {
	s := newServer(t)
	s.world.Fleet.Add(driverID, ridetest.Potsdamer)
	ride := apitest.Decode[rides.Ride](t, s.request(t, aliceToken, "k1", trip))
	s.world.Offer(t, driverID)
	path := "/v1/rides/" + ride.ID
	// The driver sees the offer on its long poll; another driver waits in vain.
	if r := s.Do(t, req{Method: http.MethodGet, Path: "/v1/drivers/me/offer?wait=0", Token: driverToken}); r.Code != http.StatusOK ||
		apitest.Decode[rides.Offer](t, r).RideID != ride.ID {
		t.Errorf("the driver's offer: %d %s", r.Code, r.Body)
	}
	if r := s.Do(t, req{Method: http.MethodGet, Path: "/v1/drivers/me/offer?wait=0", Token: otherToken}); r.Code != http.StatusNoContent {
		t.Errorf("another driver's offer: %d %s, want 204", r.Code, r.Body)
	}
	if r := s.Do(t, req{Method: http.MethodGet, Path: "/v1/drivers/me/offer?wait=0", Token: aliceToken}); r.Code != http.StatusForbidden {
		t.Errorf("a rider's offer: %d, want 403", r.Code)
	}
	for _, tc := range []struct {
		name, tok, action string
		status            int
	}{
		{"a rider accepts", aliceToken, "/offer/accept", http.StatusForbidden},
		{"no token", "", "/offer/accept", http.StatusUnauthorized},
		{"another driver accepts", otherToken, "/offer/accept", http.StatusConflict},
		{"arrive before assignment", driverToken, "/arrive", http.StatusNotFound},
		{"accept", driverToken, "/offer/accept", http.StatusOK},
		{"accept again", driverToken, "/offer/decline", http.StatusConflict},
	} {
		r := s.Do(t, req{Method: http.MethodPost, Path: path + tc.action, Token: tc.tok})
		if r.Code != tc.status {
			t.Errorf("%s: %d %s, want %d", tc.name, r.Code, r.Body, tc.status)
		}
		if r.Code >= 400 {
			apitest.Problem(t, r)
		}
	}
	s.world.WaitState(t, ride.ID, rides.DispatchTrip)
	// The assigned driver sees the ride; another driver does not.
	if r := s.Do(t, req{Method: http.MethodGet, Path: path, Token: driverToken}); r.Code != http.StatusOK {
		t.Errorf("the driver gets the ride: %d", r.Code)
	}
	if r := s.Do(t, req{Method: http.MethodPost, Path: path + "/arrive", Token: otherToken}); r.Code != http.StatusNotFound {
		t.Errorf("another driver arrives: %d", r.Code)
	}
	if r := s.Do(t, req{Method: http.MethodPost, Path: path + "/start", Token: driverToken}); r.Code != http.StatusConflict {
		t.Errorf("start before arriving: %d %s", r.Code, r.Body)
	}
	for _, a := range []struct {
		action string
		want   rides.Status
	}{{"/arrive", rides.StatusArriving}, {"/start", rides.StatusInTrip}, {"/complete", rides.StatusCompleted}} {
		r := s.Do(t, req{Method: http.MethodPost, Path: path + a.action, Token: driverToken})
		if got := apitest.Decode[rides.Ride](t, r); r.Code != http.StatusOK || got.Status != a.want {
			t.Errorf("%s: %d %s", a.action, r.Code, r.Body)
		}
	}
	list := apitest.Decode[api.RideList](t, s.Do(t, req{Method: http.MethodGet, Path: "/v1/rides", Token: driverToken}))
	if len(list.Items) != 1 || list.Items[0].ID != ride.ID {
		t.Errorf("the driver's rides: %+v", list)
	}
}

func TestDispatchRoutes(t *testing.T) {
	s := newServer(t)
	ride := apitest.Decode[rides.Ride](t, s.request(t, aliceToken, "k1", trip))
	if r := s.Do(t, req{Method: http.MethodGet, Path: "/v1/ops/dispatches", Token: aliceToken}); r.Code != http.StatusForbidden {
		t.Errorf("a rider lists dispatches: %d", r.Code)
	}
	r := s.Do(t, req{Method: http.MethodGet, Path: "/v1/ops/dispatches?state=offering", Token: adminToken})
	if list := apitest.Decode[api.DispatchList](t, r); r.Code != http.StatusOK || len(list.Items) > 1 {
		t.Errorf("dispatches: %d %s", r.Code, r.Body)
	}
	if r := s.Do(t, req{Method: http.MethodGet, Path: "/v1/ops/dispatches?state=nope", Token: adminToken}); r.Code != http.StatusUnprocessableEntity {
		t.Errorf("unknown state: %d", r.Code)
	}
	r = s.Do(t, req{Method: http.MethodGet, Path: "/v1/ops/dispatches/" + ride.ID, Token: adminToken})
	if d := apitest.Decode[rides.Dispatch](t, r); r.Code != http.StatusOK || d.RideID != ride.ID || len(d.History) == 0 {
		t.Errorf("dispatch: %d %s", r.Code, r.Body)
	}
	if r := s.Do(t, req{Method: http.MethodGet, Path: "/v1/ops/dispatches/" + unknown, Token: adminToken}); r.Code != http.StatusNotFound {
		t.Errorf("unknown dispatch: %d", r.Code)
	}
}

// The stream sends the ride, then each change and the driver's position, and ends
// with the ride's final status.
func TestRideStream(t *testing.T) {
	s := newServer(t)
	s.world.Fleet.Add(driverID, ridetest.Potsdamer)
	ride := apitest.Decode[rides.Ride](t, s.request(t, aliceToken, "k1", trip))
	if r := s.Do(t, req{Method: http.MethodGet, Path: "/v1/rides/" + ride.ID + "/events", Token: bobToken}); r.Code != http.StatusNotFound {
		t.Errorf("bob follows alice's ride: %d", r.Code)
	}
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	hr, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+"/v1/rides/"+ride.ID+"/events", nil)
	hr.Header.Set("Authorization", "Bearer "+aliceToken)
	resp, err := http.DefaultClient.Do(hr)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("stream: %v %v", resp, err)
	}
	defer resp.Body.Close()
	events := make(chan string, 100)
	go func() {
		defer close(events)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if ev, ok := strings.CutPrefix(sc.Text(), "event: "); ok {
				events <- ev
			}
		}
	}()
	next := func() string { return <-events }
	if ev := next(); ev != "ride" {
		t.Fatalf("first event %q, want ride", ev)
	}
	if _, err := s.world.Answer(t.Context(), s.world.Offer(t, driverID).RideID, driverID, true); err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for seen["position"] == 0 {
		ev := next()
		if ev == "" {
			t.Fatalf("the stream ended before a position; saw %v", seen)
		}
		seen[ev]++
	}
	s.world.WaitState(t, ride.ID, rides.DispatchTrip)
	for _, a := range []string{rides.ActionArrive, rides.ActionStart, rides.ActionComplete} {
		s.world.Advance(t, ride.ID, driverID, a)
	}
	for ev := next(); ev != ""; ev = next() {
		seen[ev]++
	}
	if seen["status"] < 2 || seen["position"] == 0 {
		t.Errorf("events seen %v, want status changes and a position", seen)
	}
	if rest, _ := io.ReadAll(resp.Body); len(rest) != 0 {
		t.Errorf("after the end: %q", rest)
	}
}
