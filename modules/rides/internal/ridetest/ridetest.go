// Package ridetest runs the rides module for its own tests: the real service on a
// real bus, with outbox relays, and hand-written fakes at the module's boundary — a
// fleet that answers fleet's requests from a map of drivers, and a peer that plays
// payments and fleet's commands by answering them with their events through its own
// outbox. A World can be stopped and started again on the same databases, as a
// process restarts. It is for _test.go files only.
package ridetest

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/message"
	"github.com/agora-commerce/agora/internal/modhost"
	"github.com/agora-commerce/agora/internal/outbox"
	"github.com/agora-commerce/agora/internal/store"
	"github.com/agora-commerce/agora/internal/testlog"
	"github.com/agora-commerce/agora/modules/fleet"
	"github.com/agora-commerce/agora/modules/payments"
	"github.com/agora-commerce/agora/modules/rides"
	"github.com/agora-commerce/agora/modules/rides/internal/pricing"
	"github.com/agora-commerce/agora/modules/rides/internal/trips"
)

// City is the fake fleet's city: central Berlin.
var City = fleet.CityMap{Name: "Berlin", SouthWest: rides.Point{Lat: 52.45, Lng: 13.25}, NorthEast: rides.Point{Lat: 52.58, Lng: 13.55}}

// Places in City.
var (
	BrandenburgGate = rides.Point{Lat: 52.5163, Lng: 13.3777}
	Alexanderplatz  = rides.Point{Lat: 52.5219, Lng: 13.4132}
	Potsdamer       = rides.Point{Lat: 52.5096, Lng: 13.3760}
)

// Fleet is a fake fleet: drivers by id, each available, busy or offline.
type Fleet struct {
	mu      sync.Mutex
	drivers map[string]*fleet.Driver
}

// NewFleet returns a fleet without drivers.
func NewFleet() *Fleet { return &Fleet{drivers: map[string]*fleet.Driver{}} }

// Add puts driver id online and available at p.
func (f *Fleet) Add(id string, p rides.Point) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.drivers[id] = &fleet.Driver{ID: id, Status: fleet.StatusAvailable, Position: &p, PositionAt: time.Now()}
}

// Driver returns driver id as fleet knows it.
func (f *Fleet) Driver(id string) fleet.Driver {
	f.mu.Lock()
	defer f.mu.Unlock()
	if d := f.drivers[id]; d != nil {
		return *d
	}
	return fleet.Driver{ID: id, Status: fleet.StatusOffline}
}

// Handlers answers FindNearest, Supply, City and GetDriver as fleet does.
func (f *Fleet) Handlers() []bus.RequestHandler {
	return []bus.RequestHandler{
		bus.Handle(fleet.FindNearestRequest, f.findNearest),
		bus.Handle(fleet.SupplyRequest, func(_ context.Context, q fleet.Supply) (fleet.SupplyCells, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			rule := pricing.SurgeRule{Level: q.Level}
			cells := map[string]int{}
			for _, d := range f.drivers {
				if d.Status == fleet.StatusAvailable {
					cells[rule.Cell(*d.Position)]++
				}
			}
			return fleet.SupplyCells{Cells: cells, At: time.Now()}, nil
		}),
		bus.Handle(fleet.CityRequest, func(context.Context, fleet.City) (fleet.CityMap, error) { return City, nil }),
		bus.Handle(fleet.GetDriverRequest, func(_ context.Context, q fleet.GetDriver) (fleet.Driver, error) {
			d := f.Driver(q.DriverID)
			if d.Status == fleet.StatusOffline {
				return d, fleet.ErrDriverNotFound
			}
			return d, nil
		}),
	}
}

func (f *Fleet) findNearest(_ context.Context, q fleet.FindNearest) (fleet.Nearest, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := fleet.Nearest{Drivers: []fleet.Candidate{}}
	for _, d := range f.drivers {
		dist := pricing.Distance(q.Point, *d.Position)
		if d.Status == fleet.StatusAvailable && dist <= q.RadiusMeters && !slices.Contains(q.Exclude, d.ID) {
			out.Drivers = append(out.Drivers, fleet.Candidate{DriverID: d.ID, Position: *d.Position, DistanceMeters: dist})
		}
	}
	sort.Slice(out.Drivers, func(i, j int) bool { return out.Drivers[i].DistanceMeters < out.Drivers[j].DistanceMeters })
	if len(out.Drivers) > q.Limit {
		out.Drivers = out.Drivers[:q.Limit]
	}
	return out, nil
}

