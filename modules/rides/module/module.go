// Package module runs the rides module in a process (Module) and serves its HTTP
// routes (Routes). The registry (package modules) lists it.
package module

import (
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/fx"

	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/httpapi"
	"github.com/agora-commerce/agora/internal/modhost"
	"github.com/agora-commerce/agora/modules/rides/internal/api"
	"github.com/agora-commerce/agora/modules/rides/internal/trips"
)

// Module runs the rides module in this process: its own database, its request
// handlers and the dispatch saga's subscriptions on the bus, the sweep that times
// out saga steps and searches for drivers, and the refresh of supply for surge. It
// asks fleet over the bus.
func Module(s Settings) fx.Option {
	return fx.Module("rides",
		modhost.Provide("rides"),
		fx.Provide(
			fx.Private,
			func() *trips.BusFleet { return &trips.BusFleet{} },
			trips.NewMetrics,
			func(h *modhost.Host, fl *trips.BusFleet, m *trips.Metrics, log *slog.Logger) (*trips.Service, error) {
				o, err := s.options()
				if err != nil {
					return nil, err
				}
				o.Assigned, o.Ended = m.Assigned, m.Ended
				return trips.NewService(h.DB, h.Outbox, fl, o, log.With("module", "rides")), nil
			},
		),
		modhost.OnBus[*trips.Service](),
		fx.Provide(
			// Dispatches by state, assignment latency and dispatch duration, for /metrics.
			fx.Annotate(func(m *trips.Metrics, svc *trips.Service) []prometheus.Collector { return m.Collectors(svc) },
				fx.ResultTags(`group:"metrics.collectors,flatten"`)),
		),
		fx.Invoke(func(lc fx.Lifecycle, svc *trips.Service, fl *trips.BusFleet, b *bus.Bus) {
			fl.Bind(b)
			lc.Append(fx.Hook{OnStart: svc.Start, OnStop: svc.Stop})
		}),
	)
}

// Routes returns the rides module's HTTP routes; every process serves them.
func Routes(b *bus.Bus) httpapi.Routes { return api.Routes(b) }
