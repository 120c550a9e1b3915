package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"time"
)

// ridesGen is one run of the rides scenario.
type ridesGen struct {
	cfg     Config
	c       *client
	rec     *recorder
	admin   *account
	routes  []route
	riders  chan *account // riders without a ride
	drivers []*account    // signed in and promoted, not yet online
	rides   rideTally
}

// runRides runs the rides scenario: the warm-up (sign-ins, the city), the ingest
// phase, then the dispatch phase.
func runRides(ctx context.Context, cfg Config, w io.Writer) (Report, error) {
	g := &ridesGen{cfg: cfg, rec: newRecorder()}
	g.c = newClient(cfg, newRecorder()) // the warm-up's numbers are not the run's
	if err := g.warmUp(ctx, w); err != nil {
		return Report{}, fmt.Errorf("warm-up: %w", err)
	}
	g.c.rec = g.rec
	start := time.Now()
	ingest := g.ingestPhase(ctx, w)
	var dispatch DispatchReport
	if ctx.Err() == nil {
		dispatch = g.dispatchPhase(ctx, w)
	}
	window := time.Duration((ingest.WindowSeconds + dispatch.WindowSeconds) * float64(time.Second))
	rep := g.rec.report(cfg, window, time.Since(start), ctx.Err() != nil)
	rep.Scenario = ScenarioRides
	rep.Rides = &RidesReport{Ingest: ingest, Dispatch: dispatch}
	return rep, nil
}

// warmUp signs in the admin (the fleet operator), the riders and the ride drivers
// (promoting them to drivers) and reads the city's streets.
func (g *ridesGen) warmUp(ctx context.Context, w io.Writer) error {
	g.admin = &account{email: g.cfg.AdminEmail, password: g.cfg.AdminPassword}
	if err := g.c.signIn(ctx, g.admin); err != nil {
		return fmt.Errorf("the admin (the fleet operator) must sign in: %w", err)
	}
	routes, err := g.c.cityStreets(ctx)
	if err != nil {
		return err
	}
	g.routes = routes
	fmt.Fprintf(w, "warm-up: signing in %d riders and %d drivers (sign-in is rate-limited per address: this may take a minute)\n",
		g.cfg.Rides.Riders, g.cfg.Rides.RideDrivers)
	riders, err := g.c.signInCustomers(ctx, g.cfg.Rides.Riders, w)
	if err != nil {
		return err
	}
	if len(riders) == 0 {
		return errors.New("no rider could sign in")
	}
	g.riders = make(chan *account, len(riders))
	for _, a := range riders {
		g.riders <- a
	}
	all := make([]*account, g.cfg.Rides.RideDrivers)
	for i := range all {
		all[i] = &account{email: driverEmail(i), password: driverPassword}
	}
	if all, err = g.c.signInPool(ctx, all, "drivers", w); err != nil {
		return err
	}
	for _, a := range all {
		if err := g.c.promoteToDriver(ctx, a, g.admin); err != nil {
			fmt.Fprintf(w, "warm-up: driver %s: %v\n", a.email, err)
			continue
		}
		g.drivers = append(g.drivers, a)
	}
	if len(g.drivers) == 0 {
		return errors.New("no driver account could be made a driver")
	}
	return ctx.Err()
}

// ingestPhase brings the fleet-operated drivers online, sends their positions for
// the Ingest window while sampling the server's memory, and takes them offline.
func (g *ridesGen) ingestPhase(ctx context.Context, w io.Writer) IngestReport {
	rc := g.cfg.Rides
	in := newIngester(g.c, rc, g.admin, g.routes, g.cfg.Seed)
	fmt.Fprintf(w, "ingest: bringing %d fleet drivers online\n", rc.Drivers)
	onlineFailed := in.setOnline(ctx, true)
	before, beforeErr := g.c.scrapeMetrics(ctx, rc.MetricsToken)
	if beforeErr != nil {
		fmt.Fprintf(w, "ingest: no server metrics: %v\n", beforeErr)
	}
	sampleCtx, stopSampling := context.WithCancel(ctx)
	var rssMax float64
	var sampler sync.WaitGroup
	if beforeErr == nil {
		sampler.Go(func() { rssMax = g.sampleRSS(sampleCtx) })
	}
	fmt.Fprintf(w, "ingest: %.0f positions/s in batches of %d for %s\n", rc.PositionRate, rc.Batch, rc.Ingest)
	window := in.run(ctx, w)
	stopSampling()
	sampler.Wait()
	var m *fleetMetrics
	if beforeErr == nil {
		if after, err := g.c.scrapeMetrics(ctx, rc.MetricsToken); err == nil {
			d := after.since(before)
			m = &d
		}
	}
	// Offline again, even after Ctrl-C: the dispatch phase (and the next run) must
	// not offer rides to drivers that nobody drives.
	offCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	fmt.Fprintf(w, "ingest: taking the %d fleet drivers offline\n", rc.Drivers)
	in.setOnline(offCtx, false)
	return ingestReport(rc, &in.n, onlineFailed, window, m, rssMax)
}

