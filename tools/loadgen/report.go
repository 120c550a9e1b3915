package loadgen

import (
	"cmp"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is what a run measured. Its JSON field names are stable (see the
// package documentation).
type Report struct {
	Scenario       string   `json:"scenario"`
	URLs           []string `json:"urls"`
	Await          string   `json:"await"`
	TargetRate     float64  `json:"target_rate"`
	BrowseRate     float64  `json:"browse_rate"`
	WindowSeconds  float64  `json:"window_seconds"`
	ElapsedSeconds float64  `json:"elapsed_seconds"`
	Interrupted    bool     `json:"interrupted"`
	Seed           uint64   `json:"seed"`

	Checkouts           Checkouts                   `json:"checkouts"`
	Throughput          Throughput                  `json:"throughput"`
	Browse              Browse                      `json:"browse"`
	ByToken             map[string]map[string]int64 `json:"by_token"`
	RejectionReasons    map[string]int64            `json:"rejection_reasons"`
	CheckoutLatency     map[string]Latency          `json:"checkout_latency_ms"`
	Operations          map[string]Operation        `json:"operations"`
	Errors              []ErrorCount                `json:"errors"`
	ErrorsTotal         int64                       `json:"errors_total"`
	PriceChangedRetries int64                       `json:"price_changed_retries"`
	Restocks            int64                       `json:"restocks"`
	Resends             int64                       `json:"resends"`

	// Server is what the servers did over the shop scenario's window, per
	// checkout; absent when their /metrics could not be read.
	Server *ServerReport `json:"server,omitempty"`

	// Rides is the rides scenario's report; absent in the shop scenario.
	Rides *RidesReport `json:"rides,omitempty"`
}

// Checkouts counts checkouts by how they ended. Completed is Confirmed + Rejected
// + Cancelled; Launched = Completed + Failed + TimedOut + Interrupted.
type Checkouts struct {
	Launched          int64 `json:"launched"`
	Dropped           int64 `json:"dropped"`
	DroppedNoCustomer int64 `json:"dropped_no_customer"`
	Completed         int64 `json:"completed"`
	Confirmed         int64 `json:"confirmed"`
	Rejected          int64 `json:"rejected"`
	Cancelled         int64 `json:"cancelled"`
	Failed            int64 `json:"failed"`
	TimedOut          int64 `json:"timed_out"`
	Interrupted       int64 `json:"interrupted"`
}

// Throughput is per second of the timed window.
type Throughput struct {
	LaunchedPerSecond  float64 `json:"launched_per_second"`
	CompletedPerSecond float64 `json:"completed_per_second"`
	ConfirmedPerSecond float64 `json:"confirmed_per_second"`
}

// Browse counts the catalog traffic sent alongside checkouts.
type Browse struct {
	Launched int64 `json:"launched"`
	Dropped  int64 `json:"dropped"`
}

// Latency summarises latencies in milliseconds.
type Latency struct {
	Count int64   `json:"count"`
	Mean  float64 `json:"mean"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	Max   float64 `json:"max"`
}

// Operation is one kind of HTTP request: how many got an answer, how many failed
// (an unexpected status or no answer), and the latency of the answered ones.
type Operation struct {
	Requests  int64   `json:"requests"`
	Errors    int64   `json:"errors"`
	LatencyMS Latency `json:"latency_ms"`
}

// ErrorCount is one kind of failure: an operation and the status it got ("503",
// or "transport", "timeout", "bad_response"), how often, and the first message.
type ErrorCount struct {
	Operation string `json:"operation"`
	Status    string `json:"status"`
	Count     int64  `json:"count"`
	Example   string `json:"example"`
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func latencyOf(s Summary) Latency {
	return Latency{Count: s.Count, Mean: ms(s.Mean), P50: ms(s.P50), P90: ms(s.P90), P99: ms(s.P99), Max: ms(s.Max)}
}

// report turns what r collected into a Report; window and elapsed are the timed
// window and the whole run after warm-up.
func (r *recorder) report(cfg Config, window, elapsed time.Duration, interrupted bool) Report {
	r.mu.Lock()
	defer r.mu.Unlock()
	o := r.outcomes
	rep := Report{
		Scenario: cfg.Scenario, URLs: cfg.URLs, Await: cfg.Await, TargetRate: cfg.Rate, BrowseRate: cfg.BrowseRate,
		WindowSeconds: window.Seconds(), ElapsedSeconds: elapsed.Seconds(), Interrupted: interrupted, Seed: cfg.Seed,
		Checkouts: Checkouts{
			Launched: r.launched, Dropped: r.dropped, DroppedNoCustomer: r.noCustomer,
			Completed: o[OutcomeConfirmed] + o[OutcomeRejected] + o[OutcomeCancelled],
			Confirmed: o[OutcomeConfirmed], Rejected: o[OutcomeRejected], Cancelled: o[OutcomeCancelled],
			Failed: o[OutcomeFailed], TimedOut: o[OutcomeTimedOut], Interrupted: o[OutcomeInterrupted],
		},
		Browse:              Browse{Launched: r.browseLaunched, Dropped: r.browseDropped},
		ByToken:             map[string]map[string]int64{},
		RejectionReasons:    maps.Clone(r.rejections),
		CheckoutLatency:     map[string]Latency{},
		Operations:          map[string]Operation{},
		Errors:              []ErrorCount{},
		PriceChangedRetries: r.priceChanged,
		Restocks:            r.restocks,
		Resends:             r.resends,
	}
	if secs := window.Seconds(); secs > 0 {
		rep.Throughput = Throughput{
			LaunchedPerSecond:  float64(rep.Checkouts.Launched) / secs,
			CompletedPerSecond: float64(rep.Checkouts.Completed) / secs,
			ConfirmedPerSecond: float64(rep.Checkouts.Confirmed) / secs,
		}
	}
	for t, m := range r.byToken {
		rep.ByToken[t] = maps.Clone(m)
	}
	for status, samples := range r.outcomeLatency {
		rep.CheckoutLatency[status] = latencyOf(summarize(samples))
	}
	for op, samples := range r.opLatency {
		rep.Operations[op] = Operation{Requests: int64(len(samples)), LatencyMS: latencyOf(summarize(samples))}
	}
	for k, e := range r.errors {
		rep.Errors = append(rep.Errors, ErrorCount{Operation: k.op, Status: k.status, Count: e.count, Example: e.example})
		op := rep.Operations[k.op]
		op.Errors += e.count
		rep.Operations[k.op] = op
		rep.ErrorsTotal += e.count
	}
	slices.SortFunc(rep.Errors, func(a, b ErrorCount) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Operation, b.Operation), cmp.Compare(a.Status, b.Status))
	})
	return rep
}

// WriteText writes the report for a person to read.
func (rep Report) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "agora loadgen --scenario %s against %s (await %s, seed %d)\n", rep.Scenario, strings.Join(rep.URLs, ", "), rep.Await, rep.Seed)
	window := time.Duration(rep.WindowSeconds * float64(time.Second)).Round(time.Millisecond)
	elapsed := time.Duration(rep.ElapsedSeconds * float64(time.Second)).Round(time.Millisecond)
	fmt.Fprintf(&b, "window      %s (%s with the drain)", window, elapsed)
	if rep.Interrupted {
		b.WriteString(", interrupted")
	}
	b.WriteString("\n")
	if rep.Rides != nil {
		writeRidesText(&b, rep.Rides)
	} else {
		rep.writeShopText(&b)
	}
	fmt.Fprintf(&b, "errors      %d\n", rep.ErrorsTotal)
	for _, e := range rep.Errors {
		fmt.Fprintf(&b, "  %6d  %s %s: %s\n", e.Count, e.Operation, e.Status, e.Example)
	}
	if err := rep.writeLatencies(&b); err != nil {
		return err
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// writeShopText writes the shop scenario's counts.
func (rep Report) writeShopText(b *strings.Builder) {
	c, t := rep.Checkouts, rep.Throughput
	fmt.Fprintf(b, "checkouts   target %.1f/s, launched %d (%.1f/s), dropped %d (%d for want of a free customer)\n",
		rep.TargetRate, c.Launched, t.LaunchedPerSecond, c.Dropped, c.DroppedNoCustomer)
	fmt.Fprintf(b, "throughput  completed %.1f/s, confirmed %.1f/s\n", t.CompletedPerSecond, t.ConfirmedPerSecond)
	fmt.Fprintf(b, "outcomes    confirmed %d, rejected %d, cancelled %d, failed %d, timed out %d, interrupted %d\n",
		c.Confirmed, c.Rejected, c.Cancelled, c.Failed, c.TimedOut, c.Interrupted)
	fmt.Fprintf(b, "browse      target %.1f/s, launched %d, dropped %d\n", rep.BrowseRate, rep.Browse.Launched, rep.Browse.Dropped)
	fmt.Fprintf(b, "other       price-changed retries %d, restocks %d, resends %d\n", rep.PriceChangedRetries, rep.Restocks, rep.Resends)
	if len(rep.ByToken) > 0 {
		b.WriteString("by token\n")
		for _, tok := range slices.Sorted(maps.Keys(rep.ByToken)) {
			fmt.Fprintf(b, "  %-26s %s\n", tok, tally(rep.ByToken[tok]))
		}
	}
	if len(rep.RejectionReasons) > 0 {
		b.WriteString("rejection reasons\n")
		for _, kv := range byCount(rep.RejectionReasons) {
			fmt.Fprintf(b, "  %6d  %s\n", kv.n, kv.k)
		}
	}
	if s := rep.Server; s != nil {
		fmt.Fprintf(b, "per checkout  %.2f CPU-ms, %.1f commits (%.1f transactions), %.1f messages sent, %.1f bus hops (%d processes, %d checkouts, %.1f s)\n",
			s.CPUMSPerCheckout, s.DBCommitsPerCheckout, s.DBTransactionsPerCheckout, s.MessagesSentPerCheckout, s.BusHopsPerCheckout,
			s.Processes, s.Checkouts, s.Seconds)
		if s.PostgresCommitsPerCheckout != nil {
			fmt.Fprintf(b, "              %.1f PostgreSQL commits (pg_stat_database.xact_commit)\n", *s.PostgresCommitsPerCheckout)
		}
	}
}

// writeLatencies writes the table of latencies: the flows' ends, then every operation.
func (rep Report) writeLatencies(b *strings.Builder) error {
	b.WriteString("\nlatency (ms)\n")
	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\tcount\terrors\tmean\tp50\tp90\tp99\tmax\t")
	row := func(name string, l Latency, errs string) {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t\n", name, l.Count, errs, l.Mean, l.P50, l.P90, l.P99, l.Max)
	}
	for _, s := range []string{OutcomeConfirmed, OutcomeRejected, OutcomeCancelled} {
		if l, ok := rep.CheckoutLatency[s]; ok {
			row("POST→"+s, l, "")
		}
	}
	if r := rep.Rides; r != nil {
		row("request→assigned", r.Dispatch.RequestToAssigned, "")
		row("assigned (server)", r.Dispatch.AssignedServer, "")
		row("request→completed", r.Dispatch.RequestToCompleted, "")
	}
	for _, op := range slices.Sorted(maps.Keys(rep.Operations)) {
		o := rep.Operations[op]
		row(op, o.LatencyMS, fmt.Sprint(o.Errors))
	}
	return tw.Flush()
}

type kv struct {
	k string
	n int64
}

func byCount(m map[string]int64) []kv {
	out := make([]kv, 0, len(m))
	for k, n := range m {
		out = append(out, kv{k, n})
	}
	slices.SortFunc(out, func(a, b kv) int { return cmp.Or(cmp.Compare(b.n, a.n), cmp.Compare(a.k, b.k)) })
	return out
}

func tally(m map[string]int64) string {
	parts := []string{}
	for _, kv := range byCount(m) {
		parts = append(parts, fmt.Sprintf("%s %d", kv.k, kv.n))
	}
	return strings.Join(parts, ", ")
}
