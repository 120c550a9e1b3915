package geoindex_test

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/agora-commerce/agora/modules/fleet"
)

// BenchmarkNearest is FindNearest's query over 10,000 online drivers in central
// Berlin (7,000 of them available and fresh): the 10 nearest within 3 km of
// random points. Besides ns/op it reports the 50th and 99th percentile of one
// query's latency (p50-ns, p99-ns), measured per query.
//
//	go test ./modules/fleet/internal/geoindex -run '^$' -bench Nearest -benchtime 20000x
func BenchmarkNearest(b *testing.B) {
	w := newWorld(10_000, 11)
	r := rand.New(rand.NewPCG(9, 9))
	points := make([]fleet.Point, 4096)
	for i := range points {
		points[i] = fleet.Point{Lat: 52.47 + r.Float64()*0.1, Lng: 13.33 + r.Float64()*0.15}
	}
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		start := time.Now()
		if len(w.idx.Nearest(points[i%len(points)], 3000, 10, nil)) == 0 {
			b.Fatal("no driver found")
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns")
}
