package live

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/modhost"
	"github.com/agora-commerce/agora/internal/store"
	"github.com/agora-commerce/agora/internal/testdb"
	"github.com/agora-commerce/agora/modules/fleet"
	"github.com/agora-commerce/agora/modules/fleet/internal/geoindex"
)

// BenchmarkReportPositions is ingestion through fleet.ReportPositions over the
// in-process bus, with the loop that applies positions to the index running:
// batches of 1000 positions of 10,000 online drivers, as fast as they are taken.
// updates/s is positions ingested per second of wall time; every batch must be
// taken (none saturated). p50/p99-visible-ms bound the percentiles of the time
// from a report's receipt to its position being in the index (the upper bounds
// of their histogram buckets).
//
//	go test ./modules/fleet/internal/live -run '^$' -bench ReportPositions -benchtime 2000x
func BenchmarkReportPositions(b *testing.B) { benchIngest(b, 0) }

// BenchmarkReportPositionsPaced is the same at a steady 50,000 updates a second
// (a batch every 20ms): the update-to-visible latency at the target rate.
//
//	go test ./modules/fleet/internal/live -run '^$' -bench ReportPositionsPaced -benchtime 250x
func BenchmarkReportPositionsPaced(b *testing.B) { benchIngest(b, 20*time.Millisecond) }

const benchDrivers = 10_000

// benchIngest sends batches of 1000 positions, one every pace (0: back to back).
func benchIngest(b *testing.B, pace time.Duration) {
	s, bb, ids := benchService(b)
	r := rand.New(rand.NewPCG(1, 2))
	q := fleet.ReportPositions{Positions: make([]fleet.Position, fleet.MaxBatch)}
	now := time.Now().UTC()
	b.ResetTimer()
	start := time.Now()
	for i := 0; b.Loop(); i++ {
		at := now.Add(time.Duration(i+1) * time.Millisecond)
		for j := range q.Positions {
			q.Positions[j] = fleet.Position{DriverID: ids[r.IntN(benchDrivers)], Point: fleet.Point{Lat: 52.47 + r.Float64()*0.1, Lng: 13.33 + r.Float64()*0.15}, At: at}
		}
		if _, err := bus.Call(b.Context(), bb, fleet.ReportPositionsRequest, q); err != nil {
			b.Fatalf("batch %d: %v", i, err)
		}
		if pace > 0 {
			time.Sleep(time.Until(start.Add(time.Duration(i+1) * pace)))
		}
	}
	b.StopTimer()
	s.ApplyPending()
	b.ReportMetric(float64(b.N*fleet.MaxBatch)/time.Since(start).Seconds(), "updates/s")
	b.ReportMetric(s.visibleQuantile(0.5)*1000, "p50-visible-ms")
	b.ReportMetric(s.visibleQuantile(0.99)*1000, "p99-visible-ms")
}

// benchService returns a started service with benchDrivers drivers online and
// a bus to it.
func benchService(b *testing.B) (*Service, *bus.Bus, []string) {
	db := testdb.Open(b, testdb.SQLite, "fleet", func(ctx context.Context, db *store.DB) error {
		return modhost.MigrateDB(ctx, db, testdb.Logger())
	})
	h := modhost.NewHost(db, testdb.Logger())
	s := NewService(db, h.Outbox, Options{CheckpointEvery: time.Hour}, testdb.Logger())
	now := time.Now().UTC()
	ids := make([]string, benchDrivers)
	err := store.InTx(b.Context(), db, func(tx *store.Tx) error {
		for i := range ids {
			ids[i] = fmt.Sprintf("driver-%05d", i)
			p := fleet.Point{Lat: 52.5, Lng: 13.4}
			d := geoindex.Driver{ID: ids[i], Status: fleet.StatusAvailable, Point: &p, PositionAt: now, SeenAt: now, UpdatedAt: now, Version: 1}
			if err := s.repo.put(b.Context(), tx, rowOf(d)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	if err := s.Start(b.Context()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Stop(context.Background()) })
	bb, err := bus.New(testdb.Logger(), bus.Limits{}, nil, s.Handlers(), nil)
	if err != nil {
		b.Fatal(err)
	}
	return s, bb, ids
}

// visibleQuantile returns the upper bound of the histogram bucket that holds the
// q-quantile of the update-to-visible latency, in seconds.
func (s *Service) visibleQuantile(q float64) float64 {
	var m dto.Metric
	if err := s.metrics.visible.Write(&m); err != nil {
		return -1
	}
	h := m.GetHistogram()
	for _, bk := range h.GetBucket() {
		if float64(bk.GetCumulativeCount()) >= q*float64(h.GetSampleCount()) {
			return bk.GetUpperBound()
		}
	}
	return math.Inf(1)
}
