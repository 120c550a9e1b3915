package live_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/message"
	"github.com/agora-commerce/agora/internal/modhost"
	"github.com/agora-commerce/agora/internal/testdb"
	"github.com/agora-commerce/agora/modules/fleet"
	"github.com/agora-commerce/agora/modules/fleet/internal/live"
)

func TestMain(m *testing.M) { os.Exit(testdb.Main(m)) }

var (
	alex  = "0190a0b0-0000-7000-8000-00000000000a"
	berta = "0190a0b0-0000-7000-8000-00000000000b"
	carl  = "0190a0b0-0000-7000-8000-00000000000c"
	mitte = fleet.Point{Lat: 52.52, Lng: 13.40}
)

// harness is the fleet service on one database with a bus carrying its handlers
// and command subscriptions. The outbox relay does not run: what the service
// emits stays in the outbox for the test to read.
type harness struct {
	h   *modhost.Host
	svc *live.Service
	bus *bus.Bus
}

func newHarness(t *testing.T, h *modhost.Host, opts live.Options, start bool) *harness {
	t.Helper()
	svc := live.NewService(h.DB, h.Outbox, opts, testdb.Logger())
	b, err := bus.New(testdb.Logger(), bus.Limits{}, nil, svc.Handlers(), svc.Subscriptions())
	if err != nil {
		t.Fatal(err)
	}
	if start {
		if err := svc.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = svc.Stop(context.Background()) })
	}
	return &harness{h: h, svc: svc, bus: b}
}

func (w *harness) online(t *testing.T, id string, at fleet.Point) {
	t.Helper()
	if _, err := w.svc.GoOnline(t.Context(), fleet.GoOnline{DriverID: id, Position: &at}); err != nil {
		t.Fatalf("GoOnline %s: %v", id, err)
	}
}

