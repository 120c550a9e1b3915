// Package telemetry is how an Agora process is observed: Prometheus metrics
// (one registry per process, served at /metrics, that modules add collectors to
// through the fx group "metrics.collectors") and OpenTelemetry tracing (exported
// over OTLP only when the standard OTEL_EXPORTER_OTLP_* variables ask for it;
// otherwise nothing is installed and tracing costs nothing). It plugs into the
// bus (bus.Observer) and the HTTP edge (httpapi.Observer); neither knows it.
package telemetry

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"go.uber.org/fx"

	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/httpapi"
)

// Namespace prefixes every series Agora defines.
const Namespace = "agora"

// CollectorsGroup is the fx result tag under which modules provide their
// metrics: a []prometheus.Collector, registered on the process's registry.
const CollectorsGroup = `group:"metrics.collectors,flatten"`

// Config describes the process being observed.
type Config struct {
	Version   string   // the build's version
	Modules   []string // the modules that run in this process
	Transport string   // the bus transport: "in-process" or "nats"
	// Exporter forces tracing on with this exporter (tests, benchmarks); nil:
	// tracing as the environment says. Sync exports each span as it ends.
	Exporter sdktrace.SpanExporter
	Sync     bool
}

// Telemetry is one process's metrics registry and tracer.
type Telemetry struct {
	// Registry holds every series this process exposes. It is not the global
	// default registry, so that two apps in one test process do not collide.
	Registry *prometheus.Registry

	tracer   trace.Tracer // nil: tracing is off
	provider *sdktrace.TracerProvider
	bus      *busMetrics
	http     *httpMetrics
}

// New returns the telemetry of a process: a registry with the Go runtime and
// process collectors, agora_build_info, the bus's and the HTTP edge's series,
// and tracing when the environment configures an OTLP endpoint.
func New(ctx context.Context, cfg Config, log *slog.Logger) (*Telemetry, error) {
	reg := prometheus.NewRegistry()
	info := prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: Namespace, Name: "build_info",
		Help:        "Always 1; its labels say which build runs and which modules it runs.",
		ConstLabels: prometheus.Labels{"version": cfg.Version, "modules": strings.Join(cfg.Modules, ","), "transport": cfg.Transport},
	})
	info.Set(1)
	t := &Telemetry{Registry: reg, bus: newBusMetrics(), http: newHTTPMetrics()}
	if err := t.Register(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		info,
	); err != nil {
		return nil, err
	}
	if err := t.Register(t.bus.collectors()...); err != nil {
		return nil, err
	}
	if err := t.Register(t.http.collectors()...); err != nil {
		return nil, err
	}
	exp := cfg.Exporter
	if exp == nil {
		var err error
		if exp, err = exporterFromEnv(ctx); err != nil {
			return nil, err
		}
	}
	if exp != nil {
		res, err := resource.New(ctx,
			resource.WithAttributes(
				attribute.String("service.name", "agora"),
				attribute.String("service.version", cfg.Version),
				attribute.StringSlice("agora.modules", cfg.Modules),
				attribute.String("agora.bus.transport", cfg.Transport),
			),
			resource.WithFromEnv(), // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win
			resource.WithTelemetrySDK(),
		)
		if err != nil {
			return nil, fmt.Errorf("telemetry: resource: %w", err)
		}
		// The batcher and sampler read OTEL_BSP_* and OTEL_TRACES_SAMPLER*; the
		// default samples every trace whose parent (if any) was sampled.
		batch := sdktrace.WithBatcher(exp)
		if cfg.Sync {
			batch = sdktrace.WithSyncer(exp)
		}
		t.provider = sdktrace.NewTracerProvider(batch, sdktrace.WithResource(res))
		t.tracer = t.provider.Tracer(bus.TracerName)
		otel.SetTracerProvider(t.provider)
		otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
		otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
			log.Warn("tracing: export failed", "err", err)
		}))
		log.Info("tracing on: exporting spans over OTLP", "modules", strings.Join(cfg.Modules, ","))
	}
	return t, nil
}