// engage makes driver id busy with rideID, as EngageDriver does, and returns the event.
func (f *Fleet) engage(m fleet.EngageDriver) message.Outgoing {
	f.mu.Lock()
	defer f.mu.Unlock()
	d := f.drivers[m.DriverID]
	switch {
	case d == nil || d.Status == fleet.StatusOffline:
		return fleet.DriverEngagementFailedEvent.With(fleet.DriverEngagementFailed{DriverID: m.DriverID, RideID: m.RideID, Reason: "offline"})
	case d.Status == fleet.StatusBusy && d.RideID != m.RideID:
		return fleet.DriverEngagementFailedEvent.With(fleet.DriverEngagementFailed{DriverID: m.DriverID, RideID: m.RideID, Reason: "busy"})
	}
	prev := d.Status
	d.Status, d.RideID = fleet.StatusBusy, m.RideID
	return fleet.DriverAvailabilityChangedEvent.With(fleet.DriverAvailabilityChanged{DriverID: d.ID, Status: d.Status,
		Previous: prev, RideID: m.RideID, Position: d.Position, At: time.Now()})
}

// release makes driver id available again if it is busy with rideID.
func (f *Fleet) release(m fleet.ReleaseDriver) []message.Outgoing {
	f.mu.Lock()
	defer f.mu.Unlock()
	d := f.drivers[m.DriverID]
	if d == nil || d.Status != fleet.StatusBusy || d.RideID != m.RideID {
		return nil
	}
	d.Status, d.RideID = fleet.StatusAvailable, ""
	return []message.Outgoing{fleet.DriverAvailabilityChangedEvent.With(fleet.DriverAvailabilityChanged{DriverID: d.ID,
		Status: d.Status, Previous: fleet.StatusBusy, Position: d.Position, At: time.Now()})}
}

// Command is a command the peer received.
type Command struct {
	Type    string
	Payload any
}

// DeclineToken is the payment token the peer declines.
const DeclineToken = "tok_decline"

// Peer plays payments and fleet's commands: it authorizes every token but
// DeclineToken, captures, voids, engages and releases drivers of its Fleet. Tests
// silence a command type through Silence.
type Peer struct {
	db    *store.DB
	fleet *Fleet

	mu       sync.Mutex
	silent   map[string]bool
	received []Command
}

// Silence makes the peer record commands of typ without answering them.
func (p *Peer) Silence(typ string, silent bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.silent[typ] = silent
}

// Received returns the commands received so far about ride id.
func (p *Peer) Received(rideID string) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, c := range p.received {
		if rideOf(c.Payload) == rideID {
			out = append(out, c.Type)
		}
	}
	return out
}

// Captures returns the CapturePayment commands received about ride id.
func (p *Peer) Captures(rideID string) []payments.CapturePayment {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []payments.CapturePayment
	for _, c := range p.received {
		if m, ok := c.Payload.(payments.CapturePayment); ok && m.PayableID == rideID {
			out = append(out, m)
		}
	}
	return out
}

func rideOf(v any) string {
	switch m := v.(type) {
	case payments.AuthorizePayment:
		return m.PayableID
	case payments.CapturePayment:
		return m.PayableID
	case payments.VoidPayment:
		return m.PayableID
	case fleet.EngageDriver:
		return m.RideID
	case fleet.ReleaseDriver:
		return m.RideID
	}
	return ""
}

func answer[T any](p *Peer, ob *outbox.Outbox, c message.Command[T], reply func(m T) []message.Outgoing) bus.Subscription {
	return outbox.SubscribeCommand(p.db, c, "peer", func(ctx context.Context, tx *store.Tx, m message.Message[T]) error {
		p.mu.Lock()
		p.received = append(p.received, Command{Type: c.Name(), Payload: m.Body})
		silent := p.silent[c.Name()]
		p.mu.Unlock()
		if silent {
			return nil
		}
		return ob.Add(ctx, tx, reply(m.Body)...)
	})
}

