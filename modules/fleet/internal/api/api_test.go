package api_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"

	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/httpapi/apitest"
	"github.com/agora-commerce/agora/internal/message"
	"github.com/agora-commerce/agora/internal/modhost"
	"github.com/agora-commerce/agora/internal/store"
	"github.com/agora-commerce/agora/internal/testdb"
	"github.com/agora-commerce/agora/internal/testlog"
	"github.com/agora-commerce/agora/modules/fleet"
	"github.com/agora-commerce/agora/modules/fleet/internal/api"
	"github.com/agora-commerce/agora/modules/fleet/internal/live"
	"github.com/agora-commerce/agora/modules/rides"
)

const (
	driverID   = "0190a0b0-0000-7000-8000-0000000000d1"
	otherID    = "0190a0b0-0000-7000-8000-0000000000d2"
	customerID = "0190a0b0-0000-7000-8000-0000000000c1"
	rideID     = "0190a0b0-0000-7000-8000-0000000000e1"
)

var (
	driverToken   = apitest.Token(driverID, "driver")
	customerToken = apitest.Token(customerID, "customer")
	adminToken    = apitest.Token("0190a0b0-0000-7000-8000-0000000000a1", "admin")
	mitte         = fleet.Point{Lat: 52.52, Lng: 13.40}
)

// fakeRides answers rides' driver-side requests: one offer of rideID to the
// driver, then none; it records the answers and trip actions it gets.
type fakeRides struct {
	mu       sync.Mutex
	offered  bool
	answers  []rides.AnswerOffer
	advanced []rides.AdvanceTrip
}

func (f *fakeRides) handlers() []bus.RequestHandler {
	return []bus.RequestHandler{
		bus.Handle(rides.WaitOfferRequest, func(ctx context.Context, q rides.WaitOffer) (rides.OpenOffer, error) {
			f.mu.Lock()
			first := !f.offered && q.DriverID == driverID
			f.offered = true
			f.mu.Unlock()
			if first {
				return rides.OpenOffer{Offer: &rides.Offer{RideID: rideID, DriverID: q.DriverID, Pickup: mitte, Dropoff: mitte,
					Fare: rides.Money{Amount: 1200, Currency: "EUR"}, ExpiresAt: time.Now().Add(time.Minute)}}, nil
			}
			select { // a long poll that finds nothing
			case <-ctx.Done():
			case <-time.After(min(q.Wait, time.Second)):
			}
			return rides.OpenOffer{}, nil
		}),
		bus.Handle(rides.AnswerOfferRequest, func(_ context.Context, q rides.AnswerOffer) (rides.Ride, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.answers = append(f.answers, q)
			return rides.Ride{ID: q.RideID, DriverID: q.DriverID, Status: rides.StatusDriverAssigned}, nil
		}),
		bus.Handle(rides.AdvanceTripRequest, func(_ context.Context, q rides.AdvanceTrip) (rides.Ride, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.advanced = append(f.advanced, q)
			return rides.Ride{ID: q.RideID, DriverID: q.DriverID, Status: rides.StatusArriving}, nil
		}),
	}
}

// world is fleet (on SQLite) and a fake rides on one bus, behind the HTTP edge.
type world struct {
	srv   *apitest.Server
	svc   *live.Service
	bus   *bus.Bus
	rides *fakeRides
}

func newWorld(t *testing.T, opts live.Options, start bool) *world {
	t.Helper()
	db := testdb.Open(t, testdb.SQLite, "fleet", func(ctx context.Context, db *store.DB) error {
		return modhost.MigrateDB(ctx, db, apitest.Logger())
	})
	h := modhost.NewHost(db, apitest.Logger())
	w := &world{svc: live.NewService(db, h.Outbox, opts, apitest.Logger()), rides: &fakeRides{}}
	b, err := bus.New(apitest.Logger(), bus.Limits{}, nil, append(w.svc.Handlers(), w.rides.handlers()...), w.svc.Subscriptions())
	if err != nil {
		t.Fatal(err)
	}
	w.bus = b
	if start {
		if err := w.svc.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = w.svc.Stop(context.Background()) })
	}
	w.srv = apitest.New(t, api.Routes(b))
	return w
}

