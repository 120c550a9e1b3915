package checkout_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/message"
	"github.com/agora-commerce/agora/internal/modhost"
	"github.com/agora-commerce/agora/internal/testdb"
	"github.com/agora-commerce/agora/internal/testlog"
	"github.com/agora-commerce/agora/modules/catalog"
	"github.com/agora-commerce/agora/modules/inventory"
	"github.com/agora-commerce/agora/modules/orders"
	"github.com/agora-commerce/agora/modules/orders/internal/checkout"
	"github.com/agora-commerce/agora/modules/orders/internal/ordertest"
	"github.com/agora-commerce/agora/modules/orders/internal/saga"
	"github.com/agora-commerce/agora/modules/payments"
)

func TestMain(m *testing.M) { os.Exit(testdb.Main(m)) }

const (
	alice = "0190a8b2-0000-7000-8000-00000000a11c"
	bob   = "0190a8b2-0000-7000-8000-000000000b0b"
)

// each runs fn on a fresh orders module per back end.
func each(t *testing.T, opts checkout.Options, fn func(t *testing.T, w *ordertest.World)) {
	testdb.EachHost(t, "orders", func(t *testing.T, h *modhost.Host) {
		fn(t, ordertest.NewWorld(t, h, opts))
	})
}

func fieldOf(err error) string {
	var be *message.Error
	if errors.As(err, &be) {
		return be.Field
	}
	return ""
}

