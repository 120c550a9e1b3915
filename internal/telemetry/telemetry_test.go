package telemetry_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/message"
	"github.com/agora-commerce/agora/internal/modhost"
	"github.com/agora-commerce/agora/internal/outbox"
	"github.com/agora-commerce/agora/internal/store"
	"github.com/agora-commerce/agora/internal/telemetry"
	"github.com/agora-commerce/agora/internal/testdb"
)

var discard = slog.New(slog.DiscardHandler)

type thing struct{ N int }

var (
	getThing     = message.NewRequest[thing, thing]("shop.GetThing")
	failThing    = message.NewRequest[thing, thing]("shop.FailThing")
	missingThing = message.NewRequest[thing, thing]("shop.MissingThing")
	errNoThing   = message.NewError(message.NotFound, "shop.no_thing", "no such thing")
	thingMade    = message.NewEvent[thing]("shop.ThingMade")
)

// counter returns the value of the series name{labels} in reg (0 if absent).
func counter(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	next:
		for _, m := range f.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				ok := false
				for _, l := range m.GetLabel() {
					ok = ok || (l.GetName() == labels[i] && l.GetValue() == labels[i+1])
				}
				if !ok {
					continue next
				}
			}
			if m.Histogram != nil {
				return float64(m.GetHistogram().GetSampleCount())
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

// TestBusObserver runs requests and a durable message through an instrumented
// bus, with tracing on, and checks what it counted and traced: the envelope
// carries the writer's trace, the consumer's span hangs from it, and the inbox's
// dropped duplicate is counted.
func TestBusObserver(t *testing.T) {
	spans := tracetest.NewInMemoryExporter()
	tel, err := telemetry.New(t.Context(), telemetry.Config{Modules: []string{"shop"}, Exporter: spans, Sync: true}, discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })

	db := testdb.Open(t, testdb.SQLite, "shop", func(ctx context.Context, db *store.DB) error {
		return outbox.Migrate(ctx, db, discard)
	})
	h := modhost.NewHost(db, discard)
	var handled []int
	sub := outbox.SubscribeEvent(db, thingMade, "shop.counter", func(ctx context.Context, tx *store.Tx, m message.Message[thing]) error {
		if _, ok := bus.ModuleFrom(ctx); !ok {
			t.Error("handler context has no module")
		}
		handled = append(handled, m.Body.N)
		return nil
	})
	b, err := bus.New(discard, bus.Limits{}, nil, []bus.RequestHandler{
		bus.Handle(getThing, func(ctx context.Context, q thing) (thing, error) {
			if m, _ := bus.ModuleFrom(ctx); m != "shop" {
				t.Errorf("request handler's module = %q, want shop", m)
			}
			return q, nil
		}),

		bus.Handle(failThing, func(context.Context, thing) (thing, error) { return thing{}, errors.New("boom") }),
		bus.Handle(missingThing, func(context.Context, thing) (thing, error) { return thing{}, errNoThing }),
	}, []bus.Subscription{sub})
	if err != nil {
		t.Fatal(err)
	}
	b.Instrument(tel.BusObserver())
	reg := tel.Registry

	for range 2 {
		if _, err := bus.Call(t.Context(), b, getThing, thing{N: 1}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := bus.Call(t.Context(), b, failThing, thing{}); err == nil {
		t.Fatal("FailThing succeeded")
	}
	if got := counter(t, reg, "agora_bus_messages_sent_total", "type", "shop.GetThing", "kind", "request"); got != 2 {
		t.Errorf("sent GetThing = %v, want 2", got)
	}
	if got := counter(t, reg, "agora_bus_messages_handled_total", "type", "shop.GetThing"); got != 2 {
		t.Errorf("handled GetThing = %v, want 2", got)
	}
	if got := counter(t, reg, "agora_bus_messages_failed_total", "type", "shop.FailThing"); got != 1 {
		t.Errorf("failed FailThing = %v, want 1", got)
	}
	// A "not found" is the API working: counted as refused, not as failed.
	if _, err := bus.Call(t.Context(), b, missingThing, thing{}); !errors.Is(err, errNoThing) {
		t.Fatalf("MissingThing: %v, want errNoThing", err)
	}
	if got := counter(t, reg, "agora_bus_messages_refused_total", "type", "shop.MissingThing"); got != 1 {
		t.Errorf("refused MissingThing = %v, want 1", got)
	}
	if got := counter(t, reg, "agora_bus_messages_failed_total", "type", "shop.MissingThing"); got != 0 {
		t.Errorf("failed MissingThing = %v, want 0: a refusal is not a failure", got)
	}
	if got := counter(t, reg, "agora_bus_handling_duration_seconds", "type", "shop.GetThing", "kind", "request"); got != 2 {
		t.Errorf("handling time samples of GetThing = %v, want 2", got)
	}

	// A durable message written under a traced request carries its trace.
	ctx, span := tel.Tracer().Start(t.Context(), "checkout")
	if err := store.InTx(ctx, db, func(tx *store.Tx) error { return h.Outbox.Add(ctx, tx, thingMade.With(thing{N: 7})) }); err != nil {
		t.Fatal(err)
	}
	span.End()
	var rows []struct {
		ID      string `db:"id"`
		Type    string `db:"type"`
		Headers string `db:"headers"`
		Payload string `db:"payload"`
	}
	if err := db.SelectContext(t.Context(), &rows, `SELECT id, type, headers, payload FROM outbox`); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || !strings.Contains(rows[0].Headers, "traceparent") {
		t.Fatalf("outbox rows = %+v, want one with a traceparent header", rows)
	}
	if n, err := h.Relay.Drain(t.Context(), b); err != nil || n != 1 {
		t.Fatalf("Drain = %d, %v", n, err)
	}
	if len(handled) != 1 {
		t.Fatalf("handled %v, want one message", handled)
	}
	if got := counter(t, reg, "agora_bus_messages_handled_total", "type", "shop.ThingMade", "kind", "event"); got != 1 {
		t.Errorf("handled ThingMade = %v, want 1", got)
	}
	if got := counter(t, reg, "agora_bus_messages_sent_total", "type", "shop.ThingMade", "kind", "event"); got != 1 {
		t.Errorf("sent ThingMade = %v, want 1", got)
	}
	var consumer, producer, tx sdktrace.ReadOnlySpan
	for _, s := range spans.GetSpans().Snapshots() {
		switch {
		case s.Name() == "process shop.ThingMade":
			consumer = s
		case s.Name() == "send shop.ThingMade":
			producer = s
		case s.Name() == "db.tx shop":
			tx = s
		}
	}
	if consumer == nil || producer == nil || tx == nil {
		t.Fatalf("spans: consumer %v, producer %v, tx %v", consumer != nil, producer != nil, tx != nil)
	}
	if consumer.Parent().SpanID() != producer.SpanContext().SpanID() || consumer.SpanContext().TraceID() != span.SpanContext().TraceID() {
		t.Errorf("consumer span's parent = %v, want the producer span %v in the writer's trace", consumer.Parent(), producer.SpanContext())
	}
	if consumer.SpanKind() != trace.SpanKindConsumer || tx.Parent().SpanID() != span.SpanContext().SpanID() {
		t.Errorf("consumer kind %v; tx parent %v", consumer.SpanKind(), tx.Parent())
	}

	// Delivered again (a redelivery): the inbox drops it, and that is counted.
	env := message.Envelope{ID: rows[0].ID, Type: rows[0].Type, Kind: message.KindEvent, Payload: []byte(rows[0].Payload)}
	if err := b.Deliver(t.Context(), env); err != nil {
		t.Fatal(err)
	}
	if len(handled) != 1 {
		t.Errorf("a duplicate ran the handler again: %v", handled)
	}
	if got := counter(t, reg, "agora_inbox_duplicates_dropped_total", "consumer", "shop.counter"); got != 1 {
		t.Errorf("duplicates dropped = %v, want 1", got)
	}
}

// TestTracingOffByDefault: without the OTLP variables nothing is traced and
// envelopes carry no trace context.
func TestTracingOffByDefault(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	tel, err := telemetry.New(t.Context(), telemetry.Config{}, discard)
	if err != nil {
		t.Fatal(err)
	}
	if tel.Tracing() {
		t.Fatal("tracing is on without an endpoint")
	}
	env, err := bus.NewEnvelope(t.Context(), message.KindEvent, "shop.ThingMade", thing{})
	if err != nil || env.Headers != nil {
		t.Errorf("envelope headers = %v, %v; want none", env.Headers, err)
	}
}

// TestMetricsAccess: with a token, /metrics wants it; without one, it answers
// the loopback address only.
func TestMetricsAccess(t *testing.T) {
	tel, err := telemetry.New(t.Context(), telemetry.Config{}, discard)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, token, remote, auth string
		want                      int
	}{
		{"loopback, no token configured", "", "127.0.0.1:4000", "", http.StatusOK},
		{"loopback v6", "", "[::1]:4000", "", http.StatusOK},
		{"remote, no token configured", "", "10.1.2.3:4000", "", http.StatusForbidden},
		{"remote, with the token", "s3cret", "10.1.2.3:4000", "Bearer s3cret", http.StatusOK},
		{"remote, wrong token", "s3cret", "10.1.2.3:4000", "Bearer s3cre", http.StatusUnauthorized},
		{"loopback, token configured but not sent", "s3cret", "127.0.0.1:4000", "", http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/metrics", nil)
			r.RemoteAddr = tc.remote
			if tc.auth != "" {
				r.Header.Set("Authorization", tc.auth)
			}
			w := httptest.NewRecorder()
			tel.MetricsHandler(tc.token).ServeHTTP(w, r)
			if w.Code != tc.want {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.want, w.Body)
			}
			if tc.want == http.StatusOK {
				if body := w.Body.String(); !strings.Contains(body, "agora_build_info") || !strings.Contains(body, "go_goroutines") {
					t.Errorf("body lacks the expected series:\n%s", body)
				}
			}
		})
	}
}

func newTelemetry(tb testing.TB, exp sdktrace.SpanExporter) (*telemetry.Telemetry, error) {
	tel, err := telemetry.New(context.Background(), telemetry.Config{Modules: []string{"pricing"}, Exporter: exp}, discard)
	if err == nil {
		tb.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	}
	return tel, err
}