// TestAccessRules: driver routes are a driver's (customers 403, no token 401),
// positions are drivers' and admins', the map is for anyone signed in and the
// city is public.
func TestAccessRules(t *testing.T) {
	w := newWorld(t, live.Options{}, true)
	tests := []struct {
		method, path, token string
		body                any
		want                int
	}{
		{"POST", "/v1/drivers/me/online", customerToken, nil, http.StatusForbidden},
		{"POST", "/v1/drivers/me/online", "", nil, http.StatusUnauthorized},
		{"POST", "/v1/drivers/me/online", driverToken, map[string]any{"position": mitte}, http.StatusOK},
		{"GET", "/v1/drivers/me", customerToken, nil, http.StatusForbidden},
		{"GET", "/v1/drivers/me", driverToken, nil, http.StatusOK},
		{"GET", "/v1/drivers/me/stream", customerToken, nil, http.StatusForbidden},
		{"GET", "/v1/drivers/me/stream", driverToken, nil, http.StatusUpgradeRequired},
		{"POST", "/v1/drivers/me/offline", customerToken, nil, http.StatusForbidden},
		{"POST", "/v1/fleet/positions", customerToken, positions(driverID), http.StatusForbidden},
		{"POST", "/v1/fleet/positions", driverToken, positions(otherID), http.StatusForbidden},
		{"POST", "/v1/fleet/positions", driverToken, positions(driverID), http.StatusOK},
		{"POST", "/v1/fleet/positions", adminToken, positions(otherID), http.StatusOK},
		{"GET", "/v1/fleet/map", "", nil, http.StatusUnauthorized},
		{"GET", "/v1/fleet/map", customerToken, nil, http.StatusOK},
		{"GET", "/v1/fleet/city", "", nil, http.StatusOK},
		{"POST", "/v1/drivers/me/offline", driverToken, nil, http.StatusOK},
	}
	for _, tt := range tests {
		got := w.srv.Do(t, apitest.Request{Method: tt.method, Path: tt.path, Token: tt.token, Body: tt.body})
		if got.Code != tt.want {
			t.Errorf("%s %s as %q: %d, want %d: %s", tt.method, tt.path, role(tt.token), got.Code, tt.want, got.Body)
		}
	}
}

func role(token string) string {
	switch token {
	case driverToken:
		return "driver"
	case customerToken:
		return "customer"
	case adminToken:
		return "admin"
	}
	return ""
}

func positions(ids ...string) api.PositionsInput {
	var in api.PositionsInput
	for _, id := range ids {
		in.Positions = append(in.Positions, api.PositionInput{DriverID: id, Point: mitte, At: time.Now().UTC()})
	}
	return in
}

// TestSaturatedIngestionIs429: when the ingestion buffer is full (here: nothing
// takes from it), a batch is answered 429 problem+json with Retry-After.
func TestSaturatedIngestionIs429(t *testing.T) {
	w := newWorld(t, live.Options{Buffer: 1}, false)
	for _, id := range []string{driverID, otherID} {
		if _, err := w.svc.GoOnline(t.Context(), fleet.GoOnline{DriverID: id, Position: &mitte}); err != nil {
			t.Fatal(err)
		}
	}
	if got := w.srv.Do(t, apitest.Request{Method: "POST", Path: "/v1/fleet/positions", Token: adminToken, Body: positions(driverID)}); got.Code != http.StatusOK {
		t.Fatalf("first batch: %d %s", got.Code, got.Body)
	}
	got := w.srv.Do(t, apitest.Request{Method: "POST", Path: "/v1/fleet/positions", Token: adminToken, Body: positions(otherID)})
	if got.Code != http.StatusTooManyRequests || got.Header().Get("Retry-After") == "" {
		t.Fatalf("batch beyond the buffer: %d Retry-After %q, want 429 with Retry-After", got.Code, got.Header().Get("Retry-After"))
	}
	if p := apitest.Problem(t, got); p.Status != http.StatusTooManyRequests {
		t.Fatalf("problem: %+v", p)
	}
}

