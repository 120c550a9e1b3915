package trips

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/agora-commerce/agora/internal/store"
	"github.com/agora-commerce/agora/internal/telemetry"
	"github.com/agora-commerce/agora/modules/rides"
)

var dispatchesDesc = prometheus.NewDesc("agora_rides_dispatches",
	"Dispatch sagas by state, read from the rides database at each scrape.", []string{"state"}, nil)

// Metrics are the rides module's series: dispatches by state, the time from a
// request to a driver engaged, and how long dispatches take to end.
type Metrics struct {
	assigned prometheus.Histogram
	duration *prometheus.HistogramVec
}

// NewMetrics returns the module's metrics. Pass its Assigned and Ended as the
// service's Options, and register its Collectors.
func NewMetrics() *Metrics {
	return &Metrics{
		assigned: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "agora_rides_assignment_seconds",
			Help: "Time from a ride's request to its driver engaged.",
			// Seconds when the first driver accepts at once; minutes after declines.
			Buckets: []float64{.1, .25, .5, 1, 2.5, 5, 10, 15, 30, 60, 120, 300},
		}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "agora_rides_dispatch_duration_seconds",
			Help:    "Time from a ride's request to its dispatch's end, by the state it ended in.",
			Buckets: []float64{1, 5, 15, 30, 60, 300, 900, 1800, 3600, 7200},
		}, []string{"state"}),
	}
}

// Assigned records a driver engaged took after the request.
func (m *Metrics) Assigned(took time.Duration) { m.assigned.Observe(took.Seconds()) }

// Ended records a dispatch that ended in state after took.
func (m *Metrics) Ended(state rides.DispatchState, took time.Duration) {
	m.duration.WithLabelValues(string(state)).Observe(took.Seconds())
}

// Collectors returns the collectors to register, reading dispatch counts from s.
func (m *Metrics) Collectors(s *Service) []prometheus.Collector {
	return []prometheus.Collector{m.assigned, m.duration, telemetry.Counts(dispatchesDesc, dispatchStates,
		func(ctx context.Context) (map[string]int64, error) {
			return store.CountBy(ctx, s.db, "dispatches", "state")
		})}
}

// dispatchStates are every dispatch state, each a series from the start.
var dispatchStates = []string{string(rides.DispatchAuthorizing), string(rides.DispatchOffering),
	string(rides.DispatchEngaging), string(rides.DispatchTrip), string(rides.DispatchSettling),
	string(rides.DispatchCompleted), string(rides.DispatchCancelled), string(rides.DispatchFailed)}