// exporterFromEnv returns the OTLP/HTTP exporter the standard variables
// configure, or nil when none is configured (or OTEL_SDK_DISABLED is true, or
// OTEL_TRACES_EXPORTER is none).
func exporterFromEnv(ctx context.Context) (sdktrace.SpanExporter, error) {
	if strings.EqualFold(os.Getenv("OTEL_SDK_DISABLED"), "true") || os.Getenv("OTEL_TRACES_EXPORTER") == "none" {
		return nil, nil
	}
	if os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") == "" && os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "" {
		return nil, nil
	}
	proto := os.Getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	if proto == "" {
		proto = os.Getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	if proto != "" && proto != "http/protobuf" {
		return nil, fmt.Errorf("telemetry: OTLP protocol %q is not supported; use http/protobuf", proto)
	}
	// The exporter reads the endpoint, headers, timeout and TLS settings from
	// the OTEL_EXPORTER_OTLP_* variables itself.
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, fmt.Errorf("telemetry: OTLP exporter: %w", err)
	}
	return exp, nil
}

// Tracer returns the tracer of Agora's spans; a no-op one when tracing is off.
func (t *Telemetry) Tracer() trace.Tracer {
	if t.tracer == nil {
		return noop.NewTracerProvider().Tracer(bus.TracerName)
	}
	return t.tracer
}

// Tracing reports whether spans are recorded and exported.
func (t *Telemetry) Tracing() bool { return t.tracer != nil }

// Register adds collectors to the process's registry.
func (t *Telemetry) Register(cs ...prometheus.Collector) error {
	for _, c := range cs {
		if err := t.Registry.Register(c); err != nil {
			return fmt.Errorf("telemetry: register collector: %w", err)
		}
	}
	return nil
}

// Shutdown flushes the spans not yet exported and stops tracing.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	if t.provider == nil {
		return nil
	}
	return t.provider.Shutdown(ctx)
}

// MetricsHandler serves the registry in the Prometheus text format. Access: with
// a token, only requests that present it as "Authorization: Bearer <token>"; without
// one, only requests from the loopback address (a scraper on the same host, or a
// sidecar) — so metrics are never public by default. Behind a reverse proxy on
// the same host every request looks local: set a token there.
func (t *Telemetry) MetricsHandler(token string) http.Handler {
	h := promhttp.HandlerFor(t.Registry, promhttp.HandlerOpts{
		ErrorHandling:       promhttp.ContinueOnError, // one failing collector must not hide the rest
		MaxRequestsInFlight: 4,
		Timeout:             10 * time.Second,
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if token != "" {
			got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1 {
				w.Header().Set("WWW-Authenticate", `Bearer realm="metrics"`)
				httpapi.WriteProblem(w, http.StatusUnauthorized, "metrics need the metrics bearer token")
				return
			}
		} else if !loopback(r.RemoteAddr) {
			httpapi.WriteProblem(w, http.StatusForbidden, "metrics are served to the loopback address only (set a metrics token to scrape from elsewhere)")
			return
		}
		h.ServeHTTP(w, r)
	})
}

func loopback(remoteAddr string) bool {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Module provides the process's *Telemetry (tracing flushed on stop), registers
// the collectors of the group "metrics.collectors" on it, and instruments the bus.
func Module(cfg Config) fx.Option {
	return fx.Options(
		fx.Provide(func(lc fx.Lifecycle, log *slog.Logger) (*Telemetry, error) {
			t, err := New(context.Background(), cfg, log)
			if err != nil {
				return nil, err
			}
			lc.Append(fx.StopHook(func(ctx context.Context) error {
				if err := t.Shutdown(ctx); err != nil && !errors.Is(err, context.Canceled) {
					log.Warn("tracing: flush on stop failed", "err", err)
				}
				return nil
			}))
			return t, nil
		}),
		fx.Invoke(fx.Annotate(func(t *Telemetry, cs []prometheus.Collector) error {
			return t.Register(cs...)
		}, fx.ParamTags(``, `group:"metrics.collectors"`))),
		fx.Invoke(func(t *Telemetry, b *bus.Bus) { b.Instrument(t.BusObserver()) }),
	)
}