func (p *Peer) subscriptions(ob *outbox.Outbox) []bus.Subscription {
	ride := payments.PayableRide
	return []bus.Subscription{
		answer(p, ob, payments.AuthorizePaymentCommand, func(m payments.AuthorizePayment) []message.Outgoing {
			if m.PaymentToken == DeclineToken {
				return []message.Outgoing{payments.PaymentDeclinedEvent.With(payments.PaymentDeclined{PayableID: m.PayableID, Payable: ride,
					CustomerID: m.CustomerID, Reason: payments.DeclineCardDeclined, Message: "Your card was declined."})}
			}
			return []message.Outgoing{payments.PaymentAuthorizedEvent.With(payments.PaymentAuthorized{PayableID: m.PayableID, Payable: ride,
				CustomerID: m.CustomerID, Amount: m.Amount, ProviderRef: "ref-" + m.PayableID})}
		}),
		answer(p, ob, payments.CapturePaymentCommand, func(m payments.CapturePayment) []message.Outgoing {
			return []message.Outgoing{payments.PaymentCapturedEvent.With(payments.PaymentCaptured{PayableID: m.PayableID, Payable: ride})}
		}),
		answer(p, ob, payments.VoidPaymentCommand, func(m payments.VoidPayment) []message.Outgoing {
			return []message.Outgoing{payments.PaymentVoidedEvent.With(payments.PaymentVoided{PayableID: m.PayableID, Payable: ride})}
		}),
		answer(p, ob, fleet.EngageDriverCommand, func(m fleet.EngageDriver) []message.Outgoing {
			return []message.Outgoing{p.fleet.engage(m)}
		}),
		answer(p, ob, fleet.ReleaseDriverCommand, p.fleet.release),
	}
}

// World is the rides module running on a bus with the fakes around it.
type World struct {
	Host    *modhost.Host
	Service *trips.Service
	Bus     *bus.Bus
	Fleet   *Fleet
	Peer    *Peer
	Log     *testlog.Recorder

	opts trips.Options
	stop func()
}

// NewWorld runs the rides service on h with opts (its sweep started), the fake
// fleet and peer, and both outbox relays, until the test ends or Stop.
func NewWorld(t testing.TB, h *modhost.Host, opts trips.Options) *World {
	t.Helper()
	peerDB, err := store.OpenSQLite(context.Background(), "peer", filepath.Join(t.TempDir(), "peer.db"), store.Options{})
	if err != nil {
		t.Fatalf("open peer db: %v", err)
	}
	t.Cleanup(func() { _ = peerDB.Close() })
	if err := outbox.Migrate(context.Background(), peerDB, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatalf("migrate peer db: %v", err)
	}
	fl := NewFleet()
	w := &World{Host: h, Fleet: fl, Peer: &Peer{db: peerDB, fleet: fl, silent: map[string]bool{}},
		Log: testlog.New(slog.LevelWarn), opts: opts}
	t.Cleanup(func() {
		// A record at error level is a failure inside, whatever the test saw.
		for _, r := range w.Log.Records() {
			if r.Level >= slog.LevelError {
				t.Errorf("error logged: %s", r.Message)
			}
		}
	})
	w.Start(t)
	t.Cleanup(w.Stop)
	return w
}

// Start runs the service, its bus and the relays on the world's databases.
func (w *World) Start(t testing.TB) {
	t.Helper()
	log := w.Log.Logger()
	host := modhost.NewHost(w.Host.DB, log)
	relay := outbox.NewRelay(w.Peer.db, outbox.RelayConfig{PollInterval: 50 * time.Millisecond}, log)
	ob := outbox.New(w.Peer.db, relay)
	bf := &trips.BusFleet{}
	svc := trips.NewService(host.DB, host.Outbox, bf, w.opts, log)
	b, err := bus.New(log, bus.Limits{}, nil, append(svc.Handlers(), w.Fleet.Handlers()...),
		append(svc.Subscriptions(), w.Peer.subscriptions(ob)...))
	if err != nil {
		t.Fatalf("bus.New: %v", err)
	}
	bf.Bind(b)
	host.Relay.Start(b)
	relay.Start(b)
	if err := svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	w.Host, w.Service, w.Bus = host, svc, b
	w.stop = func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = svc.Stop(ctx)
		_ = relay.Stop(ctx)
		_ = host.Relay.Stop(ctx)
	}
}

