package stock_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/message"
	"github.com/agora-commerce/agora/internal/modhost"
	"github.com/agora-commerce/agora/internal/testdb"
	"github.com/agora-commerce/agora/internal/testlog"
	"github.com/agora-commerce/agora/modules/catalog"
	"github.com/agora-commerce/agora/modules/inventory"
	"github.com/agora-commerce/agora/modules/inventory/internal/stock"
)

// fakeCatalog answers catalog.ListProducts from a fixed list of products, after
// failing its first failures calls as a catalog that is not up yet does.
type fakeCatalog struct {
	products []catalog.Product
	failures int64
	calls    atomic.Int64
}

func (f *fakeCatalog) list(_ context.Context, q catalog.ListProducts) (catalog.ProductPage, error) {
	if f.calls.Add(1) <= f.failures {
		return catalog.ProductPage{}, message.ErrNoHandler
	}
	if !q.IncludeUnpublished {
		return catalog.ProductPage{}, fmt.Errorf("the seeder must stock drafts too")
	}
	var page catalog.ProductPage
	for _, p := range f.products {
		if p.ID > q.After && len(page.Items) < q.Limit {
			page.Items = append(page.Items, p)
		}
	}
	if n := len(page.Items); n == q.Limit && page.Items[n-1].ID != f.products[len(f.products)-1].ID {
		page.NextAfter = page.Items[n-1].ID
	}
	return page, nil
}

func (f *fakeCatalog) bus(t *testing.T) *bus.Bus {
	b, err := bus.New(testdb.Logger(), bus.Limits{}, nil, []bus.RequestHandler{bus.Handle(catalog.ListProductsRequest, f.list)}, nil)
	if err != nil {
		t.Fatalf("bus.New: %v", err)
	}
	return b
}

func demoProducts(n int) []catalog.Product {
	ps := make([]catalog.Product, n)
	for i := range ps {
		ps[i] = catalog.Product{ID: bus.NewID(), SKU: fmt.Sprintf("DEMO-%03d", i)}
	}
	return ps
}

func TestSeedDemo(t *testing.T) {
	testdb.EachHost(t, "inventory", func(t *testing.T, h *modhost.Host) {
		e := newEnv(t, h)
		ctx := t.Context()
		ps := demoProducts(catalog.MaxPageSize + 20) // two pages
		// Inventory already knows one product (from ProductCreated), and an admin
		// stocked another: that one is left alone.
		send(e, catalog.ProductCreatedEvent.Name(), message.KindEvent, catalog.ProductCreated{Product: ps[3]})
		send(e, catalog.ProductCreatedEvent.Name(), message.KindEvent, catalog.ProductCreated{Product: ps[7]})
		if _, err := e.s.Adjust(ctx, inventory.Adjust{SKU: ps[7].SKU, Delta: 2, Reason: "counted", Actor: "admin"}); err != nil {
			t.Fatalf("Adjust: %v", err)
		}
		f := &fakeCatalog{products: ps}

		n, err := e.s.SeedDemo(ctx, f.bus(t))
		if err != nil || n != len(ps)-1 {
			t.Fatalf("SeedDemo: %d stocked, %v; want %d", n, err, len(ps)-1)
		}
		for i, p := range ps {
			it := e.item(p.SKU)
			want := int64(stock.DemoStock)
			if i == 7 {
				want = 2
			}
			if it.ProductID != p.ID || it.OnHand != want || it.Reserved != 0 {
				t.Errorf("%s: %+v, want %d on hand", p.SKU, it, want)
			}
		}
		page, err := e.s.ListAdjustments(ctx, inventory.ListAdjustments{SKU: ps[0].SKU})
		if err != nil {
			t.Fatalf("ListAdjustments: %v", err)
		}
		if len(page.Items) != 1 || page.Items[0].Reason != stock.DemoReason || page.Items[0].Actor != stock.DemoActor || page.Items[0].Delta != stock.DemoStock {
			t.Errorf("adjustments of a demo product: %+v", page.Items)
		}

		// Again (a restart): nothing changes.
		e.news()
		before := e.item(ps[0].SKU)
		if n, err := e.s.SeedDemo(ctx, f.bus(t)); err != nil || n != 0 {
			t.Errorf("SeedDemo again: %d stocked, %v; want 0", n, err)
		}
		if rows := e.news(); len(rows) != 0 {
			t.Errorf("SeedDemo again published %v", testdb.OutboxTypes(rows))
		}
		if diff := cmp.Diff(before, e.item(ps[0].SKU)); diff != "" {
			t.Errorf("SeedDemo again changed an item (-before +after):\n%s", diff)
		}
	})
}

// In a split deployment catalog may answer only some time after inventory starts.
func TestDemoSeederRetriesUntilCatalogAnswers(t *testing.T) {
	testdb.EachHost(t, "inventory", func(t *testing.T, h *modhost.Host) {
		e := newEnv(t, h)
		ps := demoProducts(3)
		f := &fakeCatalog{products: ps, failures: 3}
		bg := e.s.StartDemoSeeder(f.bus(t), time.Millisecond)
		t.Cleanup(func() { _ = bg.Stop(context.Background()) })
		testlog.Eventually(t, "demo stock for every product", func() bool {
			items, err := e.s.ListItems(t.Context(), inventory.ListItems{})
			if err != nil {
				t.Fatalf("ListItems: %v", err)
			}
			stocked := 0
			for _, it := range items.Items {
				if it.OnHand == stock.DemoStock {
					stocked++
				}
			}
			return stocked == len(ps)
		})
		if err := bg.Stop(t.Context()); err != nil {
			t.Errorf("Stop: %v", err)
		}
		if got := f.calls.Load(); got != 4 {
			t.Errorf("catalog asked %d times, want 3 failures and 1 answer", got)
		}
	})
}

// Stopping the seeder while catalog never answers ends it.
func TestDemoSeederStops(t *testing.T) {
	testdb.EachHost(t, "inventory", func(t *testing.T, h *modhost.Host) {
		e := newEnv(t, h)
		f := &fakeCatalog{failures: 1 << 40}
		bg := e.s.StartDemoSeeder(f.bus(t), time.Millisecond)
		testlog.Eventually(t, "the seeder asks catalog", func() bool { return f.calls.Load() > 2 })
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		if err := bg.Stop(ctx); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
}
