// Package perf_test holds the benchmark that guards what one checkout costs the
// single binary (issue 17): database commits and server CPU per completed checkout,
// on SQLite and on PostgreSQL. It drives the real binary (`agora serve --demo`)
// with the load generator's library, as tests/perf/percheckout.sh does, and
// reports the generator's server figures as benchmark metrics, so that a change
// that adds commits or CPU to a checkout shows in `go test -bench` output (and in
// benchstat comparisons) rather than in a timed assertion:
//
//	go test -run '^$' -bench Checkout -benchtime 500x ./tests/perf
//
// Each iteration is one checkout launched at 50 per second (an open model: the
// rate, not the machine, sets the pace, so the per-checkout figures compare across
// runs); sign-ins happen before the timed window. PostgreSQL runs in a container
// (testdb), so the Docker engine must be up (tests/images/build.sh); without it
// the PostgreSQL case is skipped.
package perf_test

import (
	"context"
	"io"
	"os"
	"testing"
	"time"

	"github.com/agora-commerce/agora/internal/testdb"
	"github.com/agora-commerce/agora/tests/internal/procs"
	"github.com/agora-commerce/agora/tools/loadgen"
)

func TestMain(m *testing.M) {
	code := testdb.Main(m)
	procs.Cleanup()
	os.Exit(code)
}

// BenchmarkCheckout reports, per completed checkout: commits/checkout (Agora's
// database commits, agora_db_commits_total), pg-commits/checkout (PostgreSQL's
// xact_commit: every transaction it ran, reads outside a transaction included),
// cpu-ms/checkout (the server process's CPU) and msgs/checkout (bus messages
// sent). ns/op is the wall time per checkout at the fixed rate and says little.
func BenchmarkCheckout(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) { benchCheckout(b, "") })
	b.Run("postgres", func(b *testing.B) {
		benchCheckout(b, testdb.FreshDatabase(b, testdb.PostgresURL(b), "bench_"))
	})
}

// rate is the checkouts launched per second: below saturation on two cores, where
// every message is delivered on its own — the case batching does not hide.
const rate = 50

func benchCheckout(b *testing.B, databaseURL string) {
	env := []string{"AGORA_LOG_LEVEL=warn", "AGORA_AUTH_PER_IP_PER_MINUTE=100000", "AGORA_FLEET_DEMO_DRIVERS=0"}
	if databaseURL != "" {
		env = append(env, "AGORA_DATABASE_URL="+databaseURL)
	}
	procs.Binary(b)
	a := procs.StartAgora(b, b.TempDir(), "", env...)
	b.Cleanup(a.Stop)

	cfg := loadgen.DefaultConfig()
	cfg.URLs = []string{a.Base}
	cfg.Rate, cfg.BrowseRate, cfg.Customers, cfg.Seed = rate, 0, 100, 1
	cfg.Duration = max(time.Second, time.Duration(float64(b.N)/rate*float64(time.Second)))
	cfg.DatabaseURL = databaseURL
	ctx, cancel := context.WithTimeout(b.Context(), cfg.Duration+5*time.Minute)
	defer cancel()
	b.ResetTimer()
	rep, err := loadgen.Run(ctx, cfg, io.Discard)
	b.StopTimer()
	if err != nil {
		b.Fatalf("load generator: %v", err)
	}
	s := rep.Server
	switch {
	case s == nil:
		b.Fatal("the load generator read no server figures")
	case rep.Checkouts.Completed == 0 || rep.Checkouts.Failed > 0:
		b.Fatalf("checkouts: %+v", rep.Checkouts)
	}
	b.ReportMetric(s.DBCommitsPerCheckout, "commits/checkout")
	if s.PostgresCommitsPerCheckout != nil {
		b.ReportMetric(*s.PostgresCommitsPerCheckout, "pg-commits/checkout")
	}
	b.ReportMetric(s.CPUMSPerCheckout, "cpu-ms/checkout")
	b.ReportMetric(s.MessagesSentPerCheckout, "msgs/checkout")
}
