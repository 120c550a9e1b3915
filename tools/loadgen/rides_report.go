package loadgen

import (
	"fmt"
	"maps"
	"math"
	"strings"
	"sync"
	"time"
)

// Final statuses of a ride (the rides contract's).
const (
	RideCompleted = "completed"
	RideCancelled = "cancelled"
)

// RidesReport is what the rides scenario measured, phase by phase.
type RidesReport struct {
	Ingest   IngestReport   `json:"ingest"`
	Dispatch DispatchReport `json:"dispatch"`
}

// IngestReport is the ingest phase: positions of fleet-operated drivers posted in
// batches as the admin. Sent = Accepted + Conflated + Stale + Ignored + Refused +
// Failed; Dropped and DroppedBackoff were never sent.
type IngestReport struct {
	Drivers           int          `json:"drivers"`
	TargetRate        float64      `json:"target_rate"`
	WindowSeconds     float64      `json:"window_seconds"`
	OnlineFailed      int64        `json:"online_failed"`
	Batches           int64        `json:"batches"`
	Sent              int64        `json:"sent"`
	Accepted          int64        `json:"accepted"`
	Conflated         int64        `json:"conflated"`
	Stale             int64        `json:"stale"`
	Ignored           int64        `json:"ignored"`
	Refused           int64        `json:"refused"`
	RefusedBatches    int64        `json:"refused_batches"`
	Failed            int64        `json:"failed"`
	Dropped           int64        `json:"dropped"`
	DroppedBackoff    int64        `json:"dropped_backoff"`
	SentPerSecond     float64      `json:"sent_per_second"`
	AcceptedPerSecond float64      `json:"accepted_per_second"`
	Server            *ServerFleet `json:"server,omitempty"`
}

// ServerFleet is what the server's /metrics said of the ingest window: fleet's
// counters and update-to-visible histogram over the window (differences of
// scrapes before and after it), and the process's memory.
type ServerFleet struct {
	Received     int64 `json:"received"`
	Accepted     int64 `json:"accepted"`
	Conflated    int64 `json:"conflated"`
	Stale        int64 `json:"stale"`
	Ignored      int64 `json:"ignored"`
	Dropped      int64 `json:"dropped"`
	VisibleCount int64 `json:"visible_count"`
	// VisibleP50MS and VisibleP99MS are bucket upper bounds: the quantile is at most
	// this. Absent when there were no observations or the quantile lies beyond the
	// largest finite bucket.
	VisibleP50MS *float64 `json:"visible_p50_ms,omitempty"`
	VisibleP99MS *float64 `json:"visible_p99_ms,omitempty"`
	RSSBytes     int64    `json:"rss_bytes"`
	RSSMaxBytes  int64    `json:"rss_max_bytes"`
}

// DispatchReport is the dispatch phase: rides requested by riders and served by
// driver apps. Launched = Completed + Cancelled + Failed + TimedOut + Interrupted.
type DispatchReport struct {
	TargetRate         float64          `json:"target_rate"`
	WindowSeconds      float64          `json:"window_seconds"`
	Drivers            int              `json:"drivers"`
	Riders             int              `json:"riders"`
	Launched           int64            `json:"launched"`
	Dropped            int64            `json:"dropped"`
	Completed          int64            `json:"completed"`
	Cancelled          int64            `json:"cancelled"`
	Failed             int64            `json:"failed"`
	TimedOut           int64            `json:"timed_out"`
	Interrupted        int64            `json:"interrupted"`
	CancelReasons      map[string]int64 `json:"cancel_reasons"`
	LaunchedPerSecond  float64          `json:"launched_per_second"`
	CompletedPerSecond float64          `json:"completed_per_second"`
	OffersReceived     int64            `json:"offers_received"`
	OffersAccepted     int64            `json:"offers_accepted"`
	RequestToAssigned  Latency          `json:"request_to_assigned_ms"`
	AssignedServer     Latency          `json:"assigned_server_ms"`
	RequestToCompleted Latency          `json:"request_to_completed_ms"`
}

// rideTally collects the dispatch phase. It is safe for concurrent use.
type rideTally struct {
	mu                               sync.Mutex
	launched, dropped                int64
	offersReceived, offersAccepted   int64
	outcomes                         map[string]int64
	reasons                          map[string]int64
	toAssigned, serverAssigned, done []time.Duration
}

func (t *rideTally) add(field *int64, n int64) {
	t.mu.Lock()
	*field += n
	t.mu.Unlock()
}

// assigned records a ride first seen with a driver, latency after its request
// was sent; the server's own created→assigned time too, when the ride has both.
func (t *rideTally) assigned(latency time.Duration, v rideView) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.toAssigned = append(t.toAssigned, latency)
	if !v.CreatedAt.IsZero() && !v.AssignedAt.IsZero() {
		t.serverAssigned = append(t.serverAssigned, v.AssignedAt.Sub(v.CreatedAt))
	}
}

// end records how a ride ended: a final status (then v is the final ride and
// sentAt when its request was sent) or an outcome of the generator's.
func (t *rideTally) end(outcome string, v rideView, sentAt time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.outcomes == nil {
		t.outcomes, t.reasons = map[string]int64{}, map[string]int64{}
	}
	t.outcomes[outcome]++
	switch outcome {
	case RideCompleted:
		t.done = append(t.done, time.Since(sentAt))
	case RideCancelled:
		if _, ok := t.reasons[v.Reason]; ok || len(t.reasons) < maxDistinct {
			t.reasons[v.Reason]++
		} else {
			t.reasons["(other reasons)"]++
		}
	}
}

