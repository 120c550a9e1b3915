package loadgen

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
)

// fleetNamespace names the ingest phase's drivers: the same ids in every run, so a
// run that was stopped before taking them offline leaves no new drivers behind.
var fleetNamespace = uuid.MustParse("6f1e0c2a-5b7d-4c1e-9a3f-1d0a7e5c4b21")

// fleetDriverID is the id of the ingest phase's i-th driver.
func fleetDriverID(i int) string {
	return uuid.NewSHA1(fleetNamespace, fmt.Appendf(nil, "loadgen-fleet-driver-%06d", i)).String()
}

// cityStreets reads the city's streets (GET /v1/fleet/city) as routes.
func (c *client) cityStreets(ctx context.Context) ([]route, error) {
	var city struct {
		Streets []struct {
			Points []point `json:"points"`
		} `json:"streets"`
	}
	if err := c.do(ctx, call{op: "fleet_city", method: http.MethodGet, path: "/v1/fleet/city"}, &city); err != nil {
		return nil, fmt.Errorf("read the city: %w", err)
	}
	var routes []route
	for _, s := range city.Streets {
		if len(s.Points) > 0 {
			routes = append(routes, newRoute(s.Points))
		}
	}
	if len(routes) == 0 {
		return nil, fmt.Errorf("the city has no streets")
	}
	return routes, nil
}

// ingestion is the ingest phase's tally; its fields are updated atomically.
type ingestion struct {
	sent, accepted, conflated, stale, ignored atomic.Int64
	refused, batches, refusedBatches          atomic.Int64
	failed, droppedNoSlot, droppedBackoff     atomic.Int64
	pauseUntil                                atomic.Int64 // unix nanos: a 429 asked to wait until then
}

// ingester sends the fleet-operated drivers' positions in batches.
type ingester struct {
	c       *client
	cfg     RidesConfig
	admin   *account
	ids     []string
	walkers []walker
	start   time.Time
	next    atomic.Int64 // the next batch's first driver
	slots   slots
	flights sync.WaitGroup
	n       ingestion
}

func newIngester(c *client, cfg RidesConfig, admin *account, routes []route, seed uint64) *ingester {
	ids := make([]string, cfg.Drivers)
	for i := range ids {
		ids[i] = fleetDriverID(i)
	}
	walkers := newWalkers(cfg.Drivers, routes, rand.New(rand.NewPCG(seed, 0xf1ee7)))
	return &ingester{c: c, cfg: cfg, admin: admin, ids: ids, walkers: walkers, slots: newSlots(cfg.Concurrency)}
}

// setOnline brings every driver online at its position (online) or takes it
// offline, a few requests at a time. It returns how many failed.
func (in *ingester) setOnline(ctx context.Context, online bool) int64 {
	var next, failed atomic.Int64
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < len(in.ids) && ctx.Err() == nil; i = int(next.Add(1) - 1) {
				req := call{op: "fleet_driver_offline", method: http.MethodPost, path: "/v1/fleet/drivers/" + in.ids[i] + "/offline",
					expect: []int{http.StatusNotFound}}
				if online {
					req = call{op: "fleet_driver_online", method: http.MethodPost, path: "/v1/fleet/drivers/" + in.ids[i] + "/online",
						body: map[string]point{"position": in.walkers[i].at(0)}}
				}
				if err := in.c.authed(ctx, in.admin, req, nil); err != nil && statusOf(err) != http.StatusNotFound {
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	return failed.Load()
}

// launch sends the next batch, unless a 429 asked to wait or every slot is taken
// (then the batch is dropped and counted). It is the schedule's launch function.
func (in *ingester) launch(ctx context.Context) bool {
	b := int64(in.cfg.Batch)
	if time.Now().UnixNano() < in.n.pauseUntil.Load() {
		in.n.droppedBackoff.Add(b)
		return false
	}
	if !in.slots.tryAcquire() {
		in.n.droppedNoSlot.Add(b)
		return false
	}
	first := int(in.next.Add(b) - b)
	in.flights.Go(func() {
		defer in.slots.release()
		in.send(ctx, first)
	})
	return true
}

type positionIn struct {
	DriverID string    `json:"driver_id"`
	Point    point     `json:"point"`
	At       time.Time `json:"at"`
}

// send posts the Batch drivers' positions from the first-th (modulo Drivers).
func (in *ingester) send(ctx context.Context, first int) {
	now := time.Now()
	secs := now.Sub(in.start).Seconds()
	batch := make([]positionIn, in.cfg.Batch)
	for k := range batch {
		i := (first + k) % len(in.ids)
		batch[k] = positionIn{DriverID: in.ids[i], Point: in.walkers[i].at(secs), At: now.UTC()}
	}
	var got struct{ Accepted, Conflated, Stale, Ignored int64 }
	err := in.c.authed(ctx, in.admin, call{op: "report_positions", method: http.MethodPost, path: "/v1/fleet/positions",
		body: map[string]any{"positions": batch}, expect: []int{http.StatusTooManyRequests}}, &got)
	n := int64(len(batch))
	in.n.sent.Add(n)
	in.n.batches.Add(1)
	switch {
	case err == nil:
		in.n.accepted.Add(got.Accepted)
		in.n.conflated.Add(got.Conflated)
		in.n.stale.Add(got.Stale)
		in.n.ignored.Add(got.Ignored)
	case statusOf(err) == http.StatusTooManyRequests:
		in.n.refused.Add(n)
		in.n.refusedBatches.Add(1)
		wait := time.Second
		if ae, ok := err.(*apiError); ok && ae.RetryAfter > 0 {
			wait = ae.RetryAfter
		}
		in.n.pauseUntil.Store(time.Now().Add(wait).UnixNano())
	default:
		in.n.failed.Add(n)
	}
}

// run sends positions at PositionRate for the Ingest window and returns the
// window as it ran; w gets a progress line a second.
func (in *ingester) run(ctx context.Context, w io.Writer) time.Duration {
	in.start = time.Now()
	progCtx, stop := context.WithCancel(ctx)
	var prog sync.WaitGroup
	prog.Go(func() { in.progress(progCtx, w) })
	schedule(ctx, realClock{}, in.cfg.PositionRate/float64(in.cfg.Batch), in.cfg.Ingest, func() bool { return in.launch(ctx) })
	_ = realClock{}.SleepUntil(ctx, in.start.Add(in.cfg.Ingest))
	in.flights.Wait()
	window := time.Since(in.start)
	stop()
	prog.Wait()
	return window
}

func (in *ingester) progress(ctx context.Context, w io.Writer) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	prev := int64(0)
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			sent := in.n.sent.Load()
			fmt.Fprintf(w, "%5.0fs  ingest: sent %6d/s  accepted %9d  conflated %7d  refused (429) %7d  dropped %7d\n",
				now.Sub(in.start).Seconds(), sent-prev, in.n.accepted.Load(), in.n.conflated.Load(), in.n.refused.Load(),
				in.n.droppedNoSlot.Load()+in.n.droppedBackoff.Load())
			prev = sent
		}
	}
}
