package loadgen

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// The server's metrics the shop scenario reads at the edges of the timed window
// (see internal/telemetry and internal/modhost).
const (
	metricCPU     = "process_cpu_seconds_total"
	metricSent    = "agora_bus_messages_sent_total"    // by kind and type
	metricHandled = "agora_bus_messages_handled_total" // by kind and type
	metricCommits = "agora_db_commits_total"           // by module
	metricTxs     = "agora_db_transactions_committed_total"
)

// settle is how long the window's server reading waits after the drain, so
// that the work a finished checkout left behind (notifications, the relay's
// last deliveries, PostgreSQL's statistics, flushed at most once a second) is in it.
const settle = 2 * time.Second

// serverCounters is one reading of the servers' counters, summed over every base
// URL (each process of a split).
type serverCounters struct {
	cpu       float64
	sent      map[string]float64 // "kind type" → messages
	handled   map[string]float64
	commits   map[string]float64 // module → database commits
	txs       map[string]float64 // module → transactions committed
	pgCommits float64            // pg_stat_database.xact_commit; 0 without a database URL
}

// readServer reads the counters of every base URL's /metrics and, with
// dbURL, PostgreSQL's commits.
func (c *client) readServer(ctx context.Context, token, dbURL string) (serverCounters, error) {
	s := serverCounters{sent: map[string]float64{}, handled: map[string]float64{}, commits: map[string]float64{}, txs: map[string]float64{}}
	for _, u := range slices.Compact(slices.Sorted(slices.Values(c.urls))) {
		if err := c.readMetrics(ctx, u, token, s.add); err != nil {
			return s, fmt.Errorf("read %s/metrics: %w", u, err)
		}
	}
	if dbURL != "" {
		n, err := postgresCommits(ctx, dbURL)
		if err != nil {
			return s, err
		}
		s.pgCommits = n
	}
	return s, nil
}

// add adds one process's counters, in Prometheus's text format, to s.
func (s *serverCounters) add(r io.Reader) error {
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(r)
	if err != nil {
		return fmt.Errorf("read /metrics: %w", err)
	}
	if f := families[metricCPU]; f != nil && len(f.GetMetric()) > 0 {
		m := f.GetMetric()[0]
		s.cpu += m.GetCounter().GetValue() + m.GetGauge().GetValue() // a counter; older client libraries made it a gauge
	}
	for name, into := range map[string]map[string]float64{metricSent: s.sent, metricHandled: s.handled} {
		for _, m := range families[name].GetMetric() {
			into[label(m, "kind")+" "+label(m, "type")] += m.GetCounter().GetValue()
		}
	}
	for name, into := range map[string]map[string]float64{metricCommits: s.commits, metricTxs: s.txs} {
		for _, m := range families[name].GetMetric() {
			into[label(m, "module")] += m.GetCounter().GetValue()
		}
	}
	return nil
}

// postgresCommits reads the commits of the database dbURL names, as PostgreSQL
// counts them: every transaction, a read outside one included (and this query's).
func postgresCommits(ctx context.Context, dbURL string) (float64, error) {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return 0, fmt.Errorf("connect to the database: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var n int64
	err = conn.QueryRow(ctx, `SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()`).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("read pg_stat_database: %w", err)
	}
	return float64(n), nil
}

// ServerReport is what the servers did over the timed window, per completed
// checkout (its JSON names are stable; see the package documentation).
type ServerReport struct {
	Processes                  int                      `json:"processes"`
	Seconds                    float64                  `json:"seconds"`
	Checkouts                  int64                    `json:"checkouts"`
	CPUSeconds                 float64                  `json:"cpu_seconds"`
	CPUMSPerCheckout           float64                  `json:"cpu_ms_per_checkout"`
	DBCommits                  float64                  `json:"db_commits"`
	DBCommitsPerCheckout       float64                  `json:"db_commits_per_checkout"`
	DBTransactions             float64                  `json:"db_transactions"`
	DBTransactionsPerCheckout  float64                  `json:"db_transactions_per_checkout"`
	DBCommitsByModule          map[string]float64       `json:"db_commits_by_module"`
	PostgresCommits            *float64                 `json:"postgres_commits,omitempty"`
	PostgresCommitsPerCheckout *float64                 `json:"postgres_commits_per_checkout,omitempty"`
	MessagesSentPerCheckout    float64                  `json:"messages_sent_per_checkout"`
	BusHopsPerCheckout         float64                  `json:"bus_hops_per_checkout"`
	Messages                   map[string]MessageCounts `json:"messages"`
}

// MessageCounts is one message type's traffic over the window.
type MessageCounts struct {
	Sent               float64 `json:"sent"`
	Handled            float64 `json:"handled"`
	SentPerCheckout    float64 `json:"sent_per_checkout"`
	HandledPerCheckout float64 `json:"handled_per_checkout"`
}

// serverReport is what happened between two readings, per completed checkout.
func serverReport(before, after serverCounters, processes int, took time.Duration, checkouts int64, withPG bool) *ServerReport {
	per := func(v float64) float64 {
		if checkouts == 0 {
			return 0
		}
		return v / float64(checkouts)
	}
	r := &ServerReport{Processes: processes, Seconds: took.Seconds(), Checkouts: checkouts,
		CPUSeconds: after.cpu - before.cpu, DBCommitsByModule: map[string]float64{}, Messages: map[string]MessageCounts{}}
	r.CPUMSPerCheckout = per(r.CPUSeconds * 1000)
	for m, n := range after.commits {
		r.DBCommitsByModule[m] = n - before.commits[m]
		r.DBCommits += n - before.commits[m]
	}
	for m, n := range after.txs {
		r.DBTransactions += n - before.txs[m]
	}
	r.DBCommitsPerCheckout, r.DBTransactionsPerCheckout = per(r.DBCommits), per(r.DBTransactions)
	if withPG {
		n := after.pgCommits - before.pgCommits
		p := per(n)
		r.PostgresCommits, r.PostgresCommitsPerCheckout = &n, &p
	}
	types := maps.Clone(after.sent)
	maps.Copy(types, after.handled)
	var sent, handled float64
	for t := range types {
		mc := MessageCounts{Sent: after.sent[t] - before.sent[t], Handled: after.handled[t] - before.handled[t]}
		if mc.Sent == 0 && mc.Handled == 0 {
			continue
		}
		mc.SentPerCheckout, mc.HandledPerCheckout = per(mc.Sent), per(mc.Handled)
		r.Messages[t] = mc
		sent, handled = sent+mc.Sent, handled+mc.Handled
	}
	r.MessagesSentPerCheckout, r.BusHopsPerCheckout = per(sent), per(handled)
	return r
}