// command delivers a command to fleet as the relay would, with id as its envelope id.
func (w *harness) command(t *testing.T, id string, o message.Outgoing) {
	t.Helper()
	env, err := bus.Seal(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	env.ID = id
	if err := w.bus.Deliver(t.Context(), env); err != nil {
		t.Fatalf("deliver %s: %v", o.Type, err)
	}
}

func (w *harness) driver(t *testing.T, id string) fleet.Driver {
	t.Helper()
	d, err := w.svc.GetDriver(t.Context(), fleet.GetDriver{DriverID: id})
	if err != nil {
		t.Fatalf("GetDriver %s: %v", id, err)
	}
	return d
}

func (w *harness) nearest(t *testing.T) []string {
	t.Helper()
	n, err := w.svc.FindNearest(t.Context(), fleet.FindNearest{Point: mitte, RadiusMeters: 5000, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, c := range n.Drivers {
		ids = append(ids, c.DriverID)
	}
	slices.Sort(ids)
	return ids
}

// events returns the outbox's messages of fleet's events, as "type driver status|reason".
func events(t *testing.T, h *modhost.Host) []string {
	t.Helper()
	var out []string
	for _, r := range testdb.OutboxRows(t, h.DB) {
		switch r.Type {
		case fleet.DriverAvailabilityChangedEvent.Name():
			e := testdb.Decode[fleet.DriverAvailabilityChanged](t, r.Payload)
			out = append(out, "changed "+e.DriverID[len(e.DriverID)-1:]+" "+string(e.Previous)+"→"+string(e.Status)+" "+e.RideID)
		case fleet.DriverEngagementFailedEvent.Name():
			e := testdb.Decode[fleet.DriverEngagementFailed](t, r.Payload)
			out = append(out, "failed "+e.DriverID[len(e.DriverID)-1:]+" "+e.Reason+" "+e.RideID)
		}
	}
	return out
}

func engage(driver, ride string) message.Outgoing {
	return fleet.EngageDriverCommand.With(fleet.EngageDriver{DriverID: driver, RideID: ride})
}

func release(driver, ride string) message.Outgoing {
	return fleet.ReleaseDriverCommand.With(fleet.ReleaseDriver{DriverID: driver, RideID: ride})
}

// TestEngageAndReleaseAreIdempotent: engaging makes a driver busy (and FindNearest
// stops returning it) with one event; the same command redelivered, or another
// command for the same ride, changes nothing; another ride fails (busy), an
// offline driver fails (offline); releasing for another ride changes nothing, for
// the ride makes the driver available again, once.
func TestEngageAndReleaseAreIdempotent(t *testing.T) {
	testdb.EachHost(t, "fleet", func(t *testing.T, h *modhost.Host) {
		w := newHarness(t, h, live.Options{}, true)
		w.online(t, alex, mitte)
		w.online(t, berta, fleet.Point{Lat: 52.521, Lng: 13.401})
		w.command(t, "c1", engage(alex, "r1"))
		w.command(t, "c1", engage(alex, "r1")) // redelivered: the inbox drops it
		w.command(t, "c2", engage(alex, "r1")) // sent twice: the same ride changes nothing
		if d := w.driver(t, alex); d.Status != fleet.StatusBusy || d.RideID != "r1" {
			t.Fatalf("after engage: %+v", d)
		}
		if got := w.nearest(t); !slices.Equal(got, []string{berta}) {
			t.Fatalf("FindNearest with alex busy = %v, want only berta", got)
		}
		w.command(t, "c3", engage(alex, "r2"))
		w.command(t, "c4", engage(carl, "r3"))
		w.command(t, "c5", release(alex, "r2"))
		if d := w.driver(t, alex); d.Status != fleet.StatusBusy || d.RideID != "r1" {
			t.Fatalf("another ride's commands changed alex: %+v", d)
		}
		if _, err := w.svc.GoOffline(t.Context(), fleet.GoOffline{DriverID: alex}); !errors.Is(err, fleet.ErrBusy) {
			t.Fatalf("GoOffline while busy: %v, want ErrBusy", err)
		}
		w.command(t, "c6", release(alex, "r1"))
		w.command(t, "c7", release(alex, "r1"))
		if got := w.nearest(t); !slices.Equal(got, []string{alex, berta}) {
			t.Fatalf("FindNearest after release = %v", got)
		}
		want := []string{
			"changed a offline→available ", "changed b offline→available ",
			"changed a available→busy r1",
			"failed a busy r2", "failed c offline r3",
			"changed a busy→available r1",
		}
		if diff := cmp.Diff(want, events(t, h)); diff != "" {
			t.Fatalf("events (-want +got):\n%s", diff)
		}
	})
}

// TestCheckpointAndRestartRestoreState: a restart restores who is online, busy or
// offline and each driver's last position as of the stop's checkpoint, so the
// rebuilt index answers as before.
func TestCheckpointAndRestartRestoreState(t *testing.T) {
	testdb.EachHost(t, "fleet", func(t *testing.T, h *modhost.Host) {
		first := newHarness(t, h, live.Options{CheckpointEvery: time.Hour}, true)
		first.online(t, alex, mitte)
		first.online(t, berta, mitte)
		first.online(t, carl, mitte)
		first.command(t, "c1", engage(berta, "r1"))
		if _, err := first.svc.GoOffline(t.Context(), fleet.GoOffline{DriverID: carl}); err != nil {
			t.Fatal(err)
		}
		moved := fleet.Point{Lat: 52.53, Lng: 13.41}
		at := time.Now().UTC().Truncate(time.Microsecond).Add(time.Second)
		n, err := first.svc.ReportPositions(t.Context(), fleet.ReportPositions{Positions: []fleet.Position{
			{DriverID: alex, Point: fleet.Point{Lat: 52.525, Lng: 13.405}, At: at.Add(-time.Millisecond)},
			{DriverID: alex, Point: moved, At: at},
			{DriverID: carl, Point: moved, At: at},
		}})
		if err != nil || n != (fleet.Ingested{Accepted: 2, Conflated: 1, Ignored: 1}) {
			t.Fatalf("ReportPositions = %+v, %v", n, err)
		}
		if err := first.svc.Stop(t.Context()); err != nil {
			t.Fatalf("stop: %v", err)
		}

		second := newHarness(t, h, live.Options{}, true)
		a := second.driver(t, alex)
		if a.Status != fleet.StatusAvailable || a.Position == nil || *a.Position != moved || !a.PositionAt.Equal(at) {
			t.Fatalf("alex after restart: %+v (position %v), want available at %v taken %v", a, a.Position, moved, at)
		}
		if b := second.driver(t, berta); b.Status != fleet.StatusBusy || b.RideID != "r1" {
			t.Fatalf("berta after restart: %+v", b)
		}
		if c := second.driver(t, carl); c.Status != fleet.StatusOffline {
			t.Fatalf("carl after restart: %+v", c)
		}
		n2, err := second.svc.FindNearest(t.Context(), fleet.FindNearest{Point: moved, RadiusMeters: 100, Limit: 5})
		if err != nil || len(n2.Drivers) != 1 || n2.Drivers[0].DriverID != alex {
			t.Fatalf("FindNearest at alex's last position after restart = %+v, %v", n2, err)
		}
	})
}

// TestSaturatedIngestionRefusesWholeBatch: with the index not taking positions
// (a blocked consumer), a batch needing more room than the buffer has is refused
// with ErrSaturated — an Overloaded error — and nothing of it is buffered, while
// newer positions of drivers already waiting still replace theirs.
func TestSaturatedIngestionRefusesWholeBatch(t *testing.T) {
	testdb.EachHost(t, "fleet", func(t *testing.T, h *modhost.Host) {
		w := newHarness(t, h, live.Options{Buffer: 2}, false)
		for _, id := range []string{alex, berta, carl} {
			w.online(t, id, mitte)
		}
		at := time.Now().UTC()
		report := func(at time.Time, ids ...string) (fleet.Ingested, error) {
			var ps []fleet.Position
			for _, id := range ids {
				ps = append(ps, fleet.Position{DriverID: id, Point: mitte, At: at})
			}
			return bus.Call(t.Context(), w.bus, fleet.ReportPositionsRequest, fleet.ReportPositions{Positions: ps})
		}
		if _, err := report(at, alex, berta); err != nil {
			t.Fatal(err)
		}
		_, err := report(at.Add(time.Second), alex, carl)
		if !errors.Is(err, fleet.ErrSaturated) || message.AsError(err).Kind != message.Overloaded {
			t.Fatalf("report beyond the buffer: %v, want ErrSaturated (Overloaded)", err)
		}
		n, err := report(at.Add(2*time.Second), alex, berta)
		if err != nil || n.Conflated != 2 {
			t.Fatalf("report of waiting drivers: %+v, %v; want 2 conflated", n, err)
		}
		_ = http.StatusTooManyRequests // the HTTP answer is tested in package api
	})
}
