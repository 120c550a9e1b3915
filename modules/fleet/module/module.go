// Package module runs the fleet module in a process (Module) and serves its HTTP
// routes (Routes). The registry (package modules) lists it.
package module

import (
	"context"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/fx"

	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/config"
	"github.com/agora-commerce/agora/internal/httpapi"
	"github.com/agora-commerce/agora/internal/modhost"
	"github.com/agora-commerce/agora/modules/fleet/internal/api"
	"github.com/agora-commerce/agora/modules/fleet/internal/city"
	"github.com/agora-commerce/agora/modules/fleet/internal/demo"
	"github.com/agora-commerce/agora/modules/fleet/internal/live"
)

// Module runs the fleet module in this process: its database, its geo index
// (rebuilt from the database at start, checkpointed while running and at stop),
// its handlers on the bus, its metrics, and with --demo the simulated fleet.
func Module(s Settings) fx.Option {
	return fx.Module("fleet",
		modhost.Provide("fleet"),
		fx.Provide(
			fx.Private,
			func(h *modhost.Host, log *slog.Logger) *live.Service {
				return live.NewService(h.DB, h.Outbox, live.Options{Buffer: s.Buffer, CheckpointEvery: s.CheckpointEvery}, log)
			},
		),
		modhost.OnBus[*live.Service](),
		fx.Provide(
			fx.Annotate(func(l *live.Service) []prometheus.Collector { return l.Metrics().Collectors() },
				fx.ResultTags(`group:"metrics.collectors,flatten"`)),
		),
		fx.Invoke(func(lc fx.Lifecycle, l *live.Service) {
			lc.Append(fx.Hook{OnStart: l.Start, OnStop: l.Stop})
		}),
		fx.Invoke(func(lc fx.Lifecycle, cfg config.Config, b *bus.Bus, log *slog.Logger) {
			if !cfg.Demo || s.DemoDrivers <= 0 {
				return // --fleet-demo-drivers 0: the demo without its fleet (a load generator brings its own)
			}
			f := demo.New(b, city.Berlin(), demo.Options{Drivers: s.DemoDrivers, Speed: s.DemoSpeed}, log)
			lc.Append(fx.Hook{OnStart: func(context.Context) error { f.Start(); return nil }, OnStop: f.Stop})
		}),
	)
}

// Routes returns the fleet module's HTTP routes; every process serves them.
func Routes(b *bus.Bus) httpapi.Routes { return api.Routes(b) }
