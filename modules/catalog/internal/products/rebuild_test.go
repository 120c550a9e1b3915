package products_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/modhost"
	"github.com/agora-commerce/agora/internal/testdb"
	"github.com/agora-commerce/agora/modules/catalog"
	"github.com/agora-commerce/agora/modules/catalog/internal/products"
	"github.com/agora-commerce/agora/modules/inventory"
)

// fakeInventory answers inventory.ListItems from a fixed list of items, two a
// page, as the inventory would over the bus.
func fakeInventory(items []inventory.Item) bus.RequestHandler {
	return bus.Handle(inventory.ListItemsRequest, func(_ context.Context, q inventory.ListItems) (inventory.ItemPage, error) {
		i := slices.IndexFunc(items, func(it inventory.Item) bool { return it.SKU > q.After })
		if i < 0 {
			return inventory.ItemPage{}, nil
		}
		page := inventory.ItemPage{Items: items[i:min(i+2, len(items))]}
		if i+2 < len(items) {
			page.NextAfter = page.Items[len(page.Items)-1].SKU
		}
		return page, nil
	})
}

// The availability read model rebuilt from current stock: a product the model
// never heard of gets its availability, a stale one is corrected (also at the
// same version, as a drifted row would be), and one the model knows at a newer
// version than the stock read is left alone.
func TestRebuildAvailabilityFromCurrentStock(t *testing.T) {
	testdb.EachHost(t, "catalog", func(t *testing.T, h *modhost.Host) {
		ctx := t.Context()
		inv := &products.BusInventory{}
		s := products.NewService(h.DB, h.Outbox, products.Options{Inventory: inv})
		var ps []catalog.Product
		for i := range 4 {
			c := validCreate(i + 1)
			c.Status = catalog.StatusActive
			ps = append(ps, create(t, s, c))
		}
		at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
		items := []inventory.Item{
			{SKU: "A", ProductID: ps[0].ID, Available: 7, Version: 3, UpdatedAt: at}, // never heard of
			{SKU: "B", ProductID: ps[1].ID, Available: 0, Version: 2, UpdatedAt: at}, // stale: 5 at version 1
			{SKU: "C", ProductID: ps[2].ID, Available: 4, Version: 9, UpdatedAt: at}, // drifted: 1 at version 9
			{SKU: "D", ProductID: ps[3].ID, Available: 2, Version: 4, UpdatedAt: at}, // newer in the model: 8 at version 6
			{SKU: "E", ProductID: "", Available: 1, Version: 1, UpdatedAt: at},       // no product
		}
		b, err := bus.New(discard, bus.Limits{}, nil, append(s.Handlers(), fakeInventory(items)), s.Subscriptions())
		if err != nil {
			t.Fatal(err)
		}
		inv.Bind(b)
		stockChanged(t, b, ps[1].ID, 5, 1, at)
		stockChanged(t, b, ps[2].ID, 1, 9, at)
		stockChanged(t, b, ps[3].ID, 8, 6, at)

		got, err := bus.Call(ctx, b, catalog.RebuildAvailabilityRequest, catalog.RebuildAvailability{})
		if err != nil {
			t.Fatal(err)
		}
		if got != (catalog.AvailabilityRebuilt{Items: 5, Updated: 3}) {
			t.Errorf("rebuild answered %+v, want 5 items read, 3 products written", got)
		}
		want := []catalog.Availability{
			{Status: catalog.AvailabilityInStock, Available: 7, AsOf: at},
			{Status: catalog.AvailabilityOutOfStock, Available: 0, AsOf: at},
			{Status: catalog.AvailabilityInStock, Available: 4, AsOf: at},
			{Status: catalog.AvailabilityInStock, Available: 8, AsOf: at},
		}
		for i, p := range ps {
			g, err := s.Get(ctx, catalog.GetProduct{ID: p.ID})
			if err != nil {
				t.Fatal(err)
			}
			if g.Availability == nil || *g.Availability != want[i] {
				t.Errorf("product %d: availability %+v, want %+v", i, g.Availability, want[i])
			}
		}
	})
}

// Without the inventory the rebuild fails as unavailable, and changes nothing.
func TestRebuildAvailabilityWithoutTheInventory(t *testing.T) {
	testdb.EachHost(t, "catalog", func(t *testing.T, h *modhost.Host) {
		s := products.NewService(h.DB, h.Outbox, products.Options{Inventory: &products.BusInventory{}})
		if _, err := s.RebuildAvailability(t.Context(), catalog.RebuildAvailability{}); err == nil {
			t.Error("a rebuild with no bus to ask succeeded")
		}
	})
}
