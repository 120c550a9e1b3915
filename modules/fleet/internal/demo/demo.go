// Package demo is the simulated fleet of `agora serve --demo`: drivers that go
// online in the simulated city, drive along its streets, long-poll rides for
// offers, accept them, drive to the pickup and through the trip (arrive, start,
// complete) at a simulated speed. They reach fleet and rides only over the bus,
// exactly as real drivers' apps do through the HTTP edge: their positions go in
// batches through fleet.ReportPositions, the one ingestion path.
//
// The simulation is deterministic in its geometry (the city's grid, each driver's
// start) and seeded per driver. When rides does not answer (it is not running, or
// not yet), drivers keep cruising and retry with backoff, quietly.
package demo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/modules/fleet"
	"github.com/agora-commerce/agora/modules/fleet/internal/city"
	"github.com/agora-commerce/agora/modules/rides"
)

// Options tune the simulated fleet.
type Options struct {
	Drivers int           // how many (default 60)
	Speed   float64       // meters per second, simulated (default 300: a trip across town takes under a minute)
	Tick    time.Duration // how often positions move and are reported (default 500ms)
	Dwell   time.Duration // time at the pickup between arrive and start (default 2s)
}

func (o Options) withDefaults() Options {
	if o.Drivers <= 0 {
		o.Drivers = 60
	}
	if o.Speed <= 0 {
		o.Speed = 300
	}
	if o.Tick <= 0 {
		o.Tick = 500 * time.Millisecond
	}
	if o.Dwell <= 0 {
		o.Dwell = 2 * time.Second
	}
	return o
}

// DriverID returns the id of demo driver i (a fixed UUID, the same every run).
func DriverID(i int) string { return fmt.Sprintf("00000000-0000-4000-8000-%012d", i+1) }

// Fleet is the simulated fleet.
type Fleet struct {
	b    *bus.Bus
	opts Options
	log  *slog.Logger
	city *city.City

	mu      sync.Mutex
	drivers []*driver

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// driver is one simulated driver. The mover (Fleet.tick) owns where it is and
// where it goes; the driver's own goroutine decides where to go next.
type driver struct {
	id      string
	rng     *rand.Rand
	at      fleet.Point
	route   []fleet.Point // the points still ahead
	cruise  bool          // driving around with no ride: a new random route when this one ends
	arrived chan struct{} // signalled when a route driven for a ride ends
}

// New returns a fleet of opts.Drivers drivers in c, talking over b.
func New(b *bus.Bus, c *city.City, opts Options, log *slog.Logger) *Fleet {
	opts = opts.withDefaults()
	f := &Fleet{b: b, opts: opts, log: log.With("module", "fleet", "demo", true), city: c}
	for i := range opts.Drivers {
		rng := rand.New(rand.NewPCG(uint64(i)+1, 0x5eed))
		d := &driver{id: DriverID(i), rng: rng, at: c.RandomCrossing(rng), cruise: true, arrived: make(chan struct{}, 1)}
		d.route = c.Route(d.at, c.RandomCrossing(rng))
		f.drivers = append(f.drivers, d)
	}
	return f
}

// Start starts the simulation in the background.
func (f *Fleet) Start() {
	ctx, cancel := context.WithCancel(context.Background())
	f.cancel = cancel
	f.wg.Add(1)
	go func() { defer f.wg.Done(); f.move(ctx) }()
	for _, d := range f.drivers {
		f.wg.Add(1)
		go func() { defer f.wg.Done(); f.drive(ctx, d) }()
	}
	f.log.Info("demo fleet started", "drivers", len(f.drivers), "speed_mps", f.opts.Speed)
}

// Stop stops the simulation and waits for its goroutines.
func (f *Fleet) Stop(context.Context) error {
	if f.cancel != nil {
		f.cancel()
		f.wg.Wait()
	}
	return nil
}

// move advances every driver along its route each tick and reports all positions
// in one batch.
func (f *Fleet) move(ctx context.Context) {
	t := time.NewTicker(f.opts.Tick)
	defer t.Stop()
	step := f.opts.Speed * f.opts.Tick.Seconds()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		batch := f.advance(step)
		if _, err := bus.Call(ctx, f.b, fleet.ReportPositionsRequest, fleet.ReportPositions{Positions: batch}); err != nil && ctx.Err() == nil {
			f.log.Debug("demo positions not reported", "err", err)
		}
	}
}

