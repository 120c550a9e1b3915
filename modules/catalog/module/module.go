// Package module runs the catalog module in a process (Module) and serves the
// catalog's HTTP routes (Routes). The registry (package modules) lists it.
package module

import (
	"context"
	"fmt"
	"log/slog"

	"go.uber.org/fx"

	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/config"
	"github.com/agora-commerce/agora/internal/httpapi"
	"github.com/agora-commerce/agora/internal/modhost"
	"github.com/agora-commerce/agora/modules/catalog/internal/api"
	"github.com/agora-commerce/agora/modules/catalog/internal/demo"
	"github.com/agora-commerce/agora/modules/catalog/internal/products"
	"github.com/danielgtaylor/huma/v2"
)

// Module runs the catalog in this process: its own database, its request handlers
// on the bus, its availability read model (fed by inventory.StockChanged), and,
// with --demo, the demo products in an empty catalog.
func Module(s Settings) fx.Option {
	return fx.Module("catalog",
		modhost.Provide("catalog"),
		fx.Provide(
			fx.Private,
			func() *products.BusInventory { return &products.BusInventory{} },
			func(h *modhost.Host, inv *products.BusInventory) *products.Service {
				return products.NewService(h.DB, h.Outbox, products.Options{CacheTTL: s.CacheTTL, Inventory: inv})
			},
		),
		modhost.OnBus[*products.Service](),
		fx.Invoke(func(inv *products.BusInventory, b *bus.Bus) { inv.Bind(b) }),
		fx.Invoke(func(lc fx.Lifecycle, cfg config.Config, ps *products.Service, log *slog.Logger) {
			if cfg.Demo {
				lc.Append(fx.StartHook(func(ctx context.Context) error { return SeedDemo(ctx, ps, log) }))
			}
		}),
	)
}

// Routes returns the catalog's HTTP routes, its operations included; every
// process serves them.
func Routes(b *bus.Bus) httpapi.Routes {
	routes, ops := api.Routes(b), api.OpsRoutes(b)
	return func(a huma.API) {
		routes(a)
		ops(a)
	}
}

// SeedDemo fills an empty catalog with the demo products; a catalog that has any
// product is left alone.
func SeedDemo(ctx context.Context, s *products.Service, log *slog.Logger) error {
	n, err := s.Count(ctx)
	if err != nil || n > 0 {
		return err
	}
	ps, err := demo.Products()
	if err != nil {
		return fmt.Errorf("catalog demo data: %w", err)
	}
	for _, p := range ps {
		if _, err := s.Create(ctx, p); err != nil {
			return fmt.Errorf("catalog demo product %s: %w", p.SKU, err)
		}
	}
	log.Info("demo catalog created", "products", len(ps))
	return nil
}
