package ledger_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/message"
	"github.com/agora-commerce/agora/internal/modhost"
	"github.com/agora-commerce/agora/internal/testdb"
	"github.com/agora-commerce/agora/internal/testlog"
	"github.com/agora-commerce/agora/modules/payments"
	"github.com/agora-commerce/agora/modules/payments/internal/ledger"
	"github.com/agora-commerce/agora/modules/payments/internal/provider"
	"github.com/agora-commerce/agora/modules/payments/internal/psp"
)

// TestAuthorizeOutcomes sends AuthorizePayment with each test token through the
// command path and checks the event and the ledger it leaves.
func TestAuthorizeOutcomes(t *testing.T) {
	tests := []struct {
		token      string
		wantType   string
		wantReason string
		wantStatus payments.Status
	}{
		{psp.TokenVisa, payments.PaymentAuthorizedEvent.Name(), "", payments.StatusAuthorized},
		{psp.TokenSlow, payments.PaymentAuthorizedEvent.Name(), "", payments.StatusAuthorized},
		{psp.TokenDecline, payments.PaymentDeclinedEvent.Name(), payments.DeclineCardDeclined, payments.StatusDeclined},
		{psp.TokenInsufficientFunds, payments.PaymentDeclinedEvent.Name(), payments.DeclineInsufficientFunds, payments.StatusDeclined},
		{"tok_bogus", payments.PaymentDeclinedEvent.Name(), payments.DeclineInvalidToken, payments.StatusDeclined},
		{psp.TokenError, payments.PaymentDeclinedEvent.Name(), payments.DeclineProviderError, payments.StatusDeclined},
		{psp.TokenTimeout, payments.PaymentDeclinedEvent.Name(), payments.DeclineProviderTimeout, payments.StatusDeclined},
	}
	testdb.EachHost(t, "payments", func(t *testing.T, h *modhost.Host) {
		w := newWorld(t, h, fastProvider(), nil)
		for _, tc := range tests {
			order := bus.NewID()
			w.send(t, authorize(order, tc.token, 2500))
			env := w.events.wait(t, order, 1)
			if env.Type != tc.wantType {
				t.Fatalf("%s: event %s, want %s", tc.token, env.Type, tc.wantType)
			}
			p := w.waitStatus(t, order, tc.wantStatus)
			switch tc.wantType {
			case payments.PaymentAuthorizedEvent.Name():
				ev := decode[payments.PaymentAuthorized](t, env)
				want := payments.PaymentAuthorized{PayableID: order, Payable: payments.PayableOrder, CustomerID: "cust-" + order,
					Amount: payments.Money{Amount: 2500, Currency: "EUR"}, ProviderRef: ev.ProviderRef}
				if diff := cmp.Diff(want, ev); diff != "" || ev.ProviderRef == "" {
					t.Errorf("%s: PaymentAuthorized (-want +got):\n%s", tc.token, diff)
				}
				if p.Authorized != 2500 || len(p.Entries) != 1 || p.Entries[0].Kind != "authorized" || p.Entries[0].ProviderRef != ev.ProviderRef {
					t.Errorf("%s: ledger %+v", tc.token, p)
				}
			default:
				ev := decode[payments.PaymentDeclined](t, env)
				if ev.Reason != tc.wantReason || ev.Message != ledger.Messages[tc.wantReason] || ev.Message == "" || ev.CustomerID != "cust-"+order {
					t.Errorf("%s: PaymentDeclined %+v, want reason %s with its message", tc.token, ev, tc.wantReason)
				}
				// The provider's trouble is worth another try; the card's refusal is not.
				if wantRetry := tc.token == psp.TokenError || tc.token == psp.TokenTimeout; ev.Retryable != wantRetry {
					t.Errorf("%s: PaymentDeclined.Retryable = %v, want %v", tc.token, ev.Retryable, wantRetry)
				}
				if p.Reason != tc.wantReason || p.Authorized != 0 {
					t.Errorf("%s: ledger %+v", tc.token, p)
				}
			}
		}
		w.settle(t)
	})
}

