package telemetry

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// countTimeout bounds a scrape's read of the counts.
const countTimeout = 2 * time.Second

// Counts returns a collector of desc, a gauge with one label (such as sagas by
// state), read at each scrape: read, given up to two seconds, returns the count of
// each label value (store.CountBy reads them from a table).
// Every label in labels is reported, 0 when read did not return it, so that its
// series exists from the start; labels read returns beyond them are reported too.
// When read fails, the scrape reports desc as invalid with its error.
func Counts(desc *prometheus.Desc, labels []string, read func(ctx context.Context) (map[string]int64, error)) prometheus.Collector {
	return counts{desc: desc, labels: labels, read: read}
}

type counts struct {
	desc   *prometheus.Desc
	labels []string
	read   func(ctx context.Context) (map[string]int64, error)
}

func (c counts) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c counts) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), countTimeout)
	defer cancel()
	read, err := c.read(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.desc, err)
		return
	}
	for _, l := range c.labels {
		if _, ok := read[l]; !ok {
			ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, 0, l)
		}
	}
	for l, n := range read {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n), l)
	}
}
