package telemetry

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/message"
)

// Buckets for the time a message takes: from 100µs (an in-process request) to
// 10s (a slow provider call behind a command).
var durationBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// busMetrics are the bus's series. Labels are the message kind and type (and
// the consumer, for inbox duplicates): all declared in code, so bounded.
type busMetrics struct {
	sent         *prometheus.CounterVec
	sendFailures *prometheus.CounterVec
	requestTime  *prometheus.HistogramVec
	handled      *prometheus.CounterVec
	failed       *prometheus.CounterVec
	handlingTime *prometheus.HistogramVec
	refused      *prometheus.CounterVec
	duplicates   *prometheus.CounterVec

	mu     sync.RWMutex
	series map[seriesKey]*busSeries // resolved once, so that a message costs no label hashing
}

func newBusMetrics() *busMetrics {
	kt := []string{"kind", "type"}
	return &busMetrics{
		series: map[seriesKey]*busSeries{},
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Subsystem: "bus", Name: "messages_sent_total",
			Help: "Messages sent: requests called, and durable messages handed on by an outbox relay (each attempt)."}, kt),
		sendFailures: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Subsystem: "bus", Name: "send_failures_total",
			Help: "Sends that failed: requests answered with an error, durable deliveries the relay will retry (redeliveries)."}, kt),
		requestTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Subsystem: "bus", Name: "request_duration_seconds",
			Help: "Time from calling a request in another process to its reply, seen by the caller.", Buckets: durationBuckets}, []string{"type"}),
		handled: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Subsystem: "bus", Name: "messages_handled_total",
			Help: "Messages handled in this process (failed ones included)."}, kt),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Subsystem: "bus", Name: "messages_failed_total",
			Help: "Messages whose handler failed: a fault (internal, unavailable, overloaded, timed out), not a refusal."}, kt),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Subsystem: "bus", Name: "messages_refused_total",
			Help: "Messages whose handler answered an ordinary refusal: not found, invalid, conflict, precondition failed, unauthenticated, forbidden."}, kt),
		handlingTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Subsystem: "bus", Name: "handling_duration_seconds",
			Help: "Time a handler took, by message kind and type.", Buckets: durationBuckets}, kt),
		duplicates: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Subsystem: "inbox", Name: "duplicates_dropped_total",
			Help: "Durable messages a consumer had already taken (redeliveries), dropped by its inbox."}, []string{"consumer"}),
	}
}

func (m *busMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.sent, m.sendFailures, m.requestTime, m.handled, m.failed, m.refused, m.handlingTime, m.duplicates}
}

type seriesKey struct {
	role     bus.Role
	remote   bool
	kind     message.Kind
	typ      string
	consumer string
}

// busSeries are the series one kind of operation counts in, resolved once.
type busSeries struct {
	count, failures prometheus.Counter
	refusals        prometheus.Counter  // handling only; nil: refusals count as failures
	took            prometheus.Observer // nil: not timed
	duplicate       func()              // handling durable messages: counts a drop
}

func (m *busMetrics) seriesFor(op bus.Op) *busSeries {
	k := seriesKey{role: op.Role, remote: op.Remote, kind: op.Kind, typ: op.Type, consumer: op.Consumer}
	m.mu.RLock()
	s, ok := m.series[k]
	m.mu.RUnlock()
	if ok {
		return s
	}
	return m.newSeries(k, op)
}

