package products

import (
	"context"
	"testing"
	"time"

	"github.com/agora-commerce/agora/internal/config"
	"github.com/agora-commerce/agora/internal/modhost"
	"github.com/agora-commerce/agora/modules/catalog"
	"log/slog"
)

func TestReadCacheRules(t *testing.T) {
	now := time.Now()
	p := catalog.Product{ID: "p1", Version: 1, Attributes: map[string]string{"a": "b"}}

	t.Run("fresh entry is served, as a copy", func(t *testing.T) {
		c := newReadCache(time.Second, 10)
		c.put(p, c.generation(), now)
		got, ok := c.get("p1", now.Add(500*time.Millisecond))
		if !ok || got.Version != 1 {
			t.Fatalf("get = %+v, %v", got, ok)
		}
		got.Attributes["a"] = "changed"
		again, _ := c.get("p1", now)
		if again.Attributes["a"] != "b" {
			t.Error("a caller's change reached the cached product")
		}
	})
	t.Run("expired entry is not served", func(t *testing.T) {
		c := newReadCache(time.Second, 10)
		c.put(p, c.generation(), now)
		if _, ok := c.get("p1", now.Add(1001*time.Millisecond)); ok {
			t.Error("an entry older than the TTL was served")
		}
	})
	t.Run("a read that overlapped a write is not cached", func(t *testing.T) {
		c := newReadCache(time.Second, 10)
		gen := c.generation() // the read starts...
		c.invalidate("other") // ...a write (to any product) happens meanwhile...
		c.put(p, gen, now)    // ...and the read's result must be dropped
		if _, ok := c.get("p1", now); ok {
			t.Error("a read that raced a write was cached")
		}
	})
	t.Run("invalidate forgets the product", func(t *testing.T) {
		c := newReadCache(time.Second, 10)
		c.put(p, c.generation(), now)
		c.invalidate("p1")
		if _, ok := c.get("p1", now); ok {
			t.Error("an invalidated product was served")
		}
	})
	t.Run("size is bounded", func(t *testing.T) {
		c := newReadCache(time.Second, 3)
		for i := range 10 {
			c.put(catalog.Product{ID: string(rune('a' + i))}, c.generation(), now)
		}
		if len(c.entries) != 3 {
			t.Errorf("%d entries, want at most 3", len(c.entries))
		}
	})
	t.Run("a committed availability is laid over the cached product, the newest stock version winning", func(t *testing.T) {
		c := newReadCache(time.Second, 10)
		old := catalog.Availability{Status: catalog.AvailabilityInStock, Available: 9}
		withOld := p.Clone()
		withOld.Availability = &old
		c.put(withOld, c.generation(), now)
		c.setAvailability("p1", catalog.Availability{Status: catalog.AvailabilityInStock, Available: 7}, 6, now)
		c.setAvailability("p1", catalog.Availability{Status: catalog.AvailabilityInStock, Available: 8}, 5, now) // committed earlier, told later
		got, ok := c.get("p1", now)
		if !ok || got.Availability == nil || got.Availability.Available != 7 {
			t.Fatalf("get = %+v, %v; want the product with 7 available (stock version 6)", got.Availability, ok)
		}
		later := now.Add(1500 * time.Millisecond) // the overlay has expired; a product read then is fresh
		c.put(withOld, c.generation(), later)
		if got, _ := c.get("p1", later); got.Availability.Available != 9 {
			t.Errorf("an expired availability was laid over a product read later: %d available, want 9", got.Availability.Available)
		}
		c.invalidate("p1")
		c.put(withOld, c.generation(), now)
		if got, _ := c.get("p1", now); got.Availability.Available != 9 {
			t.Errorf("after invalidate: %d available, want the product's own 9", got.Availability.Available)
		}
	})
	t.Run("disabled", func(t *testing.T) {
		c := newReadCache(-1, 10)
		c.put(p, c.generation(), now)
		if _, ok := c.get("p1", now); ok {
			t.Error("a disabled cache served a product")
		}
	})
}

// TestServiceCacheConsistency: the service's own writes are read back at once
// through the cache; a write by another process (simulated by writing the table
// directly) shows after at most the TTL.
func TestServiceCacheConsistency(t *testing.T) {
	ctx := context.Background()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	h, err := modhost.Open(ctx, cfg, "catalog", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer h.DB.Close()
	ttl := 200 * time.Millisecond
	s := NewService(h.DB, h.Outbox, Options{CacheTTL: ttl})
	p, err := s.Create(ctx, catalog.CreateProduct{SKU: "C1", Name: "Cached", Price: catalog.Money{Amount: 100, Currency: "EUR"}, Status: catalog.StatusActive})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Get(ctx, catalog.GetProduct{ID: p.ID}); got.Version != 1 { // now cached
		t.Fatalf("version %d", got.Version)
	}
	price := catalog.Money{Amount: 250, Currency: "EUR"}
	if _, err := s.Update(ctx, catalog.UpdateProduct{ID: p.ID, ExpectedVersion: 1, Price: &price}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Get(ctx, catalog.GetProduct{ID: p.ID}); got.Version != 2 || got.Price != price {
		t.Fatalf("after its own write the service served %+v, want version 2", got)
	}

	// Another process's write: straight to the table, past this service.
	if _, err := h.DB.ExecContext(ctx, `UPDATE products SET version = 3, name = 'Renamed elsewhere' WHERE id = ?`, p.ID); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for {
		got, err := s.Get(ctx, catalog.GetProduct{ID: p.ID})
		if err != nil {
			t.Fatal(err)
		}
		if got.Version == 3 {
			break
		}
		if time.Since(start) > ttl+2*time.Second { // generous: no timing assertion, only a bound
			t.Fatalf("another process's write never became visible (still version %d)", got.Version)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
