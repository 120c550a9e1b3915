package loadgen

import (
	"context"
	"encoding/json"
	"io"
	"math/rand/v2"
	"strings"

	ucli "github.com/urfave/cli/v3"
)

// Command is `agora loadgen`: it drives load against a running Agora through its HTTP API and
// reports throughput, outcomes, errors and latencies (see package loadgen).
func Command(stdout, stderr io.Writer) *ucli.Command {
	def := DefaultConfig()
	return &ucli.Command{
		Name:  "loadgen",
		Usage: "drive checkouts and catalog traffic against a running Agora and report what it measured",
		Description: "Warms up (signs in customers and the admin, reads the catalog, restocks), then launches checkouts at\n" +
			"--rate per second for --duration (an open model: launches that find no room are counted as dropped),\n" +
			"with catalog browsing alongside. Progress goes to standard error every second; the report to standard\n" +
			"output at the end (JSON with --json), also after Ctrl-C.",
		Flags: flags(def),
		Action: func(ctx context.Context, cmd *ucli.Command) error {
			cfg, err := configFrom(cmd, def)
			if err != nil {
				return err
			}
			rep, err := Run(ctx, cfg, stderr)
			if err != nil {
				return err
			}
			if cmd.Bool("json") {
				enc := json.NewEncoder(stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(rep)
			}
			return rep.WriteText(stdout)
		},
	}
}

// flags are the command's flags, with def's values as defaults.
func flags(def Config) []ucli.Flag {
	env := func(name string) ucli.ValueSourceChain { return ucli.EnvVars("AGORA_LOADGEN_" + name) }
	return append([]ucli.Flag{
		&ucli.StringSliceFlag{Name: "url", Value: def.URLs, Sources: env("URL"),
			Usage: "base URL of the API; repeat it or give a comma list to spread requests over several processes"},
		&ucli.DurationFlag{Name: "duration", Value: def.Duration, Sources: env("DURATION"), Usage: "the timed window"},
		&ucli.FloatFlag{Name: "rate", Value: def.Rate, Sources: env("RATE"), Usage: "checkouts launched per second"},
		&ucli.StringFlag{Name: "browse-rate", Value: "2x", Sources: env("BROWSE_RATE"),
			Usage: "catalog requests per second alongside (e.g. 100), or a multiple of --rate (e.g. 2x); 0: none"},
		&ucli.IntFlag{Name: "customers", Value: def.Customers, Sources: env("CUSTOMERS"),
			Usage: "customer accounts placing orders (one checkout at a time each; sign-in is rate-limited, so more take longer to warm up)"},
		&ucli.StringFlag{Name: "tokens", Value: DefaultTokens, Sources: env("TOKENS"),
			Usage: "payment-token mix, token=weight,…"},
		&ucli.IntFlag{Name: "items", Value: def.MaxItems, Sources: env("ITEMS"), Usage: "most distinct products in one cart (1 to this many)"},
		&ucli.IntFlag{Name: "max-in-flight", Value: def.MaxInFlight, Sources: env("MAX_IN_FLIGHT"),
			Usage: "checkouts (and, separately, browse requests) in flight at most; launches beyond are dropped"},
		&ucli.StringFlag{Name: "await", Value: def.Await, Sources: env("AWAIT"),
			Usage: "how to await an order's terminal status: sse (its event stream) or poll"},
		&ucli.DurationFlag{Name: "poll-interval", Value: def.PollInterval, Sources: env("POLL_INTERVAL"), Usage: "wait between polls with --await poll"},
		&ucli.DurationFlag{Name: "order-timeout", Value: def.OrderTimeout, Sources: env("ORDER_TIMEOUT"),
			Usage: "longest wait from an order's POST to its terminal status"},
		&ucli.DurationFlag{Name: "request-timeout", Value: def.RequestTimeout, Sources: env("REQUEST_TIMEOUT"), Usage: "deadline of one HTTP request"},
		&ucli.DurationFlag{Name: "retry-for", Value: def.RetryFor, Sources: env("RETRY_FOR"),
			Usage: "how long a request safe to repeat is sent again (the checkout with its Idempotency-Key) while it gets no answer or a 502/503/504; 0: once"},
		&ucli.DurationFlag{Name: "drain", Value: def.Drain, Sources: env("DRAIN"),
			Usage: "how long checkouts in flight at the end of the window may take to finish"},
		&ucli.StringFlag{Name: "admin-email", Value: def.AdminEmail, Sources: env("ADMIN_EMAIL"), Usage: "the admin that restocks"},
		&ucli.StringFlag{Name: "admin-password", Value: def.AdminPassword, Sources: env("ADMIN_PASSWORD"), Usage: "the admin's password"},
		&ucli.StringFlag{Name: "restock", Value: "100:1000", Sources: env("RESTOCK"),
			Usage: "BELOW:AMOUNT: add AMOUNT units to a product whose available stock is below BELOW; off: never"},
		&ucli.BoolFlag{Name: "json", Sources: env("JSON"), Usage: "print the report as JSON"},
		&ucli.Uint64Flag{Name: "seed", Sources: env("SEED"), Usage: "seed of the random choices (0: a random seed)"},
		&ucli.StringFlag{Name: "scenario", Value: def.Scenario, Sources: env("SCENARIO"),
			Usage: "shop (checkouts and browsing) or rides (driver positions, then rides dispatched to drivers)"},
	}, ridesFlags(def.Rides)...)
}

// ridesFlags are the rides scenario's flags, with def's values as defaults.
func ridesFlags(def RidesConfig) []ucli.Flag {
	env := func(name string) ucli.ValueSourceChain { return ucli.EnvVars("AGORA_LOADGEN_" + name) }
	return []ucli.Flag{
		&ucli.IntFlag{Name: "drivers", Value: def.Drivers, Sources: env("DRIVERS"),
			Usage: "rides: fleet-operated drivers whose positions the ingest phase sends"},
		&ucli.FloatFlag{Name: "position-rate", Value: def.PositionRate, Sources: env("POSITION_RATE"),
			Usage: "rides: position updates a second in the ingest phase"},
		&ucli.DurationFlag{Name: "ingest", Value: def.Ingest, Sources: env("INGEST"), Usage: "rides: length of the ingest phase"},
		&ucli.IntFlag{Name: "batch", Value: def.Batch, Sources: env("BATCH"), Usage: "rides: positions in one POST /v1/fleet/positions (1 to 1000)"},
		&ucli.IntFlag{Name: "ingest-concurrency", Value: def.Concurrency, Sources: env("INGEST_CONCURRENCY"),
			Usage: "rides: position batches in flight at most; a batch beyond is dropped"},
		&ucli.IntFlag{Name: "ride-drivers", Value: def.RideDrivers, Sources: env("RIDE_DRIVERS"),
			Usage: "rides: driver accounts (loadgen-driver-NNNN@example.com) serving rides in the dispatch phase"},
		&ucli.IntFlag{Name: "riders", Value: def.Riders, Sources: env("RIDERS"),
			Usage: "rides: customer accounts requesting rides (one ride at a time each)"},
		&ucli.FloatFlag{Name: "ride-rate", Value: def.RideRate, Sources: env("RIDE_RATE"), Usage: "rides: ride requests a second in the dispatch phase"},
		&ucli.DurationFlag{Name: "dispatch", Value: def.Dispatch, Sources: env("DISPATCH"), Usage: "rides: length of the dispatch phase"},
		&ucli.FloatFlag{Name: "trip-speed", Value: def.TripSpeed, Sources: env("TRIP_SPEED"),
			Usage: "rides: simulated speed (m/s) of drivers going to the pickup and driving the trip"},
		&ucli.DurationFlag{Name: "ride-timeout", Value: def.RideTimeout, Sources: env("RIDE_TIMEOUT"),
			Usage: "rides: longest wait from a ride's request to its final status"},
		&ucli.StringFlag{Name: "metrics-token", Sources: env("METRICS_TOKEN"),
			Usage: "bearer token for /metrics (without one, /metrics answers the loopback address only)"},
		&ucli.StringFlag{Name: "database-url", Sources: env("DATABASE_URL"),
			Usage: "shop: the server's PostgreSQL database (postgres://…), to report its commits per checkout"},
	}
}

// configFrom reads the run's configuration from cmd's flags, def for the rest.
func configFrom(cmd *ucli.Command, def Config) (Config, error) {
	cfg := def
	cfg.URLs = nil
	for _, u := range cmd.StringSlice("url") {
		for part := range strings.SplitSeq(u, ",") {
			if part = strings.TrimSpace(part); part != "" {
				cfg.URLs = append(cfg.URLs, part)
			}
		}
	}
	cfg.Duration = cmd.Duration("duration")
	cfg.Rate = cmd.Float("rate")
	var err error
	if cfg.BrowseRate, err = ParseBrowseRate(cmd.String("browse-rate"), cfg.Rate); err != nil {
		return cfg, err
	}
	cfg.Customers = cmd.Int("customers")
	if cfg.Tokens, err = ParseTokenMix(cmd.String("tokens")); err != nil {
		return cfg, err
	}
	cfg.MaxItems = cmd.Int("items")
	cfg.MaxInFlight = cmd.Int("max-in-flight")
	cfg.Await = cmd.String("await")
	cfg.PollInterval = cmd.Duration("poll-interval")
	cfg.OrderTimeout = cmd.Duration("order-timeout")
	cfg.RequestTimeout = cmd.Duration("request-timeout")
	cfg.RetryFor = cmd.Duration("retry-for")
	cfg.Drain = cmd.Duration("drain")
	cfg.AdminEmail = cmd.String("admin-email")
	cfg.AdminPassword = cmd.String("admin-password")
	if cfg.Restock, err = ParseRestock(cmd.String("restock")); err != nil {
		return cfg, err
	}
	if cfg.Seed = cmd.Uint64("seed"); cfg.Seed == 0 {
		cfg.Seed = rand.Uint64()
	}
	cfg.Scenario = cmd.String("scenario")
	cfg.DatabaseURL = cmd.String("database-url")
	cfg.Rides = RidesConfig{
		Drivers: cmd.Int("drivers"), PositionRate: cmd.Float("position-rate"), Ingest: cmd.Duration("ingest"),
		Batch: cmd.Int("batch"), Concurrency: cmd.Int("ingest-concurrency"),
		RideDrivers: cmd.Int("ride-drivers"), Riders: cmd.Int("riders"), RideRate: cmd.Float("ride-rate"),
		Dispatch: cmd.Duration("dispatch"), TripSpeed: cmd.Float("trip-speed"), RideTimeout: cmd.Duration("ride-timeout"),
		MetricsToken: cmd.String("metrics-token"),
	}
	return cfg, nil
}