func TestCart(t *testing.T) {
	each(t, checkout.Options{}, func(t *testing.T, w *ordertest.World) {
		ctx := t.Context()
		tee := w.Catalog.Add("TEE-M", "Classic Tee", 1500)
		mug := w.Catalog.Add("MUG", "Mug", 500)

		t.Run("empty", func(t *testing.T) {
			c, err := bus.Call(ctx, w.Bus, orders.GetCartRequest, orders.GetCart{CustomerID: bob})
			if err != nil || len(c.Lines) != 0 || c.Total != nil || !c.UpdatedAt.IsZero() || c.Version != 0 {
				t.Fatalf("empty cart: %+v, %v", c, err)
			}
		})

		t.Run("set and price", func(t *testing.T) {
			c, err := bus.Call(ctx, w.Bus, orders.SetCartItemRequest, orders.SetCartItem{CustomerID: alice, ProductID: tee.ID, Quantity: 2})
			if err != nil {
				t.Fatal(err)
			}
			c, err = bus.Call(ctx, w.Bus, orders.SetCartItemRequest, orders.SetCartItem{CustomerID: alice, ProductID: mug.ID, Quantity: 1})
			if err != nil {
				t.Fatal(err)
			}
			want := []orders.CartLine{
				{ProductID: tee.ID, SKU: "TEE-M", Name: "Classic Tee", UnitPrice: orders.Money{Amount: 1500, Currency: "EUR"}, Quantity: 2, LineTotal: orders.Money{Amount: 3000, Currency: "EUR"}},
				{ProductID: mug.ID, SKU: "MUG", Name: "Mug", UnitPrice: orders.Money{Amount: 500, Currency: "EUR"}, Quantity: 1, LineTotal: orders.Money{Amount: 500, Currency: "EUR"}},
			}
			if diff := cmp.Diff(want, c.Lines); diff != "" {
				t.Errorf("lines (-want +got):\n%s", diff)
			}
			if *c.Total != (orders.Money{Amount: 3500, Currency: "EUR"}) || len(c.Notices) != 0 || c.Version != 2 {
				t.Errorf("cart total %+v, notices %q, version %d", c.Total, c.Notices, c.Version)
			}
			// Setting again changes the quantity, not the number of lines.
			c, err = bus.Call(ctx, w.Bus, orders.SetCartItemRequest, orders.SetCartItem{CustomerID: alice, ProductID: tee.ID, Quantity: 3})
			if err != nil || len(c.Lines) != 2 || c.Lines[0].Quantity != 3 || c.Total.Amount != 5000 {
				t.Errorf("after changing the quantity: %+v, %v", c, err)
			}
		})

		t.Run("rejected items", func(t *testing.T) {
			draft := w.Catalog.Add("DRAFT", "Draft", 100)
			w.Catalog.Update(draft.ID, func(p *catalog.Product) { p.Status = catalog.StatusDraft })
			dollars := w.Catalog.Add("CAP", "Cap", 900)
			w.Catalog.Update(dollars.ID, func(p *catalog.Product) { p.Price.Currency = "USD" })
			for _, tc := range []struct {
				name      string
				productID string
				quantity  int64
				want      error
				field     string
			}{
				{"quantity 0", tee.ID, 0, orders.ErrInvalidInput, "body.quantity"},
				{"quantity over the limit", tee.ID, orders.MaxQuantity + 1, orders.ErrInvalidInput, "body.quantity"},
				{"not a product id", "nope", 1, orders.ErrInvalidInput, "path.product_id"},
				{"unknown product", bus.NewID(), 1, orders.ErrProductUnavailable, "path.product_id"},
				{"draft", draft.ID, 1, orders.ErrProductUnavailable, "path.product_id"},
				{"other currency", dollars.ID, 1, orders.ErrCurrencyMismatch, "path.product_id"},
			} {
				_, err := bus.Call(ctx, w.Bus, orders.SetCartItemRequest, orders.SetCartItem{CustomerID: alice, ProductID: tc.productID, Quantity: tc.quantity})
				if !errors.Is(err, tc.want) || fieldOf(err) != tc.field {
					t.Errorf("%s: err = %v (field %q), want %v on %s", tc.name, err, fieldOf(err), tc.want, tc.field)
				}
			}
		})

		t.Run("remove is idempotent", func(t *testing.T) {
			c, err := bus.Call(ctx, w.Bus, orders.RemoveCartItemRequest, orders.RemoveCartItem{CustomerID: alice, ProductID: mug.ID})
			if err != nil || len(c.Lines) != 1 {
				t.Fatalf("remove: %+v, %v", c, err)
			}
			again, err := bus.Call(ctx, w.Bus, orders.RemoveCartItemRequest, orders.RemoveCartItem{CustomerID: alice, ProductID: mug.ID})
			if err != nil || len(again.Lines) != 1 || again.Version != c.Version {
				t.Errorf("remove again: %+v, %v (version %d, was %d)", again, err, again.Version, c.Version)
			}
		})

		t.Run("new prices are shown once, in one catalog call", func(t *testing.T) {
			w.Fill(t, alice, []catalog.Product{mug})
			w.Catalog.Update(tee.ID, func(p *catalog.Product) { p.Price.Amount = 1700 })
			w.Catalog.Update(mug.ID, func(p *catalog.Product) { p.Status = catalog.StatusArchived })
			calls := w.Catalog.Calls()
			c, err := bus.Call(ctx, w.Bus, orders.GetCartRequest, orders.GetCart{CustomerID: alice})
			if err != nil {
				t.Fatal(err)
			}
			if n := w.Catalog.Calls() - calls; n != 1 {
				t.Errorf("%d catalog calls for one cart, want 1", n)
			}
			teeLine, mugLine := c.Lines[0], c.Lines[1]
			if teeLine.PreviousPrice == nil || teeLine.PreviousPrice.Amount != 1500 || teeLine.UnitPrice.Amount != 1700 || teeLine.LineTotal.Amount != 5100 {
				t.Errorf("re-priced line %+v", teeLine)
			}
			if !mugLine.Unavailable || c.Total.Amount != 5100 {
				t.Errorf("archived line %+v, total %d (want the archived one left out)", mugLine, c.Total.Amount)
			}
			if len(c.Notices) != 2 || !strings.Contains(c.Notices[0], "EUR 15.00 to EUR 17.00") || !strings.Contains(c.Notices[1], "Mug") {
				t.Errorf("notices %q", c.Notices)
			}
			// Seen now: the price change is not news any more; the unavailable product still is.
			again, err := bus.Call(ctx, w.Bus, orders.GetCartRequest, orders.GetCart{CustomerID: alice})
			if err != nil || again.Lines[0].PreviousPrice != nil || len(again.Notices) != 1 || again.Version != c.Version {
				t.Errorf("second look: %+v, %v", again, err)
			}
			if _, err := bus.Call(ctx, w.Bus, orders.RemoveCartItemRequest, orders.RemoveCartItem{CustomerID: alice, ProductID: mug.ID}); err != nil {
				t.Fatal(err)
			}
		})

		t.Run("full", func(t *testing.T) {
			var ps []catalog.Product
			for i := range orders.MaxCartLines {
				ps = append(ps, w.Catalog.Add(fmt.Sprintf("P-%d", i), fmt.Sprintf("Product %d", i), 100))
			}
			w.Fill(t, bob, ps)
			extra := w.Catalog.Add("EXTRA", "Extra", 100)
			_, err := bus.Call(ctx, w.Bus, orders.SetCartItemRequest, orders.SetCartItem{CustomerID: bob, ProductID: extra.ID, Quantity: 1})
			if !errors.Is(err, orders.ErrCartFull) {
				t.Errorf("51st product: %v, want ErrCartFull", err)
			}
			// A product already there can still change.
			if _, err := bus.Call(ctx, w.Bus, orders.SetCartItemRequest, orders.SetCartItem{CustomerID: bob, ProductID: ps[0].ID, Quantity: 5}); err != nil {
				t.Errorf("changing a line of a full cart: %v", err)
			}
		})
	})
}

