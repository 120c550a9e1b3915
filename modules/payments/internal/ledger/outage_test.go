package ledger_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/modhost"
	"github.com/agora-commerce/agora/internal/testdb"
	"github.com/agora-commerce/agora/internal/testlog"
	"github.com/agora-commerce/agora/modules/payments"
	"github.com/agora-commerce/agora/modules/payments/internal/ledger"
	"github.com/agora-commerce/agora/modules/payments/internal/provider"
	"github.com/agora-commerce/agora/modules/payments/internal/psp"
)

// outageProvider returns resilience options whose breaker opens after one
// authorization's attempts (three: the first and two retries) fail.
func outageProvider(openFor time.Duration) provider.Options {
	po := fastProvider()
	po.BreakerFailures, po.BreakerOpenFor = 3, openFor
	return po
}

func setOutage(t *testing.T, w *world, down bool) payments.ProviderState {
	t.Helper()
	st, err := bus.Call(t.Context(), w.bus, payments.SetProviderOutageRequest, payments.SetProviderOutage{Down: down})
	if err != nil {
		t.Fatalf("SetProviderOutage(%v): %v", down, err)
	}
	if st.Outage != down || !st.OutageSwitchable {
		t.Fatalf("SetProviderOutage(%v) = %+v", down, st)
	}
	return st
}

func providerState(t *testing.T, w *world) payments.ProviderState {
	t.Helper()
	st, err := bus.Call(t.Context(), w.bus, payments.ProviderStatusRequest, payments.ProviderStatus{})
	if err != nil {
		t.Fatalf("ProviderStatus: %v", err)
	}
	return st
}

// TestProviderOutageOpensTheBreaker: while the simulated provider is down, its
// calls fail as an unreachable provider's do — retried, then declined as
// provider_error — until the breaker opens; then checkouts are declined as
// provider_unavailable without a call.
func TestProviderOutageOpensTheBreaker(t *testing.T) {
	testdb.EachHost(t, "payments", func(t *testing.T, h *modhost.Host) {
		w := newOutageWorld(t, h, outageProvider(time.Hour), true)
		if st := providerState(t, w); st.Outage || !st.OutageSwitchable || st.Breaker != "closed" {
			t.Fatalf("before: %+v", st)
		}
		setOutage(t, w, true)

		first := bus.NewID()
		calls := w.sim.Calls()
		w.send(t, authorize(first, psp.TokenVisa, 100))
		if ev := decode[payments.PaymentDeclined](t, w.events.wait(t, first, 1)); ev.Reason != payments.DeclineProviderError {
			t.Errorf("during the outage: declined %+v, want %s", ev, payments.DeclineProviderError)
		}
		if got := w.sim.Calls() - calls; got != 3 {
			t.Errorf("%d calls to the provider, want 3 (the first and two retries)", got)
		}
		if st := providerState(t, w); st.Breaker != "open" || !st.Outage {
			t.Fatalf("after the failures: %+v, want the breaker open", st)
		}

		second := bus.NewID()
		calls = w.sim.Calls()
		w.send(t, authorize(second, psp.TokenVisa, 100))
		if ev := decode[payments.PaymentDeclined](t, w.events.wait(t, second, 1)); ev.Reason != payments.DeclineProviderUnavailable {
			t.Errorf("with the breaker open: declined %+v, want %s", ev, payments.DeclineProviderUnavailable)
		}
		if got := w.sim.Calls(); got != calls {
			t.Errorf("the open breaker let %d calls through", got-calls)
		}
	})
}

// TestProviderOutageEnds: once the outage ends, the breaker lets a call through
// after its open period, the call succeeds and the breaker closes.
func TestProviderOutageEnds(t *testing.T) {
	testdb.EachHost(t, "payments", func(t *testing.T, h *modhost.Host) {
		w := newOutageWorld(t, h, outageProvider(20*time.Millisecond), true)
		setOutage(t, w, true)
		if _, err := w.prov.Authorize(t.Context(), payments.Money{Amount: 1, Currency: "EUR"}, psp.TokenVisa, "down"); provider.ClassOf(err) != provider.ClassRetryable {
			t.Fatalf("during the outage: %v, want a retryable failure", err)
		}
		if st := providerState(t, w); st.Breaker == "closed" {
			t.Fatalf("after three failed attempts: %+v, want the breaker not closed", st)
		}
		setOutage(t, w, false)

		// The breaker fails fast until its open period ends, then lets a call through.
		n := 0
		testlog.Eventually(t, "the breaker to let a call through", func() bool {
			n++
			_, err := w.prov.Authorize(t.Context(), payments.Money{Amount: 1, Currency: "EUR"}, psp.TokenVisa, fmt.Sprint("up-", n))
			if c := provider.ClassOf(err); c != provider.ClassUnavailable && c != 0 {
				t.Fatalf("after the outage: %v", err)
			}
			return err == nil
		})
		order := bus.NewID()
		w.send(t, authorize(order, psp.TokenVisa, 100))
		if env := w.events.wait(t, order, 1); env.Type != payments.PaymentAuthorizedEvent.Name() {
			t.Errorf("a checkout after the outage: %s, want authorized", env.Type)
		}
		if st := providerState(t, w); st.Breaker != "closed" || st.Outage {
			t.Errorf("after the outage: %+v, want the breaker closed", st)
		}
	})
}

// TestProviderOutageRefused: the outage is switched only on the simulated
// provider, in a process that allows faults; elsewhere the provider is untouched.
func TestProviderOutageRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts func(w *world, o *ledger.Options)
		want error
	}{
		{"faults not allowed", func(w *world, o *ledger.Options) { o.Outage = provider.NewSimulated(w.sim) }, payments.ErrOutageNotAllowed},
		{"not the simulator", func(_ *world, o *ledger.Options) { o.FaultsAllowed = true }, payments.ErrOutageNotSimulated},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testdb.EachHost(t, "payments", func(t *testing.T, h *modhost.Host) {
				w := startWorld(t, h, fastProvider(), nil, nil, tc.opts)
				_, err := bus.Call(t.Context(), w.bus, payments.SetProviderOutageRequest, payments.SetProviderOutage{Down: true})
				if !errors.Is(err, tc.want) {
					t.Fatalf("SetProviderOutage: %v, want %v", err, tc.want)
				}
				if w.sim.Outage() {
					t.Error("the simulator is down after a refused SetProviderOutage")
				}
				if st := providerState(t, w); st.Outage || st.OutageSwitchable {
					t.Errorf("ProviderStatus = %+v, want no outage and not switchable", st)
				}
			})
		})
	}
}
