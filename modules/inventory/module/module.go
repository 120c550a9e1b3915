// Package module runs the inventory module in a process (Module) and serves its HTTP
// routes (Routes). The registry (package modules) lists it.
package module

import (
	"context"
	"log/slog"
	"time"

	"go.uber.org/fx"

	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/config"
	"github.com/agora-commerce/agora/internal/httpapi"
	"github.com/agora-commerce/agora/internal/modhost"
	"github.com/agora-commerce/agora/modules/inventory/internal/api"
	"github.com/agora-commerce/agora/modules/inventory/internal/stock"
)

// Module runs the inventory in this process: its own database, its request and
// command handlers on the bus, its subscription to catalog.ProductCreated, the
// sweeper that releases expired reservations and, with --demo, the seeder that
// stocks the catalog's products.
func Module() fx.Option {
	return fx.Module("inventory",
		modhost.Provide("inventory"),
		fx.Provide(
			fx.Private,
			func(h *modhost.Host, log *slog.Logger) *stock.Service {
				return stock.NewService(h.DB, h.Outbox, log)
			},
		),
		modhost.OnBus[*stock.Service](),
		fx.Invoke(func(lc fx.Lifecycle, cfg config.Config, s *stock.Service, b *bus.Bus) {
			var sweeper, seeder *stock.Background
			lc.Append(fx.Hook{
				OnStart: func(context.Context) error {
					sweeper = s.StartSweeper()
					if cfg.Demo {
						seeder = s.StartDemoSeeder(b, 200*time.Millisecond)
					}
					return nil
				},
				OnStop: func(ctx context.Context) error {
					if seeder != nil {
						if err := seeder.Stop(ctx); err != nil {
							return err
						}
					}
					return sweeper.Stop(ctx)
				},
			})
		}),
	)
}

// Routes returns the inventory module's HTTP routes; every process serves them.
func Routes(b *bus.Bus) httpapi.Routes { return api.Routes(b) }
