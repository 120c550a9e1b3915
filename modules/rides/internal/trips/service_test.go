package trips_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/config"
	"github.com/agora-commerce/agora/internal/modhost"
	"github.com/agora-commerce/agora/internal/testdb"
	"github.com/agora-commerce/agora/internal/testlog"
	"github.com/agora-commerce/agora/modules/fleet"
	"github.com/agora-commerce/agora/modules/payments"
	"github.com/agora-commerce/agora/modules/rides"
	"github.com/agora-commerce/agora/modules/rides/internal/dispatch"
	"github.com/agora-commerce/agora/modules/rides/internal/ridetest"
	"github.com/agora-commerce/agora/modules/rides/internal/trips"
	"github.com/prometheus/client_golang/prometheus"
)

func TestMain(m *testing.M) { os.Exit(testdb.Main(m)) }

const (
	alice = "0190a8b2-0000-7000-8000-00000000a11c"
	bob   = "0190a8b2-0000-7000-8000-000000000b0b"
	d1    = "0190a8b2-0000-7000-8000-0000000000d1"
	d2    = "0190a8b2-0000-7000-8000-0000000000d2"
)

// fast are options under which tests move quickly: the sweep looks often, and a
// search with nobody near is retried soon.
func fast() trips.Options {
	return trips.Options{SweepEvery: 10 * time.Millisecond, PollInterval: 50 * time.Millisecond,
		Timing: dispatch.Timing{SearchRetry: 20 * time.Millisecond}}
}

// each runs fn on a fresh rides module per back end.
func each(t *testing.T, opts trips.Options, fn func(t *testing.T, w *ridetest.World)) {
	testdb.EachHost(t, "rides", func(t *testing.T, h *modhost.Host) {
		fn(t, ridetest.NewWorld(t, h, opts))
	})
}

var (
	cVoid    = payments.VoidPaymentCommand.Name()
	cCapture = payments.CapturePaymentCommand.Name()
	cRelease = fleet.ReleaseDriverCommand.Name()
)

func TestRideFromRequestToReceipt(t *testing.T) {
	each(t, fast(), func(t *testing.T, w *ridetest.World) {
		w.Fleet.Add(d2, ridetest.Alexanderplatz) // further away
		w.Fleet.Add(d1, ridetest.Potsdamer)
		r := w.Request(t, alice, ridetest.BrandenburgGate, ridetest.Alexanderplatz, "tok_visa")
		if r.Status != rides.StatusRequested || r.Fare.Amount <= 0 || r.Fare.Currency != "EUR" || r.DistanceMeters < 2400 {
			t.Fatalf("requested ride: %+v", r)
		}
		offer := w.Offer(t, d1) // the nearest driver is asked first
		if offer.RideID != r.ID || offer.Fare != r.Fare || offer.PickupDistanceMeters <= 0 {
			t.Errorf("offer: %+v", offer)
		}
		if _, err := w.Answer(t.Context(), r.ID, d2, true); !errors.Is(err, rides.ErrNoOffer) {
			t.Errorf("d2 accepting d1's offer: %v, want ErrNoOffer", err)
		}
		if _, err := w.Answer(t.Context(), r.ID, d1, true); err != nil {
			t.Fatalf("accept: %v", err)
		}
		r = w.WaitState(t, r.ID, rides.DispatchTrip)
		if r.DriverID != d1 || r.Status != rides.StatusDriverAssigned || w.Fleet.Driver(d1).Status != fleet.StatusBusy {
			t.Fatalf("assigned: %+v; fleet %+v", r, w.Fleet.Driver(d1))
		}
		if _, err := bus.Call(t.Context(), w.Bus, rides.AdvanceTripRequest, rides.AdvanceTrip{RideID: r.ID, DriverID: d1, Action: rides.ActionStart}); !errors.Is(err, rides.ErrWrongStatus) {
			t.Errorf("start before arriving: %v, want ErrWrongStatus", err)
		}
		if _, err := bus.Call(t.Context(), w.Bus, rides.AdvanceTripRequest, rides.AdvanceTrip{RideID: r.ID, DriverID: d2, Action: rides.ActionArrive}); !errors.Is(err, rides.ErrRideNotFound) {
			t.Errorf("another driver arriving: %v, want ErrRideNotFound", err)
		}
		w.Advance(t, r.ID, d1, rides.ActionArrive)
		w.Advance(t, r.ID, d1, rides.ActionStart)
		r = w.Advance(t, r.ID, d1, rides.ActionComplete)
		if r.Status != rides.StatusCompleted || r.Charged == nil || *r.Charged != r.Fare {
			t.Errorf("completed: %+v", r)
		}
		w.WaitState(t, r.ID, rides.DispatchCompleted)
		if caps := w.Peer.Captures(r.ID); len(caps) != 1 || caps[0].Amount != 0 {
			t.Errorf("captures %+v, want one of the whole fare", caps)
		}
		testlog.Eventually(t, "the driver released", func() bool { return w.Fleet.Driver(d1).Status == fleet.StatusAvailable })
		if _, err := bus.Call(t.Context(), w.Bus, rides.CancelRideRequest, rides.CancelRide{ID: r.ID, Actor: alice}); !errors.Is(err, rides.ErrNotCancellable) {
			t.Errorf("cancel a completed ride: %v", err)
		}
		// The rider is free again.
		w.Request(t, alice, ridetest.Alexanderplatz, ridetest.BrandenburgGate, "tok_visa")
	})
}