func TestPlaceOrder(t *testing.T) {
	each(t, checkout.Options{}, func(t *testing.T, w *ordertest.World) {
		ctx := t.Context()
		tee := w.Catalog.Add("TEE-M", "Classic Tee", 1500)
		mug := w.Catalog.Add("MUG", "Mug", 500)
		place := func(customer, key, hash string) (orders.PlacedOrder, error) {
			return bus.Call(ctx, w.Bus, orders.PlaceOrderRequest, orders.PlaceOrder{CustomerID: customer, PaymentToken: "tok_visa",
				IdempotencyKey: key, RequestHash: hash})

		}

		t.Run("invalid", func(t *testing.T) {
			for _, tc := range []struct {
				name  string
				p     orders.PlaceOrder
				field string
			}{
				{"no token", orders.PlaceOrder{CustomerID: alice, IdempotencyKey: "k", RequestHash: "h"}, "body.payment_token"},
				{"long token", orders.PlaceOrder{CustomerID: alice, PaymentToken: strings.Repeat("t", 101), IdempotencyKey: "k", RequestHash: "h"}, "body.payment_token"},
				{"control character", orders.PlaceOrder{CustomerID: alice, PaymentToken: "tok\n", IdempotencyKey: "k", RequestHash: "h"}, "body.payment_token"},
				{"no key", orders.PlaceOrder{CustomerID: alice, PaymentToken: "tok", RequestHash: "h"}, "header.Idempotency-Key"},
				{"long key", orders.PlaceOrder{CustomerID: alice, PaymentToken: "tok", IdempotencyKey: strings.Repeat("k", 201), RequestHash: "h"}, "header.Idempotency-Key"},
			} {
				_, err := bus.Call(ctx, w.Bus, orders.PlaceOrderRequest, tc.p)
				if !errors.Is(err, orders.ErrInvalidInput) || fieldOf(err) != tc.field {
					t.Errorf("%s: %v (field %q), want ErrInvalidInput on %s", tc.name, err, fieldOf(err), tc.field)
				}
			}
		})

		t.Run("empty cart", func(t *testing.T) {
			if _, err := place(bob, "k-empty", "h"); !errors.Is(err, orders.ErrCartEmpty) {
				t.Errorf("err = %v, want ErrCartEmpty", err)
			}
		})

		t.Run("stores the order, its saga and the first command at once", func(t *testing.T) {
			w.Peer.Lock(func(p *ordertest.Peer) { p.Silent[inventory.ReserveStockCommand.Name()] = true })
			defer w.Peer.Lock(func(p *ordertest.Peer) { delete(p.Silent, inventory.ReserveStockCommand.Name()) })
			w.Fill(t, alice, []catalog.Product{tee, mug}, 3, 1)
			placed, err := place(alice, "k-1", "h-1")
			if err != nil {
				t.Fatal(err)
			}
			o := placed.Order
			if o.Status != orders.StatusPending || o.Version != 1 || o.Total != (orders.Money{Amount: 5000, Currency: "EUR"}) || len(o.Lines) != 2 || placed.Replayed {
				t.Errorf("placed %+v", placed)
			}
			if c, _ := bus.Call(ctx, w.Bus, orders.GetCartRequest, orders.GetCart{CustomerID: alice}); len(c.Lines) != 0 {
				t.Errorf("the cart is not cleared: %+v", c.Lines)
			}
			if s := w.Saga(t, o.ID); s.State != orders.SagaReserving || s.Attempts != 1 {
				t.Errorf("saga %+v", s)
			}
			testlog.Eventually(t, "ReserveStock to arrive", func() bool { return w.Peer.Has(o.ID, inventory.ReserveStockCommand.Name()) })
			reserve := w.Peer.Received(o.ID)[0].Payload.(inventory.ReserveStock)
			wantLines := []inventory.Line{{ProductID: tee.ID, SKU: "TEE-M", Quantity: 3}, {ProductID: mug.ID, SKU: "MUG", Quantity: 1}}
			if diff := cmp.Diff(wantLines, reserve.Lines); diff != "" {
				t.Errorf("reserved lines (-want +got):\n%s", diff)
			}
			if d := time.Until(reserve.ExpiresAt); d < 14*time.Minute || d > 16*time.Minute {
				t.Errorf("reservation expires in %v, want the 15m TTL", d)
			}

			// The same key and request: the same order, replayed.
			again, err := place(alice, "k-1", "h-1")
			if err != nil || again.Order.ID != o.ID || !again.Replayed {
				t.Errorf("replay: %+v, %v", again, err)
			}
			// The same key, another request.
			if _, err := place(alice, "k-1", "h-2"); !errors.Is(err, orders.ErrIdempotencyKeyReused) {
				t.Errorf("key reused: %v", err)
			}
			// Keys are per customer.
			if _, err := place(bob, "k-1", "h-1"); !errors.Is(err, orders.ErrCartEmpty) {
				t.Errorf("another customer's key: %v, want their own (empty) cart checked out", err)
			}
		})

		countOrders := func() int {
			var n int
			if err := w.Host.DB.GetContext(ctx, &n, `SELECT COUNT(*) FROM orders`); err != nil {
				t.Fatal(err)
			}
			return n
		}

		t.Run("concurrent requests with one key make one order", func(t *testing.T) {
			w.Fill(t, alice, []catalog.Product{tee})
			before := countOrders()
			const n = 8
			ids := make([]string, n)
			errs := make([]error, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					p, err := place(alice, "k-race", "h-race")
					ids[i], errs[i] = p.Order.ID, err
				}()
			}
			wg.Wait()
			for i := range n {
				if errs[i] != nil || ids[i] != ids[0] {
					t.Errorf("request %d: order %s, %v; want order %s", i, ids[i], errs[i], ids[0])
				}
			}
			if n := countOrders() - before; n != 1 {
				t.Errorf("%d orders made, want 1", n)
			}
		})

		t.Run("a changed price is a conflict, and the cart is re-priced", func(t *testing.T) {
			w.Fill(t, bob, []catalog.Product{tee, mug})
			w.Catalog.Update(tee.ID, func(p *catalog.Product) { p.Price.Amount = 1999 })
			_, err := place(bob, "k-price", "h")
			if !errors.Is(err, orders.ErrPriceChanged) || !strings.Contains(err.Error(), "Classic Tee is now EUR 19.99 (was EUR 15.00)") {
				t.Fatalf("err = %v, want ErrPriceChanged naming the product", err)
			}
			if c, _ := bus.Call(ctx, w.Bus, orders.GetCartRequest, orders.GetCart{CustomerID: bob}); c.Lines[0].PreviousPrice != nil || c.Lines[0].UnitPrice.Amount != 1999 {
				t.Errorf("the cart is not re-priced: %+v", c.Lines[0])
			}
			placed, err := place(bob, "k-price", "h")
			if err != nil || placed.Replayed || placed.Order.Total.Amount != 1999+500 {
				t.Errorf("checkout after review: %+v, %v", placed, err)
			}
		})

		t.Run("an unavailable product is named", func(t *testing.T) {
			w.Fill(t, bob, []catalog.Product{tee, mug})
			w.Catalog.Update(mug.ID, func(p *catalog.Product) { p.Status = catalog.StatusArchived })
			_, err := place(bob, "k-gone", "h")
			if !errors.Is(err, orders.ErrProductUnavailable) || !strings.Contains(err.Error(), "Mug") {
				t.Errorf("err = %v, want ErrProductUnavailable naming Mug", err)
			}
		})
	})
}

