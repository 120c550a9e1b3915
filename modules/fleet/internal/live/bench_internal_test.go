package live

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/modhost"
	"github.com/agora-commerce/agora/internal/store"
	"github.com/agora-commerce/agora/internal/testdb"
	"github.com/agora-commerce/agora/modules/fleet"
	"github.com/agora-commerce/agora/modules/fleet/internal/geoindex"
)

// BenchmarkReportPositions is ingestion through fleet.ReportPositions over the
// in-process bus, with the loop that applies positions to the index running:
// batches of 1000 positions of 10,000 online drivers. updates/s is positions
// ingested per second of wall time; every batch must be taken (none saturated).
//
//	go test ./modules/fleet/internal/live -run '^$' -bench ReportPositions -benchtime 2000x
func BenchmarkReportPositions(b *testing.B) {
	const drivers, batch = 10_000, fleet.MaxBatch
	db := testdb.Open(b, testdb.SQLite, "fleet", func(ctx context.Context, db *store.DB) error {
		return modhost.MigrateDB(ctx, db, testdb.Logger())
	})
	h := modhost.NewHost(db, testdb.Logger())
	s := NewService(db, h.Outbox, Options{CheckpointEvery: time.Hour}, testdb.Logger())
	now := time.Now().UTC()
	ids := make([]string, drivers)
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
	defer func() { _ = s.Stop(context.Background()) }()
	bb, err := bus.New(testdb.Logger(), bus.Limits{}, nil, s.Handlers(), nil)
	if err != nil {
		b.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	q := fleet.ReportPositions{Positions: make([]fleet.Position, batch)}
	b.ResetTimer()
	start := time.Now()
	for i := 0; b.Loop(); i++ {
		at := now.Add(time.Duration(i+1) * time.Millisecond)
		for j := range q.Positions {
			q.Positions[j] = fleet.Position{DriverID: ids[r.IntN(drivers)], Point: fleet.Point{Lat: 52.47 + r.Float64()*0.1, Lng: 13.33 + r.Float64()*0.15}, At: at}
		}
		if _, err := bus.Call(b.Context(), bb, fleet.ReportPositionsRequest, q); err != nil {
			b.Fatalf("batch %d: %v", i, err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N*batch)/time.Since(start).Seconds(), "updates/s")
}
