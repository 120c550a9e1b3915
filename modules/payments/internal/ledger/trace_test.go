package ledger_test

import (
	"context"
	"slices"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/message"
	"github.com/agora-commerce/agora/internal/modhost"
	"github.com/agora-commerce/agora/internal/store"
	"github.com/agora-commerce/agora/internal/testdb"
	"github.com/agora-commerce/agora/modules/payments"
	"github.com/agora-commerce/agora/modules/payments/internal/psp"
)

// TestWorkerKeepsTheCommandsTrace: the provider calls the worker pool makes, and
// the events their outcomes publish, are in the trace of the command that asked
// for them — under a span of the worker's, a child of the command's handling —
// while an operation asked for by untraced work is performed untraced.
func TestWorkerKeepsTheCommandsTrace(t *testing.T) {
	testdb.EachHost(t, "payments", func(t *testing.T, h *modhost.Host) {
		spans := tracetest.NewSpanRecorder()
		tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
		w := newTracedWorld(t, h, fastProvider(), nil, tp)

		ctx, root := tp.Tracer("test").Start(t.Context(), "checkout")
		traced, untraced := bus.NewID(), bus.NewID()
		sendIn := func(ctx context.Context, cmd message.Outgoing) {
			t.Helper()
			if err := store.InTx(ctx, h.DB, func(tx *store.Tx) error { return h.Outbox.Add(ctx, tx, cmd) }); err != nil {
				t.Fatal(err)
			}
		}
		sendIn(ctx, authorize(traced, psp.TokenVisa, 1000))
		authorized := w.events.wait(t, traced, 1)
		sendIn(ctx, capture(traced))
		captured := w.events.wait(t, traced, 2)
		root.End()
		w.send(t, authorize(untraced, psp.TokenVisa, 500))
		plain := w.events.wait(t, untraced, 1)

		want := root.SpanContext().TraceID()
		for _, env := range []message.Envelope{authorized, captured} {
			got := trace.SpanContextFromContext(bus.ExtractTrace(context.Background(), env.Headers))
			if got.TraceID() != want {
				t.Errorf("%s carries trace %s (headers %v); want the command's trace %s", env.Type, got.TraceID(), env.Headers, want)
			}
		}
		if got := plain.Headers["traceparent"]; plain.Type != payments.PaymentAuthorizedEvent.Name() || got != "" {
			t.Errorf("untraced authorization: %s with traceparent %q; want PaymentAuthorized without one", plain.Type, got)
		}

		w.settle(t)
		byID := map[trace.SpanID]sdktrace.ReadOnlySpan{}
		for _, s := range spans.Ended() {
			byID[s.SpanContext().SpanID()] = s
		}
		// ancestors returns the names of s's ancestors in the trace, nearest first.
		ancestors := func(s sdktrace.ReadOnlySpan) []string {
			var names []string
			for p, ok := byID[s.Parent().SpanID()]; ok; p, ok = byID[p.Parent().SpanID()] {
				names = append(names, p.Name())
			}
			return names
		}
		found := map[string]bool{}
		for _, s := range spans.Ended() {
			name := s.Name()
			if name != "payment authorize" && name != "payment capture" {
				continue
			}
			if s.SpanContext().TraceID() != want {
				t.Errorf("span %q is in trace %s, not the command's %s", name, s.SpanContext().TraceID(), want)
				continue
			}
			found[name] = true
			cmd := "process " + payments.AuthorizePaymentCommand.Name()
			if name == "payment capture" {
				cmd = "process " + payments.CapturePaymentCommand.Name()
			}
			if got := ancestors(s); !slices.Contains(got, cmd) || got[len(got)-1] != "checkout" {
				t.Errorf("span %q descends from %v; want %q under the root", name, got, cmd)
			}
		}
		if !found["payment authorize"] || !found["payment capture"] {
			t.Errorf("worker spans in the command's trace: %v; want authorize and capture", found)
		}
	})
}