// TestTimeoutVoidsWhatTheProviderHeld: tok_timeout holds the amount and never
// answers. After the retries the payment is declined, and the hold is voided at
// the provider, found by the authorize call's idempotency key.
func TestTimeoutVoidsWhatTheProviderHeld(t *testing.T) {
	testdb.EachHost(t, "payments", func(t *testing.T, h *modhost.Host) {
		w := newWorld(t, h, fastProvider(), nil)
		order := bus.NewID()
		w.send(t, authorize(order, psp.TokenTimeout, 900))
		ev := decode[payments.PaymentDeclined](t, w.events.wait(t, order, 1))
		if ev.Reason != payments.DeclineProviderTimeout {
			t.Fatalf("declined for %q, want %q", ev.Reason, payments.DeclineProviderTimeout)
		}
		testlog.Eventually(t, "the provider's hold to be voided", func() bool {
			a, err := w.sim.AuthorizationByKey(t.Context(), order+":authorize")
			return err == nil && a.State == psp.StateVoided
		})
		w.settle(t)
		p := w.payment(t, order)
		if p.Status != payments.StatusDeclined || len(p.Entries) != 1 || p.Entries[0].Kind != "voided" || p.Entries[0].Amount.Amount != 900 {
			t.Errorf("ledger after the safety void: %+v", p)
		}
		if got := w.events.types(order); len(got) != 1 {
			t.Errorf("events %v, want only the decline", got)
		}
	})
}

func TestLifecycle(t *testing.T) {
	testdb.EachHost(t, "payments", func(t *testing.T, h *modhost.Host) {
		w := newWorld(t, h, fastProvider(), nil)
		order := bus.NewID()
		w.send(t, authorize(order, psp.TokenVisa, 1000))
		auth := decode[payments.PaymentAuthorized](t, w.events.wait(t, order, 1))

		w.send(t, capture(order))
		if ev := decode[payments.PaymentCaptured](t, w.events.wait(t, order, 2)); ev.Amount.Amount != 1000 {
			t.Fatalf("captured %+v", ev)
		}
		w.send(t, refund(order, "r1", 300))
		if ev := decode[payments.RefundIssued](t, w.events.wait(t, order, 3)); ev.Amount.Amount != 300 || ev.TotalRefunded != 300 || ev.RefundID != "r1" {
			t.Fatalf("first refund %+v", ev)
		}
		w.send(t, refund(order, "r1", 300)) // the same refund again: answered, not refunded twice
		if ev := decode[payments.RefundIssued](t, w.events.wait(t, order, 4)); ev.RefundID != "r1" || ev.Amount.Amount != 300 {
			t.Fatalf("repeated refund %+v", ev)
		}
		w.send(t, refund(order, "r2", 701)) // more than is left
		if ev := decode[payments.RefundFailed](t, w.events.wait(t, order, 5)); ev.Reason != ledger.RefundExceedsCaptured {
			t.Fatalf("refund beyond captured %+v", ev)
		}
		w.send(t, refund(order, "r3", 0)) // all that is left
		if ev := decode[payments.RefundIssued](t, w.events.wait(t, order, 6)); ev.Amount.Amount != 700 || ev.TotalRefunded != 1000 {
			t.Fatalf("refund of the rest %+v", ev)
		}
		w.send(t, refund(order, "r4", 0))
		if ev := decode[payments.RefundFailed](t, w.events.wait(t, order, 7)); ev.Reason != ledger.RefundExceedsCaptured {
			t.Fatalf("refund of nothing left %+v", ev)
		}
		w.send(t, capture(order)) // captured already: the outcome again, no second capture
		if ev := w.events.wait(t, order, 8); ev.Type != payments.PaymentCapturedEvent.Name() {
			t.Fatalf("capture again: %s", ev.Type)
		}
		w.settle(t)

		p := w.payment(t, order)
		var kinds []string
		for _, e := range p.Entries {
			kinds = append(kinds, fmt.Sprintf("%s:%d", e.Kind, e.Amount.Amount))
		}
		if p.Status != payments.StatusRefunded || p.Authorized != 1000 || p.Captured != 1000 || p.Refunded != 1000 {
			t.Errorf("payment %+v", p)
		}
		if diff := cmp.Diff([]string{"authorized:1000", "captured:1000", "refunded:300", "refunded:700"}, kinds); diff != "" {
			t.Errorf("entries (-want +got):\n%s", diff)
		}
		a, err := w.sim.Get(t.Context(), auth.ProviderRef)
		if err != nil || a.Captured != 1000 || a.Refunded != 1000 {
			t.Errorf("provider: %+v, %v", a, err)
		}
	})
}

