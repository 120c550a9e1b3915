package loadgen

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// The server's metrics the rides scenario reads (see modules/fleet/internal/live).
const (
	metricUpdates = "agora_fleet_position_updates_total"   // counter by outcome
	metricVisible = "agora_fleet_position_visible_seconds" // histogram
	metricRSS     = "process_resident_memory_bytes"        // gauge
)

// fleetMetrics is what one scrape of /metrics tells of fleet's ingestion.
type fleetMetrics struct {
	updates map[string]float64 // outcome → reports
	visible []bucket           // cumulative, ascending bounds; the last is +Inf
	rss     float64            // bytes
}

// bucket is a cumulative histogram bucket: count observations ≤ le.
type bucket struct {
	le    float64
	count float64
}

// scrapeMetrics reads fleet's metrics from the first base URL.
func (c *client) scrapeMetrics(ctx context.Context, token string) (fleetMetrics, error) {
	var m fleetMetrics
	err := c.readMetrics(ctx, c.urls[0], token, func(r io.Reader) (err error) {
		m, err = parseFleetMetrics(r)
		return err
	})
	return m, err
}

// readMetrics reads base's /metrics (with token as its bearer token, when set)
// and hands the body, in Prometheus's text format, to parse.
func (c *client) readMetrics(ctx context.Context, base, token string, parse func(io.Reader) error) error {
	rctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, base+"/metrics", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/plain")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		return problemOf(resp, body)
	}
	return parse(resp.Body)
}

// parseFleetMetrics reads fleet's metrics from Prometheus's text format.
func parseFleetMetrics(r io.Reader) (fleetMetrics, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(r)
	if err != nil {
		return fleetMetrics{}, fmt.Errorf("read /metrics: %w", err)
	}
	m := fleetMetrics{updates: map[string]float64{}}
	if f := families[metricUpdates]; f != nil {
		for _, s := range f.GetMetric() {
			m.updates[label(s, "outcome")] += s.GetCounter().GetValue()
		}
	}
	if f := families[metricVisible]; f != nil && len(f.GetMetric()) > 0 {
		h := f.GetMetric()[0].GetHistogram()
		for _, b := range h.GetBucket() {
			m.visible = append(m.visible, bucket{le: b.GetUpperBound(), count: float64(b.GetCumulativeCount())})
		}
		if n := len(m.visible); n == 0 || !math.IsInf(m.visible[n-1].le, 1) {
			m.visible = append(m.visible, bucket{le: math.Inf(1), count: float64(h.GetSampleCount())})
		}
	}
	if f := families[metricRSS]; f != nil && len(f.GetMetric()) > 0 {
		m.rss = f.GetMetric()[0].GetGauge().GetValue()
	}
	return m, nil
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// since is what happened between an earlier scrape and m: counters and buckets
// minus the earlier ones (the server's counters only grow while it runs).
func (m fleetMetrics) since(before fleetMetrics) fleetMetrics {
	d := fleetMetrics{updates: map[string]float64{}, rss: m.rss}
	for k, v := range m.updates {
		d.updates[k] = v - before.updates[k]
	}
	for i, b := range m.visible {
		if i < len(before.visible) && before.visible[i].le == b.le {
			b.count -= before.visible[i].count
		}
		d.visible = append(d.visible, b)
	}
	return d
}

// bucketQuantile is the upper bound of the first bucket holding at least q (0 < q ≤ 1)
// of the observations: the quantile is at most this. It is +Inf when the
// quantile lies beyond the last finite bound, and NaN without observations.
func bucketQuantile(buckets []bucket, q float64) float64 {
	if len(buckets) == 0 || buckets[len(buckets)-1].count == 0 {
		return math.NaN()
	}
	total := buckets[len(buckets)-1].count
	i := slices.IndexFunc(buckets, func(b bucket) bool { return b.count >= q*total })
	return buckets[max(i, 0)].le
}
