package ledger_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/message"
	"github.com/agora-commerce/agora/internal/modhost"
	"github.com/agora-commerce/agora/internal/testdb"
	"github.com/agora-commerce/agora/modules/payments"
	"github.com/agora-commerce/agora/modules/payments/internal/ledger"
	"github.com/agora-commerce/agora/modules/payments/internal/provider"
	"github.com/agora-commerce/agora/modules/payments/internal/psp"
)

func authorizeRide(ride string, amount int64) message.Outgoing {
	return payments.AuthorizePaymentCommand.With(payments.AuthorizePayment{PayableID: ride, Payable: payments.PayableRide,
		CustomerID: "rider-" + ride, Amount: payments.Money{Amount: amount, Currency: "EUR"}, PaymentToken: psp.TokenVisa})
}

func entryKinds(p payments.Payment) []string {
	var kinds []string
	for _, e := range p.Entries {
		kinds = append(kinds, fmt.Sprintf("%s:%d:%s", e.Kind, e.Amount.Amount, e.Reason))
	}
	return kinds
}

// TestRidePaymentPartialCapture: a ride's payment is a ledger like an order's; its
// events say it is a ride's; a capture of part of it (a cancellation fee) takes that
// part at the provider, releases the rest, and leaves a ledger that says so. The
// provider's idempotency keys are the ride's id and the operation.
func TestRidePaymentPartialCapture(t *testing.T) {
	testdb.EachHost(t, "payments", func(t *testing.T, h *modhost.Host) {
		w := newWorld(t, h, fastProvider(), nil)
		ride := bus.NewID()
		w.send(t, authorizeRide(ride, 2500))
		auth := decode[payments.PaymentAuthorized](t, w.events.wait(t, ride, 1))
		if auth.Payable != payments.PayableRide || auth.Amount.Amount != 2500 {
			t.Fatalf("authorized %+v, want a ride's 2500", auth)
		}
		w.send(t, payments.CapturePaymentCommand.With(payments.CapturePayment{PayableID: ride, Amount: 500}))
		captured := decode[payments.PaymentCaptured](t, w.events.wait(t, ride, 2))
		if captured.Payable != payments.PayableRide || captured.Amount.Amount != 500 {
			t.Fatalf("captured %+v, want a ride's 500", captured)
		}
		w.send(t, refund(ride, "r1", 501)) // more than the fee
		if ev := decode[payments.RefundFailed](t, w.events.wait(t, ride, 3)); ev.Reason != ledger.RefundExceedsCaptured || ev.Payable != payments.PayableRide {
			t.Fatalf("refund beyond the fee: %+v", ev)
		}
		w.settle(t)

		p := w.payment(t, ride)
		if p.Payable != payments.PayableRide || p.Status != payments.StatusCaptured || p.Authorized != 500 || p.Captured != 500 {
			t.Errorf("payment %+v", p)
		}
		want := []string{"authorized:2500:", "captured:500:", "voided:2000:" + ledger.ReasonPartialCapture}
		if diff := cmp.Diff(want, entryKinds(p)); diff != "" {
			t.Errorf("entries (-want +got):\n%s", diff)
		}
		a, err := w.sim.AuthorizationByKey(t.Context(), ride+":authorize")
		if err != nil || a.ID != auth.ProviderRef || a.State != psp.StateCaptured || a.Captured != 500 {
			t.Errorf("provider's authorization by the key %s:authorize: %+v, %v", ride, a, err)
		}
	})
}

// TestVoidBeforeAuthorizeKeepsThePayable: a ride voided before its authorization
// arrives is recorded as the ride's, so both the void and the late authorization's
// answer reach the rides module; a void that named no payable is the ride's once
// the authorization says so.
func TestVoidBeforeAuthorizeKeepsThePayable(t *testing.T) {
	testdb.EachHost(t, "payments", func(t *testing.T, h *modhost.Host) {
		w := newWorld(t, h, fastProvider(), nil)
		unnamed := bus.NewID()
		w.send(t, payments.VoidPaymentCommand.With(payments.VoidPayment{PayableID: unnamed, Reason: "no driver"}))
		w.events.wait(t, unnamed, 1)
		w.send(t, authorizeRide(unnamed, 2500))
		if ev := decode[payments.PaymentVoided](t, w.events.wait(t, unnamed, 2)); ev.Payable != payments.PayableRide || ev.CustomerID != "rider-"+unnamed {
			t.Errorf("the late authorization's answer %+v, want the ride's void", ev)
		}
		if p := w.payment(t, unnamed); p.Payable != payments.PayableRide || p.Status != payments.StatusVoided {
			t.Errorf("payment %+v, want the ride's, voided", p)
		}
		ride := bus.NewID()
		w.send(t, payments.VoidPaymentCommand.With(payments.VoidPayment{PayableID: ride, Payable: payments.PayableRide, Reason: "no driver"}))
		w.send(t, authorizeRide(ride, 2500))
		for n := 1; n <= 2; n++ {
			if ev := decode[payments.PaymentVoided](t, w.events.wait(t, ride, n)); ev.Payable != payments.PayableRide {
				t.Errorf("event %d: %+v, want a ride's void", n, ev)
			}
		}
		w.settle(t)
		if auths := w.sim.Authorizations(); len(auths) != 0 {
			t.Errorf("the provider holds %+v", auths)
		}
	})
}

