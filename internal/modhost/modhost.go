// Package modhost hosts a domain module in a process: it opens the module's own
// database, applies the outbox's and the module's migrations, and runs the
// module's outbox relay — the same for every module, so a module's own fx.Module
// only adds its domain.
package modhost

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/fx"

	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/config"
	"github.com/agora-commerce/agora/internal/httpapi"
	"github.com/agora-commerce/agora/internal/outbox"
	"github.com/agora-commerce/agora/internal/store"
	"github.com/agora-commerce/agora/migrations"
)

// Host is what a hosted module gets: its database, its outbox and the dead-letter
// view of that outbox. Modules receive it privately; no other module can resolve it.
type Host struct {
	Name        string
	DB          *store.DB
	Outbox      *outbox.Outbox
	Relay       *outbox.Relay
	DeadLetters *outbox.DeadLetters
}

// Open opens and migrates module's database as cfg says, and returns its Host.
// The caller closes Host.DB.
func Open(ctx context.Context, cfg config.Config, module string, log *slog.Logger) (*Host, error) {
	db, err := OpenDB(ctx, cfg, module)
	if err != nil {
		return nil, err
	}
	if cfg.MigrateOnStart {
		if err := MigrateDB(ctx, db, log); err != nil {
			_ = db.Close()
			return nil, err
		}
	}
	return NewHost(db, log), nil
}

// NewHost returns the Host of an open, migrated module database.
func NewHost(db *store.DB, log *slog.Logger) *Host {
	relay := outbox.NewRelay(db, outbox.RelayConfig{}, log)
	return &Host{Name: db.Module, DB: db, Outbox: outbox.New(db, relay), Relay: relay, DeadLetters: outbox.NewDeadLetters(db, relay)}
}

// OpenDB opens module's own database as cfg says: its schema (named after the
// module) in PostgreSQL when its database URL is postgres://…, else its own SQLite
// file under the data dir.
func OpenDB(ctx context.Context, cfg config.Config, module string) (*store.DB, error) {
	opts := store.Options{MaxOpenConns: cfg.DBMaxOpenConns, MaxIdleConns: cfg.DBMaxIdleConns,
		ConnMaxLifetime: cfg.DBConnMaxLifetime, StatementTimeout: cfg.DBStatementTimeout}
	url := cfg.DatabaseURLFor(module)
	switch {
	case url == "":
		opts.ConnMaxLifetime = 0 // a file needs no reconnecting
		return store.OpenSQLite(ctx, module, filepath.Join(cfg.DataDir, module+".db"), opts)
	case strings.HasPrefix(url, "postgres://"), strings.HasPrefix(url, "postgresql://"):
		return store.OpenPostgres(ctx, module, url, module, opts)
	default:
		return nil, fmt.Errorf("database URL of %s: want postgres://… (or none, for SQLite under the data dir)", module)
	}
}

// MigrateDB applies the outbox's migrations and then the module's own to db.
func MigrateDB(ctx context.Context, db *store.DB, log *slog.Logger) error {
	if err := outbox.Migrate(ctx, db, log); err != nil {
		return err
	}
	own, err := migrations.For(db.Module, string(db.Dialect))
	if err != nil {
		return fmt.Errorf("modhost: %w", err)
	}
	return store.Migrate(ctx, db, own, "goose_db_version", log)
}

// Provide returns the fx options that host module: a private *Host (opened at
// construction, closed on stop), its relay started once the bus exists and stopped
// before the database closes, a readiness check on its database, and its ops routes.
func Provide(module string) fx.Option {
	return fx.Options(
		fx.Provide(
			fx.Private,
			func(lc fx.Lifecycle, cfg config.Config, log *slog.Logger) (*Host, error) {
				h, err := Open(context.Background(), cfg, module, log)
				if err != nil {
					return nil, err
				}
				lc.Append(fx.StopHook(func() error { return h.DB.Close() }))
				return h, nil
			},
		),
		fx.Provide(
			fx.Annotate(func(h *Host) httpapi.Check {
				return httpapi.Check{Name: "db:" + module, Check: h.DB.PingContext}
			}, fx.ResultTags(`group:"health.checks"`)),
			fx.Annotate(func(h *Host) []bus.RequestHandler {
				return opsHandlers(module, h.DeadLetters)
			}, fx.ResultTags(`group:"bus.requests,flatten"`)),
			// Which process runs the module, for the topology view.
			processHandler(module),
			// The module's connection pool (go_sql_*{db_name="<module>"}), its
			// commits and its outbox backlog, for /metrics.
			fx.Annotate(func(h *Host) []prometheus.Collector {
				return append(CommitCollectors(h.DB),
					collectors.NewDBStatsCollector(h.DB.DB.DB, module), h.DeadLetters.Collector())
			}, fx.ResultTags(`group:"metrics.collectors,flatten"`)),
		),
		fx.Invoke(func(lc fx.Lifecycle, h *Host, b *bus.Bus) {
			lc.Append(fx.Hook{
				OnStart: func(context.Context) error { h.Relay.Start(b); return nil },
				OnStop:  h.Relay.Stop,
			})
		}),
	)
}

// ProvideProcess returns the fx options of a module that owns no data (see
// Module.Stateless): it answers only which process runs it, for the topology view.
func ProvideProcess(module string) fx.Option {
	return fx.Provide(processHandler(module))
}

// processHandler answers <module>.ops.Process with this process (from fx when the
// app supplies it, else described from the configuration).
func processHandler(module string) any {
	return fx.Annotate(func(cfg config.Config, p *Process) bus.RequestHandler {
		if p == nil {
			np := NewProcess(cfg, "")
			p = &np
		}
		return bus.Handle(ProcessRequest(module), func(context.Context, struct{}) (Process, error) { return *p, nil })
	}, fx.ParamTags(``, `optional:"true"`), fx.ResultTags(`group:"bus.requests"`))
}

// CommitCollectors returns db's commit counters, labelled with its module:
// agora_db_commits_total (database commits; on SQLite a group commit counts
// once) and agora_db_transactions_committed_total (transactions committed through
// store.InTx; on SQLite several share a commit). Reads and statements run outside
// store.InTx are in neither.
func CommitCollectors(db *store.DB) []prometheus.Collector {
	labels := prometheus.Labels{"module": db.Module}
	return []prometheus.Collector{
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "agora", Subsystem: "db", Name: "commits_total",
			Help:        "Database commits of the module's transactions (on SQLite a group commit counts once).",
			ConstLabels: labels}, func() float64 { return float64(db.Commits().Commits) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "agora", Subsystem: "db", Name: "transactions_committed_total",
			Help:        "The module's transactions that committed (on SQLite several can share one database commit).",
			ConstLabels: labels}, func() float64 { return float64(db.Commits().Transactions) }),
	}
}