// Stop stops the service and the relays, as a process stops; the databases stay.
func (w *World) Stop() {
	if w.stop != nil {
		w.stop()
		w.stop = nil
	}
}

// Restart stops the world and starts it again on the same databases.
func (w *World) Restart(t testing.TB) {
	t.Helper()
	w.Stop()
	w.Start(t)
}

// Request requests a ride for rider from pickup to dropoff under a fresh key.
func (w *World) Request(t testing.TB, rider string, pickup, dropoff rides.Point, token string) rides.Ride {
	t.Helper()
	key := bus.NewID()
	got, err := bus.Call(context.Background(), w.Bus, rides.RequestRideRequest, rides.RequestRide{RiderID: rider, Pickup: pickup,
		Dropoff: dropoff, PaymentToken: token, IdempotencyKey: key, RequestHash: "hash-" + key})
	if err != nil {
		t.Fatalf("RequestRide: %v", err)
	}
	return got.Ride
}

// Ride returns ride id now.
func (w *World) Ride(t testing.TB, id string) rides.Ride {
	t.Helper()
	r, err := bus.Call(context.Background(), w.Bus, rides.GetRideRequest, rides.GetRide{ID: id})
	if err != nil {
		t.Fatalf("GetRide %s: %v", id, err)
	}
	return r
}

// Dispatch returns the dispatch of ride id now.
func (w *World) Dispatch(t testing.TB, id string) rides.Dispatch {
	t.Helper()
	d, err := bus.Call(context.Background(), w.Bus, rides.GetDispatchRequest, rides.GetDispatch{RideID: id})
	if err != nil {
		t.Fatalf("GetDispatch %s: %v", id, err)
	}
	return d
}

// WaitState waits until the dispatch of ride id is in state, and returns the ride.
func (w *World) WaitState(t testing.TB, id string, state rides.DispatchState) rides.Ride {
	t.Helper()
	testlog.Eventually(t, fmt.Sprintf("dispatch %s to be %s", id, state), func() bool {
		return w.Dispatch(t, id).State == state
	})
	return w.Ride(t, id)
}

// Offer waits for the offer open to driver and returns it.
func (w *World) Offer(t testing.TB, driver string) rides.Offer {
	t.Helper()
	got, err := bus.Call(context.Background(), w.Bus, rides.WaitOfferRequest, rides.WaitOffer{DriverID: driver, Wait: 10 * time.Second})
	if err != nil || got.Offer == nil {
		t.Fatalf("no offer to %s: %v", driver, err)
	}
	return *got.Offer
}

// Answer answers the offer of ride to driver.
func (w *World) Answer(ctx context.Context, ride, driver string, accept bool) (rides.Ride, error) {
	return bus.Call(ctx, w.Bus, rides.AnswerOfferRequest, rides.AnswerOffer{RideID: ride, DriverID: driver, Accept: accept})
}

// Advance takes a trip action of driver on ride, failing t on an error.
func (w *World) Advance(t testing.TB, ride, driver, action string) rides.Ride {
	t.Helper()
	r, err := bus.Call(context.Background(), w.Bus, rides.AdvanceTripRequest, rides.AdvanceTrip{RideID: ride, DriverID: driver, Action: action})
	if err != nil {
		t.Fatalf("%s: %v", action, err)
	}
	return r
}

// Publish delivers out on the bus now, as if another module had sent it.
func (w *World) Publish(t testing.TB, out message.Outgoing) {
	t.Helper()
	env, err := bus.Seal(context.Background(), out)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Bus.Deliver(context.Background(), env); err != nil {
		t.Fatalf("deliver %s: %v", out.Type, err)
	}
}