func TestQuote(t *testing.T) {
	each(t, fast(), func(t *testing.T, w *ridetest.World) {
		quote := func(p, d rides.Point) (rides.Quote, error) {
			return bus.Call(t.Context(), w.Bus, rides.QuoteRideRequest, rides.QuoteRide{Pickup: p, Dropoff: d})
		}
		q, err := quote(ridetest.BrandenburgGate, ridetest.Alexanderplatz)
		if err != nil || q.Surge != 1 || q.PickupETA != -1 || q.Fare.Amount < 600 || q.DurationSeconds <= 0 {
			t.Fatalf("quote with no driver: %+v, %v", q, err)
		}
		w.Fleet.Add(d1, ridetest.Potsdamer)
		if q, err = quote(ridetest.BrandenburgGate, ridetest.Alexanderplatz); err != nil || q.PickupETA <= 0 {
			t.Errorf("ETA with a driver 770 m away: %+v, %v", q, err)
		}
		for _, tc := range []struct {
			name  string
			p, d  rides.Point
			want  error
			field string
		}{
			{"pickup outside", rides.Point{Lat: 48.1, Lng: 11.5}, ridetest.Alexanderplatz, rides.ErrOutOfArea, "body.pickup"},
			{"drop-off outside", ridetest.BrandenburgGate, rides.Point{Lat: 91, Lng: 0}, rides.ErrOutOfArea, "body.dropoff"},
			{"same place", ridetest.BrandenburgGate, ridetest.BrandenburgGate, rides.ErrSamePlace, "body.dropoff"},
		} {
			if _, err := quote(tc.p, tc.d); !errors.Is(err, tc.want) {
				t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
			}
		}
	})
}

// Demand in a cell with little supply raises the surge, and with it the fare.
func TestSurge(t *testing.T) {
	opts := fast()
	opts.SupplyEvery = 10 * time.Millisecond
	each(t, opts, func(t *testing.T, w *ridetest.World) {
		base, err := bus.Call(t.Context(), w.Bus, rides.QuoteRideRequest, rides.QuoteRide{Pickup: ridetest.BrandenburgGate, Dropoff: ridetest.Alexanderplatz})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 6 {
			rider := fmt.Sprintf("0190a8b2-0000-7000-8000-%012d", i)
			w.Request(t, rider, ridetest.BrandenburgGate, ridetest.Alexanderplatz, "tok_visa")
		}
		q, err := bus.Call(t.Context(), w.Bus, rides.QuoteRideRequest, rides.QuoteRide{Pickup: ridetest.BrandenburgGate, Dropoff: ridetest.Alexanderplatz})
		// demand 6, supply 0: 1 + 0.5·(6 − 1) = 3.5, capped at 3.
		// The fare is rounded once, after the multiplier: within a cent of three times the base.
		if err != nil || q.Surge != 3 || q.Fare.Amount < base.Fare.Amount*3-1 || q.Fare.Amount > base.Fare.Amount*3+1 {
			t.Errorf("surge after 6 requests: %+v (base fare %d), %v", q, base.Fare.Amount, err)
		}
	})
}

