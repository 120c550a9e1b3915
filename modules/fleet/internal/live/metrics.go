package live

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/agora-commerce/agora/modules/fleet"
	"github.com/agora-commerce/agora/modules/fleet/internal/geoindex"
)

// Metrics are fleet's Prometheus metrics: what became of position reports, how
// long a report takes to show in the index, and the drivers by status.
type Metrics struct {
	received     prometheus.Counter
	updates      *prometheus.CounterVec // by outcome
	dropped      prometheus.Counter
	checkpointed prometheus.Counter
	visible      prometheus.Histogram
	drivers      prometheus.Collector
	buffered     prometheus.Collector
}

func newMetrics(idx *geoindex.Index, in *Conflator) *Metrics {
	updates := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "agora_fleet_position_updates_total",
		Help: "Position reports by outcome: received, accepted (queued for the index), conflated (replaced by a newer one " +
			"before the index took it), stale (older than the newest known), ignored (driver offline or outside the area), " +
			"dropped (refused: the ingestion buffer was full).",
	}, []string{"outcome"})
	m := &Metrics{
		updates:      updates,
		received:     updates.WithLabelValues("received"),
		dropped:      updates.WithLabelValues("dropped"),
		checkpointed: prometheus.NewCounter(prometheus.CounterOpts{Name: "agora_fleet_positions_checkpointed_total", Help: "Positions saved by checkpoints."}),
		visible: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "agora_fleet_position_visible_seconds",
			Help:    "Time from a position report's receipt to its position being visible in the geo index.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
		}),
		buffered: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "agora_fleet_ingestion_buffered", Help: "Drivers with a position waiting for the geo index.",
		}, func() float64 { return float64(in.Len()) }),
	}
	for _, o := range []string{"accepted", "conflated", "stale", "ignored"} {
		updates.WithLabelValues(o)
	}
	m.drivers = driversByStatus{idx: idx, desc: prometheus.NewDesc("agora_fleet_drivers",
		"Drivers by status; online drivers not heard from within the stale bound count as stale.", []string{"status"}, nil)}
	return m
}

// count adds a ReportPositions outcome.
func (m *Metrics) count(n fleet.Ingested) {
	m.updates.WithLabelValues("accepted").Add(float64(n.Accepted))
	m.updates.WithLabelValues("conflated").Add(float64(n.Conflated))
	m.updates.WithLabelValues("stale").Add(float64(n.Stale))
	m.updates.WithLabelValues("ignored").Add(float64(n.Ignored))
}

// Collectors returns the collectors to register.
func (m *Metrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.updates, m.checkpointed, m.visible, m.drivers, m.buffered}
}

// driversByStatus counts the index's drivers at scrape time.
type driversByStatus struct {
	idx  *geoindex.Index
	desc *prometheus.Desc
}

func (d driversByStatus) Describe(ch chan<- *prometheus.Desc) { ch <- d.desc }

func (d driversByStatus) Collect(ch chan<- prometheus.Metric) {
	for status, n := range d.idx.Counts() {
		ch <- prometheus.MustNewConstMetric(d.desc, prometheus.GaugeValue, float64(n), status)
	}
}
