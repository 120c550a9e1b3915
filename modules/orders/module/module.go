// Package module runs the orders module in a process (Module) and serves its HTTP
// routes (Routes). Only internal/app imports it.
package module

import (
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/fx"

	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/config"
	"github.com/agora-commerce/agora/internal/httpapi"
	"github.com/agora-commerce/agora/internal/modhost"
	"github.com/agora-commerce/agora/modules/orders/internal/api"
	"github.com/agora-commerce/agora/modules/orders/internal/checkout"
	"github.com/agora-commerce/agora/modules/orders/internal/saga"
)

// Module runs the orders module in this process: its own database, its request
// handlers and the checkout saga's subscriptions on the bus, and the sweep that
// times out saga steps. It asks the catalog for prices over the bus.
func Module() fx.Option {
	return fx.Module("orders",
		modhost.Provide("orders"),
		fx.Provide(
			fx.Private,
			func() *checkout.BusCatalog { return &checkout.BusCatalog{} },
			checkout.NewMetrics,
			func(h *modhost.Host, cfg config.Config, cat *checkout.BusCatalog, m *checkout.Metrics, log *slog.Logger) *checkout.Service {
				return checkout.NewService(h.DB, h.Outbox, cat, checkout.Options{Timing: saga.Timing{
					StepTimeout: cfg.SagaStepTimeout, MaxAttempts: cfg.SagaMaxAttempts, ReservationTTL: cfg.ReservationTTL,
				}, SagaEnded: m.SagaEnded}, log.With("module", "orders"))
			},
		),
		fx.Provide(
			fx.Annotate(func(s *checkout.Service) []bus.RequestHandler { return s.Handlers() },
				fx.ResultTags(`group:"bus.requests,flatten"`)),
			fx.Annotate(func(s *checkout.Service) []bus.Subscription { return s.Subscriptions() },
				fx.ResultTags(`group:"bus.subscriptions,flatten"`)),
			// Sagas by state and their duration, for /metrics.
			fx.Annotate(func(m *checkout.Metrics, s *checkout.Service) []prometheus.Collector { return m.Collectors(s) },
				fx.ResultTags(`group:"metrics.collectors,flatten"`)),
		),
		fx.Invoke(func(lc fx.Lifecycle, s *checkout.Service, cat *checkout.BusCatalog, b *bus.Bus) {
			cat.Bind(b)
			lc.Append(fx.Hook{OnStart: s.Start, OnStop: s.Stop})
		}),
	)
}

// Routes returns the orders module's HTTP routes; every process serves them.
func Routes(b *bus.Bus) httpapi.Routes { return api.Routes(b) }