// TestDriverStream: through the real HTTP edge, a driver's WebSocket forwards its
// positions to fleet (acked, and visible in fleet), pushes the offer rides has for
// it, and forwards its accept and trip actions to rides.
func TestDriverStream(t *testing.T) {
	w := newWorld(t, live.Options{}, true)
	if _, err := w.svc.GoOnline(t.Context(), fleet.GoOnline{DriverID: driverID, Position: &mitte}); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(w.srv.Handler())
	defer ts.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	conn := dialStream(t, ctx, ts.URL)
	defer conn.CloseNow()
	st := &stream{conn: conn}

	moved := fleet.Point{Lat: 52.53, Lng: 13.41}
	send(t, ctx, conn, api.StreamIn{Type: "position", Lat: moved.Lat, Lng: moved.Lng, At: time.Now().UTC().Add(time.Second)})
	ack := st.next(t, ctx, "ack", "position")
	if ack.Ingested == nil || ack.Ingested.Accepted != 1 {
		t.Fatalf("position ack: %+v", ack)
	}
	testlog.Eventually(t, "the position in fleet", func() bool {
		d, err := w.svc.GetDriver(t.Context(), fleet.GetDriver{DriverID: driverID})
		return err == nil && d.Position != nil && *d.Position == moved
	})

	offer := st.next(t, ctx, "offer", "")
	if offer.Offer == nil || offer.Offer.RideID != rideID {
		t.Fatalf("offer: %+v", offer)
	}
	send(t, ctx, conn, api.StreamIn{Type: "accept", RideID: rideID})
	if got := st.next(t, ctx, "ack", "accept"); got.Ride == nil || got.Ride.Status != rides.StatusDriverAssigned {
		t.Fatalf("accept ack: %+v", got)
	}
	send(t, ctx, conn, api.StreamIn{Type: "trip", RideID: rideID, Action: rides.ActionArrive})
	st.next(t, ctx, "ack", "trip")
	send(t, ctx, conn, api.StreamIn{Type: "dance"})
	if got := st.next(t, ctx, "error", "dance"); got.Code != "unknown_type" {
		t.Fatalf("unknown type: %+v", got)
	}

	w.rides.mu.Lock()
	defer w.rides.mu.Unlock()
	if len(w.rides.answers) != 1 || w.rides.answers[0] != (rides.AnswerOffer{RideID: rideID, DriverID: driverID, Accept: true}) {
		t.Fatalf("rides got answers %+v", w.rides.answers)
	}
	if len(w.rides.advanced) != 1 || w.rides.advanced[0] != (rides.AdvanceTrip{RideID: rideID, DriverID: driverID, Action: rides.ActionArrive}) {
		t.Fatalf("rides got trip actions %+v", w.rides.advanced)
	}
	_ = conn.Close(websocket.StatusNormalClosure, "")
}

// dialStream opens the driver's stream on the server at base.
func dialStream(t *testing.T, ctx context.Context, base string) *websocket.Conn {
	t.Helper()
	conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(base, "http")+"/v1/drivers/me/stream",
		&websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + driverToken}}})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	return conn
}

func send(t *testing.T, ctx context.Context, conn *websocket.Conn, in api.StreamIn) {
	t.Helper()
	if err := wsjson.Write(ctx, conn, in); err != nil {
		t.Fatalf("send %s: %v", in.Type, err)
	}
}

// stream is the client's side of a driver stream: messages read but not yet
// asked for are kept, since the server's messages (offers, acks) interleave.
type stream struct {
	conn *websocket.Conn
	kept []api.StreamOut
}

// next returns the first message of type typ (and of, when not empty), from those
// kept or read from now on.
func (s *stream) next(t *testing.T, ctx context.Context, typ, of string) api.StreamOut {
	t.Helper()
	match := func(m api.StreamOut) bool { return m.Type == typ && (of == "" || m.Of == of) }
	for i, m := range s.kept {
		if match(m) {
			s.kept = append(s.kept[:i], s.kept[i+1:]...)
			return m
		}
	}
	for {
		var out api.StreamOut
		if err := wsjson.Read(ctx, s.conn, &out); err != nil {
			t.Fatalf("waiting for %s %s: %v (kept: %+v)", typ, of, err, s.kept)
		}
		if match(out) {
			return out
		}
		s.kept = append(s.kept, out)
	}
}

