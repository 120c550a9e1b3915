package loadgen

import (
	"context"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	ucli "github.com/urfave/cli/v3"
)

// parseFlags runs the command's flag parsing on args and returns the Config.
func parseFlags(t *testing.T, args ...string) Config {
	t.Helper()
	def := DefaultConfig()
	var cfg Config
	cmd := &ucli.Command{Name: "loadgen", Flags: flags(def), Action: func(_ context.Context, cmd *ucli.Command) error {
		var err error
		cfg, err = configFrom(cmd, def)
		return err
	}}
	if err := cmd.Run(context.Background(), append([]string{"loadgen"}, args...)); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestRidesFlags(t *testing.T) {
	cfg := parseFlags(t, "--seed", "1")
	if cfg.Scenario != ScenarioShop || cfg.Rides != DefaultRidesConfig() {
		t.Errorf("without flags: scenario %q, rides %+v; want shop and the defaults", cfg.Scenario, cfg.Rides)
	}
	cfg = parseFlags(t, "--scenario", "rides", "--drivers", "20000", "--position-rate", "60000", "--ingest", "5s",
		"--batch", "250", "--ingest-concurrency", "4", "--ride-drivers", "50", "--riders", "80", "--ride-rate", "25",
		"--dispatch", "10s", "--trip-speed", "900", "--ride-timeout", "20s", "--metrics-token", "m")
	want := RidesConfig{Drivers: 20_000, PositionRate: 60_000, Ingest: 5 * time.Second, Batch: 250, Concurrency: 4,
		RideDrivers: 50, Riders: 80, RideRate: 25, Dispatch: 10 * time.Second, TripSpeed: 900, RideTimeout: 20 * time.Second,
		MetricsToken: "m"}
	if diff := cmp.Diff(want, cfg.Rides); diff != "" || cfg.Scenario != ScenarioRides {
		t.Errorf("scenario %q; rides (-want +got):\n%s", cfg.Scenario, diff)
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
}

func TestRidesConfigValidate(t *testing.T) {
	for name, change := range map[string]func(*Config){
		"unknown scenario": func(c *Config) { c.Scenario = "taxi" },
		"no drivers":       func(c *Config) { c.Rides.Drivers = 0 },
		"zero rate":        func(c *Config) { c.Rides.PositionRate = 0 },
		"batch too large":  func(c *Config) { c.Rides.Batch = 1001 },
		"no concurrency":   func(c *Config) { c.Rides.Concurrency = 0 },
		"no ride drivers":  func(c *Config) { c.Rides.RideDrivers = 0 },
		"no riders":        func(c *Config) { c.Rides.Riders = 0 },
		"zero ride rate":   func(c *Config) { c.Rides.RideRate = 0 },
		"zero trip speed":  func(c *Config) { c.Rides.TripSpeed = 0 },
		"zero dispatch":    func(c *Config) { c.Rides.Dispatch = 0 },
	} {
		c := DefaultConfig()
		c.Scenario = ScenarioRides
		change(&c)
		if c.Validate() == nil {
			t.Errorf("%s: Validate accepted it", name)
		}
	}
	c := DefaultConfig()
	c.Rides.Drivers = 0 // the shop scenario does not look at the rides settings
	if err := c.Validate(); err != nil {
		t.Errorf("shop with rides settings unset: %v", err)
	}
}

// TestRideTallyReport: outcomes add up, rates are over the window, latencies are
// summarised, the server's assignment time comes from the ride's timestamps.
func TestRideTallyReport(t *testing.T) {
	var tl rideTally
	tl.launched, tl.dropped, tl.offersReceived, tl.offersAccepted = 9, 2, 7, 6
	created := time.Date(2026, 12, 3, 16, 0, 0, 0, time.UTC)
	for i, ms := range []int{10, 20, 30, 40} {
		v := rideView{CreatedAt: created, AssignedAt: created.Add(time.Duration(ms) * time.Millisecond)}
		if i == 3 {
			v.AssignedAt = time.Time{} // no timestamp: no server figure
		}
		tl.assigned(time.Duration(ms+1)*time.Millisecond, v)
	}
	sent := time.Now().Add(-time.Second)
	for range 4 {
		tl.end(RideCompleted, rideView{}, sent)
	}
	tl.end(RideCancelled, rideView{Reason: "no_driver"}, sent)
	tl.end(OutcomeFailed, rideView{}, time.Time{})
	tl.end(OutcomeTimedOut, rideView{}, time.Time{})
	tl.end(OutcomeInterrupted, rideView{}, time.Time{})
	tl.end(OutcomeInterrupted, rideView{}, time.Time{})
	got := tl.report(RidesConfig{RideRate: 5}, 3*time.Second, 10, 20)
	if got.Launched != got.Completed+got.Cancelled+got.Failed+got.TimedOut+got.Interrupted {
		t.Errorf("launched %d ≠ the sum of the outcomes: %+v", got.Launched, got)
	}
	want := DispatchReport{TargetRate: 5, WindowSeconds: 3, Drivers: 10, Riders: 20, Launched: 9, Dropped: 2,
		Completed: 4, Cancelled: 1, Failed: 1, TimedOut: 1, Interrupted: 2, CancelReasons: map[string]int64{"no_driver": 1},
		LaunchedPerSecond: 3, CompletedPerSecond: 4.0 / 3, OffersReceived: 7, OffersAccepted: 6,
		RequestToAssigned: Latency{Count: 4, Mean: 26, P50: 21, P90: 41, P99: 41, Max: 41},
		AssignedServer:    Latency{Count: 3, Mean: 20, P50: 20, P90: 30, P99: 30, Max: 30}}
	got.RequestToCompleted = Latency{}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("report (-want +got):\n%s", diff)
	}
	if c := tl.report(RidesConfig{}, time.Second, 0, 0).RequestToCompleted; c.Count != 4 || c.P50 < 1000 {
		t.Errorf("request→completed %+v: want 4 of at least a second", c)
	}
}

const metricsText = `# TYPE agora_fleet_position_updates_total counter
agora_fleet_position_updates_total{outcome="received"} 1100
agora_fleet_position_updates_total{outcome="accepted"} 1000
agora_fleet_position_updates_total{outcome="conflated"} 60
agora_fleet_position_updates_total{outcome="ignored"} 40
# TYPE agora_fleet_position_visible_seconds histogram
agora_fleet_position_visible_seconds_bucket{le="0.001"} 500
agora_fleet_position_visible_seconds_bucket{le="0.01"} 980
agora_fleet_position_visible_seconds_bucket{le="0.05"} 995
agora_fleet_position_visible_seconds_bucket{le="+Inf"} 1000
agora_fleet_position_visible_seconds_sum 3
agora_fleet_position_visible_seconds_count 1000
# TYPE process_resident_memory_bytes gauge
process_resident_memory_bytes 1.25e+08
`

// TestFleetMetrics: the scrape is read, the window is the difference of two, and
// quantiles are the bounds of the buckets that hold them.
func TestFleetMetrics(t *testing.T) {
	before, err := parseFleetMetrics(strings.NewReader(strings.NewReplacer("1100", "100", "1000", "100",
		"} 60", "} 0", "} 40", "} 0", "} 500", "} 100", "} 980", "} 100", "} 995", "} 100").Replace(metricsText)))
	if err != nil {
		t.Fatal(err)
	}
	after, err := parseFleetMetrics(strings.NewReader(metricsText))
	if err != nil {
		t.Fatal(err)
	}
	if after.rss != 125e6 || after.updates["received"] != 1100 || len(after.visible) != 4 {
		t.Fatalf("parsed %+v", after)
	}
	d := after.since(before)
	if diff := cmp.Diff(map[string]float64{"received": 1000, "accepted": 900, "conflated": 60, "ignored": 40}, d.updates); diff != "" {
		t.Errorf("updates over the window (-want +got):\n%s", diff)
	}
	// 900 observations in the window: 400 ≤ 1 ms, 880 ≤ 10 ms, 895 ≤ 50 ms, 900 in all.
	for _, tc := range []struct {
		q    float64
		want float64
	}{{0.4, 0.001}, {0.5, 0.01}, {0.97, 0.01}, {0.99, 0.05}, {0.999, math.Inf(1)}} {
		if got := bucketQuantile(d.visible, tc.q); got != tc.want {
			t.Errorf("quantile %v = %v, want %v", tc.q, got, tc.want)
		}
	}
	r := ingestReport(RidesConfig{}, &ingestion{}, 0, time.Second, &d, 130e6)
	if s := r.Server; s.Received != 1000 || s.VisibleCount != 900 || *s.VisibleP50MS != 10 || *s.VisibleP99MS != 50 ||
		s.RSSBytes != 125e6 || s.RSSMaxBytes != 130e6 {
		t.Errorf("server figures %+v", s)
	}
	if got := quantileMS(nil, 0.5); got != nil {
		t.Errorf("a quantile of nothing = %v, want none", *got)
	}
}

// TestTripEnds: a trip runs 0.5 to 3 km along one street, either way about as often.
func TestTripEnds(t *testing.T) {
	routes := []route{newRoute([]point{{52.47, 13.40}, {52.57, 13.40}})} // 11 km north
	r := rand.New(rand.NewPCG(5, 6))
	north := 0
	for range 1000 {
		p, d := tripEnds(routes, r)
		if km := distance(p, d) / 1000; km < 0.5-1e-6 || km > 3+1e-6 || p.Lng != 13.40 || d.Lng != 13.40 {
			t.Fatalf("trip %+v → %+v: %.2f km", p, d, km)
		}
		if d.Lat > p.Lat {
			north++
		}
	}
	if north < 430 || north > 570 {
		t.Errorf("%d of 1000 trips went north: the drivers would drift", north)
	}
}
