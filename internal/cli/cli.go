// Package cli is the agora command line: `agora serve`, `agora migrate` and
// `agora openapi`. Every option is a flag and an AGORA_* environment variable.
package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	ucli "github.com/urfave/cli/v3"
	"go.uber.org/fx"

	"github.com/agora-commerce/agora/internal/app"
	"github.com/agora-commerce/agora/internal/config"
	"github.com/agora-commerce/agora/internal/httpapi"
	"github.com/agora-commerce/agora/internal/logging"
	"github.com/agora-commerce/agora/internal/modhost"
)

// Run runs the command line args (args[0] is the program name) and returns the
// process exit code.
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	cfg := config.Default()
	var modules, httpModules string
	common := []ucli.Flag{
		&ucli.StringFlag{Name: "data-dir", Value: cfg.DataDir, Destination: &cfg.DataDir, Sources: ucli.EnvVars("AGORA_DATA_DIR"),
			Usage: "directory for the modules' SQLite files and generated keys"},
		&ucli.StringFlag{Name: "modules", Value: "all", Destination: &modules, Sources: ucli.EnvVars("AGORA_MODULES"),
			Usage: "modules that run in this process: all, none, or a comma-separated list of " + strings.Join(config.AllModules, ", ")},
		&ucli.StringFlag{Name: "log-level", Value: cfg.LogLevel, Destination: &cfg.LogLevel, Sources: ucli.EnvVars("AGORA_LOG_LEVEL"),
			Usage: "debug, info, warn or error"},
		&ucli.StringFlag{Name: "log-format", Value: cfg.LogFormat, Destination: &cfg.LogFormat, Sources: ucli.EnvVars("AGORA_LOG_FORMAT"),
			Usage: "auto (text on a terminal, JSON otherwise), json or text"},
		&ucli.StringFlag{Name: "jwt-private-key-file", Destination: &cfg.JWTPrivateKeyFile, Sources: ucli.EnvVars("AGORA_JWT_PRIVATE_KEY_FILE"),
			Usage: "Ed25519 private key (PKCS#8 PEM) that signs access tokens, for the process that runs identity (default: keys in identity's database)"},
		&ucli.StringFlag{Name: "jwt-public-key-file", Destination: &cfg.JWTPublicKeyFile, Sources: ucli.EnvVars("AGORA_JWT_PUBLIC_KEY_FILE"),
			Usage: "Ed25519 public key (PKIX PEM) for processes that verify tokens but do not run identity (default: fetched from identity over the bus)"},
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
	for _, m := range config.AllModules {
		env := "AGORA_" + strings.ToUpper(m) + "_DATABASE_URL"
		common = append(common, &ucli.StringFlag{Name: m + "-database-url", Sources: ucli.EnvVars(env),
			Usage: "database URL of the " + m + " module alone, overriding --database-url",
			Action: func(_ context.Context, _ *ucli.Command, v string) error {
				cfg.ModuleDatabaseURLs[m] = v
				return nil
			}})
	}
	serveFlags := append([]ucli.Flag{
		&ucli.StringFlag{Name: "http-addr", Value: cfg.HTTPAddr, Destination: &cfg.HTTPAddr, Sources: ucli.EnvVars("AGORA_HTTP_ADDR"),
			Usage: "address the HTTP API listens on"},
		&ucli.BoolFlag{Name: "demo", Destination: &cfg.Demo, Sources: ucli.EnvVars("AGORA_DEMO"),
			Usage: "fill an empty store with a demo catalog"},
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
		&ucli.StringFlag{Name: "http-modules", Value: "all", Destination: &httpModules, Sources: ucli.EnvVars("AGORA_HTTP_MODULES"),
			Usage: "modules whose HTTP routes this process serves (all, none, or a comma-separated list); routes of modules running elsewhere ask them over the bus"},
		&ucli.IntFlag{Name: "bus-max-in-flight", Value: cfg.BusMaxInFlight, Destination: &cfg.BusMaxInFlight, Sources: ucli.EnvVars("AGORA_BUS_MAX_IN_FLIGHT"),
			Usage: "requests one module handles at once; callers wait up to their deadline, then get 503"},
		&ucli.DurationFlag{Name: "catalog-cache-ttl", Value: cfg.CatalogCacheTTL, Destination: &cfg.CatalogCacheTTL, Sources: ucli.EnvVars("AGORA_CATALOG_CACHE_TTL"),
			Usage: "how stale a product read may be when other processes write the same catalog database (this process's own writes are never served stale); negative disables the cache"},
		&ucli.IntFlag{Name: "auth-per-ip-per-minute", Value: cfg.AuthPerIPPerMinute, Destination: &cfg.AuthPerIPPerMinute, Sources: ucli.EnvVars("AGORA_AUTH_PER_IP_PER_MINUTE"),
			Usage: "sign-in and sign-up attempts allowed per client address and minute (raise it for load tests from one address)"},
		&ucli.DurationFlag{Name: "reservation-ttl", Value: cfg.ReservationTTL, Destination: &cfg.ReservationTTL, Sources: ucli.EnvVars("AGORA_RESERVATION_TTL"),
			Usage: "how long inventory holds stock for a checkout that does not finish"},
		&ucli.DurationFlag{Name: "saga-step-timeout", Value: cfg.SagaStepTimeout, Destination: &cfg.SagaStepTimeout, Sources: ucli.EnvVars("AGORA_SAGA_STEP_TIMEOUT"),
			Usage: "how long the checkout saga waits for a step before sending its command again"},
		&ucli.IntFlag{Name: "saga-max-attempts", Value: cfg.SagaMaxAttempts, Destination: &cfg.SagaMaxAttempts, Sources: ucli.EnvVars("AGORA_SAGA_MAX_ATTEMPTS"),
			Usage: "times a saga step is sent before the checkout is compensated"},
		&ucli.StringFlag{Name: "payment-provider-url", Destination: &cfg.PaymentProviderURL, Sources: ucli.EnvVars("AGORA_PAYMENT_PROVIDER_URL"),
			Usage: "the HTTP payment provider (e.g. `agora psp`); empty uses the in-process simulated provider"},
		&ucli.StringFlag{Name: "payment-provider-key", Destination: &cfg.PaymentProviderKey, Sources: ucli.EnvVars("AGORA_PAYMENT_PROVIDER_KEY"),
			Usage: "the payment provider's API key"},
		&ucli.DurationFlag{Name: "payment-timeout", Value: cfg.PaymentTimeout, Destination: &cfg.PaymentTimeout, Sources: ucli.EnvVars("AGORA_PAYMENT_TIMEOUT"),
			Usage: "deadline of one payment-provider call"},
		&ucli.IntFlag{Name: "payment-retries", Value: cfg.PaymentRetries, Destination: &cfg.PaymentRetries, Sources: ucli.EnvVars("AGORA_PAYMENT_RETRIES"),
			Usage: "retries of a retryable payment-provider failure"},
		&ucli.StringFlag{Name: "smtp-url", Destination: &cfg.SMTPURL, Sources: ucli.EnvVars("AGORA_SMTP_URL"),
			Usage: "send notification emails through this server (smtp://user:pass@host:port); empty sends none"},
		&ucli.StringFlag{Name: "smtp-from", Value: cfg.SMTPFrom, Destination: &cfg.SMTPFrom, Sources: ucli.EnvVars("AGORA_SMTP_FROM"),
			Usage: "the sender of notification emails"},
		&ucli.DurationFlag{Name: "shutdown-timeout", Value: cfg.ShutdownTimeout, Destination: &cfg.ShutdownTimeout, Sources: ucli.EnvVars("AGORA_SHUTDOWN_TIMEOUT"),
			Usage: "how long a stop waits for requests and messages in flight"},
	}, common...)

	var log *slog.Logger
	setup := func(ctx context.Context, cmd *ucli.Command) (context.Context, error) {
		m, err := config.ParseModules(modules)
		if err != nil {
			return ctx, err
		}
		cfg.Modules = m
		if cmd.IsSet("http-modules") {
			if cfg.HTTPModules, err = config.ParseModules(httpModules); err != nil {
				return ctx, fmt.Errorf("http modules: %w", err)
			}
		}
		log, err = logging.New(stderr, cfg.LogLevel, cfg.LogFormat)
		return ctx, err
	}

	root := &ucli.Command{
		Name:      "agora",
		Usage:     "a commerce backend: one binary that splits into services by configuration",
		Version:   app.BuildVersion(),
		Writer:    stdout,
		ErrWriter: stderr,
		Commands: []*ucli.Command{
			{
				Name:   "serve",
				Usage:  "run the modules and the HTTP API (SQLite under --data-dir by default)",
				Flags:  serveFlags,
				Before: setup,
				Action: func(ctx context.Context, _ *ucli.Command) error { return serve(ctx, cfg, log) },
			},
			{
				Name:   "migrate",
				Usage:  "apply pending migrations to the databases of --modules, then exit",
				Flags:  common,
				Before: setup,
				Action: func(ctx context.Context, _ *ucli.Command) error { return migrate(ctx, cfg, log) },
			},
			{
				Name:  "admin",
				Usage: "operator tasks",
				Commands: []*ucli.Command{{
					Name:  "create",
					Usage: "create an admin account (the first admin, or another); the password comes from AGORA_ADMIN_PASSWORD or standard input",
					// --modules is left out: the command always runs identity alone.
					Flags: append([]ucli.Flag{
						&ucli.StringFlag{Name: "email", Required: true, Usage: "the admin's email"},
					}, slices.DeleteFunc(slices.Clone(common), func(f ucli.Flag) bool { return f.Names()[0] == "modules" })...),
					Before: setup,
					Action: func(ctx context.Context, cmd *ucli.Command) error {
						password, err := readPassword(stdin)
						if err != nil {
							return err
						}
						return app.CreateAdmin(ctx, cfg, log, cmd.String("email"), password)
					},
				}},
			},
			brokerCommand(stdout, stderr),
			pspCommand(stdout, stderr),
			loadgenCommand(stdout, stderr),
			{
				Name:  "openapi",
				Usage: "print the OpenAPI 3.1 document of the HTTP API",
				Flags: []ucli.Flag{&ucli.StringFlag{Name: "format", Value: "json", Usage: "json or yaml"}},
				Action: func(ctx context.Context, cmd *ucli.Command) error {
					return printOpenAPI(stdout, cmd.String("format"))
				},
			},
		},
	}
	if err := root.Run(ctx, args); err != nil {
		if log != nil {
			log.Error("agora failed", "err", err) // in the configured format, for log collectors
		} else {
			fmt.Fprintln(stderr, "agora:", err)
		}
		return 1
	}
	return 0
}

