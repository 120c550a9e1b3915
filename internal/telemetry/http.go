package telemetry

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/agora-commerce/agora/internal/httpapi"
)

// httpMetrics are the HTTP edge's series, labelled by route template (never the
// raw path), method and status code: all bounded.
type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	inFlight prometheus.Gauge
}

func newHTTPMetrics() *httpMetrics {
	return &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Subsystem: "http", Name: "requests_total",
			Help: "HTTP requests answered, by route template, method and status code."}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Subsystem: "http", Name: "request_duration_seconds",
			Help: "Time to answer an HTTP request, by route template and method.", Buckets: durationBuckets}, []string{"route", "method"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Subsystem: "http", Name: "requests_in_flight",
			Help: "HTTP requests being served."}),
	}
}

func (m *httpMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.requests, m.duration, m.inFlight}
}

// HTTPObserver returns the httpapi.Observer that counts requests in t's
// registry and, when tracing is on, gives each a server span named after its
// route template, continuing the caller's trace when it sent a traceparent.
func (t *Telemetry) HTTPObserver() httpapi.Observer {
	return &httpObserver{m: t.http, tracer: t.tracer}
}

type httpObserver struct {
	m      *httpMetrics
	tracer trace.Tracer
}

var httpPropagator = propagation.TraceContext{}

func (o *httpObserver) Begin(ctx context.Context, r *http.Request) (context.Context, func(string, int, time.Duration)) {
	o.m.inFlight.Inc()
	method := knownMethod(r.Method)
	var span trace.Span
	if o.tracer != nil {
		ctx = httpPropagator.Extract(ctx, propagation.HeaderCarrier(r.Header))
		ctx, span = o.tracer.Start(ctx, method, trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(attribute.String("http.request.method", method), attribute.String("url.path", r.URL.Path)))
	}
	return ctx, func(pattern string, status int, took time.Duration) {
		o.m.inFlight.Dec()
		route := routeOf(pattern)
		o.m.requests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
		o.m.duration.WithLabelValues(route, method).Observe(took.Seconds())
		if span != nil {
			span.SetName(method + " " + route)
			span.SetAttributes(attribute.String("http.route", route), attribute.Int("http.response.status_code", status))
			if status >= 500 {
				span.SetStatus(codes.Error, http.StatusText(status))
			}
			span.End()
		}
	}
}

// routeOf returns the route template of a ServeMux pattern ("GET /v1/x/{id}" →
// "/v1/x/{id}"); requests no route matched (the catch-all "/") are "unmatched".
func routeOf(pattern string) string {
	if i := strings.IndexByte(pattern, ' '); i >= 0 {
		pattern = pattern[i+1:]
	}
	if pattern == "" || pattern == "/" {
		return "unmatched"
	}
	return pattern
}

// knownMethod bounds the method label: anything unusual is OTHER.
func knownMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions:
		return m
	}
	return "OTHER"
}
