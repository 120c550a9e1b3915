package live_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/agora-commerce/agora/modules/fleet"
	"github.com/agora-commerce/agora/modules/fleet/internal/geoindex"
	"github.com/agora-commerce/agora/modules/fleet/internal/live"
)

func pending(driver int, at time.Time, lat float64) live.Pending {
	return live.Pending{Move: geoindex.Move{DriverID: fmt.Sprintf("d%03d", driver), Point: fleet.Point{Lat: lat, Lng: 13.4}, At: at}}
}

// TestConflationUnderABlockedConsumer: while the consumer takes nothing, 100
// drivers report 200 times each; the buffer never holds more than one position
// per driver, and when the consumer finally takes, it sees exactly the newest
// position of each driver.
func TestConflationUnderABlockedConsumer(t *testing.T) {
	const drivers, reports = 100, 200
	c := live.NewConflator(drivers)
	t0 := time.Now()
	conflated := 0
	for r := range reports {
		batch := make([]live.Pending, 0, drivers)
		for d := range drivers {
			batch = append(batch, pending(d, t0.Add(time.Duration(r)*time.Millisecond), 52+float64(r)/1000))
		}
		n, saturated := c.Offer(batch)
		if saturated {
			t.Fatalf("report %d: saturated with one position per driver", r)
		}
		conflated += n.Conflated
		if c.Len() > drivers {
			t.Fatalf("buffer holds %d positions for %d drivers", c.Len(), drivers)
		}
	}
	if want := drivers * (reports - 1); conflated != want {
		t.Fatalf("conflated %d, want %d", conflated, want)
	}
	taken := c.Take()
	if len(taken) != drivers {
		t.Fatalf("consumer took %d positions, want %d", len(taken), drivers)
	}
	for _, p := range taken {
		if want := 52 + float64(reports-1)/1000; p.Point.Lat != want {
			t.Fatalf("driver %s: consumer saw lat %v, want the newest %v", p.DriverID, p.Point.Lat, want)
		}
	}
	if c.Len() != 0 || len(c.Take()) != 0 {
		t.Fatal("buffer not empty after Take")
	}
}

// TestOlderReportDoesNotReplaceNewer: a report older than the pending one is
// counted stale and the pending one stays.
func TestOlderReportDoesNotReplaceNewer(t *testing.T) {
	c := live.NewConflator(10)
	t0 := time.Now()
	c.Offer([]live.Pending{pending(1, t0, 52.5)})
	n, _ := c.Offer([]live.Pending{pending(1, t0.Add(-time.Second), 52.4)})
	if n.Stale != 1 || n.Accepted != 0 {
		t.Fatalf("older report: %+v", n)
	}
	if got := c.Take(); len(got) != 1 || got[0].Point.Lat != 52.5 {
		t.Fatalf("taken %+v, want the newer position", got)
	}
}

// TestSaturationIsAllOrNothing: a batch that needs room for more new drivers than
// is left is refused whole; one of drivers already waiting always fits.
func TestSaturationIsAllOrNothing(t *testing.T) {
	c := live.NewConflator(3)
	t0 := time.Now()
	c.Offer([]live.Pending{pending(1, t0, 52), pending(2, t0, 52)})
	if _, saturated := c.Offer([]live.Pending{pending(1, t0, 52), pending(3, t0, 52), pending(4, t0, 52)}); !saturated {
		t.Fatal("a batch beyond capacity was taken")
	}
	if c.Len() != 2 {
		t.Fatalf("a refused batch left %d positions, want the 2 before it", c.Len())
	}
	if _, saturated := c.Offer([]live.Pending{pending(1, t0, 52), pending(2, t0, 52), pending(3, t0, 52)}); saturated {
		t.Fatal("a batch that fits was refused")
	}
}
