package outbox

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Collector returns a Prometheus collector of the outbox's backlog, read from its
// database at each scrape (one aggregate query over a table that delivery keeps
// small), so the figures are those of the database, shared by every replica.
// Its series carry the module as a label.
func (d *DeadLetters) Collector() prometheus.Collector {
	l := prometheus.Labels{"module": d.db.Module}
	return backlogCollector{d: d,
		pending: prometheus.NewDesc("agora_outbox_pending_messages",
			"Messages in the module's outbox waiting for delivery (dead letters excluded).", nil, l),
		oldest: prometheus.NewDesc("agora_outbox_oldest_pending_age_seconds",
			"Age of the oldest message waiting for delivery; 0 when none waits.", nil, l),
		dead: prometheus.NewDesc("agora_outbox_dead_letters",
			"Messages the relay gave up on, parked until an operator redrives them.", nil, l),
	}
}

type backlogCollector struct {
	d                     *DeadLetters
	pending, oldest, dead *prometheus.Desc
}

func (c backlogCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.pending
	ch <- c.oldest
	ch <- c.dead
}

func (c backlogCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	pending, oldest, dead, err := c.d.Backlog(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.pending, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.pending, prometheus.GaugeValue, float64(pending))
	ch <- prometheus.MustNewConstMetric(c.oldest, prometheus.GaugeValue, oldest.Seconds())
	ch <- prometheus.MustNewConstMetric(c.dead, prometheus.GaugeValue, float64(dead))
}
