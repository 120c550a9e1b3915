package chaos

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/agora-commerce/agora/tools/loadgen"
)

// summary is a run's figures, as docs/reliability.md shows them.
type summary struct {
	Store            string             `json:"store"`
	Seconds          float64            `json:"seconds"` // the whole run, start to check
	AskedCheckouts   int                `json:"asked_checkouts"`
	Checkouts        loadgen.Checkouts  `json:"checkouts"`
	Resends          int64              `json:"resends"`
	KillEvents       int                `json:"kill_events"`
	ProcessesKilled  int                `json:"processes_killed"`
	DoubleKills      int                `json:"double_kills"`
	OrdersKills      int                `json:"orders_kills"`
	Outage           string             `json:"broker_outage"`
	PostgresRestarts int                `json:"postgres_restarts"`
	RecoveryP50MS    float64            `json:"recovery_p50_ms"` // kills: ready → every checkout in flight at the kill final
	RecoveryMaxMS    float64            `json:"recovery_max_ms"`
	InFlightAtKill   int                `json:"in_flight_at_kill"` // summed over the kills
	SettledP50MS     float64            `json:"settled_p50_ms"`    // kills: ready → every checkout pending at ready final
	SettledMaxMS     float64            `json:"settled_max_ms"`
	PendingAtReady   int                `json:"pending_at_ready"` // summed over the kills
	Events           []eventFigures     `json:"events"`
	Orders           map[string]int     `json:"orders"`
	Invariants       map[string]int     `json:"invariants"`
	CheckoutLatency  map[string]float64 `json:"checkout_p99_ms"`
}

type eventFigures struct {
	What       string  `json:"what"`
	AtS        float64 `json:"at_s"`
	DownMS     float64 `json:"down_ms"`
	AtFault    int     `json:"in_flight_at_fault"`
	RecoveryMS float64 `json:"recovery_ms"`
	AtReady    int     `json:"pending_at_ready"`
	SettledMS  float64 `json:"settled_ms"`
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func summarize(cfg config, store string, rep loadgen.Report, events []event, res *Result, took time.Duration) summary {
	s := summary{Store: store, Seconds: took.Seconds(), AskedCheckouts: cfg.checkouts, Checkouts: rep.Checkouts, Resends: rep.Resends,
		Outage: cfg.outage.String(), Orders: res.Orders, Invariants: map[string]int{}, CheckoutLatency: map[string]float64{}}
	var recoveries, settles []time.Duration
	for _, e := range events {
		s.Events = append(s.Events, eventFigures{What: e.what, AtS: e.at.Seconds(), DownMS: ms(e.down), AtFault: e.atFault,
			RecoveryMS: ms(e.recovery), AtReady: e.atReady, SettledMS: ms(e.settled)})
		switch {
		case e.kill:
			s.KillEvents++
			s.ProcessesKilled += e.processes
			if e.processes > 1 {
				s.DoubleKills++
			}
			if strings.Contains(e.what, "orders") {
				s.OrdersKills++
			}
			s.InFlightAtKill += e.atFault
			s.PendingAtReady += e.atReady
			recoveries = append(recoveries, e.recovery)
			settles = append(settles, e.settled)
		case strings.HasPrefix(e.what, "PostgreSQL"):
			s.PostgresRestarts++
		}
	}
	s.RecoveryP50MS, s.RecoveryMaxMS = p50max(recoveries)
	s.SettledP50MS, s.SettledMaxMS = p50max(settles)
	for _, inv := range Invariants {
		s.Invariants[inv] = res.Count(inv)
	}
	for status, l := range rep.CheckoutLatency {
		s.CheckoutLatency[status] = l.P99
	}
	return s
}

// p50max is the median (nearest rank) and the largest of ds, in milliseconds.
func p50max(ds []time.Duration) (float64, float64) {
	if len(ds) == 0 {
		return 0, 0
	}
	slices.Sort(ds)
	return ms(ds[(len(ds)-1)/2]), ms(ds[len(ds)-1])
}

func (s summary) text() string {
	var b strings.Builder
	c := s.Checkouts
	fmt.Fprintf(&b, "chaos on %s: %.0f s\n", s.Store, s.Seconds)
	fmt.Fprintf(&b, "checkouts  asked %d, launched %d (dropped %d), confirmed %d, rejected %d, cancelled %d, failed %d, timed out %d; resends %d\n",
		s.AskedCheckouts, c.Launched, c.Dropped, c.Confirmed, c.Rejected, c.Cancelled, c.Failed, c.TimedOut, s.Resends)
	fmt.Fprintf(&b, "chaos      %d kill events (%d processes; %d double, %d of orders), broker outage %s, %d PostgreSQL restarts\n",
		s.KillEvents, s.ProcessesKilled, s.DoubleKills, s.OrdersKills, s.Outage, s.PostgresRestarts)
	fmt.Fprintf(&b, "recovery   after a kill, ready → every checkout in flight at the kill final: p50 %.0f ms, max %.0f ms (%d in flight, summed)\n",
		s.RecoveryP50MS, s.RecoveryMaxMS, s.InFlightAtKill)
	fmt.Fprintf(&b, "           ready → every checkout pending at ready final: p50 %.0f ms, max %.0f ms (%d pending, summed)\n",
		s.SettledP50MS, s.SettledMaxMS, s.PendingAtReady)
	for _, e := range s.Events {
		fmt.Fprintf(&b, "  %6.1fs  %-34s down %7.0f ms  in flight at the fault %3d, final %6.0f ms after ready; pending at ready %3d, %6.0f ms\n",
			e.AtS, e.What, e.DownMS, e.AtFault, e.RecoveryMS, e.AtReady, e.SettledMS)
	}
	fmt.Fprintf(&b, "orders     %v\n", s.Orders)
	for _, inv := range Invariants {
		fmt.Fprintf(&b, "  %-26s %d\n", inv, s.Invariants[inv])
	}
	return b.String()
}

// writeReport appends the run's figures to file, one JSON object a line.
func writeReport(t *testing.T, file, store string, s summary) {
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(file, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(append(b, '\n')); err != nil {
		t.Fatal(err)
	}
}