// advance moves every driver step meters along its route and returns their positions.
func (f *Fleet) advance(step float64) []fleet.Position {
	now := time.Now().UTC()
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]fleet.Position, 0, len(f.drivers))
	for _, d := range f.drivers {
		for left := step; left > 0 && len(d.route) > 0; {
			before := d.at
			var reached bool
			d.at, reached = city.Toward(d.at, d.route[0], left)
			if !reached {
				break // the step ends short of the next point
			}
			left -= city.Meters(before, d.at)
			d.route = d.route[1:]
		}
		if len(d.route) == 0 {
			if d.cruise {
				d.route = f.city.Route(d.at, f.city.RandomCrossing(d.rng))
			} else {
				select {
				case d.arrived <- struct{}{}:
				default:
				}
			}
		}
		out = append(out, fleet.Position{DriverID: d.id, Point: d.at, At: now})
	}
	return out
}

// goTo sends d to p for a ride (or back to cruising when p is nil).
func (f *Fleet) goTo(d *driver, p *fleet.Point) {
	f.mu.Lock()
	defer f.mu.Unlock()
	select {
	case <-d.arrived: // a stale signal from an earlier route
	default:
	}
	d.cruise = p == nil
	if p != nil {
		d.route = f.city.Route(d.at, *p)
	}
}

// backoff waits before retrying after the attempt-th failure in a row: 1s
// doubling to 30s, or until ctx ends.
func backoff(ctx context.Context, attempt int) {
	wait := min(time.Second<<min(attempt, 5), 30*time.Second)
	select {
	case <-ctx.Done():
	case <-time.After(wait):
	}
}

// drive is one driver's life: online, then offers and trips until ctx ends.
func (f *Fleet) drive(ctx context.Context, d *driver) {
	for attempt := 0; ctx.Err() == nil; attempt++ {
		f.mu.Lock()
		at := d.at
		f.mu.Unlock()
		_, err := bus.Call(ctx, f.b, fleet.GoOnlineRequest, fleet.GoOnline{DriverID: d.id, Position: &at})
		if err == nil {
			break
		}
		f.log.Debug("demo driver not online yet", "driver", d.id, "err", err)
		backoff(ctx, attempt)
	}
	failures := 0
	for ctx.Err() == nil {
		offer, err := bus.Call(ctx, f.b, rides.WaitOfferRequest, rides.WaitOffer{DriverID: d.id, Wait: 20 * time.Second})
		if err != nil {
			failures++
			backoff(ctx, failures) // rides is not running (yet): keep cruising
			continue
		}
		failures = 0
		if offer.Offer != nil {
			f.ride(ctx, d, *offer.Offer)
		}
	}
}

// ride accepts an offer and drives it: to the pickup, arrive, start, to the
// drop-off, complete. A ride cancelled meanwhile ends it early.
func (f *Fleet) ride(ctx context.Context, d *driver, o rides.Offer) {
	if _, err := bus.Call(ctx, f.b, rides.AnswerOfferRequest, rides.AnswerOffer{RideID: o.RideID, DriverID: d.id, Accept: true}); err != nil {
		return // expired, or taken meanwhile
	}
	defer f.goTo(d, nil)
	legs := []struct {
		to     fleet.Point
		action string
	}{{o.Pickup, rides.ActionArrive}, {o.Dropoff, rides.ActionComplete}}
	for i, leg := range legs {
		f.goTo(d, &leg.to)
		select {
		case <-ctx.Done():
			return
		case <-d.arrived:
		}
		if !f.advanceTrip(ctx, d, o.RideID, leg.action) {
			return
		}
		if i == 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(f.opts.Dwell):
			}
			if !f.advanceTrip(ctx, d, o.RideID, rides.ActionStart) {
				return
			}
		}
	}
}

// advanceTrip moves the trip on, retrying while rides cannot be reached; it
// reports false when the ride will not go on (cancelled, or ctx ended).
func (f *Fleet) advanceTrip(ctx context.Context, d *driver, rideID, action string) bool {
	for attempt := 0; ctx.Err() == nil; attempt++ {
		_, err := bus.Call(ctx, f.b, rides.AdvanceTripRequest, rides.AdvanceTrip{RideID: rideID, DriverID: d.id, Action: action})
		if err == nil {
			return true
		}
		if errors.Is(err, rides.ErrWrongStatus) || errors.Is(err, rides.ErrRideNotFound) || attempt >= 5 {
			f.log.Debug("demo ride abandoned", "ride", rideID, "action", action, "err", err)
			return false
		}
		backoff(ctx, attempt)
	}
	return false
}
