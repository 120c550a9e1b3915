package telemetry

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// countTimeout bounds a scrape's read of the counts.
const countTimeout = 2 * time.Second

// Count is one series of a Counts gauge: a label value and its count. Its db tags
// let a query select into it: SELECT state AS label, COUNT(*) AS n … GROUP BY state.
type Count struct {
	Label string `db:"label"`
	N     int64  `db:"n"`
}

// Counts returns a collector of desc, a gauge with one label (such as sagas by
// state), read at each scrape: read, given up to two seconds, returns the counts.
// Every label in labels is reported, 0 when read did not return it, so that its
// series exists from the start; labels read returns beyond them are reported too.
// When read fails, the scrape reports desc as invalid with its error.
func Counts(desc *prometheus.Desc, labels []string, read func(ctx context.Context) ([]Count, error)) prometheus.Collector {
	return counts{desc: desc, labels: labels, read: read}
}

type counts struct {
	desc   *prometheus.Desc
	labels []string
	read   func(ctx context.Context) ([]Count, error)
}

func (c counts) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c counts) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), countTimeout)
	defer cancel()
	rows, err := c.read(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.desc, err)
		return
	}
	n := make(map[string]int64, len(c.labels))
	for _, l := range c.labels {
		n[l] = 0
	}
	for _, r := range rows {
		n[r.Label] = r.N
	}
	for label, v := range n {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(v), label)
	}
}
