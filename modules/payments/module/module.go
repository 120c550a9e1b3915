// Package module runs the payments module in a process (Module) and serves its HTTP
// routes (Routes). The registry (package modules) lists it.
package module

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/fx"

	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/config"
	"github.com/agora-commerce/agora/internal/httpapi"
	"github.com/agora-commerce/agora/internal/modhost"
	"github.com/agora-commerce/agora/modules/payments/internal/api"
	"github.com/agora-commerce/agora/modules/payments/internal/ledger"
	"github.com/agora-commerce/agora/modules/payments/internal/provider"
	"github.com/agora-commerce/agora/modules/payments/internal/psp"
)

// Module runs the payments module in this process: its own database, its command
// subscriptions and request handlers on the bus, and the worker pool that calls
// the payment provider — the HTTP provider at Settings.ProviderURL, or without
// one the simulated provider in process — through timeouts, retries and a circuit
// breaker. The simulated provider's outage (payments.SetProviderOutage) may be
// switched only where config.Config.FaultsAllowed.
func Module(s Settings) fx.Option {
	return fx.Module("payments",
		modhost.Provide("payments"),
		fx.Provide(
			fx.Private,
			func(h *modhost.Host, cfg config.Config, log *slog.Logger) *ledger.Service {
				raw, name := Provider(s)
				outage, _ := raw.(ledger.OutageSwitch) // only the in-process simulator can be taken down
				prov := provider.NewResilient(raw, provider.Options{
					Timeout: s.Timeout, Retries: s.Retries, Log: log.With("module", "payments")})
				// A worker's lease on an operation outlasts a call with all its retries
				// (each attempt's deadline plus at most 2s of backoff), with room to
				// spare, so that two workers do not make one call twice (which the
				// idempotency key would make harmless, but not free).
				lease := max(ledgerLease, 2*time.Duration(s.Retries+1)*(s.Timeout+2*time.Second))
				return ledger.NewService(h.DB, h.Outbox, prov, ledger.Options{ProviderName: name, Lease: lease,
					Outage: outage, FaultsAllowed: cfg.FaultsAllowed()}, log)
			},
		),
		modhost.OnBus[*ledger.Service](),
		fx.Provide(
			fx.Annotate(breakerGauge, fx.ResultTags(`group:"metrics.collectors"`)),
		),
		fx.Invoke(func(lc fx.Lifecycle, l *ledger.Service) {
			lc.Append(fx.Hook{
				OnStart: func(context.Context) error { l.Start(); return nil },
				OnStop:  l.Stop,
			})
		}),
	)
}

const ledgerLease = 30 * time.Second

// breakerGauge exposes the payment provider's circuit breaker, read at scrape
// time: 0 closed (calls go through), 1 half-open (probing), 2 open (failing fast).
func breakerGauge(s *ledger.Service) prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name:        "agora_payments_breaker_state",
		Help:        "The payment provider's circuit breaker: 0 closed, 1 half-open, 2 open.",
		ConstLabels: prometheus.Labels{"provider": s.ProviderState().Provider},
	}, func() float64 {
		switch s.ProviderState().Breaker {
		case "half-open":
			return 1
		case "open":
			return 2
		}
		return 0
	})
}

// Provider returns the payment provider s selects, unwrapped, and its name: the
// HTTP provider at s.ProviderURL, or the in-process simulator.
func Provider(s Settings) (provider.Provider, string) {
	if s.ProviderURL != "" {
		return provider.NewHTTP(s.ProviderURL, s.ProviderKey, nil), "http"
	}
	return provider.NewSimulated(psp.NewSimulator(psp.Config{})), "simulated"
}

// Routes returns the payments module's HTTP routes; every process serves them.
func Routes(b *bus.Bus) httpapi.Routes { return api.Routes(b) }
