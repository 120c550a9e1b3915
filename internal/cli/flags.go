package cli

import (
	"context"
	"strings"

	ucli "github.com/urfave/cli/v3"

	"github.com/agora-commerce/agora/internal/modhost"
)

// commonFlags are the flags of every command that opens the modules' databases.
func (c *commandLine) commonFlags() []ucli.Flag {
	cfg := &c.cfg
	flags := []ucli.Flag{
		&ucli.StringFlag{Name: "data-dir", Value: cfg.DataDir, Destination: &cfg.DataDir, Sources: ucli.EnvVars("AGORA_DATA_DIR"),
			Usage: "directory for the modules' SQLite files and generated keys"},
		&ucli.StringFlag{Name: "modules", Value: "all", Destination: &c.modules, Sources: ucli.EnvVars("AGORA_MODULES"),
			Usage: "modules that run in this process: all, none, or a comma-separated list of " + strings.Join(modhost.Names(c.mods), ", ")},
		&ucli.StringFlag{Name: "log-level", Value: cfg.LogLevel, Destination: &cfg.LogLevel, Sources: ucli.EnvVars("AGORA_LOG_LEVEL"),
			Usage: "debug, info, warn or error"},
		&ucli.StringFlag{Name: "log-format", Value: cfg.LogFormat, Destination: &cfg.LogFormat, Sources: ucli.EnvVars("AGORA_LOG_FORMAT"),
			Usage: "auto (text on a terminal, JSON otherwise), json or text"},
		&ucli.StringFlag{Name: "database-url", Destination: &cfg.DatabaseURL, Sources: ucli.EnvVars("AGORA_DATABASE_URL"),
			Usage: "PostgreSQL for every module (postgres://user:pass@host:5432/db); each module uses its own schema. Empty: SQLite files under --data-dir"},
		&ucli.IntFlag{Name: "db-max-open-conns", Value: cfg.DBMaxOpenConns, Destination: &cfg.DBMaxOpenConns, Sources: ucli.EnvVars("AGORA_DB_MAX_OPEN_CONNS"),
			Usage: "connections each module's database pool may open"},
		&ucli.IntFlag{Name: "db-max-idle-conns", Value: cfg.DBMaxIdleConns, Destination: &cfg.DBMaxIdleConns, Sources: ucli.EnvVars("AGORA_DB_MAX_IDLE_CONNS"),
			Usage: "idle connections each module's pool keeps"},
		&ucli.DurationFlag{Name: "db-conn-max-lifetime", Value: cfg.DBConnMaxLifetime, Destination: &cfg.DBConnMaxLifetime, Sources: ucli.EnvVars("AGORA_DB_CONN_MAX_LIFETIME"),
			Usage: "PostgreSQL: how long a connection is reused before it is replaced"},
		&ucli.DurationFlag{Name: "db-statement-timeout", Value: cfg.DBStatementTimeout, Destination: &cfg.DBStatementTimeout, Sources: ucli.EnvVars("AGORA_DB_STATEMENT_TIMEOUT"),
			Usage: "PostgreSQL: statement_timeout of every connection (0: none)"},
	}
	for _, m := range c.mods {
		flags = append(flags, &ucli.StringFlag{Name: m.Name + "-database-url", Sources: ucli.EnvVars("AGORA_" + strings.ToUpper(m.Name) + "_DATABASE_URL"),
			Usage: "database URL of the " + m.Name + " module alone, overriding --database-url",
			Action: func(_ context.Context, _ *ucli.Command, v string) error {
				cfg.ModuleDatabaseURLs[m.Name] = v
				return nil
			}})
	}
	return flags
}

// serveFlags are `agora serve`'s: the platform's, the common ones, and every
// module's own settings.
func (c *commandLine) serveFlags() []ucli.Flag {
	cfg := &c.cfg
	flags := []ucli.Flag{
		&ucli.StringFlag{Name: "http-addr", Value: cfg.HTTPAddr, Destination: &cfg.HTTPAddr, Sources: ucli.EnvVars("AGORA_HTTP_ADDR"),
			Usage: "address the HTTP API listens on"},
		&ucli.BoolFlag{Name: "demo", Destination: &cfg.Demo, Sources: ucli.EnvVars("AGORA_DEMO"),
			Usage: "fill an empty store with demo data (accounts with published passwords, a catalog, stock)"},
		&ucli.BoolFlag{Name: "migrate", Value: cfg.MigrateOnStart, Destination: &cfg.MigrateOnStart, Sources: ucli.EnvVars("AGORA_MIGRATE_ON_START"),
			Usage: "apply pending migrations at start"},
		&ucli.DurationFlag{Name: "http-request-timeout", Value: cfg.RequestTimeout, Destination: &cfg.RequestTimeout, Sources: ucli.EnvVars("AGORA_HTTP_REQUEST_TIMEOUT"),
			Usage: "deadline of each HTTP request, including the bus calls it makes"},
		&ucli.Int64Flag{Name: "http-max-body-bytes", Value: cfg.MaxBodyBytes, Destination: &cfg.MaxBodyBytes, Sources: ucli.EnvVars("AGORA_HTTP_MAX_BODY_BYTES"),
			Usage: "largest request body accepted (413 above)"},
		&ucli.IntFlag{Name: "http-max-in-flight", Value: cfg.MaxInFlight, Destination: &cfg.MaxInFlight, Sources: ucli.EnvVars("AGORA_HTTP_MAX_IN_FLIGHT"),
			Usage: "HTTP requests handled at once; more get 503 with Retry-After"},
		&ucli.StringFlag{Name: "metrics-token", Destination: &cfg.MetricsToken, Sources: ucli.EnvVars("AGORA_METRICS_TOKEN"),
			Usage: "bearer token that /metrics requires; empty: /metrics answers the loopback address only"},
		&ucli.StringFlag{Name: "bus-url", Destination: &cfg.BusURL, Sources: ucli.EnvVars("AGORA_BUS_URL"),
			Usage: "connect this process to the others through NATS (nats://host:port, e.g. `agora broker`'s); empty: every module in this process, in-process bus"},
		&ucli.StringFlag{Name: "http-modules", Value: "all", Destination: &c.httpModules, Sources: ucli.EnvVars("AGORA_HTTP_MODULES"),
			Usage: "modules whose HTTP routes this process serves (all, none, or a comma-separated list); routes of modules running elsewhere ask them over the bus"},
		&ucli.IntFlag{Name: "bus-max-in-flight", Value: cfg.BusMaxInFlight, Destination: &cfg.BusMaxInFlight, Sources: ucli.EnvVars("AGORA_BUS_MAX_IN_FLIGHT"),
			Usage: "requests one module handles at once; callers wait up to their deadline, then get 503"},
		&ucli.DurationFlag{Name: "shutdown-timeout", Value: cfg.ShutdownTimeout, Destination: &cfg.ShutdownTimeout, Sources: ucli.EnvVars("AGORA_SHUTDOWN_TIMEOUT"),
			Usage: "how long a stop waits for requests and messages in flight"},
	}
	flags = append(flags, c.commonFlags()...)
	for _, m := range c.mods {
		flags = append(flags, m.Flags...)
	}
	return flags
}
