package checkout

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

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

// Collectors returns the collectors to register, reading saga counts from s.
func (m *Metrics) Collectors(s *Service) []prometheus.Collector {
	return []prometheus.Collector{m.duration, sagaCounter{s}}
}

type sagaCounter struct{ s *Service }

func (c sagaCounter) Describe(ch chan<- *prometheus.Desc) { ch <- sagasDesc }

func (c sagaCounter) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var rows []struct {
		State string `db:"state"`
		N     int64  `db:"n"`
	}
	// The (state, …) indexes answer this without reading the sagas themselves.
	if err := c.s.db.SelectContext(ctx, &rows, `SELECT state, COUNT(*) AS n FROM sagas GROUP BY state`); err != nil {
		ch <- prometheus.NewInvalidMetric(sagasDesc, err)
		return
	}
	// Every state, present or not, so that a state's series exists from the start.
	counts := map[string]int64{}
	for _, st := range []orders.SagaState{orders.SagaReserving, orders.SagaAuthorizing, orders.SagaCompleting,
		orders.SagaCompensating, orders.SagaCompleted, orders.SagaRejected, orders.SagaCancelled} {
		counts[string(st)] = 0
	}
	for _, r := range rows {
		counts[r.State] = r.N
	}
	for state, n := range counts {
		ch <- prometheus.MustNewConstMetric(sagasDesc, prometheus.GaugeValue, float64(n), state)
	}
}