func TestRequestIsIdempotent(t *testing.T) {
	each(t, fast(), func(t *testing.T, w *ridetest.World) {
		req := rides.RequestRide{RiderID: alice, Pickup: ridetest.BrandenburgGate, Dropoff: ridetest.Alexanderplatz,
			PaymentToken: "tok_visa", IdempotencyKey: "k1", RequestHash: "h1"}
		first, err := bus.Call(t.Context(), w.Bus, rides.RequestRideRequest, req)
		if err != nil || first.Replayed {
			t.Fatalf("first: %+v, %v", first, err)
		}
		again, err := bus.Call(t.Context(), w.Bus, rides.RequestRideRequest, req)
		if err != nil || !again.Replayed || again.Ride.ID != first.Ride.ID {
			t.Errorf("replay: %+v, %v", again, err)
		}
		req.RequestHash = "h2"
		if _, err := bus.Call(t.Context(), w.Bus, rides.RequestRideRequest, req); !errors.Is(err, rides.ErrIdempotencyKeyReused) {
			t.Errorf("same key, another body: %v", err)
		}
		req.IdempotencyKey = "k2"
		if _, err := bus.Call(t.Context(), w.Bus, rides.RequestRideRequest, req); !errors.Is(err, rides.ErrRiderBusy) {
			t.Errorf("a second active ride: %v, want ErrRiderBusy", err)
		}
		req.RiderID, req.PaymentToken = bob, ""
		if _, err := bus.Call(t.Context(), w.Bus, rides.RequestRideRequest, req); !errors.Is(err, rides.ErrInvalidInput) {
			t.Errorf("no payment token: %v", err)
		}
	})
}

// Every path that ends a ride without a trip releases the fare's authorization:
// payments is asked to void it (or never held it), and nothing is captured.
func TestAuthorizationReleasedOnEveryFailurePath(t *testing.T) {
	opts := fast()
	opts.Timing.OfferTimeout = 50 * time.Millisecond
	opts.Timing.MaxOffers = 2
	opts.Timing.DispatchTimeout = 300 * time.Millisecond
	each(t, opts, func(t *testing.T, w *ridetest.World) {
		released := func(t *testing.T, id, reason string, voids bool) {
			t.Helper()
			r := w.Ride(t, id)
			if r.Status != rides.StatusCancelled || r.Reason != reason || r.Charged != nil {
				t.Errorf("ride: %s %q charged %v, want cancelled %q", r.Status, r.Reason, r.Charged, reason)
			}
			got := w.Peer.Received(id)
			if slices.Contains(got, cVoid) != voids || slices.Contains(got, cCapture) {
				t.Errorf("payments received %v; want a void: %v, and no capture", got, voids)
			}
		}
		t.Run("declined", func(t *testing.T) {
			r := w.Request(t, alice, ridetest.BrandenburgGate, ridetest.Alexanderplatz, ridetest.DeclineToken)
			w.WaitState(t, r.ID, rides.DispatchFailed)
			released(t, r.ID, rides.ReasonPaymentDeclined, false) // nothing was held
		})
		t.Run("no driver near", func(t *testing.T) {
			r := w.Request(t, alice, ridetest.BrandenburgGate, ridetest.Alexanderplatz, "tok_visa")
			w.WaitState(t, r.ID, rides.DispatchFailed)
			released(t, r.ID, rides.ReasonNoDriver, true)
		})
		t.Run("rider cancels while searching", func(t *testing.T) {
			r := w.Request(t, alice, ridetest.BrandenburgGate, ridetest.Alexanderplatz, "tok_visa")
			w.WaitState(t, r.ID, rides.DispatchOffering)
			if _, err := bus.Call(t.Context(), w.Bus, rides.CancelRideRequest, rides.CancelRide{ID: r.ID, Actor: alice}); err != nil {
				t.Fatal(err)
			}
			w.WaitState(t, r.ID, rides.DispatchCancelled)
			released(t, r.ID, rides.ReasonRiderCancelled, true)
		})
		w.Fleet.Add(d1, ridetest.Potsdamer)
		w.Fleet.Add(d2, ridetest.Alexanderplatz)
		t.Run("offers time out", func(t *testing.T) {
			r := w.Request(t, alice, ridetest.BrandenburgGate, ridetest.Alexanderplatz, "tok_visa")
			w.WaitState(t, r.ID, rides.DispatchFailed)
			released(t, r.ID, rides.ReasonNoDriver, true)
			if d := w.Dispatch(t, r.ID); d.Offers != 2 {
				t.Errorf("%d offers, want 2", d.Offers)
			}
		})
		t.Run("drivers decline", func(t *testing.T) {
			r := w.Request(t, bob, ridetest.BrandenburgGate, ridetest.Alexanderplatz, "tok_visa")
			for _, d := range []string{d1, d2} {
				o := w.Offer(t, d)
				if _, err := w.Answer(t.Context(), o.RideID, d, false); err != nil {
					t.Fatal(err)
				}
			}
			w.WaitState(t, r.ID, rides.DispatchFailed)
			released(t, r.ID, rides.ReasonNoDriver, true)
		})
	})
}

