package products_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/message"
	"github.com/agora-commerce/agora/internal/modhost"
	"github.com/agora-commerce/agora/internal/testdb"
	"github.com/agora-commerce/agora/modules/catalog"
	"github.com/agora-commerce/agora/modules/catalog/internal/products"
	"github.com/agora-commerce/agora/modules/inventory"
)

// stockChanged delivers an inventory.StockChanged (a new message each time) to
// the catalog's subscriber, as the inventory's relay would.
func stockChanged(t *testing.T, b *bus.Bus, productID string, available, version int64, at time.Time) {
	t.Helper()
	env, err := bus.NewEnvelope(context.Background(), message.KindEvent, inventory.StockChangedEvent.Name(), inventory.StockChanged{
		Item: inventory.Item{SKU: "X", ProductID: productID, OnHand: available + 1, Reserved: 1, Available: available, Version: version, UpdatedAt: at}})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Deliver(context.Background(), env); err != nil {
		t.Fatalf("deliver StockChanged: %v", err)
	}
}

func TestAvailabilityReadModel(t *testing.T) {
	testdb.EachHost(t, "catalog", func(t *testing.T, h *modhost.Host) {
		ctx := t.Context()
		// The default read cache is on: the test also shows it never serves an
		// availability older than the read model's.
		s := products.NewService(h.DB, h.Outbox)
		b, err := bus.New(discard, bus.Limits{}, nil, s.Handlers(), s.Subscriptions())
		if err != nil {
			t.Fatalf("bus.New: %v", err)
		}
		c := validCreate(1)
		c.Status = catalog.StatusActive
		p := create(t, s, c)
		other := create(t, s, func() catalog.CreateProduct { c := validCreate(2); c.Status = catalog.StatusActive; return c }())

		// reads returns p's availability as Get (twice: once to fill the cache),
		// GetMany and List give it; they must agree.
		reads := func(what string) catalog.Availability {
			t.Helper()
			var got []*catalog.Availability
			for range 2 {
				g, err := s.Get(ctx, catalog.GetProduct{ID: p.ID})
				if err != nil {
					t.Fatalf("%s: Get: %v", what, err)
				}
				got = append(got, g.Availability)
			}
			many, err := s.GetMany(ctx, catalog.GetProducts{IDs: []string{p.ID}})
			if err != nil || len(many.Products) != 1 {
				t.Fatalf("%s: GetMany: %+v, %v", what, many, err)
			}
			got = append(got, many.Products[0].Availability)
			page, err := s.List(ctx, catalog.ListProducts{})
			if err != nil || len(page.Items) != 2 {
				t.Fatalf("%s: List: %+v, %v", what, page, err)
			}
			got = append(got, page.Items[0].Availability)
			for i, a := range got {
				if a == nil {
					t.Fatalf("%s: read %d has no availability", what, i)
				}
				if *a != *got[0] {
					t.Errorf("%s: reads disagree: %+v and %+v", what, *got[0], *a)
				}
			}
			if a := page.Items[1].Availability; a == nil || a.Status != catalog.AvailabilityUnknown {
				t.Errorf("%s: the other product's availability = %+v, want unknown", what, a)
			}
			return *got[0]
		}

		if diff := cmp.Diff(catalog.Availability{Status: catalog.AvailabilityUnknown}, reads("before any stock event")); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}

		at := time.Date(2025, 6, 1, 12, 0, 0, 123456000, time.UTC)
		stockChanged(t, b, p.ID, 7, 2, at)
		want := catalog.Availability{Status: catalog.AvailabilityInStock, Available: 7, AsOf: at}
		if diff := cmp.Diff(want, reads("after version 2")); diff != "" {
			t.Errorf("after version 2 (-want +got):\n%s", diff)
		}

		// Older and repeated versions are not applied.
		stockChanged(t, b, p.ID, 100, 1, at.Add(-time.Minute))
		stockChanged(t, b, p.ID, 50, 2, at.Add(time.Minute))
		if diff := cmp.Diff(want, reads("after older and repeated versions")); diff != "" {
			t.Errorf("after older and repeated versions (-want +got):\n%s", diff)
		}

		// Sold out; a version may be skipped (events of one item can overtake).
		stockChanged(t, b, p.ID, 0, 5, at.Add(time.Hour))
		want = catalog.Availability{Status: catalog.AvailabilityOutOfStock, AsOf: at.Add(time.Hour)}
		if diff := cmp.Diff(want, reads("after selling out")); diff != "" {
			t.Errorf("after selling out (-want +got):\n%s", diff)
		}

		// Replies to writes carry it too; the events they publish do not.
		name := "renamed"
		up, err := s.Update(ctx, catalog.UpdateProduct{ID: p.ID, ExpectedVersion: p.Version, Name: &name})
		if err != nil {
			t.Fatalf("Update: %v", err)
		}
		if up.Availability == nil || *up.Availability != want {
			t.Errorf("Update reply availability = %+v, want %+v", up.Availability, want)
		}
		rows := testdb.OutboxRows(t, h.DB)
		if ev := testdb.Decode[catalog.ProductUpdated](t, rows[len(rows)-1].Payload); ev.Product.Availability != nil {
			t.Errorf("ProductUpdated carries availability %+v", ev.Product.Availability)
		}
		if got, err := s.Get(ctx, catalog.GetProduct{ID: other.ID}); err != nil || got.Availability.Status != catalog.AvailabilityUnknown {
			t.Errorf("the other product: %+v, %v", got.Availability, err)
		}
	})
}

func TestProductCloneCopiesAvailability(t *testing.T) {
	p := catalog.Product{ID: "p", Availability: &catalog.Availability{Status: catalog.AvailabilityInStock, Available: 3}}
	c := p.Clone()
	c.Availability.Available = 9
	if p.Availability.Available != 3 {
		t.Error("a change to the clone's availability reached the original")
	}
}