func TestAuthorizeTwicePublishesTheSameOutcome(t *testing.T) {
	testdb.EachHost(t, "payments", func(t *testing.T, h *modhost.Host) {
		w := newWorld(t, h, fastProvider(), nil)
		ok, declined := bus.NewID(), bus.NewID()
		w.send(t, authorize(ok, psp.TokenVisa, 100), authorize(declined, psp.TokenDecline, 100))
		first := decode[payments.PaymentAuthorized](t, w.events.wait(t, ok, 1))
		firstDecline := decode[payments.PaymentDeclined](t, w.events.wait(t, declined, 1))
		w.send(t, authorize(ok, psp.TokenVisa, 100), authorize(declined, psp.TokenDecline, 100))
		if again := decode[payments.PaymentAuthorized](t, w.events.wait(t, ok, 2)); again != first {
			t.Errorf("second PaymentAuthorized %+v, want %+v", again, first)
		}
		if again := decode[payments.PaymentDeclined](t, w.events.wait(t, declined, 2)); again != firstDecline {
			t.Errorf("second PaymentDeclined %+v, want %+v", again, firstDecline)
		}
		w.settle(t)
		if n := len(w.sim.Authorizations()); n != 1 {
			t.Errorf("the provider holds %d authorizations, want 1", n)
		}
	})
}

func TestCaptureNeedsAnAuthorization(t *testing.T) {
	testdb.EachHost(t, "payments", func(t *testing.T, h *modhost.Host) {
		w := newWorld(t, h, fastProvider(), nil)
		unknown, declined, pending := bus.NewID(), bus.NewID(), bus.NewID()
		w.send(t, authorize(declined, psp.TokenDecline, 100))
		w.events.wait(t, declined, 1)
		// tok_slow answers after a while: the capture sent meanwhile waits for it.
		w.send(t, capture(unknown), capture(declined), authorize(pending, psp.TokenSlow, 100), capture(pending))
		if ev := w.events.wait(t, pending, 2); ev.Type != payments.PaymentCapturedEvent.Name() {
			t.Fatalf("capture after a pending authorization: %v", w.events.types(pending))
		}
		w.settle(t)
		if got := w.events.types(unknown); len(got) != 0 {
			t.Errorf("capture of an unknown order published %v", got)
		}
		if got := w.events.types(declined); len(got) != 1 {
			t.Errorf("capture of a declined payment published %v", got)
		}
		if p := w.payment(t, declined); p.Captured != 0 || p.Status != payments.StatusDeclined {
			t.Errorf("declined payment after capture: %+v", p)
		}
		if _, err := bus.Call(t.Context(), w.bus, payments.GetPaymentRequest, payments.GetPayment{PayableID: unknown}); !errors.Is(err, payments.ErrPaymentNotFound) {
			t.Errorf("unknown order: err = %v", err)
		}
	})
}

