// Package app turns a configuration into the fx application of one Agora process:
// the modules that run here, the bus that connects them, and the HTTP API that
// serves every module's routes.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"strings"
	"time"

	agoraapi "github.com/agora-commerce/agora/api"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/fx"
	"go.uber.org/fx/fxevent"

	"github.com/agora-commerce/agora/internal/apidocs"
	"github.com/agora-commerce/agora/internal/auth"
	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/config"
	"github.com/agora-commerce/agora/internal/faults"
	"github.com/agora-commerce/agora/internal/httpapi"
	"github.com/agora-commerce/agora/internal/modhost"
	"github.com/agora-commerce/agora/internal/natsbus"
	"github.com/agora-commerce/agora/internal/telemetry"
	"github.com/agora-commerce/agora/modules"
)

// Version is the build's version, set with -ldflags "-X …/internal/app.Version=v1.2.3".
var Version = ""

// BuildVersion returns Version, or the module version the binary was built from.
func BuildVersion() string {
	if Version != "" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// Modules returns every module of the registry with its default settings, fresh:
// what a command line configures and then hands to Options.
func Modules() []modhost.Module { return modules.All() }

// Options returns the fx options of a process configured by cfg, whose binary has
// the modules mods (Modules, configured).
func Options(cfg config.Config, mods []modhost.Module, log *slog.Logger) fx.Option {
	proc := modhost.NewProcess(cfg, BuildVersion())
	names := modhost.Names(mods)
	opts := []fx.Option{
		fx.Supply(cfg, log, &proc, modhost.NewRoster(mods)),
		// First, so that tracing is flushed last when the app stops.
		telemetry.Module(telemetry.Config{Version: proc.Version, Modules: proc.Modules, Transport: proc.Transport}),
		fx.WithLogger(func() fxevent.Logger {
			l := &fxevent.SlogLogger{Logger: log}
			l.UseLogLevel(slog.LevelDebug)
			return l
		}),
		fx.Provide(
			newTransport,
			newFaults,
			fx.Annotate(newBus, fx.ParamTags(``, ``, ``, ``, `group:"bus.requests"`, `group:"bus.subscriptions"`)),
			fx.Annotate(newAPI, fx.ParamTags(``, ``, ``, ``, `group:"http.routes"`, `group:"health.checks"`)),
			fx.Annotate(func(b *bus.Bus) httpapi.Check { return httpapi.Check{Name: "bus", Check: b.Ping} },
				fx.ResultTags(`group:"health.checks"`)),
		),
	}
	for _, m := range mods {
		if cfg.Runs(m.Name) {
			opts = append(opts, m.Run())
		}
		// Every process serves every module's routes (unless narrowed by
		// HTTPModules), asking modules that run elsewhere over the bus.
		if cfg.ServesHTTP(m.Name) {
			opts = append(opts, fx.Provide(fx.Annotate(m.Routes(), fx.ResultTags(`group:"http.routes"`))))
		}
	}
	// After the modules, so that a module running here is ready to answer what
	// every process asks of it (identity: keys and revocations).
	for _, m := range mods {
		if m.Everywhere != nil {
			opts = append(opts, m.Everywhere())
		}
	}
	// Last, so that it starts after every module (their databases, relays) and stops
	// before them: no message from another process arrives at a closed database.
	opts = append(opts, fx.Invoke(serveTransport))
	opts = append(opts, fx.Provide(
		fx.Annotate(func(b *bus.Bus) httpapi.Routes { return modhost.OpsRoutes(b, modhost.WithData(mods)) }, fx.ResultTags(`group:"http.routes"`)),
		fx.Annotate(func(b *bus.Bus) httpapi.Routes { return modhost.TopologyRoutes(b, proc, names) }, fx.ResultTags(`group:"http.routes"`)),
		fx.Annotate(faults.Routes, fx.ResultTags(`group:"http.routes"`)),
		fx.Annotate(natsbus.Routes, fx.ResultTags(`group:"http.routes"`)),
		fx.Annotate(func(inj *faults.Injector) []prometheus.Collector {
			if inj == nil {
				return nil
			}
			return []prometheus.Collector{inj.Collector()}
		}, fx.ResultTags(telemetry.CollectorsGroup)),
	))
	return fx.Options(opts...)
}

// Serve returns the options of `agora serve`: Options plus the HTTP server, started
// after every module (and so stopped before them: requests drain before relays and
// databases close).
func Serve(cfg config.Config, mods []modhost.Module, log *slog.Logger) fx.Option {
	return ServeOn(nil, cfg, mods, log)
}

// ServeOn is Serve on a listener bound already (nil: bind cfg.HTTPAddr at start).
// The command line binds first, so that the port proves no other live process is
// this one — the lease identity of the jobs it runs (see Instance).
func ServeOn(ln net.Listener, cfg config.Config, mods []modhost.Module, log *slog.Logger) fx.Option {
	debug := fx.Options()
	if cfg.DebugAddr != "" {
		debug = fx.Invoke(func(lc fx.Lifecycle) { serveDebug(lc, cfg.DebugAddr, log) })
	}
	return fx.Options(
		Options(cfg, mods, log),
		debug,
		fx.Provide(func(api *httpapi.API) *httpapi.Server {
			return httpapi.NewServer(httpConfig(cfg, nil), api, log)
		}),
		fx.Invoke(func(lc fx.Lifecycle, srv *httpapi.Server) {
			started := time.Now()
			lc.Append(fx.Hook{
				OnStart: func(context.Context) error {
					start := srv.Start
					if ln != nil {
						start = func() error { return srv.StartOn(ln) }
					}
					if err := start(); err != nil {
						return err
					}
					base := "http://" + srv.Addr()
					log.Info("agora is ready", "api", base+"/v1", "docs", base+"/docs", "openapi", base+"/openapi.json",
						"modules", strings.Join(cfg.Modules, ","), "data_dir", cfg.DataDir, "version", BuildVersion(),
						"http_start", time.Since(started).Round(time.Microsecond).String())
					return nil
				},
				OnStop: func(ctx context.Context) error {
					log.Info("agora is stopping: draining requests")
					return srv.Stop(ctx)
				},
			})
		}),
	)
}

// Instance names the process listening on ln for the leases of its jobs: the host
// and the bound address, which no other live process on the host has and the same
// process has again when it restarts on its configured port. A port the system
// picked (":0") names nothing stable: the empty name, and random lease owners.
func Instance(cfg config.Config, ln net.Listener) string {
	if _, port, err := net.SplitHostPort(cfg.HTTPAddr); err != nil || port == "0" {
		return ""
	}
	host, err := os.Hostname()
	if err != nil {
		return ""
	}
	return host + "|" + ln.Addr().String()
}

// newTransport connects to the broker when cfg.BusURL names one (nil otherwise:
// the in-process bus). Its streams are set up when the app starts, before any
// relay publishes; the connection closes after the relays stopped and before the
// databases close (it is constructed after them, for the bus).
func newTransport(lc fx.Lifecycle, cfg config.Config, log *slog.Logger) (*natsbus.Transport, error) {
	switch {
	case cfg.BusURL == "":
		return nil, nil
	case !strings.HasPrefix(cfg.BusURL, "nats://") && !strings.HasPrefix(cfg.BusURL, "tls://"):
		return nil, fmt.Errorf("bus URL %q: want nats://host:port (or empty for the in-process bus)", cfg.BusURL)
	}
	t, err := natsbus.Connect(natsbus.Config{URL: cfg.BusURL, OutageWait: cfg.BusOutageWait, Name: "agora[" + strings.Join(cfg.Modules, ",") + "]"}, log)
	if err != nil {
		return nil, err
	}
	lc.Append(fx.Hook{OnStart: t.Setup, OnStop: func(context.Context) error { return t.Close() }})
	return t, nil
}

func newBus(log *slog.Logger, cfg config.Config, t *natsbus.Transport, inj *faults.Injector, handlers []bus.RequestHandler, subs []bus.Subscription) (*bus.Bus, error) {
	var tr bus.Transport
	if t != nil {
		tr = t
	}
	b, err := bus.New(log, bus.Limits{MaxInFlight: cfg.BusMaxInFlight}, tr, handlers, subs)
	if err == nil && inj != nil {
		b.InjectFaults(inj)
	}
	return b, err
}

// FaultSchedule returns the fault schedule cfg.Faults sets (empty when none), or
// why it is refused: fault injection without --demo or --allow-faults, or a
// schedule that does not parse.
func FaultSchedule(cfg config.Config) (faults.Schedule, error) {
	switch {
	case cfg.Faults == "":
		return faults.Schedule{}, nil
	case !cfg.FaultsAllowed():
		return faults.Schedule{}, errors.New("--faults is refused without --demo or --allow-faults: fault injection breaks things on purpose")
	}
	return faults.Load(cfg.Faults)
}

// newFaults returns the injector of a process that may inject faults into its bus
// (--demo or --allow-faults), with the schedule of --faults; nil where faults are
// not allowed, and an error when --faults asks for them there.
func newFaults(cfg config.Config, log *slog.Logger) (*faults.Injector, error) {
	s, err := FaultSchedule(cfg)
	if err != nil || !cfg.FaultsAllowed() {
		return nil, err
	}
	inj := faults.NewInjector()
	if cfg.Faults == "" {
		return inj, nil
	}
	if err := inj.Set(s); err != nil {
		return nil, err
	}
	log.Warn("injecting faults into the bus", "rules", len(s.Rules), "seed", s.Seed)
	return inj, nil
}

// serveTransport makes this process's request handlers and subscriptions reachable
// from other processes, from start to stop.
func serveTransport(lc fx.Lifecycle, b *bus.Bus, t *natsbus.Transport) {
	if t == nil {
		return
	}
	lc.Append(fx.Hook{
		OnStart: func(ctx context.Context) error { return t.Serve(ctx, b) },
		OnStop:  t.Stop,
	})
}

func newAPI(cfg config.Config, log *slog.Logger, b *bus.Bus, keys *auth.Keys, routes []httpapi.Routes, checks []httpapi.Check,
	tel *telemetry.Telemetry) (*httpapi.API, error) {
	httpapi.InstallErrorHook(log)
	hc := httpConfig(cfg, keys)
	hc.Observer = tel.HTTPObserver()
	api := httpapi.NewAPI(hc, log)
	// Outside /v1 and the OpenAPI document: for scrapers, not API clients (see
	// Telemetry.MetricsHandler for who may read it).
	api.Mux().Handle("GET /metrics", tel.MetricsHandler(cfg.MetricsToken))
	for _, r := range routes {
		r(api)
	}
	httpapi.RegisterHealth(api, checks, log)
	api.Complete()
	docs := apidocs.Handler("/docs", "/openapi.json", "Agora API")
	api.Mux().Handle("/docs", docs)
	api.Mux().Handle("/docs/", docs)
	// The messages between modules: the AsyncAPI document tools/asyncapigen draws
	// from the contracts, and its page. Like /openapi.yaml, outside the OpenAPI document.
	api.Mux().Handle("/asyncapi.yaml", apidocs.Document(agoraapi.AsyncAPI, "application/yaml"))
	messages := apidocs.MessagesHandler("/docs/messages", "/asyncapi.yaml", "Agora messages")
	api.Mux().Handle("/docs/messages", messages)
	api.Mux().Handle("/docs/messages/", messages)
	return api, nil
}

func httpConfig(cfg config.Config, v httpapi.Verifier) httpapi.Config {
	return httpapi.Config{Addr: cfg.HTTPAddr, RequestTimeout: cfg.RequestTimeout, MaxBodyBytes: cfg.MaxBodyBytes,
		MaxInFlight: cfg.MaxInFlight, Verifier: v}
}

// Starter returns how a module's command starts a process of just the modules it
// names, configured as cfg says otherwise, for the command's duration.
func Starter(cfg config.Config, mods []modhost.Module, log *slog.Logger) modhost.Starter {
	return func(ctx context.Context, names ...string) (*modhost.Started, error) {
		cfg.Modules = names
		cfg.Demo, cfg.Faults = false, ""
		var b *bus.Bus
		a := fx.New(Options(cfg, mods, log), fx.NopLogger, fx.Populate(&b))
		if err := a.Start(ctx); err != nil {
			return nil, err
		}
		return &modhost.Started{Bus: b, Log: log, Stop: func() { _ = a.Stop(context.WithoutCancel(ctx)) }}, nil
	}
}
