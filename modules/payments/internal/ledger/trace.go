package ledger

import (
	"context"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/agora-commerce/agora/internal/bus"
)

// A provider call is made by the worker pool, long after (and perhaps in another
// replica than) the command that asked for it. So that the call, and the events
// its outcome leads to, stay in the trace of that command, an operation keeps the
// W3C traceparent of the work that scheduled it, and the worker makes its call
// under a span that is a child of it.

// traceParent returns the traceparent of the span under ctx, or "" when the work
// under ctx is not traced (tracing off: nothing is stored, nothing is resumed).
func traceParent(ctx context.Context) string {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return ""
	}
	c := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(ctx, c)
	return c["traceparent"]
}

// traceOperation returns ctx under a new span for performing o, a child of the
// span that scheduled o, and the function that ends it with o's outcome. An
// operation scheduled by untraced work gets no span.
func (s *Service) traceOperation(ctx context.Context, o operation) (context.Context, func(error)) {
	if o.TraceParent == "" {
		return ctx, func(error) {}
	}
	ctx = bus.ExtractTrace(ctx, map[string]string{"traceparent": o.TraceParent})
	tp := s.opts.Tracer
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	ctx, span := tp.Tracer(bus.TracerName).Start(ctx, "payment "+o.Op,
		trace.WithSpanKind(trace.SpanKindInternal),
		trace.WithAttributes(
			attribute.String("agora.module", "payments"),
			attribute.String("agora.correlation_id", o.CorrelationID),
			attribute.String("agora.payment.operation", o.Op),
			attribute.String("agora.payable_id", o.PayableID),
			attribute.Int("agora.payment.attempt", o.Attempts)))
	return ctx, func(err error) {
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, "payment operation failed")
		}
		span.End()
	}
}