// sampleRSS reads the server's resident memory every second until ctx ends and
// returns the largest seen.
func (g *ridesGen) sampleRSS(ctx context.Context) float64 {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	peak := 0.0
	for {
		select {
		case <-ctx.Done():
			return peak
		case <-t.C:
			if m, err := g.c.scrapeMetrics(ctx, g.cfg.Rides.MetricsToken); err == nil {
				peak = max(peak, m.rss)
			}
		}
	}
}

// dispatchPhase starts the driver apps, launches rides at RideRate for the
// Dispatch window, lets the rides in flight finish (up to Config.Drain) and stops
// the drivers.
func (g *ridesGen) dispatchPhase(ctx context.Context, w io.Writer) DispatchReport {
	driversCtx, stopDrivers := context.WithCancel(ctx)
	defer stopDrivers()
	apps := g.connectDrivers(driversCtx, w)
	var drivers sync.WaitGroup
	for _, d := range apps {
		drivers.Go(func() { d.run(driversCtx) })
	}
	fmt.Fprintf(w, "dispatch: %d drivers online; %.1f rides/s for %s\n", len(apps), g.cfg.Rides.RideRate, g.cfg.Rides.Dispatch)
	flowCtx, cancelFlows := context.WithCancel(ctx)
	defer cancelFlows()
	var flows sync.WaitGroup
	master := rand.New(rand.NewPCG(g.cfg.Seed, 0x71de))
	launch := func() bool {
		var rider *account
		select {
		case rider = <-g.riders:
		default:
			g.rides.add(&g.rides.dropped, 1)
			return false
		}
		g.rides.add(&g.rides.launched, 1)
		r := rand.New(rand.NewPCG(master.Uint64(), master.Uint64()))
		flows.Go(func() { g.ride(flowCtx, rider, r) })
		return true
	}
	start := time.Now()
	schedule(ctx, realClock{}, g.cfg.Rides.RideRate, g.cfg.Rides.Dispatch, launch)
	_ = realClock{}.SleepUntil(ctx, start.Add(g.cfg.Rides.Dispatch))
	window := time.Since(start)
	fmt.Fprintf(w, "dispatch: window over: waiting up to %s for the rides in flight\n", g.cfg.Drain)
	waitUpTo(ctx, &flows, g.cfg.Drain)
	cancelFlows()
	flows.Wait()
	stopDrivers()
	drivers.Wait()
	return g.rides.report(g.cfg.Rides, window, len(apps), cap(g.riders))
}

// connectDrivers brings the ride drivers online at random places on the streets
// and opens their streams; it returns those that are ready.
func (g *ridesGen) connectDrivers(ctx context.Context, w io.Writer) []*driverApp {
	r := rand.New(rand.NewPCG(g.cfg.Seed, 0xd71e))
	var apps []*driverApp
	for _, a := range g.drivers {
		rt := g.routes[r.IntN(len(g.routes))]
		d := &driverApp{g: g, a: a, pos: rt.along(r.Float64() * rt.length()), tripAcks: make(chan streamMsg, 4)}
		if err := d.connect(ctx); err != nil {
			fmt.Fprintf(w, "dispatch: driver %s: %v\n", a.email, err)
			continue
		}
		apps = append(apps, d)
	}
	return apps
}
