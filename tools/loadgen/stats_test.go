package loadgen

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func msSamples(values ...int) []time.Duration {
	out := make([]time.Duration, len(values))
	for i, v := range values {
		out[i] = time.Duration(v) * time.Millisecond
	}
	return out
}

func rangeMS(n int) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = time.Duration(n-i) * time.Millisecond // descending: summarize must sort
	}
	return out
}

func TestSummarize(t *testing.T) {
	for _, tc := range []struct {
		name    string
		samples []time.Duration
		want    Summary
	}{
		{"none", nil, Summary{}},
		{"one", msSamples(7), Summary{Count: 1, Mean: 7 * time.Millisecond, P50: 7 * time.Millisecond,
			P90: 7 * time.Millisecond, P99: 7 * time.Millisecond, Max: 7 * time.Millisecond}},
		{"1..10", rangeMS(10), Summary{Count: 10, Mean: 5500 * time.Microsecond, P50: 5 * time.Millisecond,
			P90: 9 * time.Millisecond, P99: 10 * time.Millisecond, Max: 10 * time.Millisecond}},
		{"1..100", rangeMS(100), Summary{Count: 100, Mean: 50500 * time.Microsecond, P50: 50 * time.Millisecond,
			P90: 90 * time.Millisecond, P99: 99 * time.Millisecond, Max: 100 * time.Millisecond}},
		{"1..1000", rangeMS(1000), Summary{Count: 1000, Mean: 500500 * time.Microsecond, P50: 500 * time.Millisecond,
			P90: 900 * time.Millisecond, P99: 990 * time.Millisecond, Max: 1000 * time.Millisecond}},
		// Nearest rank of 3 samples: p50 is rank ceil(1.5)=2, p90 rank ceil(2.7)=3.
		{"skewed", msSamples(1, 1000, 2), Summary{Count: 3, Mean: 334333333, P50: 2 * time.Millisecond,
			P90: 1000 * time.Millisecond, P99: 1000 * time.Millisecond, Max: 1000 * time.Millisecond}},
	} {
		if diff := cmp.Diff(tc.want, summarize(tc.samples)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, diff)
		}
	}
}

func TestReportMath(t *testing.T) {
	rec := newRecorder()
	rec.launched, rec.dropped, rec.noCustomer = 12, 3, 1
	rec.browseLaunched, rec.browseDropped = 40, 2
	for i := 1; i <= 10; i++ {
		rec.outcome(OutcomeConfirmed, "tok_visa", "", time.Duration(i)*10*time.Millisecond)
	}
	rec.outcome(OutcomeRejected, "tok_decline", "payment declined", 40*time.Millisecond)
	rec.outcome(OutcomeFailed, "tok_visa", "", 0)
	for _, d := range msSamples(4, 2, 8, 6) {
		rec.op("place_order", d)
	}
	rec.fail("place_order", "503", "503 Service Unavailable: busy")
	rec.fail("place_order", "503", "503 Service Unavailable: other words")
	rec.fail("get_order", "transport", "connection refused")
	rec.priceChanged, rec.restocks = 2, 5

	cfg := DefaultConfig()
	cfg.Seed = 42
	got := rec.report(cfg, 4*time.Second, 5*time.Second, false)
	want := Report{
		Scenario: "shop", URLs: cfg.URLs, Await: "sse", TargetRate: 50, BrowseRate: 100, WindowSeconds: 4, ElapsedSeconds: 5, Seed: 42,
		Checkouts: Checkouts{Launched: 12, Dropped: 3, DroppedNoCustomer: 1, Completed: 11, Confirmed: 10, Rejected: 1, Failed: 1},
		// 12 launched, 11 completed and 10 confirmed in 4 seconds.
		Throughput: Throughput{LaunchedPerSecond: 3, CompletedPerSecond: 2.75, ConfirmedPerSecond: 2.5},
		Browse:     Browse{Launched: 40, Dropped: 2},
		ByToken: map[string]map[string]int64{
			"tok_visa":    {"confirmed": 10, "failed": 1},
			"tok_decline": {"rejected": 1},
		},
		RejectionReasons: map[string]int64{"payment declined": 1},
		CheckoutLatency: map[string]Latency{
			"confirmed": {Count: 10, Mean: 55, P50: 50, P90: 90, P99: 100, Max: 100},
			"rejected":  {Count: 1, Mean: 40, P50: 40, P90: 40, P99: 40, Max: 40},
		},
		Operations: map[string]Operation{
			"place_order": {Requests: 4, Errors: 2, LatencyMS: Latency{Count: 4, Mean: 5, P50: 4, P90: 8, P99: 8, Max: 8}},
			"get_order":   {Errors: 1},
		},
		Errors: []ErrorCount{
			{Operation: "place_order", Status: "503", Count: 2, Example: "503 Service Unavailable: busy"},
			{Operation: "get_order", Status: "transport", Count: 1, Example: "connection refused"},
		},
		ErrorsTotal: 3, PriceChangedRetries: 2, Restocks: 5,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("report (-want +got):\n%s", diff)
	}
	var text strings.Builder
	if err := got.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"confirmed 2.5/s", "POST→confirmed", "place_order 503: 503 Service Unavailable: busy", "tok_decline"} {
		if !strings.Contains(text.String(), s) {
			t.Errorf("the text report lacks %q:\n%s", s, text.String())
		}
	}
}

// The progress line's percentiles cover the confirmed checkouts since the last
// snapshot only.
func TestSnapshotInterval(t *testing.T) {
	rec := newRecorder()
	for _, d := range msSamples(10, 20, 30, 40) {
		rec.outcome(OutcomeConfirmed, "", "", d)
	}
	rec.outcome(OutcomeRejected, "", "no", time.Second)
	p := rec.snapshot()
	if p.confirmed != 4 || p.completed != 5 || p.confirmedP50 != 20*time.Millisecond || p.confirmedP99 != 40*time.Millisecond {
		t.Errorf("first snapshot = %+v", p)
	}
	rec.outcome(OutcomeConfirmed, "", "", 5*time.Millisecond)
	p = rec.snapshot()
	if p.confirmed != 5 || p.confirmedP50 != 5*time.Millisecond || p.confirmedP99 != 5*time.Millisecond {
		t.Errorf("second snapshot = %+v", p)
	}
	if p = rec.snapshot(); p.confirmedP50 != 0 {
		t.Errorf("a quiet interval has p50 %v", p.confirmedP50)
	}
}

// A server that puts ids in its messages cannot grow the tallies without end.
func TestRecorderBoundsDistinctKeys(t *testing.T) {
	rec := newRecorder()
	for i := range 3 * maxDistinct {
		rec.fail("op", time.Duration(i).String(), "x")
		rec.outcome(OutcomeRejected, "", time.Duration(i).String(), time.Millisecond)
	}
	if len(rec.errors) > maxDistinct+1 || len(rec.rejections) > maxDistinct+1 {
		t.Errorf("%d error kinds and %d reasons kept", len(rec.errors), len(rec.rejections))
	}
	var total int64
	for _, e := range rec.errors {
		total += e.count
	}
	if total != 3*maxDistinct {
		t.Errorf("errors counted %d, want %d", total, 3*maxDistinct)
	}
}