func TestVoid(t *testing.T) {
	testdb.EachHost(t, "payments", func(t *testing.T, h *modhost.Host) {
		w := newWorld(t, h, fastProvider(), nil)

		// Authorized, then voided: released at the provider.
		held := bus.NewID()
		w.send(t, authorize(held, psp.TokenVisa, 100))
		auth := decode[payments.PaymentAuthorized](t, w.events.wait(t, held, 1))
		w.send(t, void(held))
		if ev := w.events.wait(t, held, 2); ev.Type != payments.PaymentVoidedEvent.Name() {
			t.Fatalf("void: %v", w.events.types(held))
		}
		if a, _ := w.sim.Get(t.Context(), auth.ProviderRef); a.State != psp.StateVoided {
			t.Errorf("provider: %+v", a)
		}
		if p := w.payment(t, held); p.Status != payments.StatusVoided || p.Authorized != 0 {
			t.Errorf("voided payment %+v", p)
		}

		// Voided before it was authorized: not a payment until the authorization
		// names its amount; an authorize arriving late holds nothing.
		never := bus.NewID()
		w.send(t, void(never))
		if ev := w.events.wait(t, never, 1); ev.Type != payments.PaymentVoidedEvent.Name() {
			t.Fatalf("blind void: %v", w.events.types(never))
		}
		if p, err := bus.Call(t.Context(), w.bus, payments.GetPaymentRequest, payments.GetPayment{PayableID: never}); !errors.Is(err, payments.ErrPaymentNotFound) {
			t.Errorf("a blind void reads as %+v, %v; want not found", p, err)
		}
		w.send(t, authorize(never, psp.TokenVisa, 100))
		if ev := w.events.wait(t, never, 2); ev.Type != payments.PaymentVoidedEvent.Name() {
			t.Fatalf("late authorize: %v", w.events.types(never))
		}
		if p := w.payment(t, never); p.Status != payments.StatusVoided || p.Amount.Amount != 100 || p.Amount.Currency == "" || p.Authorized != 0 {
			t.Errorf("a blind void after its authorization: %+v", p)
		}

		// Authorize and void at once: whichever the worker sees first, the provider
		// ends up holding nothing.
		both := bus.NewID()
		w.send(t, authorize(both, psp.TokenVisa, 100), void(both))
		if ev := w.events.wait(t, both, 1); ev.Type != payments.PaymentVoidedEvent.Name() {
			t.Fatalf("void right after authorize: %v", w.events.types(both))
		}
		w.settle(t)
		for _, a := range w.sim.Authorizations() {
			if a.State != psp.StateVoided {
				t.Errorf("the provider still holds %+v", a)
			}
		}
	})
}

// TestVoidBeforeTheCallSkipsIt: an authorization voided before a worker took it
// is never sent to the provider.
func TestVoidBeforeTheCallSkipsIt(t *testing.T) {
	testdb.EachHost(t, "payments", func(t *testing.T, h *modhost.Host) {
		sim := psp.NewSimulator(psp.Config{})
		svc := ledger.NewService(h.DB, h.Outbox, provider.NewSimulated(sim), fastLedger(), testdb.Logger())
		b, err := bus.New(testdb.Logger(), bus.Limits{}, nil, nil, svc.Subscriptions())
		if err != nil {
			t.Fatal(err)
		}
		order := bus.NewID()
		for _, m := range []message.Outgoing{authorize(order, psp.TokenVisa, 100), void(order)} {
			env, err := bus.Seal(t.Context(), m)
			if err != nil {
				t.Fatal(err)
			}
			if err := b.Deliver(t.Context(), env); err != nil {
				t.Fatal(err)
			}
		}
		svc.Start() // only now: the void is recorded before any call
		t.Cleanup(func() { _ = svc.Stop(context.Background()) })
		w := &world{h: h}
		testlog.Eventually(t, "the authorization to be dropped", func() bool { return w.pendingOps(t) == 0 })
		if n := sim.Calls(); n != 0 {
			t.Errorf("%d provider calls for an order voided before the call", n)
		}
		if got := testdb.OutboxTypes(testdb.OutboxRows(t, h.DB)); !slices.Equal(got, []string{payments.PaymentVoidedEvent.Name()}) {
			t.Errorf("published %v, want one PaymentVoided", got)
		}
	})
}

// gate holds the answers of authorizations until released, after the provider made them.
type gate struct {
	provider.Provider
	started, release chan struct{}
}