// A rider cancelling after the grace period pays the cancellation fee: a partial
// capture; the driver is released.
func TestLateCancellationChargesTheFee(t *testing.T) {
	opts := fast()
	opts.Timing.CancelGrace = time.Nanosecond
	opts.Timing.CancelFee = 500
	each(t, opts, func(t *testing.T, w *ridetest.World) {
		w.Fleet.Add(d1, ridetest.Potsdamer)
		r := w.Request(t, alice, ridetest.BrandenburgGate, ridetest.Alexanderplatz, "tok_visa")
		if _, err := w.Answer(t.Context(), w.Offer(t, d1).RideID, d1, true); err != nil {
			t.Fatal(err)
		}
		w.WaitState(t, r.ID, rides.DispatchTrip)
		r, err := bus.Call(t.Context(), w.Bus, rides.CancelRideRequest, rides.CancelRide{ID: r.ID, Actor: alice})
		if err != nil || r.Charged == nil || r.Charged.Amount != 500 {
			t.Fatalf("late cancel: %+v, %v", r, err)
		}
		w.WaitState(t, r.ID, rides.DispatchCancelled)
		if caps := w.Peer.Captures(r.ID); len(caps) != 1 || caps[0].Amount != 500 {
			t.Errorf("captures %+v, want one of 500", caps)
		}
		testlog.Eventually(t, "the driver released", func() bool { return w.Fleet.Driver(d1).Status == fleet.StatusAvailable })
	})
}

// Payments' events of orders are not the rides module's, even when an id matches.
func TestIgnoresOtherPayables(t *testing.T) {
	each(t, fast(), func(t *testing.T, w *ridetest.World) {
		w.Peer.Silence(payments.AuthorizePaymentCommand.Name(), true)
		r := w.Request(t, alice, ridetest.BrandenburgGate, ridetest.Alexanderplatz, "tok_visa")
		w.Publish(t, payments.PaymentAuthorizedEvent.With(payments.PaymentAuthorized{PayableID: r.ID, Payable: payments.PayableOrder}))
		w.Publish(t, payments.PaymentDeclinedEvent.With(payments.PaymentDeclined{PayableID: r.ID}))
		if d := w.Dispatch(t, r.ID); d.State != rides.DispatchAuthorizing || len(d.History) != 1 {
			t.Errorf("dispatch after orders' events: %s, %d steps", d.State, len(d.History))
		}
		// The same event again, for the ride, moves it once; its duplicate changes nothing.
		ev := payments.PaymentAuthorizedEvent.With(payments.PaymentAuthorized{PayableID: r.ID, Payable: payments.PayableRide})
		env, _ := bus.Seal(t.Context(), ev)
		for range 2 {
			if err := w.Bus.Deliver(t.Context(), env); err != nil {
				t.Fatal(err)
			}
		}
		if d := w.Dispatch(t, r.ID); d.State != rides.DispatchOffering || d.History[1].Message != payments.PaymentAuthorizedEvent.Name() {
			t.Errorf("after the ride's authorization: %+v", d)
		}
	})
}

