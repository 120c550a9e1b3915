package bus

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/agora-commerce/agora/internal/message"
)

// Role says which side of a message an Observer is watching.
type Role uint8

// The sides of a message.
const (
	// Sending: a request being called, or a durable message handed on by its
	// sender's outbox relay.
	Sending Role = iota + 1
	// Handling: a request or a durable message being handled in this process.
	Handling
)

// Op describes one message being sent or handled, for an Observer.
type Op struct {
	Role Role
	Kind message.Kind
	Type string
	// Consumer is the subscription handling a durable message ("orders.saga").
	Consumer string
	// Headers are the envelope's headers (the sender's trace context) when the
	// message arrived as an envelope: from the outbox or from another process.
	Headers map[string]string
	// Remote: a request sent to, or arriving from, another process.
	Remote bool
}

// Observer is told about every message the bus sends and handles; metrics and
// tracing plug in here, so the bus knows neither. Observe is called as the work
// starts; the work runs under the context it returns, and end is called once
// with the outcome. Implementations must be safe for concurrent use and cheap.
type Observer interface {
	Observe(ctx context.Context, op Op) (_ context.Context, end func(error))
}

// Instrument makes o observe the bus. Call it once, before the bus carries any
// message (an fx app does it while it is built, before it starts); it is not
// safe concurrently with traffic. A bus that is never instrumented observes
// nothing and pays nothing for it.
func (b *Bus) Instrument(o Observer) {
	b.obs = o
	for typ, subs := range b.subs {
		for i := range subs {
			subs[i].obs = o
		}
		b.subs[typ] = subs
	}
}

type moduleKey struct{}

// WithModule returns ctx marked as work done by module. The bus marks every
// handler's context with the module that owns the handler; loggers read it.
func WithModule(ctx context.Context, module string) context.Context {
	return context.WithValue(ctx, moduleKey{}, module)
}

// ModuleFrom returns the module whose handler the work under ctx belongs to.
func ModuleFrom(ctx context.Context) (string, bool) {
	m, ok := ctx.Value(moduleKey{}).(string)
	return m, ok
}

type duplicateKey struct{}

// WithDuplicateHook returns ctx whose MarkDuplicate calls f. Observers use it
// to count the duplicates that receivers drop.
func WithDuplicateHook(ctx context.Context, f func()) context.Context {
	return context.WithValue(ctx, duplicateKey{}, f)
}

// MarkDuplicate reports that the durable message handled under ctx was a
// duplicate that the receiver dropped (its inbox had it already).
func MarkDuplicate(ctx context.Context) {
	if f, ok := ctx.Value(duplicateKey{}).(func()); ok {
		f()
	}
}

func noEnd(error) {}

// handling returns the context a handler of op runs under, and the func to call
// with its outcome.
func (b *Bus) handling(ctx context.Context, op Op) (context.Context, func(error)) {
	ctx = WithModule(ctx, ModuleOf(op.Type))
	if b.obs == nil {
		return ctx, noEnd
	}
	return b.obs.Observe(ctx, op)
}

// begin is handling for a durable message delivered to s.
func (s Subscription) begin(ctx context.Context, env message.Envelope) (context.Context, func(error)) {
	ctx = WithModule(ctx, ModuleOf(s.Consumer))
	if s.obs == nil {
		return ctx, noEnd
	}
	return s.obs.Observe(ctx, Op{Role: Handling, Kind: env.Kind, Type: env.Type, Consumer: s.Consumer, Headers: env.Headers})
}

// Begin is Context for a BatchGroup that handles its items one at a time: the
// returned context also carries the module and the observer's work (a consumer
// span), and end must be called once with the item's outcome.
func (i BatchItem) Begin(ctx context.Context) (_ context.Context, end func(error)) {
	return i.Sub.begin(i.Context(ctx), i.Env)
}

// TracerName names the instrumentation scope of the bus's spans.
const TracerName = "github.com/agora-commerce/agora/internal/bus"

// traceContext is the W3C trace-context format, the one the envelope's headers
// carry on every transport (traceparent, tracestate).
var traceContext = propagation.TraceContext{}

// headerCarrier lets the propagator write into an envelope's headers, making the
// map only when there is something to write.
type headerCarrier struct{ h *map[string]string }

func (c headerCarrier) Get(k string) string { return (*c.h)[k] }
func (c headerCarrier) Set(k, v string) {
	if *c.h == nil {
		*c.h = map[string]string{}
	}
	(*c.h)[k] = v
}
func (c headerCarrier) Keys() []string {
	keys := make([]string, 0, len(*c.h))
	for k := range *c.h {
		keys = append(keys, k)
	}
	return keys
}

// ExtractTrace returns ctx with the remote span context that headers carry, if any.
func ExtractTrace(ctx context.Context, headers map[string]string) context.Context {
	if len(headers) == 0 {
		return ctx
	}
	return traceContext.Extract(ctx, headerCarrier{&headers})
}

// injectTrace writes the trace context of the work under ctx into env's headers.
// A durable message gets its own short producer span, so that its delivery
// (perhaps much later, perhaps in another process) hangs from the write that
// made it; a request's client span is already in ctx. Without a recording span
// in ctx (tracing off, or the work is not traced) it writes nothing.
func injectTrace(ctx context.Context, env *message.Envelope) {
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return
	}
	if env.Kind != message.KindRequest {
		module, _ := ModuleFrom(ctx) // "" when sent outside a handler (a sweep, a worker)
		var ps trace.Span
		ctx, ps = span.TracerProvider().Tracer(TracerName).Start(ctx, "send "+env.Type,
			trace.WithSpanKind(trace.SpanKindProducer),
			trace.WithAttributes(attribute.String("messaging.system", "agora"),
				attribute.String("messaging.operation.type", "create"),
				attribute.String("messaging.destination.name", env.Type),
				attribute.String("messaging.message.id", env.ID),
				attribute.String("agora.message.kind", string(env.Kind)),
				attribute.String("agora.module", module)))
		defer ps.End()
	}
	traceContext.Inject(ctx, headerCarrier{&env.Headers})
}

// sent tells the observer that a durable envelope was handed on (to local
// subscribers and the broker), with the outcome.
func (b *Bus) sent(ctx context.Context, env message.Envelope, err error) {
	if b.obs == nil {
		return
	}
	_, end := b.obs.Observe(ctx, Op{Role: Sending, Kind: env.Kind, Type: env.Type, Headers: env.Headers})
	end(err)
}