// report summarises the tally over a window of the given length.
func (t *rideTally) report(cfg RidesConfig, window time.Duration, drivers, riders int) DispatchReport {
	t.mu.Lock()
	defer t.mu.Unlock()
	o := t.outcomes
	d := DispatchReport{
		TargetRate: cfg.RideRate, WindowSeconds: window.Seconds(), Drivers: drivers, Riders: riders,
		Launched: t.launched, Dropped: t.dropped,
		Completed: o[RideCompleted], Cancelled: o[RideCancelled], Failed: o[OutcomeFailed],
		TimedOut: o[OutcomeTimedOut], Interrupted: o[OutcomeInterrupted],
		CancelReasons:  maps.Clone(t.reasons),
		OffersReceived: t.offersReceived, OffersAccepted: t.offersAccepted,
		RequestToAssigned:  latencyOf(summarize(t.toAssigned)),
		AssignedServer:     latencyOf(summarize(t.serverAssigned)),
		RequestToCompleted: latencyOf(summarize(t.done)),
	}
	if d.CancelReasons == nil {
		d.CancelReasons = map[string]int64{}
	}
	if s := window.Seconds(); s > 0 {
		d.LaunchedPerSecond, d.CompletedPerSecond = float64(d.Launched)/s, float64(d.Completed)/s
	}
	return d
}

// ingestReport summarises the ingest phase; m is the server's metrics over the
// window (nil when /metrics could not be read) and rssMax the largest RSS seen.
func ingestReport(cfg RidesConfig, n *ingestion, onlineFailed int64, window time.Duration, m *fleetMetrics, rssMax float64) IngestReport {
	r := IngestReport{
		Drivers: cfg.Drivers, TargetRate: cfg.PositionRate, WindowSeconds: window.Seconds(), OnlineFailed: onlineFailed,
		Batches: n.batches.Load(), Sent: n.sent.Load(), Accepted: n.accepted.Load(), Conflated: n.conflated.Load(),
		Stale: n.stale.Load(), Ignored: n.ignored.Load(), Refused: n.refused.Load(), RefusedBatches: n.refusedBatches.Load(),
		Failed: n.failed.Load(), Dropped: n.droppedNoSlot.Load(), DroppedBackoff: n.droppedBackoff.Load(),
	}
	if s := window.Seconds(); s > 0 {
		r.SentPerSecond, r.AcceptedPerSecond = float64(r.Sent)/s, float64(r.Accepted)/s
	}
	if m != nil {
		u := m.updates
		r.Server = &ServerFleet{
			Received: int64(u["received"]), Accepted: int64(u["accepted"]), Conflated: int64(u["conflated"]),
			Stale: int64(u["stale"]), Ignored: int64(u["ignored"]), Dropped: int64(u["dropped"]),
			VisibleP50MS: quantileMS(m.visible, 0.5), VisibleP99MS: quantileMS(m.visible, 0.99),
			RSSBytes: int64(m.rss), RSSMaxBytes: int64(max(rssMax, m.rss)),
		}
		if len(m.visible) > 0 {
			r.Server.VisibleCount = int64(m.visible[len(m.visible)-1].count)
		}
	}
	return r
}

// quantileMS is bucketQuantile in milliseconds, nil when it is not a number.
func quantileMS(b []bucket, q float64) *float64 {
	v := bucketQuantile(b, q)
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	v *= 1000
	return &v
}

// writeRidesText writes the rides section of the text report.
func writeRidesText(b *strings.Builder, r *RidesReport) {
	in := r.Ingest
	fmt.Fprintf(b, "ingest      %d drivers, target %.0f updates/s for %.1fs: sent %d (%.0f/s), accepted %d (%.0f/s)\n",
		in.Drivers, in.TargetRate, in.WindowSeconds, in.Sent, in.SentPerSecond, in.Accepted, in.AcceptedPerSecond)
	fmt.Fprintf(b, "            conflated %d, stale %d, ignored %d, refused (429) %d in %d batches, failed %d, "+
		"not sent: %d (no free slot) + %d (waiting out Retry-After); going online failed for %d\n",
		in.Conflated, in.Stale, in.Ignored, in.Refused, in.RefusedBatches, in.Failed, in.Dropped, in.DroppedBackoff, in.OnlineFailed)
	if s := in.Server; s != nil {
		fmt.Fprintf(b, "server      received %d, accepted %d, conflated %d, stale %d, ignored %d, dropped %d\n",
			s.Received, s.Accepted, s.Conflated, s.Stale, s.Ignored, s.Dropped)
		fmt.Fprintf(b, "            update→visible p50 ≤ %s, p99 ≤ %s (%d observations); RSS %.1f MB (max %.1f MB)\n",
			optMS(s.VisibleP50MS), optMS(s.VisibleP99MS), s.VisibleCount, float64(s.RSSBytes)/1e6, float64(s.RSSMaxBytes)/1e6)
	} else {
		b.WriteString("server      /metrics could not be read\n")
	}
	d := r.Dispatch
	fmt.Fprintf(b, "dispatch    %d drivers, %d riders, target %.1f rides/s for %.1fs: launched %d (%.1f/s), dropped %d (no free rider)\n",
		d.Drivers, d.Riders, d.TargetRate, d.WindowSeconds, d.Launched, d.LaunchedPerSecond, d.Dropped)
	fmt.Fprintf(b, "rides       completed %d (%.1f/s), cancelled %d, failed %d, timed out %d, interrupted %d; offers received %d, accepted %d\n",
		d.Completed, d.CompletedPerSecond, d.Cancelled, d.Failed, d.TimedOut, d.Interrupted, d.OffersReceived, d.OffersAccepted)
	for _, kv := range byCount(d.CancelReasons) {
		fmt.Fprintf(b, "  %6d  cancelled: %s\n", kv.n, kv.k)
	}
}

func optMS(v *float64) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprintf("%gms", *v)
}
