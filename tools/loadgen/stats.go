package loadgen

import (
	"math"
	"slices"
	"sync"
	"time"
)

// Outcomes of a checkout. The first three are the order's terminal statuses.
const (
	OutcomeConfirmed   = "confirmed"
	OutcomeRejected    = "rejected"
	OutcomeCancelled   = "cancelled"
	OutcomeFailed      = "failed"      // an HTTP failure before a terminal status was seen
	OutcomeTimedOut    = "timed_out"   // no terminal status within OrderTimeout
	OutcomeInterrupted = "interrupted" // the run ended (Ctrl-C or the drain) first
)

// percentile is the nearest-rank p-th percentile (0 < p ≤ 100) of samples sorted
// ascending: the smallest sample with at least p% of the samples at or below it.
// It is 0 for no samples.
func percentile(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	// p*n first: for integer p and n the product is exact, so 99% of 100 is rank 99.
	rank := int(math.Ceil(p * float64(n) / 100))
	rank = min(max(rank, 1), n)
	return sorted[rank-1]
}

// Summary describes a set of latencies.
type Summary struct {
	Count int64
	Mean  time.Duration
	P50   time.Duration
	P90   time.Duration
	P99   time.Duration
	Max   time.Duration
}

// summarize sorts samples in place and describes them.
func summarize(samples []time.Duration) Summary {
	if len(samples) == 0 {
		return Summary{}
	}
	slices.Sort(samples)
	var sum float64
	for _, d := range samples {
		sum += float64(d)
	}
	return Summary{
		Count: int64(len(samples)),
		Mean:  time.Duration(math.Round(sum / float64(len(samples)))),
		P50:   percentile(samples, 50),
		P90:   percentile(samples, 90),
		P99:   percentile(samples, 99),
		Max:   samples[len(samples)-1],
	}
}

// errorKey names a kind of failure: an operation and the HTTP status it got, or
// "transport", "timeout" or "bad_response".
type errorKey struct{ op, status string }

type errorStat struct {
	count   int64
	example string // the first message seen, to tell what went wrong
}

// recorder collects everything a run measures. It is safe for concurrent use.
type recorder struct {
	mu sync.Mutex

	opLatency map[string][]time.Duration // HTTP op → latencies of answered requests
	errors    map[errorKey]*errorStat

	outcomes       map[string]int64
	outcomeLatency map[string][]time.Duration // terminal status → POST-to-terminal latencies
	byToken        map[string]map[string]int64
	rejections     map[string]int64 // rejection reason → count

	launched, dropped, noCustomer int64
	browseLaunched, browseDropped int64
	inFlight                      int64
	priceChanged, restocks        int64
	resends                       int64 // requests sent again after no answer or a 502/503/504

	// The progress interval: confirmed latencies since the last snapshot.
	intervalConfirmed []time.Duration
}

func newRecorder() *recorder {
	return &recorder{
		opLatency:      map[string][]time.Duration{},
		errors:         map[errorKey]*errorStat{},
		outcomes:       map[string]int64{},
		outcomeLatency: map[string][]time.Duration{},
		byToken:        map[string]map[string]int64{},
		rejections:     map[string]int64{},
	}
}

// maxDistinct bounds the keys of free-text tallies (rejection reasons, error
// kinds), so a server that puts ids in its messages cannot grow them without end.
const maxDistinct = 50

func (r *recorder) op(name string, d time.Duration) {
	r.mu.Lock()
	r.opLatency[name] = append(r.opLatency[name], d)
	r.mu.Unlock()
}

func (r *recorder) fail(op, status, message string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := errorKey{op, status}
	e := r.errors[k]
	if e == nil {
		if len(r.errors) >= maxDistinct {
			k = errorKey{"other", "other"}
			if e = r.errors[k]; e == nil {
				e = &errorStat{example: "more kinds of error than the report lists"}
				r.errors[k] = e
			}
		} else {
			e = &errorStat{example: truncate(message, 200)}
			r.errors[k] = e
		}
	}
	e.count++
}

// outcome records how a checkout ended; latency counts for terminal statuses only.
func (r *recorder) outcome(outcome, token, reason string, latency time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.outcomes[outcome]++
	switch outcome {
	case OutcomeConfirmed, OutcomeRejected, OutcomeCancelled:
		r.outcomeLatency[outcome] = append(r.outcomeLatency[outcome], latency)
	}
	if outcome == OutcomeConfirmed {
		r.intervalConfirmed = append(r.intervalConfirmed, latency)
	}
	if outcome == OutcomeRejected || outcome == OutcomeCancelled {
		if _, ok := r.rejections[reason]; ok || len(r.rejections) < maxDistinct {
			r.rejections[reason]++
		} else {
			r.rejections["(other reasons)"]++
		}
	}
	if token != "" {
		m := r.byToken[token]
		if m == nil {
			m = map[string]int64{}
			r.byToken[token] = m
		}
		m[outcome]++
	}
}

func (r *recorder) add(field *int64, n int64) {
	r.mu.Lock()
	*field += n
	r.mu.Unlock()
}

// progress is a snapshot for the progress line.
type progress struct {
	launched, completed, confirmed, errors, inFlight int64
	confirmedP50, confirmedP99                       time.Duration
}

// snapshot returns the running totals and the confirmed latencies of the interval
// since the previous snapshot, and starts a new interval.
func (r *recorder) snapshot() progress {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := progress{
		launched:  r.launched,
		completed: r.outcomes[OutcomeConfirmed] + r.outcomes[OutcomeRejected] + r.outcomes[OutcomeCancelled],
		confirmed: r.outcomes[OutcomeConfirmed],
		inFlight:  r.inFlight,
	}
	for _, e := range r.errors {
		p.errors += e.count
	}
	slices.Sort(r.intervalConfirmed)
	p.confirmedP50 = percentile(r.intervalConfirmed, 50)
	p.confirmedP99 = percentile(r.intervalConfirmed, 99)
	r.intervalConfirmed = r.intervalConfirmed[:0]
	return p
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