// The checkout flows, driven through the real bus and outbox relays, with the
// peer playing inventory and payments.
func TestCheckoutFlows(t *testing.T) {
	each(t, checkout.Options{}, func(t *testing.T, w *ordertest.World) {
		tee := w.Catalog.Add("TEE-M", "Classic Tee", 1500)

		t.Run("confirmed", func(t *testing.T) {
			w.Fill(t, alice, []catalog.Product{tee}, 2)
			o := w.Place(t, alice, "tok_visa")
			got := w.WaitSaga(t, o.ID, orders.SagaCompleted)
			if got.Status != orders.StatusConfirmed || got.Version != 2 {
				t.Errorf("order %s v%d, want confirmed v2", got.Status, got.Version)
			}
			want := []string{inventory.ReserveStockCommand.Name(), payments.AuthorizePaymentCommand.Name(),
				inventory.CommitReservationCommand.Name(), payments.CapturePaymentCommand.Name()}
			if diff := cmp.Diff(want, w.Peer.ReceivedTypes(o.ID)); diff != "" {
				t.Errorf("commands (-want +got):\n%s", diff)
			}
			auth := w.Peer.Received(o.ID)[1].Payload.(payments.AuthorizePayment)
			if auth.Amount.Amount != 3000 || auth.PaymentToken != "tok_visa" || auth.CustomerID != alice {
				t.Errorf("authorize %+v", auth)
			}
		})

		t.Run("out of stock", func(t *testing.T) {
			w.Peer.Lock(func(p *ordertest.Peer) { p.Stock[tee.ID] = 1 })
			defer w.Peer.Lock(func(p *ordertest.Peer) { delete(p.Stock, tee.ID) })
			w.Fill(t, alice, []catalog.Product{tee}, 3)
			o := w.Place(t, alice, "tok_visa")
			got := w.WaitSaga(t, o.ID, orders.SagaRejected)
			if got.Status != orders.StatusRejected || got.Reason != "Out of stock: Classic Tee (asked 3, 1 left)" {
				t.Errorf("order %s %q", got.Status, got.Reason)
			}
			if w.Peer.Has(o.ID, payments.AuthorizePaymentCommand.Name()) {
				t.Errorf("payment authorized for an order without stock")
			}
		})

		t.Run("declined", func(t *testing.T) {
			w.Fill(t, alice, []catalog.Product{tee})
			o := w.Place(t, alice, ordertest.DeclineToken)
			got := w.WaitSaga(t, o.ID, orders.SagaRejected)
			if got.Status != orders.StatusRejected || got.Reason != ordertest.DeclineMessage {
				t.Errorf("order %s %q", got.Status, got.Reason)
			}
			if !w.Peer.Has(o.ID, inventory.ReleaseReservationCommand.Name()) {
				t.Errorf("the reservation is not released: %v", w.Peer.ReceivedTypes(o.ID))
			}
		})

		t.Run("cancel while pending", func(t *testing.T) {
			w.Peer.Lock(func(p *ordertest.Peer) { p.Silent[payments.AuthorizePaymentCommand.Name()] = true })
			w.Fill(t, alice, []catalog.Product{tee})
			o := w.Place(t, alice, "tok_visa")
			testlog.Eventually(t, "authorization to be asked", func() bool { return w.Peer.Has(o.ID, payments.AuthorizePaymentCommand.Name()) })
			w.Peer.Lock(func(p *ordertest.Peer) { delete(p.Silent, payments.AuthorizePaymentCommand.Name()) })
			c, err := bus.Call(t.Context(), w.Bus, orders.CancelOrderRequest, orders.CancelOrder{ID: o.ID, Actor: alice})
			if err != nil || c.Status != orders.StatusCancelled {
				t.Fatalf("cancel: %+v, %v", c, err)
			}
			w.WaitSaga(t, o.ID, orders.SagaCancelled)
			for _, typ := range []string{inventory.ReleaseReservationCommand.Name(), payments.VoidPaymentCommand.Name()} {
				if !w.Peer.Has(o.ID, typ) {
					t.Errorf("no %s after cancelling: %v", typ, w.Peer.ReceivedTypes(o.ID))
				}
			}
			if _, err := bus.Call(t.Context(), w.Bus, orders.CancelOrderRequest, orders.CancelOrder{ID: o.ID}); !errors.Is(err, orders.ErrNotCancellable) {
				t.Errorf("cancelling twice: %v", err)
			}
		})

		t.Run("payments events of other payables", func(t *testing.T) {
			// A ride's payments events, even under an order's id, leave the order alone;
			// an order's event as the previous version wrote it ("order_id", no
			// payable) is still the order's.
			w.Peer.Lock(func(p *ordertest.Peer) { p.Silent[payments.AuthorizePaymentCommand.Name()] = true })
			w.Fill(t, alice, []catalog.Product{tee})
			o := w.Place(t, alice, "tok_visa")
			testlog.Eventually(t, "authorization to be asked", func() bool { return w.Peer.Has(o.ID, payments.AuthorizePaymentCommand.Name()) })
			w.Peer.Lock(func(p *ordertest.Peer) { delete(p.Silent, payments.AuthorizePaymentCommand.Name()) })
			auth := w.Peer.Received(o.ID)[1].Payload.(payments.AuthorizePayment)
			if auth.Payable != payments.PayableOrder {
				t.Errorf("authorize %+v, want an order's", auth)
			}
			before := w.Saga(t, o.ID)
			ride := payments.Payable(payments.PayableRide)
			w.Publish(t, payments.PaymentAuthorizedEvent.With(payments.PaymentAuthorized{PayableID: o.ID, Payable: ride, CustomerID: alice,
				Amount: auth.Amount, ProviderRef: "ref-ride"}))
			w.Publish(t, payments.PaymentDeclinedEvent.With(payments.PaymentDeclined{PayableID: o.ID, Payable: ride,
				Reason: payments.DeclineCardDeclined}))
			w.Publish(t, payments.PaymentVoidedEvent.With(payments.PaymentVoided{PayableID: o.ID, Payable: ride}))
			if after := w.Saga(t, o.ID); after.State != before.State || len(after.History) != len(before.History) {
				t.Errorf("a ride's events moved the order's saga: %s (%d steps), then %s (%d steps)",
					before.State, len(before.History), after.State, len(after.History))
			}
			legacy := fmt.Sprintf(`{"order_id":%q,"customer_id":%q,"amount":{"amount":%d,"currency":%q},"provider_ref":"ref-old"}`,
				o.ID, alice, auth.Amount.Amount, auth.Amount.Currency)
			w.Publish(t, message.Outgoing{Kind: message.KindEvent, Type: payments.PaymentAuthorizedEvent.Name(), Payload: json.RawMessage(legacy)})
			if got := w.WaitSaga(t, o.ID, orders.SagaCompleted); got.Status != orders.StatusConfirmed {
				t.Errorf("order %s after its authorization of the previous version, want confirmed", got.Status)
			}
			if w.Peer.Has(o.ID, payments.VoidPaymentCommand.Name()) {
				t.Errorf("the order voided a payment: %v", w.Peer.ReceivedTypes(o.ID))
			}
		})

		t.Run("cancel a confirmed order", func(t *testing.T) {
			w.Fill(t, alice, []catalog.Product{tee}, 2)
			o := w.Place(t, alice, "tok_visa")
			w.WaitSaga(t, o.ID, orders.SagaCompleted)
			c, err := bus.Call(t.Context(), w.Bus, orders.CancelOrderRequest, orders.CancelOrder{ID: o.ID, Actor: alice})
			if err != nil || c.Status != orders.StatusCancelled {
				t.Fatalf("cancel: %+v, %v", c, err)
			}
			got := w.WaitSaga(t, o.ID, orders.SagaCancelled)
			if got.Refunded == 0 {
				t.Errorf("refunded %d", got.Refunded)
			}
			var refund payments.RefundPayment
			for _, c := range w.Peer.Received(o.ID) {
				if r, ok := c.Payload.(payments.RefundPayment); ok {
					refund = r
				}
			}
			if refund.RefundID != o.ID+"-cancel" || refund.Amount != 0 {
				t.Errorf("refund %+v, want all, with an id derived from the order", refund)
			}
			if !w.Peer.Has(o.ID, inventory.RestockOrderCommand.Name()) {
				t.Errorf("not restocked: %v", w.Peer.ReceivedTypes(o.ID))
			}
		})

		t.Run("admin refund", func(t *testing.T) {
			w.Fill(t, alice, []catalog.Product{tee}, 2)
			o := w.Place(t, alice, "tok_visa")
			w.WaitSaga(t, o.ID, orders.SagaCompleted)
			for range 2 { // the same refund id refunds once
				if _, err := bus.Call(t.Context(), w.Bus, orders.RefundOrderRequest, orders.RefundOrder{ID: o.ID, RefundID: "r-1", Amount: 1000, Reason: "goodwill"}); err != nil {
					t.Fatal(err)
				}
			}
			testlog.Eventually(t, "the refund to show", func() bool { return w.Order(t, o.ID).Refunded == 1000 })
			var refunds int
			for _, typ := range w.Peer.ReceivedTypes(o.ID) {
				if typ == payments.RefundPaymentCommand.Name() {
					refunds++
				}
			}
			if refunds != 1 {
				t.Errorf("%d refund commands, want 1", refunds)
			}
			if got := w.Order(t, o.ID); got.Status != orders.StatusConfirmed {
				t.Errorf("a goodwill refund changed the status to %s", got.Status)
			}
		})

		t.Run("a failed commit cancels and refunds", func(t *testing.T) {
			w.Peer.Lock(func(p *ordertest.Peer) { p.CommitFails = true })
			defer w.Peer.Lock(func(p *ordertest.Peer) { p.CommitFails = false })
			w.Fill(t, alice, []catalog.Product{tee})
			o := w.Place(t, alice, "tok_visa")
			got := w.WaitSaga(t, o.ID, orders.SagaCancelled)
			if got.Status != orders.StatusCancelled || !strings.Contains(got.Reason, "sold out") || got.Refunded == 0 {
				t.Errorf("order %+v", got)
			}
		})

		t.Run("lists", func(t *testing.T) {
			page, err := bus.Call(t.Context(), w.Bus, orders.ListOrdersRequest, orders.ListOrders{CustomerID: alice, Limit: 2})
			if err != nil || len(page.Items) != 2 || page.NextBefore == "" || page.Items[0].ID < page.Items[1].ID {
				t.Fatalf("first page: %+v, %v", page, err)
			}
			all := testdb.CollectPages(t, 2, 20, func(after string, limit int) ([]string, error) {
				p, err := bus.Call(t.Context(), w.Bus, orders.ListOrdersRequest, orders.ListOrders{CustomerID: alice, Before: after, Limit: limit})
				var ids []string
				for _, o := range p.Items {
					ids = append(ids, o.ID)
				}
				return ids, err
			})
			if len(all) != 8 || !slices.IsSortedFunc(all, func(a, b string) int { return strings.Compare(b, a) }) {
				t.Errorf("%d orders, newest first? %v", len(all), all)
			}
			rejected, err := bus.Call(t.Context(), w.Bus, orders.ListOrdersRequest, orders.ListOrders{CustomerID: alice, Status: orders.StatusRejected})
			if err != nil || len(rejected.Items) != 2 {
				t.Errorf("rejected orders: %d, %v", len(rejected.Items), err)
			}
			if other, _ := bus.Call(t.Context(), w.Bus, orders.ListOrdersRequest, orders.ListOrders{CustomerID: bob}); len(other.Items) != 0 {
				t.Errorf("bob sees %d orders", len(other.Items))
			}
			sagas, err := bus.Call(t.Context(), w.Bus, orders.ListSagasRequest, orders.ListSagas{State: orders.SagaCancelled})
			if err != nil || len(sagas.Items) != 3 {
				t.Errorf("cancelled sagas: %d, %v", len(sagas.Items), err)
			}
			for _, s := range sagas.Items {
				if len(s.History) < 3 || s.History[0].Message != orders.PlaceOrderRequest.Name() {
					t.Errorf("saga history %+v", s.History)
				}
			}
		})
	})
}

