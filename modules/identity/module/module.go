// Package module runs the identity module in a process (Module) and serves
// identity's HTTP routes (Routes). The registry (package modules) lists it.
package module

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
	"github.com/agora-commerce/agora/modules/identity/internal/signing"
)

// keyReload is how often identity reads its signing keys again, to follow a
// rotation that another identity replica made.
const keyReload = 30 * time.Second

// Module runs identity in this process: its own database, its signing keys (from
// the database, or the file AGORA_JWT_PRIVATE_KEY_FILE), its request handlers on
// the bus, and, with --demo, the demo accounts in an empty store. It signs with the
// process's *auth.Keys (see Verification).
func Module(s Settings) fx.Option {
	return fx.Module("identity",
		// First, so a process that cannot sign fails before it opens the database.
		fx.Invoke(func() error {
			if s.JWTPrivateKeyFile == "" && s.JWTPublicKeyFile != "" {
				return errors.New("identity: the process that runs identity signs access tokens: give it AGORA_JWT_PRIVATE_KEY_FILE, or no key file (keys in its database), not only a public key")
			}
			return nil
		}),
		modhost.Provide("identity"),
		fx.Provide(
			fx.Private,
			func(h *modhost.Host, keys *auth.Keys) *accounts.Service {
				return accounts.NewService(h.DB, h.Outbox, keys, nil)
			},
			func(h *modhost.Host, keys *auth.Keys) *signing.Keyring {
				db := h.DB
				if s.JWTPrivateKeyFile != "" {
					db = nil // the file is the key
				}
				return signing.New(db, keys, accounts.AccessTTL+auth.Leeway)
			},
		),
		fx.Provide(fx.Annotate(
			func(a *accounts.Service, r *signing.Keyring) []bus.RequestHandler {
				return append(a.Handlers(), r.Handlers()...)
			},
			fx.ResultTags(`group:"bus.requests,flatten"`),
		)),
		fx.Invoke(start),
	)
}

// start loads the signing keys before anything is served, seeds the demo, and runs
// identity's upkeep: reloading keys, purging what no token needs any more.
func start(lc fx.Lifecycle, cfg config.Config, s *accounts.Service, ring *signing.Keyring, keys *auth.Keys, log *slog.Logger) {
	lc.Append(fx.StartHook(func(ctx context.Context) error {
		if err := ring.Load(ctx); err != nil {
			return err
		}
		// Here the keys come from the keyring, not over the bus.
		keys.SetSource(func(ctx context.Context) ([]auth.PublicKey, error) {
			err := ring.Load(ctx)
			return keys.PublicKeys(), err
		})
		return nil
	}))
	if cfg.Demo {
		lc.Append(fx.StartHook(func(ctx context.Context) error { return SeedDemo(ctx, s, log) }))
	}
	reload := modhost.NewLoop("identity key reload", keyReload, log, ring.Load)
	purge := modhost.NewLoop("identity purge", time.Hour, log, func(ctx context.Context) error {
		return purgeAll(ctx, s, ring, log)
	})
	lc.Append(fx.Hook{OnStart: reload.Start, OnStop: reload.Stop})
	lc.Append(fx.Hook{OnStart: purge.Start, OnStop: purge.Stop})
	listen, stopListening := context.WithCancel(context.Background())
	listened := make(chan struct{})
	lc.Append(fx.Hook{
		OnStart: func(context.Context) error {
			go func() { defer close(listened); s.ListenRevocations(listen, log) }()
			return nil
		},
		OnStop: func(ctx context.Context) error {
			stopListening()
			select {
			case <-listened:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		},
	})
}

// purgeAll deletes refresh tokens, revocations and signing keys that can never
// be used again, so that no table grows without bound.
func purgeAll(ctx context.Context, s *accounts.Service, ring *signing.Keyring, log *slog.Logger) error {
	for what, purge := range map[string]func(context.Context) (int64, error){
		"refresh tokens": s.PurgeRefreshTokens, "revocations": s.PurgeRevocations, "signing keys": ring.Purge,
	} {
		n, err := purge(ctx)
		if err != nil {
			return err
		}
		if n > 0 {
			log.Info("purged "+what, "count", n)
		}
	}
	return nil
}

// The demo accounts. Their passwords are public: --demo is for trying Agora out,
// never for a shop that takes real orders.
var demoUsers = []identity.CreateUser{
	{Email: "admin@example.com", Password: "demo-admin-password", Role: identity.RoleAdmin},
	{Email: "customer@example.com", Password: "demo-customer-password", Role: identity.RoleCustomer},
	{Email: "driver@example.com", Password: "demo-driver-password", Role: identity.RoleDriver},
}

// SeedDemo creates the demo admin (admin@example.com), customer
// (customer@example.com) and driver (driver@example.com) in a store with no account; a store that has any
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
		"admin", demoUsers[0].Email, "customer", demoUsers[1].Email, "driver", demoUsers[2].Email)
	return nil
}
