package telemetry_test

import (
	"context"
	"path/filepath"
	"testing"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/message"
	"github.com/agora-commerce/agora/internal/outbox"
	"github.com/agora-commerce/agora/internal/store"
)

// The cost of observing the bus, on its two paths: an in-process request (the
// cheapest thing the bus does, ~100 ns) and a durable delivery into a receiver's
// inbox on SQLite. Variants:
//   - bare: a bus that is never instrumented — what the code costs with tracing
//     off and no metrics (compare with the code before instrumentation existed,
//     see docs/performance.md);
//   - metrics: the observer as `agora serve` installs it without an OTLP endpoint
//     (tracing off, Prometheus counters and histograms on);
//   - tracing: metrics plus every span sampled and exported (to a discarding
//     exporter).
var variants = []string{"bare", "metrics", "tracing"}

func instrument(b *testing.B, bb *bus.Bus, variant string) context.Context {
	b.Helper()
	ctx := context.Background()
	switch variant {
	case "bare":
		return ctx
	case "metrics":
		b.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
		b.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
		tel, err := newTelemetry(b, nil)
		if err != nil {
			b.Fatal(err)
		}
		bb.Instrument(tel.BusObserver())
		return ctx
	default:
		tel, err := newTelemetry(b, discardExporter{tracetest.NewNoopExporter()})
		if err != nil {
			b.Fatal(err)
		}
		bb.Instrument(tel.BusObserver())
		// The work is traced, as under an HTTP request.
		ctx, span := tel.Tracer().Start(ctx, "bench")
		b.Cleanup(func() { span.End() })
		return ctx
	}
}

type discardExporter struct{ *tracetest.NoopExporter }

type query struct {
	SKU      [16]byte
	Quantity int
}

type answer struct{ Total int64 }

var price = message.NewRequest[query, answer]("pricing.Price")

func BenchmarkBusRequest(b *testing.B) {
	for _, v := range variants {
		b.Run(v, func(b *testing.B) {
			bb, err := bus.New(discard, bus.Limits{}, nil, []bus.RequestHandler{
				bus.Handle(price, func(_ context.Context, q query) (answer, error) { return answer{Total: 250 * int64(q.Quantity)}, nil }),
			}, nil)
			if err != nil {
				b.Fatal(err)
			}
			ctx := instrument(b, bb, v)
			q := query{Quantity: 3}
			b.ReportAllocs()
			for b.Loop() {
				if r, err := bus.Call(ctx, bb, price, q); err != nil || r.Total != 750 {
					b.Fatalf("Call = %+v, %v", r, err)
				}
			}
		})
	}
}

var made = message.NewEvent[query]("pricing.PriceChanged")

func BenchmarkBusDurableDelivery(b *testing.B) {
	for _, v := range variants {
		b.Run(v, func(b *testing.B) {
			db, err := store.OpenSQLite(context.Background(), "pricing", filepath.Join(b.TempDir(), "pricing.db"), store.Options{})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = db.Close() })
			if err := outbox.Migrate(context.Background(), db, discard); err != nil {
				b.Fatal(err)
			}
			sub := outbox.SubscribeEvent(db, made, "pricing.cache", func(context.Context, *store.Tx, message.Message[query]) error { return nil })
			bb, err := bus.New(discard, bus.Limits{}, nil, nil, []bus.Subscription{sub})
			if err != nil {
				b.Fatal(err)
			}
			ctx := instrument(b, bb, v)
			b.ReportAllocs()
			for b.Loop() {
				// The envelope as the sender's outbox makes it (with the trace
				// context when the work is traced), delivered into the inbox.
				env, err := bus.Seal(ctx, made.With(query{Quantity: 1}))
				if err != nil {
					b.Fatal(err)
				}
				if err := bb.Deliver(ctx, env); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