// The service stops and starts on the same database in the middle of dispatch and
// in the middle of a trip: the saga resumes where it was.
func TestRestart(t *testing.T) {
	each(t, fast(), func(t *testing.T, w *ridetest.World) {
		r := w.Request(t, alice, ridetest.BrandenburgGate, ridetest.Alexanderplatz, "tok_visa")
		w.WaitState(t, r.ID, rides.DispatchOffering) // searching: nobody is near
		w.Restart(t)
		w.Fleet.Add(d1, ridetest.Potsdamer)
		offer := w.Offer(t, d1)
		w.Restart(t) // with the offer open
		if again := w.Offer(t, d1); again != offer {
			t.Errorf("offer after restart %+v, want %+v", again, offer)
		}
		if _, err := w.Answer(t.Context(), r.ID, d1, true); err != nil {
			t.Fatal(err)
		}
		w.WaitState(t, r.ID, rides.DispatchTrip)
		w.Advance(t, r.ID, d1, rides.ActionArrive)
		w.Restart(t) // in the trip
		w.Advance(t, r.ID, d1, rides.ActionStart)
		w.Peer.Silence(cCapture, true)
		w.Advance(t, r.ID, d1, rides.ActionComplete)
		testlog.Eventually(t, "the capture sent", func() bool { return slices.Contains(w.Peer.Received(r.ID), cCapture) })
		w.Restart(t) // while settling
		w.Peer.Silence(cCapture, false)
		w.Publish(t, payments.PaymentCapturedEvent.With(payments.PaymentCaptured{PayableID: r.ID, Payable: payments.PayableRide}))
		if r = w.WaitState(t, r.ID, rides.DispatchCompleted); r.Status != rides.StatusCompleted {
			t.Errorf("ride %s", r.Status)
		}
		if !slices.Contains(w.Peer.Received(r.ID), cRelease) {
			t.Errorf("the driver was not released: %v", w.Peer.Received(r.ID))
		}
	})
}

// 100 riders ask for rides at once with 10 drivers, who accept every offer they
// get — each offer twice, concurrently: every driver ends with at most one ride,
// every ride with at most one driver, and exactly 10 rides are assigned.
func TestNoDoubleAssignment(t *testing.T) {
	opts := fast()
	opts.Candidates = 10
	each(t, opts, func(t *testing.T, w *ridetest.World) {
		drivers := make([]string, 10)
		for i := range drivers {
			drivers[i] = fmt.Sprintf("0190a8b2-0000-7000-8000-0000000d%04d", i)
			w.Fleet.Add(drivers[i], ridetest.Potsdamer)
		}
		ids := make([]string, 100)
		var wg sync.WaitGroup
		for i := range ids {
			wg.Go(func() {
				ids[i] = w.Request(t, fmt.Sprintf("0190a8b2-0000-7000-8000-%012d", i), ridetest.BrandenburgGate, ridetest.Alexanderplatz, "tok_visa").ID
			})
		}
		wg.Wait()
		var mu sync.Mutex
		won := map[string][]string{} // driver → rides it was answered yes for
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		defer cancel()
		for _, d := range drivers {
			wg.Go(func() { acceptAll(ctx, w, d, &mu, won) })
		}
		testlog.Eventually(t, "10 rides assigned", func() bool { return len(assignedRides(t, w, ids)) == 10 })
		cancel()
		wg.Wait()
		got := assignedRides(t, w, ids)
		seen := map[string]string{}
		for ride, driver := range got {
			if other, dup := seen[driver]; dup {
				t.Errorf("driver %s assigned to %s and %s", driver, other, ride)
			}
			seen[driver] = ride
		}
		for d, rs := range won {
			if len(rs) != 1 {
				t.Errorf("driver %s was told yes for %d rides: %v", d, len(rs), rs)
			}
		}
	})
}

