package module_test

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/config"
	"github.com/agora-commerce/agora/internal/testlog"
	"github.com/agora-commerce/agora/modules/fleet"
	"github.com/agora-commerce/agora/modules/fleet/module"
	"github.com/agora-commerce/agora/modules/rides"
)

var discard = slog.New(slog.DiscardHandler)

// start runs the module as a process runs it, with --demo, and extra handlers
// (a fake rides) on its bus.
func start(t *testing.T, extra []bus.RequestHandler) *bus.Bus {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir, cfg.Demo = t.TempDir(), true
	s := module.DefaultSettings()
	s.DemoSpeed = 3000 // a trip takes a tick or two
	var b *bus.Bus
	app := fxtest.New(t,
		fx.Supply(cfg, discard),
		module.Module(s),
		fx.Provide(fx.Annotate(
			func(log *slog.Logger, hs []bus.RequestHandler, subs []bus.Subscription) (*bus.Bus, error) {
				return bus.New(log, bus.Limits{}, nil, append(hs, extra...), subs)
			},
			fx.ParamTags(``, `group:"bus.requests"`, `group:"bus.subscriptions"`))),
		fx.Populate(&b),
	)
	app.RequireStart()
	t.Cleanup(app.RequireStop)
	return b
}

func inBerlin(p fleet.Point) bool {
	return p.Lat >= 52.47 && p.Lat <= 52.57 && p.Lng >= 13.33 && p.Lng <= 13.48
}

// TestDemoFleetDrivesWithoutRides: with --demo and no rides module, at least 50
// drivers go online in the city and move (their positions reach fleet's index
// through ReportPositions); they keep cruising while rides does not answer.
func TestDemoFleetDrivesWithoutRides(t *testing.T) {
	b := start(t, nil)
	var first fleet.FleetSnapshot
	testlog.Eventually(t, "50 demo drivers online", func() bool {
		var err error
		first, err = bus.Call(t.Context(), b, fleet.SnapshotRequest, fleet.Snapshot{})
		return err == nil && len(first.Drivers) >= 50
	})
	where := map[string]fleet.Point{}
	for _, d := range first.Drivers {
		if !inBerlin(d.Point) || d.Status != fleet.StatusAvailable {
			t.Fatalf("demo driver %+v: not available in the city", d)
		}
		where[d.DriverID] = d.Point
	}
	testlog.Eventually(t, "demo drivers to move", func() bool {
		s, err := bus.Call(t.Context(), b, fleet.SnapshotRequest, fleet.Snapshot{})
		moved := 0
		for _, d := range s.Drivers {
			if p, ok := where[d.DriverID]; ok && p != d.Point {
				moved++
			}
		}
		return err == nil && moved >= 50
	})
}

// fakeRides offers one ride to the first demo driver who asks and records the
// trip's actions.
type fakeRides struct {
	mu      sync.Mutex
	driver  string
	actions []string
}

func (f *fakeRides) handlers() []bus.RequestHandler {
	pickup, dropoff := fleet.Point{Lat: 52.50, Lng: 13.37}, fleet.Point{Lat: 52.54, Lng: 13.44}
	ride := func(id, driver string) rides.Ride {
		return rides.Ride{ID: id, DriverID: driver, Status: rides.StatusDriverAssigned}
	}
	return []bus.RequestHandler{
		bus.Handle(rides.WaitOfferRequest, func(ctx context.Context, q rides.WaitOffer) (rides.OpenOffer, error) {
			f.mu.Lock()
			mine := f.driver == ""
			if mine {
				f.driver = q.DriverID
			}
			f.mu.Unlock()
			if mine {
				return rides.OpenOffer{Offer: &rides.Offer{RideID: "ride-1", DriverID: q.DriverID, Pickup: pickup, Dropoff: dropoff,
					ExpiresAt: time.Now().Add(time.Minute)}}, nil
			}
			select {
			case <-ctx.Done():
			case <-time.After(min(q.Wait, 200*time.Millisecond)):
			}
			return rides.OpenOffer{}, nil
		}),
		bus.Handle(rides.AnswerOfferRequest, func(_ context.Context, q rides.AnswerOffer) (rides.Ride, error) {
			return ride(q.RideID, q.DriverID), nil
		}),
		bus.Handle(rides.AdvanceTripRequest, func(_ context.Context, q rides.AdvanceTrip) (rides.Ride, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			if q.DriverID == f.driver {
				f.actions = append(f.actions, q.Action)
			}
			return ride(q.RideID, q.DriverID), nil
		}),
	}
}

// TestDemoDriverCompletesATrip: a demo driver offered a ride accepts it, drives
// to the pickup and through the trip: arrive, start, complete, in that order.
func TestDemoDriverCompletesATrip(t *testing.T) {
	f := &fakeRides{}
	start(t, f.handlers())
	testlog.Eventually(t, "the demo trip to complete", func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		return len(f.actions) >= 3
	})
	f.mu.Lock()
	defer f.mu.Unlock()
	if want := []string{rides.ActionArrive, rides.ActionStart, rides.ActionComplete}; !slices.Equal(f.actions, want) {
		t.Fatalf("trip actions %v, want %v", f.actions, want)
	}
}
