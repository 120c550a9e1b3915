package loadgen

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func countersOf(t *testing.T, texts ...string) serverCounters {
	t.Helper()
	s := serverCounters{sent: map[string]float64{}, handled: map[string]float64{}, commits: map[string]float64{}, txs: map[string]float64{}}
	for _, text := range texts {
		if err := s.add(strings.NewReader(text)); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// The server figures are the counters' growth between two readings, summed over
// the processes and divided by the completed checkouts.
func TestServerReport(t *testing.T) {
	const proc = `# TYPE process_cpu_seconds_total counter
process_cpu_seconds_total %s
# TYPE agora_bus_messages_sent_total counter
agora_bus_messages_sent_total{kind="event",type="orders.OrderPlaced"} %s
agora_bus_messages_sent_total{kind="request",type="catalog.GetProduct"} %s
# TYPE agora_bus_messages_handled_total counter
agora_bus_messages_handled_total{kind="event",type="orders.OrderPlaced"} %s
# TYPE agora_db_commits_total counter
agora_db_commits_total{module="orders"} %s
# TYPE agora_db_transactions_committed_total counter
agora_db_transactions_committed_total{module="orders"} %s
`
	fill := func(v ...string) string {
		out := proc
		for _, x := range v {
			out = strings.Replace(out, "%s", x, 1)
		}
		return out
	}
	other := "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total 1\n" +
		"# TYPE agora_db_commits_total counter\nagora_db_commits_total{module=\"payments\"} 5\n"
	before := countersOf(t, fill("10", "0", "7", "0", "100", "100"), other)
	after := countersOf(t, fill("12", "4", "7", "8", "120", "140"),
		strings.Replace(strings.Replace(other, " 1\n", " 3\n", 1), "} 5", "} 25", 1))
	before.pgCommits, after.pgCommits = 1000, 1200

	got := serverReport(before, after, 2, 5*time.Second, 4, true)
	pg, pgPer := 200.0, 50.0
	want := &ServerReport{
		Processes: 2, Seconds: 5, Checkouts: 4,
		CPUSeconds: 4, CPUMSPerCheckout: 1000,
		DBCommits: 40, DBCommitsPerCheckout: 10, DBTransactions: 40, DBTransactionsPerCheckout: 10,
		DBCommitsByModule: map[string]float64{"orders": 20, "payments": 20},
		PostgresCommits:   &pg, PostgresCommitsPerCheckout: &pgPer,
		MessagesSentPerCheckout: 1, BusHopsPerCheckout: 2,
		Messages: map[string]MessageCounts{ // catalog.GetProduct did not move: absent
			"event orders.OrderPlaced": {Sent: 4, Handled: 8, SentPerCheckout: 1, HandledPerCheckout: 2},
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("serverReport (-want +got):\n%s", diff)
	}
	if r := serverReport(before, after, 2, time.Second, 0, false); r.CPUMSPerCheckout != 0 || r.PostgresCommits != nil {
		t.Errorf("no checkout: %+v; want zero ratios and no PostgreSQL figures", r)
	}
}