// TestCommandsOfThePreviousVersionAreHandled: commands an outbox of the previous
// version holds (an order's, under "order_id", without a payable) are carried out
// after the upgrade as an order's, and its events say so.
func TestCommandsOfThePreviousVersionAreHandled(t *testing.T) {
	testdb.EachHost(t, "payments", func(t *testing.T, h *modhost.Host) {
		w := newWorld(t, h, fastProvider(), nil)
		order := bus.NewID()
		legacy := func(c interface{ Name() string }, payload string) message.Outgoing {
			return message.Outgoing{Kind: message.KindCommand, Type: c.Name(), Payload: json.RawMessage(payload)}
		}
		w.send(t, legacy(payments.AuthorizePaymentCommand, fmt.Sprintf(
			`{"order_id":%q,"customer_id":"c1","amount":{"amount":1000,"currency":"EUR"},"payment_token":%q}`, order, psp.TokenVisa)))
		w.send(t, legacy(payments.CapturePaymentCommand, fmt.Sprintf(`{"order_id":%q}`, order)))
		w.events.wait(t, order, 2) // a refund waits for the capture, as the orders saga does
		w.send(t, legacy(payments.RefundPaymentCommand, fmt.Sprintf(`{"order_id":%q,"refund_id":"r1","amount":0,"reason":"returned"}`, order)))
		var got []string
		for n := 1; n <= 3; n++ {
			env := w.events.wait(t, order, n)
			got = append(got, env.Type+" "+string(decode[struct {
				Payable payments.Payable `json:"payable"`
			}](t, env).Payable))
		}
		want := []string{payments.PaymentAuthorizedEvent.Name() + " order", payments.PaymentCapturedEvent.Name() + " order",
			payments.RefundIssuedEvent.Name() + " order"}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("events (-want +got):\n%s", diff)
		}
		other := bus.NewID()
		w.send(t, legacy(payments.VoidPaymentCommand, fmt.Sprintf(`{"order_id":%q,"reason":"cancelled"}`, other)))
		if ev := decode[payments.PaymentVoided](t, w.events.wait(t, other, 1)); ev.Payable != payments.PayableOrder {
			t.Errorf("voided %+v, want an order's", ev)
		}
		w.settle(t)
		if p := w.payment(t, order); p.Payable != payments.PayableOrder || p.Refunded != 1000 {
			t.Errorf("payment %+v", p)
		}
	})
}

// TestMalformedPayableCommandsAreRefused: a payable of another kind, a negative
// capture or one beyond the authorization is a sender's bug, parked as a dead letter.
func TestMalformedPayableCommandsAreRefused(t *testing.T) {
	testdb.EachHost(t, "payments", func(t *testing.T, h *modhost.Host) {
		svc := ledger.NewService(h.DB, h.Outbox, provider.NewSimulated(psp.NewSimulator(psp.Config{})), fastLedger(), testdb.Logger())
		b, err := bus.New(testdb.Logger(), bus.Limits{}, nil, nil, svc.Subscriptions())
		if err != nil {
			t.Fatal(err)
		}
		ride := bus.NewID()
		deliver := func(m message.Outgoing) error {
			env, err := bus.Seal(t.Context(), m)
			if err != nil {
				t.Fatal(err)
			}
			return b.Deliver(t.Context(), env)
		}
		if err := deliver(authorizeRide(ride, 2500)); err != nil {
			t.Fatal(err)
		}
		bad := []message.Outgoing{
			payments.AuthorizePaymentCommand.With(payments.AuthorizePayment{PayableID: bus.NewID(), Payable: "boat",
				Amount: payments.Money{Amount: 1, Currency: "EUR"}}),
			payments.VoidPaymentCommand.With(payments.VoidPayment{PayableID: bus.NewID(), Payable: "boat"}),
			payments.CapturePaymentCommand.With(payments.CapturePayment{PayableID: ride, Amount: -1}),
			payments.CapturePaymentCommand.With(payments.CapturePayment{PayableID: ride, Amount: 2501}),
		}
		for _, m := range bad {
			if err := deliver(m); !errors.Is(err, message.ErrInvalidMessage) {
				t.Errorf("%s %+v: err = %v, want ErrInvalidMessage", m.Type, m.Payload, err)
			}
		}
		var n int
		if err := h.DB.GetContext(t.Context(), &n, `SELECT COUNT(*) FROM payment_operations WHERE op = 'capture'`); err != nil || n != 0 {
			t.Errorf("%d captures scheduled from malformed commands (%v)", n, err)
		}
	})
}