// A step that gets no answer is sent again, then compensated: the order is
// rejected, the reservation released, and the customer told they were not charged.
func TestTimeoutCompensates(t *testing.T) {
	// The step timeout is long enough that an answered step (the reservation) never
	// times out on a loaded machine, and short enough to keep the test quick.
	opts := checkout.Options{Timing: saga.Timing{StepTimeout: 750 * time.Millisecond, MaxAttempts: 2, ReservationTTL: time.Minute},
		SweepEvery: 20 * time.Millisecond}
	each(t, opts, func(t *testing.T, w *ordertest.World) {
		tee := w.Catalog.Add("TEE-M", "Classic Tee", 1500)
		w.Peer.Lock(func(p *ordertest.Peer) { p.Silent[payments.AuthorizePaymentCommand.Name()] = true })
		w.Fill(t, alice, []catalog.Product{tee})
		o := w.Place(t, alice, "tok_visa")
		got := w.WaitSaga(t, o.ID, orders.SagaRejected)
		if got.Status != orders.StatusRejected || got.Reason != saga.ReasonTimedOut {
			t.Errorf("order %s %q", got.Status, got.Reason)
		}
		want := []string{inventory.ReserveStockCommand.Name(), payments.AuthorizePaymentCommand.Name(), payments.AuthorizePaymentCommand.Name(),
			inventory.ReleaseReservationCommand.Name(), payments.VoidPaymentCommand.Name()}
		if diff := cmp.Diff(want, w.Peer.ReceivedTypes(o.ID)); diff != "" {
			t.Errorf("commands (-want +got):\n%s", diff)
		}
		// A confirmed order is never compensated by a timeout.
		w.Peer.Lock(func(p *ordertest.Peer) {
			delete(p.Silent, payments.AuthorizePaymentCommand.Name())
			p.Silent[payments.CapturePaymentCommand.Name()] = true
		})
		w.Fill(t, alice, []catalog.Product{tee})
		o = w.Place(t, alice, "tok_visa")
		testlog.Eventually(t, "capture to be sent three times", func() bool {
			n := 0
			for _, typ := range w.Peer.ReceivedTypes(o.ID) {
				if typ == payments.CapturePaymentCommand.Name() {
					n++
				}
			}
			return n >= 3
		})
		if s, got := w.Saga(t, o.ID), w.Order(t, o.ID); s.State != orders.SagaCompleting || got.Status != orders.StatusConfirmed {
			t.Errorf("saga %s, order %s: want a confirmed order still completing", s.State, got.Status)
		}
		w.Peer.Lock(func(p *ordertest.Peer) { delete(p.Silent, payments.CapturePaymentCommand.Name()) })
		w.WaitSaga(t, o.ID, orders.SagaCompleted)
	})
}

