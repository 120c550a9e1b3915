package checkout

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/agora-commerce/agora/internal/store"
	"github.com/agora-commerce/agora/internal/telemetry"
	"github.com/agora-commerce/agora/modules/orders"
)

var sagasDesc = prometheus.NewDesc("agora_orders_sagas",
	"Checkout sagas by state, read from the orders database at each scrape.", []string{"state"}, nil)

// Metrics are the orders module's series: sagas by state and how long sagas
// take to end.
type Metrics struct {
	duration *prometheus.HistogramVec
}

// NewMetrics returns the module's metrics. Pass its SagaEnded as
// Options.SagaEnded, and register its Collectors.
func NewMetrics() *Metrics {
	return &Metrics{duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "agora_orders_saga_duration_seconds",
		Help: "Time from checkout to the saga's end, by the state it ended in.",
		// A saga takes milliseconds when every step answers at once, minutes when a
		// step times out and is retried.
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900},
	}, []string{"state"})}
}

// SagaEnded records a saga that ended in state after took.
func (m *Metrics) SagaEnded(state orders.SagaState, took time.Duration) {
	m.duration.WithLabelValues(string(state)).Observe(took.Seconds())
}

// Collectors returns the collectors to register, reading saga counts from s (the
// (state, …) indexes answer them without reading the sagas themselves).
func (m *Metrics) Collectors(s *Service) []prometheus.Collector {
	return []prometheus.Collector{m.duration, telemetry.Counts(sagasDesc, sagaStates,
		func(ctx context.Context) (map[string]int64, error) { return store.CountBy(ctx, s.db, "sagas", "state") })}
}

// sagaStates are every saga state, each a series from the start.
var sagaStates = []string{string(orders.SagaReserving), string(orders.SagaAuthorizing), string(orders.SagaCompleting),
	string(orders.SagaCompensating), string(orders.SagaCompleted), string(orders.SagaRejected), string(orders.SagaCancelled)}