func (g *gate) Authorize(ctx context.Context, m payments.Money, token, key string) (provider.Authorization, error) {
	a, err := g.Provider.Authorize(ctx, m, token, key)
	g.started <- struct{}{}
	<-g.release
	return a, err
}

// TestVoidWhileAuthorizing: the void arrives while the authorization call is out.
// It is answered at once, and the authorization's late answer is voided at the
// provider.
func TestVoidWhileAuthorizing(t *testing.T) {
	testdb.EachHost(t, "payments", func(t *testing.T, h *modhost.Host) {
		g := &gate{started: make(chan struct{}, 1), release: make(chan struct{})}
		po := fastProvider()
		po.Timeout = time.Minute
		w := newWorld(t, h, po, func(p provider.Provider) provider.Provider { g.Provider = p; return g })
		order := bus.NewID()
		w.send(t, authorize(order, psp.TokenVisa, 100))
		<-g.started
		w.send(t, void(order))
		if ev := w.events.wait(t, order, 1); ev.Type != payments.PaymentVoidedEvent.Name() {
			t.Fatalf("void while authorizing: %v", w.events.types(order))
		}
		close(g.release)
		w.settle(t)
		a, err := w.sim.AuthorizationByKey(t.Context(), order+":authorize")
		if err != nil || a.State != psp.StateVoided {
			t.Errorf("the late authorization at the provider: %+v, %v", a, err)
		}
		p := w.payment(t, order)
		var kinds []string
		for _, e := range p.Entries {
			kinds = append(kinds, e.Kind)
		}
		if p.Status != payments.StatusVoided || p.Authorized != 0 || !slices.Equal(kinds, []string{"authorized", "voided"}) {
			t.Errorf("payment %+v", p)
		}
		if got := w.events.types(order); len(got) != 1 {
			t.Errorf("events %v, want one PaymentVoided", got)
		}
	})
}

// TestBreakerOpenDeclinesAtOnce: with the breaker open, an authorization is
// declined as provider_unavailable without a call to the provider.
func TestBreakerOpenDeclinesAtOnce(t *testing.T) {
	testdb.EachHost(t, "payments", func(t *testing.T, h *modhost.Host) {
		po := fastProvider()
		po.BreakerFailures = 1
		w := newWorld(t, h, po, nil)
		if _, err := w.prov.Authorize(t.Context(), payments.Money{Amount: 1, Currency: "EUR"}, psp.TokenError, "trip"); err == nil {
			t.Fatal("tok_error succeeded")
		}
		st, err := bus.Call(t.Context(), w.bus, payments.ProviderStatusRequest, payments.ProviderStatus{})
		if err != nil || st.Breaker != "open" || st.Provider != "simulated" {
			t.Fatalf("ProviderStatus = %+v, %v", st, err)
		}
		calls := w.sim.Calls()
		order := bus.NewID()
		w.send(t, authorize(order, psp.TokenVisa, 100))
		ev := decode[payments.PaymentDeclined](t, w.events.wait(t, order, 1))
		if ev.Reason != payments.DeclineProviderUnavailable || ev.Message != "the payment provider is unavailable; please try again later" {
			t.Errorf("declined %+v", ev)
		}
		if got := w.sim.Calls(); got != calls {
			t.Errorf("%d provider calls with the breaker open", got-calls)
		}
	})
}

// flaky fails the first failures captures with a 503, after the provider took
// none of them.
type flaky struct {
	provider.Provider
	failures atomic.Int64
	captures atomic.Int64
}

func (f *flaky) Capture(ctx context.Context, authID string, amount int64, key string) (provider.Authorization, error) {
	if f.captures.Add(1) <= f.failures.Load() {
		return provider.Authorization{}, &provider.Error{Class: provider.ClassRetryable, Err: errors.New("503")}
	}
	return f.Provider.Capture(ctx, authID, amount, key)
}

