// Package service runs the identity module in a process (Module) and serves
// identity's HTTP routes (Routes). Only internal/app imports it.
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"go.uber.org/fx"

	"github.com/agora-commerce/agora/internal/auth"
	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/config"
	"github.com/agora-commerce/agora/internal/modhost"
	"github.com/agora-commerce/agora/modules/identity"
	"github.com/agora-commerce/agora/modules/identity/internal/accounts"
)

// Module runs identity in this process: its own database, its request handlers on
// the bus, and, with --demo, the demo accounts in an empty store. It needs the
// *auth.Keys of the process, with the private key: identity signs access tokens.
func Module() fx.Option {
	return fx.Module("identity",
		// First, so a process that cannot sign fails before it opens the database.
		fx.Invoke(func(keys *auth.Keys) error {
			if !keys.CanSign() {
				return errors.New("identity: the process that runs identity needs the private key that signs access tokens (AGORA_JWT_PRIVATE_KEY_FILE), not only the public key")
			}
			return nil
		}),
		modhost.Provide("identity"),
		fx.Provide(
			fx.Private,
			func(h *modhost.Host, keys *auth.Keys) *accounts.Service {
				return accounts.NewService(h.DB, h.Outbox, keys, nil)
			},
		),
		fx.Provide(fx.Annotate(
			func(s *accounts.Service) []bus.RequestHandler { return s.Handlers() },
			fx.ResultTags(`group:"bus.requests,flatten"`),
		)),
		fx.Invoke(func(lc fx.Lifecycle, cfg config.Config, s *accounts.Service, log *slog.Logger) {
			if cfg.Demo {
				lc.Append(fx.StartHook(func(ctx context.Context) error { return SeedDemo(ctx, s, log) }))
			}
			purge := newPurger(s, time.Hour, log)
			lc.Append(fx.Hook{OnStart: purge.start, OnStop: purge.stop})
		}),
	)
}

// purger deletes refresh tokens that can never be accepted again, at start and then
// every interval, so the table does not grow without bound.
type purger struct {
	s        *accounts.Service
	interval time.Duration
	log      *slog.Logger
	cancel   context.CancelFunc
	done     chan struct{}
}

func newPurger(s *accounts.Service, interval time.Duration, log *slog.Logger) *purger {
	return &purger{s: s, interval: interval, log: log}
}

func (p *purger) start(context.Context) error {
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel, p.done = cancel, make(chan struct{})
	go func() {
		defer close(p.done)
		t := time.NewTicker(p.interval)
		defer t.Stop()
		for {
			if n, err := p.s.PurgeRefreshTokens(ctx); err != nil && ctx.Err() == nil {
				p.log.Warn("purging refresh tokens failed", "err", err)
			} else if n > 0 {
				p.log.Info("purged refresh tokens", "count", n)
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return nil
}

func (p *purger) stop(ctx context.Context) error {
	p.cancel()
	select {
	case <-p.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// The demo accounts. Their passwords are public: --demo is for trying Agora out,
// never for a shop that takes real orders.
var demoUsers = []identity.CreateUser{
	{Email: "admin@example.com", Password: "demo-admin-password", Role: identity.RoleAdmin},
	{Email: "customer@example.com", Password: "demo-customer-password", Role: identity.RoleCustomer},
}

// SeedDemo creates the demo admin (admin@example.com) and customer
// (customer@example.com) in a store with no account; a store that has any
// account is left alone.
func SeedDemo(ctx context.Context, s *accounts.Service, log *slog.Logger) error {
	n, err := s.Count(ctx)
	if err != nil || n > 0 {
		return err
	}
	for _, u := range demoUsers {
		if _, err := s.CreateUser(ctx, u); err != nil {
			return fmt.Errorf("identity demo user %s: %w", u.Email, err)
		}
	}
	log.Warn("demo accounts created with publicly known passwords; do not use --demo for a real shop",
		"admin", demoUsers[0].Email, "customer", demoUsers[1].Email)
	return nil
}