// WaitOrder answers at the order's next change, or with the order as it is once the
// wait is over.
func TestWaitOrder(t *testing.T) {
	each(t, checkout.Options{PollInterval: time.Hour}, func(t *testing.T, w *ordertest.World) {
		tee := w.Catalog.Add("TEE-M", "Classic Tee", 1500)
		w.Peer.Lock(func(p *ordertest.Peer) { p.Silent[payments.AuthorizePaymentCommand.Name()] = true })
		w.Fill(t, alice, []catalog.Product{tee})
		o := w.Place(t, alice, "tok_visa")

		got, err := bus.Call(t.Context(), w.Bus, orders.WaitOrderRequest, orders.WaitOrder{ID: o.ID, AfterVersion: 1, Wait: 50 * time.Millisecond})
		if err != nil || got.Version != 1 {
			t.Fatalf("wait with nothing happening: v%d, %v", got.Version, err)
		}
		done := make(chan orders.Order, 1)
		go func() {
			// Woken by the commit in this process, not by polling (an hour here).
			got, err := bus.Call(context.Background(), w.Bus, orders.WaitOrderRequest, orders.WaitOrder{ID: o.ID, AfterVersion: 1, Wait: 20 * time.Second})
			if err != nil {
				t.Errorf("wait: %v", err)
			}
			done <- got
		}()
		testlog.Eventually(t, "authorization to be asked", func() bool { return w.Peer.Has(o.ID, payments.AuthorizePaymentCommand.Name()) })
		if _, err := bus.Call(t.Context(), w.Bus, orders.CancelOrderRequest, orders.CancelOrder{ID: o.ID}); err != nil {
			t.Fatal(err)
		}
		if got := <-done; got.Version != 2 || got.Status != orders.StatusCancelled {
			t.Errorf("woken with v%d %s", got.Version, got.Status)
		}
		if _, err := bus.Call(t.Context(), w.Bus, orders.WaitOrderRequest, orders.WaitOrder{ID: bus.NewID()}); !errors.Is(err, orders.ErrOrderNotFound) {
			t.Errorf("unknown order: %v", err)
		}
	})
}
