package site

import (
	"cmp"
	"slices"
	"strings"

	dto "github.com/prometheus/client_model/go"
)

// flowRow is the message flow of one message type through this process, from the
// counters the process keeps for /metrics (package telemetry): requests called
// and durable messages handed on (sent), handled, and failures of either.
type flowRow struct {
	Module, Type, Kind    string
	Sent, Handled, Failed float64
}

// flowSeries maps the counters the console reads to the column they fill.
var flowSeries = map[string]func(*flowRow, float64){
	"agora_bus_messages_sent_total":    func(r *flowRow, v float64) { r.Sent += v },
	"agora_bus_messages_handled_total": func(r *flowRow, v float64) { r.Handled += v },
	"agora_bus_messages_failed_total":  func(r *flowRow, v float64) { r.Failed += v },
	"agora_bus_send_failures_total":    func(r *flowRow, v float64) { r.Failed += v },
}

// flow returns the message flow per module and type, sorted; nil when the
// process keeps no metrics. Metrics are per process: in a split deployment each
// process's console shows what passed through it.
func (s *Site) flow() []flowRow {
	if s.metrics == nil {
		return nil
	}
	families, err := s.metrics.Gather()
	if err != nil {
		s.log.Warn("web: reading metrics for the console", "err", err)
	}
	rows := map[[2]string]*flowRow{}
	for _, f := range families {
		add, ok := flowSeries[f.GetName()]
		if !ok {
			continue
		}
		for _, m := range f.GetMetric() {
			typ, kind := label(m, "type"), label(m, "kind")
			k := [2]string{typ, kind}
			if rows[k] == nil {
				module, _, _ := strings.Cut(typ, ".")
				rows[k] = &flowRow{Module: module, Type: typ, Kind: kind}
			}
			add(rows[k], m.GetCounter().GetValue())
		}
	}
	out := make([]flowRow, 0, len(rows))
	for _, r := range rows {
		out = append(out, *r)
	}
	slices.SortFunc(out, func(a, b flowRow) int {
		return cmp.Or(cmp.Compare(a.Module, b.Module), cmp.Compare(a.Type, b.Type), cmp.Compare(a.Kind, b.Kind))
	})
	return out
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}
