package ledger_test

import (
	"context"
	"encoding/json"
	"os"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/message"
	"github.com/agora-commerce/agora/internal/modhost"
	"github.com/agora-commerce/agora/internal/store"
	"github.com/agora-commerce/agora/internal/testdb"
	"github.com/agora-commerce/agora/internal/testlog"
	"github.com/agora-commerce/agora/modules/payments"
	"github.com/agora-commerce/agora/modules/payments/internal/ledger"
	"github.com/agora-commerce/agora/modules/payments/internal/provider"
	"github.com/agora-commerce/agora/modules/payments/internal/psp"
)

func TestMain(m *testing.M) { os.Exit(testdb.Main(m)) }

// world is the payments module running as in production — its database, its
// outbox relay, the bus, its command subscriptions and worker pool — in front of a
// simulated provider, with a recorder of the events it publishes.
type world struct {
	h      *modhost.Host
	sim    *psp.Simulator
	prov   *provider.Resilient
	svc    *ledger.Service
	bus    *bus.Bus
	events *recorder
}

// fastProvider returns the resilience options of tests: short deadlines and backoffs.
func fastProvider() provider.Options {
	return provider.Options{Timeout: 100 * time.Millisecond, Retries: 2, BaseBackoff: time.Millisecond,
		MaxBackoff: 5 * time.Millisecond, BreakerFailures: 1000, BreakerOpenFor: time.Hour}
}

func fastLedger() ledger.Options {
	return ledger.Options{PollInterval: 10 * time.Millisecond, RetryBase: time.Millisecond, RetryMax: 10 * time.Millisecond}
}

// newWorld starts the module on h. wrap (may be nil) wraps the raw simulated
// provider, to inject faults below the resilience layer.
func newWorld(t *testing.T, h *modhost.Host, po provider.Options, wrap func(provider.Provider) provider.Provider) *world {
	t.Helper()
	return newTracedWorld(t, h, po, wrap, nil)
}

// newTracedWorld is newWorld with tracing through tp when it is not nil: the
// bus's handlers run under spans that continue their senders' traces, and the
// worker pool makes its spans with tp.
func newTracedWorld(t *testing.T, h *modhost.Host, po provider.Options, wrap func(provider.Provider) provider.Provider, tp trace.TracerProvider) *world {
	t.Helper()
	return startWorld(t, h, po, wrap, tp, nil)
}

// newOutageWorld is newWorld whose simulator's outage the ledger may switch when
// allowed (a process started with --demo or --allow-faults).
func newOutageWorld(t *testing.T, h *modhost.Host, po provider.Options, allowed bool) *world {
	t.Helper()
	return startWorld(t, h, po, nil, nil, func(w *world, o *ledger.Options) {
		o.Outage, o.FaultsAllowed = provider.NewSimulated(w.sim), allowed
	})
}

// startWorld is newTracedWorld with the ledger's options tuned by tune (may be nil).
func startWorld(t *testing.T, h *modhost.Host, po provider.Options, wrap func(provider.Provider) provider.Provider,
	tp trace.TracerProvider, tune func(*world, *ledger.Options)) *world {
	t.Helper()
	w := &world{h: h, sim: psp.NewSimulator(psp.Config{SlowLatency: 50 * time.Millisecond}), events: &recorder{}}
	var raw provider.Provider = provider.NewSimulated(w.sim)
	if wrap != nil {
		raw = wrap(raw)
	}
	w.prov = provider.NewResilient(raw, po)
	opts := fastLedger()
	opts.Tracer = tp
	if tune != nil {
		tune(w, &opts)
	}
	w.svc = ledger.NewService(h.DB, h.Outbox, w.prov, opts, testdb.Logger())
	b, err := bus.New(testdb.Logger(), bus.Limits{}, nil, w.svc.Handlers(), append(w.svc.Subscriptions(), w.events.subscriptions()...))
	if err != nil {
		t.Fatal(err)
	}
	if tp != nil {
		b.Instrument(handlerSpans{tp.Tracer("test")})
	}
	w.bus = b
	h.Relay.Start(b)
	w.svc.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := w.svc.Stop(ctx); err != nil {
			t.Errorf("stop workers: %v", err)
		}
		if err := h.Relay.Stop(ctx); err != nil {
			t.Errorf("stop relay: %v", err)
		}
	})
	return w
}

// send sends commands to payments the way another module does: through an
// outbox, which the relay delivers to the bus.
func (w *world) send(t *testing.T, cmds ...message.Outgoing) {
	t.Helper()
	err := store.InTx(t.Context(), w.h.DB, func(tx *store.Tx) error { return w.h.Outbox.Add(t.Context(), tx, cmds...) })
	if err != nil {
		t.Fatalf("send: %v", err)
	}
}

