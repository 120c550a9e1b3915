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
		modhost.Setting(&cfg.DataDir, "data-dir", "directory for the modules' SQLite files and generated keys"),
		modhost.Setting(&c.modules, "modules", "modules that run in this process: all, none, or a comma-separated list of "+strings.Join(modhost.Names(c.mods), ", ")),
		modhost.Setting(&cfg.LogLevel, "log-level", "debug, info, warn or error"),
		modhost.Setting(&cfg.LogFormat, "log-format", "auto (text on a terminal, JSON otherwise), json or text"),
		modhost.Setting(&cfg.DatabaseURL, "database-url", "PostgreSQL for every module (postgres://user:pass@host:5432/db); each module uses its own schema. Empty: SQLite files under --data-dir"),
		modhost.Setting(&cfg.DBMaxOpenConns, "db-max-open-conns", "connections each module's database pool may open"),
		modhost.Setting(&cfg.DBMaxIdleConns, "db-max-idle-conns", "idle connections each module's pool keeps"),
		modhost.Setting(&cfg.DBConnMaxLifetime, "db-conn-max-lifetime", "PostgreSQL: how long a connection is reused before it is replaced"),
		modhost.Setting(&cfg.DBStatementTimeout, "db-statement-timeout", "PostgreSQL: statement_timeout of every connection (0: none)"),
	}
	for _, m := range c.mods {
		flags = append(flags, &ucli.StringFlag{Name: m.Name + "-database-url", Sources: ucli.EnvVars(modhost.EnvName(m.Name + "-database-url")),
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
		modhost.Setting(&cfg.HTTPAddr, "http-addr", "address the HTTP API listens on"),
		modhost.Setting(&cfg.Demo, "demo", "fill an empty store with demo data (accounts with published passwords, a catalog, stock)"),
		&ucli.BoolFlag{Name: "migrate", Value: cfg.MigrateOnStart, Destination: &cfg.MigrateOnStart, Sources: ucli.EnvVars("AGORA_MIGRATE_ON_START"),
			Usage: "apply pending migrations at start"},
		modhost.Setting(&cfg.RequestTimeout, "http-request-timeout", "deadline of each HTTP request, including the bus calls it makes"),
		modhost.Setting(&cfg.MaxBodyBytes, "http-max-body-bytes", "largest request body accepted (413 above)"),
		modhost.Setting(&cfg.MaxInFlight, "http-max-in-flight", "HTTP requests handled at once; more get 503 with Retry-After"),
		modhost.Setting(&cfg.DebugAddr, "debug-addr", "loopback address (127.0.0.1:port) serving Go's profiles at /debug/pprof/, for profiling under load; empty: none"),
		modhost.Setting(&cfg.MetricsToken, "metrics-token", "bearer token that /metrics requires; empty: /metrics answers the loopback address only"),
		modhost.Setting(&cfg.BusURL, "bus-url", "connect this process to the others through NATS (nats://host:port, e.g. `agora broker`'s); empty: every module in this process, in-process bus"),
		modhost.Setting(&c.httpModules, "http-modules", "modules whose HTTP routes this process serves (all, none, or a comma-separated list); routes of modules running elsewhere ask them over the bus"),
		modhost.Setting(&cfg.BusOutageWait, "bus-outage-wait", "how long a request to another process waits for a lost broker before failing with 503 and Retry-After"),
		modhost.Setting(&cfg.BusMaxInFlight, "bus-max-in-flight", "requests one module handles at once; callers wait up to their deadline, then get 503"),
		modhost.Setting(&cfg.ShutdownTimeout, "shutdown-timeout", "how long a stop waits for requests and messages in flight"),
		modhost.Setting(&cfg.Faults, "faults", "inject faults into the bus, for tests and demos: rules like 'seed=7; drop type=payments. p=0.2; crash module=inventory p=0.1', inline JSON or a .json file (needs --demo or --allow-faults)"),
		modhost.Setting(&cfg.AllowFaults, "allow-faults", "allow fault injection (--faults, PUT /v1/ops/faults) without --demo; never in production"),
	}
	flags = append(flags, c.commonFlags()...)
	for _, m := range c.mods {
		flags = append(flags, m.Flags...)
	}
	return flags
}