// TestCaptureIsRetriedUntilItSucceeds: a capture that keeps failing, beyond the
// provider layer's own retries, is tried again later rather than lost.
func TestCaptureIsRetriedUntilItSucceeds(t *testing.T) {
	testdb.EachHost(t, "payments", func(t *testing.T, h *modhost.Host) {
		f := &flaky{}
		f.failures.Store(10) // the provider layer retries twice: several operation attempts are needed
		w := newWorld(t, h, fastProvider(), func(p provider.Provider) provider.Provider { f.Provider = p; return f })
		order := bus.NewID()
		w.send(t, authorize(order, psp.TokenVisa, 100))
		w.events.wait(t, order, 1)
		w.send(t, capture(order))
		if ev := w.events.wait(t, order, 2); ev.Type != payments.PaymentCapturedEvent.Name() {
			t.Fatalf("events %v", w.events.types(order))
		}
		if got := f.captures.Load(); got != 11 {
			t.Errorf("%d capture calls, want 11", got)
		}
		if p := w.payment(t, order); p.Captured != 100 {
			t.Errorf("payment %+v", p)
		}
	})
}

// hang is a provider whose authorizations reach the provider and whose answers
// never come back: the process "crashes" before it can record them.
type hang struct {
	provider.Provider
	charged chan struct{}
	once    sync.Once
}

func (p *hang) Authorize(ctx context.Context, m payments.Money, token, key string) (provider.Authorization, error) {
	if _, err := p.Provider.Authorize(context.WithoutCancel(ctx), m, token, key); err != nil {
		return provider.Authorization{}, err
	}
	p.once.Do(func() { close(p.charged) })
	<-ctx.Done()
	return provider.Authorization{}, ctx.Err()
}

// TestCrashedAuthorizationIsResumed: the process dies after the provider
// authorized and before the answer was recorded. The next process resumes the
// pending operation with the same idempotency key: the provider answers with the
// authorization it made, and nothing is held twice.
func TestCrashedAuthorizationIsResumed(t *testing.T) {
	testdb.EachHost(t, "payments", func(t *testing.T, h *modhost.Host) {
		sim := psp.NewSimulator(psp.Config{})
		po := fastProvider()
		po.Timeout = time.Hour // the first process waits for its answer until it dies
		crashed := &hang{Provider: provider.NewSimulated(sim), charged: make(chan struct{})}
		lo := fastLedger()
		lo.Lease = 300 * time.Millisecond
		dead := lo
		dead.PollInterval = time.Hour // once "dead", the first process never looks again
		dead.Heartbeat = time.Hour    // nor renews the lease of the call it was making
		first := ledger.NewService(h.DB, h.Outbox, provider.NewResilient(crashed, po), dead, testdb.Logger())
		events := &recorder{}
		b, err := bus.New(testdb.Logger(), bus.Limits{}, nil, nil, append(first.Subscriptions(), events.subscriptions()...))
		if err != nil {
			t.Fatal(err)
		}
		h.Relay.Start(b)
		t.Cleanup(func() { _ = h.Relay.Stop(context.Background()) })
		first.Start()
		w := &world{h: h}
		order := bus.NewID()
		w.send(t, authorize(order, psp.TokenVisa, 5000))
		<-crashed.charged
		// The first process is dead: it never records anything again. (Its stuck
		// call is cancelled when the test ends; a cancelled call records nothing.)
		t.Cleanup(func() {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			_ = first.Stop(ctx)
		})

		second := ledger.NewService(h.DB, h.Outbox, provider.NewResilient(provider.NewSimulated(sim), fastProvider()), lo, testdb.Logger())
		second.Start()
		t.Cleanup(func() { _ = second.Stop(context.Background()) })

		ev := decode[payments.PaymentAuthorized](t, events.wait(t, order, 1))
		auths := sim.Authorizations()
		if len(auths) != 1 || auths[0].ID != ev.ProviderRef || auths[0].Amount != 5000 {
			t.Fatalf("the provider holds %+v; want the one authorization %s", auths, ev.ProviderRef)
		}
		testlog.Eventually(t, "the payment to be authorized", func() bool {
			p, err := second.Get(t.Context(), payments.GetPayment{PayableID: order})
			return err == nil && p.Status == payments.StatusAuthorized && p.Authorized == 5000
		})
		if got := events.types(order); len(got) != 1 {
			t.Errorf("events %v, want one PaymentAuthorized", got)
		}
	})
}