func (w *world) payment(t *testing.T, orderID string) payments.Payment {
	t.Helper()
	p, err := bus.Call(t.Context(), w.bus, payments.GetPaymentRequest, payments.GetPayment{PayableID: orderID})
	if err != nil {
		t.Fatalf("GetPayment %s: %v", orderID, err)
	}
	return p
}

// waitStatus waits until orderID's payment has status.
func (w *world) waitStatus(t *testing.T, orderID string, status payments.Status) payments.Payment {
	t.Helper()
	var p payments.Payment
	testlog.Eventually(t, "payment "+orderID+" "+string(status), func() bool {
		var err error
		p, err = bus.Call(t.Context(), w.bus, payments.GetPaymentRequest, payments.GetPayment{PayableID: orderID})
		return err == nil && p.Status == status
	})
	return p
}

// pendingOps returns how many provider calls are still to be made.
func (w *world) pendingOps(t *testing.T) int {
	t.Helper()
	var n int
	if err := w.h.DB.GetContext(t.Context(), &n, `SELECT COUNT(*) FROM payment_operations WHERE state = 'pending'`); err != nil {
		t.Fatal(err)
	}
	return n
}

// settle waits until no provider call is pending and the outbox is delivered.
func (w *world) settle(t *testing.T) {
	t.Helper()
	testlog.Eventually(t, "payments to settle", func() bool {
		return w.pendingOps(t) == 0 && len(testdb.OutboxRows(t, w.h.DB)) == 0
	})
}

func authorize(order, token string, amount int64) message.Outgoing {
	return payments.AuthorizePaymentCommand.With(payments.AuthorizePayment{PayableID: order, CustomerID: "cust-" + order,
		Amount: payments.Money{Amount: amount, Currency: "EUR"}, PaymentToken: token})
}

func capture(order string) message.Outgoing {
	return payments.CapturePaymentCommand.With(payments.CapturePayment{PayableID: order})
}

func void(order string) message.Outgoing {
	return payments.VoidPaymentCommand.With(payments.VoidPayment{PayableID: order, Reason: "out of stock"})
}

func refund(order, id string, amount int64) message.Outgoing {
	return payments.RefundPaymentCommand.With(payments.RefundPayment{PayableID: order, RefundID: id, Amount: amount, Reason: "returned"})
}

// recorder keeps every event payments publishes.
type recorder struct {
	mu  sync.Mutex
	got []message.Envelope
}

func (r *recorder) subscriptions() []bus.Subscription {
	var subs []bus.Subscription
	for _, typ := range []string{
		payments.PaymentAuthorizedEvent.Name(), payments.PaymentDeclinedEvent.Name(), payments.PaymentCapturedEvent.Name(),
		payments.PaymentVoidedEvent.Name(), payments.RefundIssuedEvent.Name(), payments.RefundFailedEvent.Name(),
	} {
		subs = append(subs, bus.Subscription{Type: typ, Consumer: "test.recorder", Handle: func(_ context.Context, env message.Envelope) error {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.got = append(r.got, env)
			return nil
		}})
	}
	return subs
}

// of returns the events of orderID, in order, as "Type" strings and their envelopes.
func (r *recorder) of(orderID string) []message.Envelope {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []message.Envelope
	for _, env := range r.got {
		var p struct {
			PayableID string `json:"payable_id"`
		}
		if json.Unmarshal(env.Payload, &p) == nil && p.PayableID == orderID {
			out = append(out, env)
		}
	}
	return out
}

func (r *recorder) types(orderID string) []string {
	var out []string
	for _, env := range r.of(orderID) {
		out = append(out, env.Type)
	}
	return out
}

// wait waits for the n-th event of orderID and returns it.
func (r *recorder) wait(t *testing.T, orderID string, n int) message.Envelope {
	t.Helper()
	testlog.Eventually(t, "event of "+orderID, func() bool { return len(r.of(orderID)) >= n })
	return r.of(orderID)[n-1]
}

func decode[T any](t *testing.T, env message.Envelope) T {
	t.Helper()
	return testdb.Decode[T](t, string(env.Payload))
}

// handlerSpans is the least of what telemetry's bus observer does for tracing: a
// handler of a durable message runs under a span that continues the trace its
// envelope carries.
type handlerSpans struct{ tracer trace.Tracer }

func (o handlerSpans) Observe(ctx context.Context, op bus.Op) (context.Context, func(error)) {
	if op.Role != bus.Handling || op.Headers == nil {
		return ctx, func(error) {}
	}
	ctx, span := o.tracer.Start(bus.ExtractTrace(ctx, op.Headers), "process "+op.Type)
	return ctx, func(error) { span.End() }
}
