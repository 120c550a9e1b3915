package module_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/config"
	"github.com/agora-commerce/agora/internal/message"
	"github.com/agora-commerce/agora/internal/testlog"
	"github.com/agora-commerce/agora/modules/catalog"
	"github.com/agora-commerce/agora/modules/inventory"
	"github.com/agora-commerce/agora/modules/inventory/module"
)

var discard = slog.New(slog.DiscardHandler)

// events records the envelopes of the types it subscribes to.
type events struct {
	mu   sync.Mutex
	envs []message.Envelope
}

func (e *events) sub(typ string) bus.Subscription {
	return bus.Subscription{Type: typ, Consumer: "test", Handle: func(_ context.Context, env message.Envelope) error {
		e.mu.Lock()
		defer e.mu.Unlock()
		e.envs = append(e.envs, env)
		return nil
	}}
}

func (e *events) of(typ string) []message.Envelope {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []message.Envelope
	for _, env := range e.envs {
		if env.Type == typ {
			out = append(out, env)
		}
	}
	return out
}

// The module, started as a process starts it: it serves the contract on the bus,
// handles its commands, publishes through its relay, stocks the catalog's products
// with --demo, and sweeps expired reservations.
func TestModule(t *testing.T) {
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Demo = true
	product := catalog.Product{ID: bus.NewID(), SKU: "DEMO-MUG", Status: catalog.StatusActive}
	listProducts := bus.Handle(catalog.ListProductsRequest, func(context.Context, catalog.ListProducts) (catalog.ProductPage, error) {
		return catalog.ProductPage{Items: []catalog.Product{product}}, nil
	})

	seen := &events{}

	var b *bus.Bus
	app := fxtest.New(t,
		fx.Supply(cfg, discard),
		module.Module(),
		fx.Provide(fx.Annotate(
			func(log *slog.Logger, hs []bus.RequestHandler, subs []bus.Subscription) (*bus.Bus, error) {
				hs = append(hs, listProducts) // catalog, as another process would answer
				subs = append(subs, seen.sub(inventory.StockChangedEvent.Name()), seen.sub(inventory.ReservationReleasedEvent.Name()))
				return bus.New(log, bus.Limits{}, nil, hs, subs)
			},
			fx.ParamTags(``, `group:"bus.requests"`, `group:"bus.subscriptions"`))),
		fx.Populate(&b),
	)
	app.RequireStart()
	defer app.RequireStop()
	ctx := context.Background()

	// The demo seeder stocks the product, and the relay announces it.
	var it inventory.Item
	testlog.Eventually(t, "demo stock", func() bool {
		var err error
		it, err = bus.Call(ctx, b, inventory.GetItemRequest, inventory.GetItem{SKU: "DEMO-MUG"})
		return err == nil && it.OnHand == 100
	})
	if it.ProductID != product.ID {
		t.Errorf("item of product %s, want %s", it.ProductID, product.ID)
	}
	testlog.Eventually(t, "StockChanged with the demo stock", func() bool {
		for _, env := range seen.of(inventory.StockChangedEvent.Name()) {
			m, err := inventory.StockChangedEvent.Decode(env)
			if err == nil && m.Body.Item.OnHand == 100 {
				return true
			}
		}
		return false
	})

	// A reservation that expires is released by the sweeper.
	orderID := bus.NewID()
	env, err := bus.NewEnvelope(ctx, message.KindCommand, inventory.ReserveStockCommand.Name(), inventory.ReserveStock{
		OrderID: orderID, Lines: []inventory.Line{{ProductID: product.ID, Quantity: 2}}, ExpiresAt: time.Now().Add(50 * time.Millisecond)})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Deliver(ctx, env); err != nil {
		t.Fatalf("deliver ReserveStock: %v", err)
	}
	testlog.Eventually(t, "the expired reservation released", func() bool {
		for _, env := range seen.of(inventory.ReservationReleasedEvent.Name()) {
			m, err := inventory.ReservationReleasedEvent.Decode(env)
			if err == nil && m.Body.OrderID == orderID && m.Body.Reason == "expired" {
				return true
			}
		}
		return false
	})
	if it, err := bus.Call(ctx, b, inventory.GetItemRequest, inventory.GetItem{SKU: "DEMO-MUG"}); err != nil || it.Reserved != 0 || it.OnHand != 100 {
		t.Errorf("after the expiry: %+v, %v; want 100 on hand, none reserved", it, err)
	}
}