// TestStreamConflatesPositions: while fleet has not answered a position batch,
// the stream does not call it again; the positions sent meanwhile are conflated,
// and the next call carries only the newest. A driver sending 19 positions while
// fleet is stuck costs two calls, not 19.
func TestStreamConflatesPositions(t *testing.T) {
	release := make(chan struct{})
	calls := make(chan fleet.ReportPositions, 100)
	slowFleet := bus.Handle(fleet.ReportPositionsRequest, func(ctx context.Context, q fleet.ReportPositions) (fleet.Ingested, error) {
		calls <- q
		select {
		case <-release:
		case <-ctx.Done():
		}
		return fleet.Ingested{Accepted: len(q.Positions)}, nil
	})
	b, err := bus.New(apitest.Logger(), bus.Limits{}, nil, []bus.RequestHandler{slowFleet}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(apitest.New(t, api.Routes(b)).Handler())
	defer ts.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	conn := dialStream(t, ctx, ts.URL)
	defer conn.CloseNow()
	st := &stream{conn: conn}

	t0 := time.Now().UTC()
	position := func(i int) api.StreamIn {
		return api.StreamIn{Type: "position", Lat: 52.50 + float64(i)/10000, Lng: 13.40, At: t0.Add(time.Duration(i) * time.Millisecond)}
	}
	send(t, ctx, conn, position(0))
	first := <-calls                 // fleet holds the first batch
	const sent = api.StreamBurst - 1 // positions, and one more message, within the burst
	for i := 1; i < sent; i++ {
		send(t, ctx, conn, position(i))
	}
	// The stream answers every message it reads in order; an unknown type sent last
	// is answered once all positions before it were taken in.
	send(t, ctx, conn, api.StreamIn{Type: "sync"})
	st.next(t, ctx, "error", "sync")
	close(release)
	second := <-calls
	st.next(t, ctx, "ack", "position")
	st.next(t, ctx, "ack", "position")
	if len(first.Positions) != 1 || first.Positions[0].Point.Lat != 52.50 {
		t.Fatalf("first call: %+v", first)
	}
	newest := position(sent - 1)
	if len(second.Positions) != 1 || second.Positions[0].Point.Lat != newest.Lat || second.Positions[0].DriverID != driverID {
		t.Fatalf("second call: %+v, want only the newest position %v", second, newest)
	}
	select {
	case q := <-calls:
		t.Fatalf("a third call %+v: positions were not conflated", q)
	default:
	}
}

// TestOperatorBringsDriversOnlineAndOffline: the fleet operator's routes are an
// admin's (drivers and customers 403, no token 401) and do for any driver id what
// /v1/drivers/me/online|offline do for the caller: online at a position, then
// available in the index; offline 404 for a driver never online, 409 while busy,
// 422 for a position outside the area.
func TestOperatorBringsDriversOnlineAndOffline(t *testing.T) {
	w := newWorld(t, live.Options{}, true)
	online := "/v1/fleet/drivers/" + otherID + "/online"
	offline := "/v1/fleet/drivers/" + otherID + "/offline"
	at := map[string]any{"position": mitte}
	steps := []struct {
		method, path, token string
		body                any
		want                int
	}{
		{"POST", online, "", at, http.StatusUnauthorized},
		{"POST", online, customerToken, at, http.StatusForbidden},
		{"POST", online, driverToken, at, http.StatusForbidden},
		{"POST", offline, driverToken, nil, http.StatusForbidden},
		{"POST", offline, adminToken, nil, http.StatusNotFound},
		{"POST", "/v1/fleet/drivers/not-a-uuid/online", adminToken, at, http.StatusUnprocessableEntity},
		{"POST", online, adminToken, map[string]any{"position": fleet.Point{Lat: 10, Lng: 10}}, http.StatusUnprocessableEntity},
		{"POST", online, adminToken, at, http.StatusOK},
		{"POST", online, adminToken, nil, http.StatusOK}, // online again: nothing changes
	}
	for _, s := range steps {
		got := w.srv.Do(t, apitest.Request{Method: s.method, Path: s.path, Token: s.token, Body: s.body})
		if got.Code != s.want {
			t.Fatalf("%s %s as %q: %d, want %d: %s", s.method, s.path, role(s.token), got.Code, s.want, got.Body)
		}
	}
	d, err := w.svc.GetDriver(t.Context(), fleet.GetDriver{DriverID: otherID})
	if err != nil || d.Status != fleet.StatusAvailable || d.Position == nil || *d.Position != mitte {
		t.Fatalf("after the operator brought it online: %+v, %v", d, err)
	}
	deliver(t, w.bus, fleet.EngageDriverCommand.With(fleet.EngageDriver{DriverID: otherID, RideID: rideID}))
	if got := w.srv.Do(t, apitest.Request{Method: "POST", Path: offline, Token: adminToken}); got.Code != http.StatusConflict {
		t.Fatalf("offline while busy: %d, want 409: %s", got.Code, got.Body)
	}
	deliver(t, w.bus, fleet.ReleaseDriverCommand.With(fleet.ReleaseDriver{DriverID: otherID, RideID: rideID}))
	if got := w.srv.Do(t, apitest.Request{Method: "POST", Path: offline, Token: adminToken}); got.Code != http.StatusOK {
		t.Fatalf("offline once released: %d, want 200: %s", got.Code, got.Body)
	}
	if d, err := w.svc.GetDriver(t.Context(), fleet.GetDriver{DriverID: otherID}); err != nil || d.Status != fleet.StatusOffline {
		t.Fatalf("after the operator took it offline: %+v, %v", d, err)
	}
}

// deliver hands the command o to its handler, as the outbox relay would.
func deliver(t *testing.T, b *bus.Bus, o message.Outgoing) {
	t.Helper()
	env, err := bus.Seal(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Deliver(t.Context(), env); err != nil {
		t.Fatalf("deliver %s: %v", o.Type, err)
	}
}

// TestStreamAsksForTheNextOfferOnlyOnceAnswered: after the driver accepts an
// offer, the stream asks rides for the next offer only once rides has the answer
// — never finding the answered offer still open (which made it pause a second
// before asking again, so a driver back on the road waited for its next offer).
// Rides here takes a moment to commit an answer, as a real one does.
func TestStreamAsksForTheNextOfferOnlyOnceAnswered(t *testing.T) {
	const nextRide = "0190a0b0-0000-7000-8000-0000000000e2"
	var (
		mu                  sync.Mutex
		answering, answered bool
		openWhileAnswering  int
	)
	offer := func(id string) rides.OpenOffer {
		return rides.OpenOffer{Offer: &rides.Offer{RideID: id, DriverID: driverID, Pickup: mitte, Dropoff: mitte,
			Fare: rides.Money{Amount: 1200, Currency: "EUR"}, ExpiresAt: time.Now().Add(time.Minute)}}
	}
	fakeRides := []bus.RequestHandler{
		bus.Handle(rides.WaitOfferRequest, func(ctx context.Context, q rides.WaitOffer) (rides.OpenOffer, error) {
			mu.Lock()
			defer mu.Unlock()
			switch {
			case answering:
				openWhileAnswering++
				return offer(rideID), nil // still open: the answer is not committed yet
			case !answered:
				return offer(rideID), nil
			}
			return offer(nextRide), nil
		}),
		bus.Handle(rides.AnswerOfferRequest, func(_ context.Context, q rides.AnswerOffer) (rides.Ride, error) {
			mu.Lock()
			answering = true
			mu.Unlock()
			time.Sleep(20 * time.Millisecond) // committing
			mu.Lock()
			answering, answered = false, true
			mu.Unlock()
			return rides.Ride{ID: q.RideID, DriverID: q.DriverID, Status: rides.StatusDriverAssigned}, nil
		}),
		bus.Handle(fleet.ReportPositionsRequest, func(context.Context, fleet.ReportPositions) (fleet.Ingested, error) {
			return fleet.Ingested{}, nil
		}),
	}
	b, err := bus.New(apitest.Logger(), bus.Limits{}, nil, fakeRides, nil)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(apitest.New(t, api.Routes(b)).Handler())
	defer ts.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	conn := dialStream(t, ctx, ts.URL)
	defer conn.CloseNow()
	st := &stream{conn: conn}
	if got := st.next(t, ctx, "offer", ""); got.Offer.RideID != rideID {
		t.Fatalf("first offer: %+v", got.Offer)
	}
	send(t, ctx, conn, api.StreamIn{Type: "accept", RideID: rideID})
	st.next(t, ctx, "ack", "accept")
	if got := st.next(t, ctx, "offer", ""); got.Offer.RideID != nextRide {
		t.Fatalf("second offer: %+v", got.Offer)
	}
	mu.Lock()
	defer mu.Unlock()
	if openWhileAnswering > 0 {
		t.Errorf("the stream asked for an offer %d times while its answer was being committed", openWhileAnswering)
	}
	_ = conn.Close(websocket.StatusNormalClosure, "")
}
