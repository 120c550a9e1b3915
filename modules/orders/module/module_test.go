package module_test

import (
	"context"
	"log/slog"
	"testing"

	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/config"
	"github.com/agora-commerce/agora/modules/catalog"
	"github.com/agora-commerce/agora/modules/inventory"
	"github.com/agora-commerce/agora/modules/orders"
	"github.com/agora-commerce/agora/modules/orders/module"
	"github.com/agora-commerce/agora/modules/payments"
)

// The module serves the contract on the bus, asks the catalog over it, and
// subscribes to inventory's and payments' events.
func TestModule(t *testing.T) {
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	product := catalog.Product{ID: bus.NewID(), SKU: "TEE", Name: "Tee", Price: catalog.Money{Amount: 100, Currency: "EUR"}, Status: catalog.StatusActive}
	var b *bus.Bus
	app := fxtest.New(t,
		fx.Supply(cfg, slog.New(slog.DiscardHandler)),
		module.Module(module.DefaultSettings()),
		fx.Provide(fx.Annotate(func() bus.RequestHandler {
			return bus.Handle(catalog.GetProductsRequest, func(context.Context, catalog.GetProducts) (catalog.Products, error) {
				return catalog.Products{Products: []catalog.Product{product}}, nil
			})

		}, fx.ResultTags(`group:"bus.requests"`))),
		fx.Provide(fx.Annotate(
			func(log *slog.Logger, hs []bus.RequestHandler, subs []bus.Subscription) (*bus.Bus, error) {
				return bus.New(log, bus.Limits{}, nil, hs, subs)
			},
			fx.ParamTags(``, `group:"bus.requests"`, `group:"bus.subscriptions"`))),
		fx.Populate(&b),
	)
	app.RequireStart()
	defer app.RequireStop()

	c, err := bus.Call(t.Context(), b, orders.SetCartItemRequest, orders.SetCartItem{CustomerID: "c1", ProductID: product.ID, Quantity: 2})
	if err != nil || c.Total.Amount != 200 {
		t.Fatalf("SetCartItem over the bus: %+v, %v", c, err)
	}
	for _, typ := range []string{inventory.StockReservedEvent.Name(), inventory.ReservationCommitFailedEvent.Name(),
		payments.PaymentAuthorizedEvent.Name(), payments.RefundIssuedEvent.Name()} {
		if len(b.Subscriptions(typ)) != 1 {
			t.Errorf("%d subscriptions to %s, want 1", len(b.Subscriptions(typ)), typ)
		}
	}
}