// TestStopLeavesInterruptedCallsPending: a call cut short by a stop is neither
// recorded as an outcome nor lost; the next start makes it again, at once.
func TestStopLeavesInterruptedCallsPending(t *testing.T) {
	testdb.EachHost(t, "payments", func(t *testing.T, h *modhost.Host) {
		sim := psp.NewSimulator(psp.Config{})
		po := fastProvider()
		po.Timeout = time.Hour
		stuck := &hang{Provider: provider.NewSimulated(sim), charged: make(chan struct{})}
		first := ledger.NewService(h.DB, h.Outbox, provider.NewResilient(stuck, po), fastLedger(), testdb.Logger())
		events := &recorder{}
		b, err := bus.New(testdb.Logger(), bus.Limits{}, nil, nil, append(first.Subscriptions(), events.subscriptions()...))
		if err != nil {
			t.Fatal(err)
		}
		h.Relay.Start(b)
		t.Cleanup(func() { _ = h.Relay.Stop(context.Background()) })
		first.Start()
		w := &world{h: h}
		order := bus.NewID()
		w.send(t, authorize(order, psp.TokenVisa, 700))
		<-stuck.charged
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		if err := first.Stop(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Stop = %v, want the deadline (the call was still out)", err)
		}
		if n := w.pendingOps(t); n != 1 {
			t.Fatalf("%d pending operations after the stop, want 1", n)
		}
		// A long lease would hold the operation if Stop had not released it.
		lo := fastLedger()
		lo.Lease = time.Hour
		second := ledger.NewService(h.DB, h.Outbox, provider.NewResilient(provider.NewSimulated(sim), fastProvider()), lo, testdb.Logger())
		second.Start()
		t.Cleanup(func() { _ = second.Stop(context.Background()) })
		ev := decode[payments.PaymentAuthorized](t, events.wait(t, order, 1))
		if auths := sim.Authorizations(); len(auths) != 1 || auths[0].ID != ev.ProviderRef {
			t.Errorf("the provider holds %+v", auths)
		}
	})
}

func TestMalformedCommandsAreRefused(t *testing.T) {
	testdb.EachHost(t, "payments", func(t *testing.T, h *modhost.Host) {
		svc := ledger.NewService(h.DB, h.Outbox, provider.NewSimulated(psp.NewSimulator(psp.Config{})), fastLedger(), testdb.Logger())
		b, err := bus.New(testdb.Logger(), bus.Limits{}, nil, nil, svc.Subscriptions())
		if err != nil {
			t.Fatal(err)
		}
		bad := []message.Outgoing{
			authorize("", psp.TokenVisa, 100),
			authorize(bus.NewID(), psp.TokenVisa, 0),
			payments.AuthorizePaymentCommand.With(payments.AuthorizePayment{PayableID: bus.NewID(), Amount: payments.Money{Amount: 1, Currency: "euro"}}),
			refund(bus.NewID(), "", 0),
			refund(bus.NewID(), "r", -1),
		}
		for _, m := range bad {
			env, err := bus.Seal(t.Context(), m)
			if err != nil {
				t.Fatal(err)
			}
			if err := b.Deliver(t.Context(), env); !errors.Is(err, message.ErrInvalidMessage) {
				t.Errorf("%s %s: err = %v, want ErrInvalidMessage", m.Type, env.Payload, err)
			}
		}
		var n int
		if err := h.DB.GetContext(t.Context(), &n, `SELECT COUNT(*) FROM payments`); err != nil || n != 0 {
			t.Errorf("%d payments recorded from malformed commands (%v)", n, err)
		}
	})
}