func (m *busMetrics) newSeries(k seriesKey, op bus.Op) *busSeries {
	var s busSeries
	switch op.Role {
	case bus.Sending:
		s.count = m.sent.WithLabelValues(string(op.Kind), op.Type)
		s.failures = m.sendFailures.WithLabelValues(string(op.Kind), op.Type)
		if op.Kind == message.KindRequest && op.Remote {
			// In process the handler's time is the call's; only a remote call
			// adds a wire (and a clock read is a good part of a local call's cost).
			s.took = m.requestTime.WithLabelValues(op.Type)
		}
	default:
		s.count = m.handled.WithLabelValues(string(op.Kind), op.Type)
		s.failures = m.failed.WithLabelValues(string(op.Kind), op.Type)
		s.refusals = m.refused.WithLabelValues(string(op.Kind), op.Type)
		s.took = m.handlingTime.WithLabelValues(string(op.Kind), op.Type)
		if op.Consumer != "" {
			s.duplicate = m.duplicates.WithLabelValues(op.Consumer).Inc
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if got, ok := m.series[k]; ok {
		return got
	}
	m.series[k] = &s
	return &s
}

// BusObserver returns the bus.Observer that counts messages in t's registry and,
// when tracing is on, traces them: a client span per request called, a server
// span per request handled, a consumer span per durable message handled (a
// child of the producer span its sender's outbox write made, carried in the
// envelope's headers, so the relay hop and the process boundary stay in the
// trace).
func (t *Telemetry) BusObserver() bus.Observer { return &busObserver{m: t.bus, tracer: t.tracer} }

type busObserver struct {
	m      *busMetrics
	tracer trace.Tracer // nil: tracing off
}

func (o *busObserver) Observe(ctx context.Context, op bus.Op) (context.Context, func(error)) {
	s := o.m.seriesFor(op)
	if s.duplicate != nil {
		ctx = bus.WithDuplicateHook(ctx, s.duplicate)
	}
	var span trace.Span
	if o.tracer != nil && !(op.Role == bus.Sending && op.Kind != message.KindRequest) {
		ctx, span = o.start(ctx, op)
	}
	var start time.Time
	if s.took != nil {
		start = time.Now()
	}
	return ctx, func(err error) {
		s.count.Inc()
		if s.took != nil {
			s.took.Observe(time.Since(start).Seconds())
		}
		switch {
		case err == nil:
		case s.refusals != nil && refusal(err):
			s.refusals.Inc()
		default:
			s.failures.Inc()
		}
		if span != nil {
			if err != nil {
				span.RecordError(err)
				span.SetStatus(codes.Error, message.AsError(err).Code)
			}
			span.End()
		}
	}
}

// refusal reports whether err is an ordinary answer of a handler (the thing asked
// for does not exist, the input is wrong, the state does not allow it) rather than
// a fault: refusals are the API working, failures are what an operator looks at.
func refusal(err error) bool {
	switch message.AsError(err).Kind {
	case message.NotFound, message.Invalid, message.Conflict, message.Precondition, message.Unauthenticated, message.Forbidden:
		return true
	}
	return false
}

// start starts op's span. A handler's parent is the sender's span from the
// envelope's headers when the message came as one, else (an in-process request)
// the caller's span in ctx.
func (o *busObserver) start(ctx context.Context, op bus.Op) (context.Context, trace.Span) {
	attrs := []attribute.KeyValue{
		attribute.String("messaging.system", "agora"),
		attribute.String("messaging.destination.name", op.Type),
		attribute.String("agora.message.kind", string(op.Kind)),
	}
	// agora.module is the module doing the work: the handler's, or the caller's.
	switch {
	case op.Consumer != "":
		attrs = append(attrs, attribute.String("agora.module", bus.ModuleOf(op.Consumer)))
	case op.Role == bus.Handling:
		attrs = append(attrs, attribute.String("agora.module", bus.ModuleOf(op.Type)))
	default:
		if m, ok := bus.ModuleFrom(ctx); ok {
			attrs = append(attrs, attribute.String("agora.module", m))
		}
	}
	if c, ok := message.CauseFrom(ctx); ok {
		attrs = append(attrs, attribute.String("agora.correlation_id", c.CorrelationID))
		if op.Role == bus.Handling && op.Headers != nil {
			attrs = append(attrs, attribute.String("messaging.message.id", c.ID))
		}
	}
	var kind trace.SpanKind
	var name string
	switch {
	case op.Role == bus.Sending:
		kind, name = trace.SpanKindClient, "call "+op.Type
	case op.Kind == message.KindRequest:
		kind, name = trace.SpanKindServer, "handle "+op.Type
	default:
		kind, name = trace.SpanKindConsumer, "process "+op.Type
		attrs = append(attrs, attribute.String("messaging.consumer.group.name", op.Consumer))
	}
	if op.Role == bus.Handling && op.Headers != nil {
		// The sender's context wins over whatever span the transport's or the
		// relay's context holds: the message's cause is its sender.
		ctx = trace.ContextWithSpanContext(ctx, trace.SpanContext{})
		ctx = bus.ExtractTrace(ctx, op.Headers)
	}
	return o.tracer.Start(ctx, name, trace.WithSpanKind(kind), trace.WithAttributes(attrs...))
}