func serve(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	a := fx.New(app.Serve(cfg, log))
	if err := a.Err(); err != nil {
		return err
	}
	startCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := a.Start(startCtx); err != nil {
		return err
	}
	<-ctx.Done() // SIGINT or SIGTERM
	stopCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := a.Stop(stopCtx); err != nil {
		return fmt.Errorf("stop: %w", err)
	}
	log.Info("agora stopped")
	return nil
}

func migrate(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	cfg.MigrateOnStart = true
	for _, m := range cfg.Modules {
		h, err := modhost.Open(ctx, cfg, m, log)
		if err != nil {
			return err
		}
		if err := h.DB.Close(); err != nil {
			return err
		}
		log.Info("migrations are up to date", "module", m)
	}
	return nil
}

// printOpenAPI prints the spec of a process that runs no module: every module's
// routes are registered all the same, and no database is opened.
func printOpenAPI(w io.Writer, format string) error {
	cfg := config.Default()
	cfg.Modules = nil
	cfg.DataDir = "" // no key is generated: the document needs none
	var api *httpapi.API
	a := fx.New(app.Options(cfg, slog.New(slog.DiscardHandler)), fx.NopLogger, fx.Populate(&api))
	if err := a.Err(); err != nil {
		return err
	}
	var out []byte
	var err error
	switch format {
	case "json":
		out, err = api.OpenAPI().MarshalJSON()
		out = append(indentJSON(out), '\n')
	case "yaml":
		out, err = api.OpenAPI().YAML()
	default:
		return errors.New("--format must be json or yaml")
	}
	if err != nil {
		return err
	}
	_, err = w.Write(out)
	return err
}

func indentJSON(b []byte) []byte {
	var buf bytes.Buffer
	if json.Indent(&buf, b, "", "  ") != nil {
		return b
	}
	return buf.Bytes()
}

// readPassword takes the admin password from AGORA_ADMIN_PASSWORD, or else the first
// line of stdin.
func readPassword(stdin io.Reader) (string, error) {
	password := os.Getenv("AGORA_ADMIN_PASSWORD")
	if password == "" && stdin != nil {
		line, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", fmt.Errorf("read the password from standard input: %w", err)
		}
		password = strings.TrimRight(line, "\r\n")
	}
	if password == "" {
		return "", errors.New("give the password in AGORA_ADMIN_PASSWORD or on standard input")
	}
	return password, nil
}
