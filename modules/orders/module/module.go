// Package module runs the orders module in a process (Module) and serves its HTTP
// routes (Routes). The registry (package modules) lists it.
package module

import (
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/fx"

	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/httpapi"
	"github.com/agora-commerce/agora/internal/modhost"
	"github.com/agora-commerce/agora/modules/orders/internal/api"
	"github.com/agora-commerce/agora/modules/orders/internal/checkout"
)

// Module runs the orders module in this process: its own database, its request
// handlers and the checkout saga's subscriptions on the bus, and the sweep that
// times out saga steps. It asks the catalog for prices over the bus.
func Module(s Settings) fx.Option {
	return fx.Module("orders",
		modhost.Provide("orders"),
		fx.Provide(
			fx.Private,
			func() *checkout.BusCatalog { return &checkout.BusCatalog{} },
			checkout.NewMetrics,
			func(h *modhost.Host, cat *checkout.BusCatalog, m *checkout.Metrics, log *slog.Logger) *checkout.Service {
				return checkout.NewService(h.DB, h.Outbox, cat, checkout.Options{Timing: s.timing(), SagaEnded: m.SagaEnded},
					log.With("module", "orders"))
			},
		),
		modhost.OnBus[*checkout.Service](),
		fx.Provide(
			// Sagas by state and their duration, for /metrics.
			fx.Annotate(func(m *checkout.Metrics, c *checkout.Service) []prometheus.Collector { return m.Collectors(c) },
				fx.ResultTags(`group:"metrics.collectors,flatten"`)),
		),
		fx.Invoke(func(lc fx.Lifecycle, c *checkout.Service, cat *checkout.BusCatalog, b *bus.Bus) {
			cat.Bind(b)
			lc.Append(fx.Hook{OnStart: c.Start, OnStop: c.Stop})
		}),
	)
}

// Routes returns the orders module's HTTP routes; every process serves them.
func Routes(b *bus.Bus) httpapi.Routes { return api.Routes(b) }