// acceptAll accepts, twice at once, every offer driver gets until ctx ends, and
// records the rides an accept succeeded for.
func acceptAll(ctx context.Context, w *ridetest.World, driver string, mu *sync.Mutex, won map[string][]string) {
	for ctx.Err() == nil {
		got, err := bus.Call(ctx, w.Bus, rides.WaitOfferRequest, rides.WaitOffer{DriverID: driver, Wait: time.Second})
		if err != nil || got.Offer == nil {
			continue
		}
		var wg sync.WaitGroup
		var oks int
		for range 2 {
			wg.Go(func() {
				if _, err := w.Answer(ctx, got.Offer.RideID, driver, true); err == nil {
					mu.Lock()
					oks++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		mu.Lock()
		if oks > 0 {
			won[driver] = append(won[driver], got.Offer.RideID)
		}
		if oks > 1 {
			won[driver] = append(won[driver], got.Offer.RideID+" (twice)")
		}
		mu.Unlock()
	}
}

// assignedRides returns the rides of ids with a driver, and their drivers.
func assignedRides(t testing.TB, w *ridetest.World, ids []string) map[string]string {
	out := map[string]string{}
	page, err := bus.Call(context.Background(), w.Bus, rides.ListRidesRequest, rides.ListRides{Limit: rides.MaxPageSize})
	for err == nil {
		for _, r := range page.Items {
			if r.DriverID != "" && slices.Contains(ids, r.ID) {
				out[r.ID] = r.DriverID
			}
		}
		if page.NextBefore == "" {
			break
		}
		page, err = bus.Call(context.Background(), w.Bus, rides.ListRidesRequest, rides.ListRides{Before: page.NextBefore, Limit: rides.MaxPageSize})
	}
	if err != nil {
		t.Fatalf("ListRides: %v", err)
	}
	return out
}

// BenchmarkRideCycle measures a whole ride on SQLite through the bus and both
// outboxes: requested, offered, accepted, engaged, driven and settled.
func BenchmarkRideCycle(b *testing.B) {
	cfgDir := b.TempDir()
	h, err := modhost.Open(b.Context(), benchConfig(cfgDir), "rides", slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	defer h.DB.Close()
	w := ridetest.NewWorld(b, h, fast())
	w.Fleet.Add(d1, ridetest.Potsdamer)
	i := 0
	for b.Loop() {
		rider := fmt.Sprintf("0190a8b2-0000-7000-8000-%012d", i)
		i++
		r := w.Request(b, rider, ridetest.BrandenburgGate, ridetest.Alexanderplatz, "tok_visa")
		if _, err := w.Answer(b.Context(), w.Offer(b, d1).RideID, d1, true); err != nil {
			b.Fatal(err)
		}
		w.WaitState(b, r.ID, rides.DispatchTrip)
		for _, a := range []string{rides.ActionArrive, rides.ActionStart, rides.ActionComplete} {
			w.Advance(b, r.ID, d1, a)
		}
		w.WaitState(b, r.ID, rides.DispatchCompleted)
		testlog.Eventually(b, "the driver released", func() bool { return w.Fleet.Driver(d1).Status == fleet.StatusAvailable })
	}
}

func benchConfig(dir string) config.Config {
	cfg := config.Default()
	cfg.DataDir = dir
	return cfg
}

// The dispatches gauge counts the dispatches by state at each scrape.
func TestDispatchesGauge(t *testing.T) {
	each(t, fast(), func(t *testing.T, w *ridetest.World) {
		r := w.Request(t, alice, ridetest.BrandenburgGate, ridetest.Alexanderplatz, "tok_visa")
		w.WaitState(t, r.ID, rides.DispatchOffering) // and there it stays: no driver is near
		reg := prometheus.NewPedanticRegistry()
		reg.MustRegister(trips.NewMetrics().Collectors(w.Service)...)
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]float64{}
		for _, mf := range mfs {
			if mf.GetName() == "agora_rides_dispatches" {
				for _, m := range mf.GetMetric() {
					got[m.GetLabel()[0].GetValue()] = m.GetGauge().GetValue()
				}
			}
		}
		if got["offering"] != 1 || got["completed"] != 0 || len(got) != 8 {
			t.Fatalf("agora_rides_dispatches = %v; want offering 1 and every other state 0", got)
		}
	})
}
