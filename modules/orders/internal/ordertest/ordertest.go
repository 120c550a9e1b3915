// Package ordertest runs the orders module for its own tests: the real service on a
// real bus, with outbox relays, and hand-written fakes at the module's boundary — a
// catalog that answers GetProducts, and a peer that plays inventory and payments by
// answering their commands with their events through its own outbox. It is for
// _test.go files only.
package ordertest

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/message"
	"github.com/agora-commerce/agora/internal/modhost"
	"github.com/agora-commerce/agora/internal/outbox"
	"github.com/agora-commerce/agora/internal/store"
	"github.com/agora-commerce/agora/internal/testlog"
	"github.com/agora-commerce/agora/modules/catalog"
	"github.com/agora-commerce/agora/modules/inventory"
	"github.com/agora-commerce/agora/modules/orders"
	"github.com/agora-commerce/agora/modules/orders/internal/checkout"
	"github.com/agora-commerce/agora/modules/payments"
)

// Catalog is a fake catalog: products by id, and a count of GetProducts calls.
type Catalog struct {
	mu       sync.Mutex
	products map[string]catalog.Product
	calls    int
}

// NewCatalog returns an empty fake catalog.
func NewCatalog() *Catalog { return &Catalog{products: map[string]catalog.Product{}} }

// Add adds (or replaces) an active product priced at amount EUR and returns it.
func (c *Catalog) Add(sku, name string, amount int64) catalog.Product {
	p := catalog.Product{ID: bus.NewID(), SKU: sku, Name: name, Price: catalog.Money{Amount: amount, Currency: "EUR"},
		Status: catalog.StatusActive, Version: 1}
	c.Put(p)
	return p
}

// Put stores p as it is.
func (c *Catalog) Put(p catalog.Product) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.products[p.ID] = p
}

// Update changes product id with f.
func (c *Catalog) Update(id string, f func(*catalog.Product)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.products[id]
	f(&p)
	p.Version++
	c.products[id] = p
}

// Calls returns how many GetProducts requests were answered.
func (c *Catalog) Calls() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls
}

// Handler answers catalog.GetProducts as the catalog does: unknown ids left out.
func (c *Catalog) Handler() bus.RequestHandler {
	return bus.Handle(catalog.GetProductsRequest, func(_ context.Context, q catalog.GetProducts) (catalog.Products, error) {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.calls++
		if len(q.IDs) > catalog.MaxBatch {
			return catalog.Products{}, catalog.ErrInvalidProduct.Withf("too many ids")
		}
		out := catalog.Products{Products: []catalog.Product{}}
		for _, id := range q.IDs {
			if p, ok := c.products[id]; ok {
				out.Products = append(out.Products, p.Clone())
			}
		}
		return out, nil
	})

}

// Command is a command the peer received.
type Command struct {
	Type    string
	Payload any
}

// Peer plays inventory and payments. By default it reserves everything, authorizes
// every token but DeclineToken, commits, captures, voids, releases, restocks and
// refunds; tests change that through its fields (under Lock).
type Peer struct {
	db *store.DB
	ob *outbox.Outbox
	rl *outbox.Relay

	mu sync.Mutex
	// Stock is the units available per product id; a product not listed has plenty.
	Stock map[string]int64
	// Silent lists command types the peer records but never answers.
	Silent map[string]bool
	// CommitFails makes CommitReservation answer ReservationCommitFailed.
	CommitFails bool
	received    []Command
	refunded    map[string]int64 // per order
}

// DeclineToken is the payment token the peer declines.
const DeclineToken = "tok_decline"

// DeclineMessage is what the peer says when it declines.
const DeclineMessage = "Your card was declined."

// Lock runs f with the peer's settings locked.
func (p *Peer) Lock(f func(p *Peer)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f(p)
}

// Received returns the commands received so far for order id (all when empty).
func (p *Peer) Received(orderID string) []Command {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []Command
	for _, c := range p.received {
		if orderID == "" || orderOf(c.Payload) == orderID {
			out = append(out, c)
		}
	}
	return out
}

// ReceivedTypes returns the types of Received(orderID).
func (p *Peer) ReceivedTypes(orderID string) []string {
	var out []string
	for _, c := range p.Received(orderID) {
		out = append(out, c.Type)
	}
	return out
}

// Has reports whether the peer received a command of type typ for orderID.
func (p *Peer) Has(orderID, typ string) bool {
	return slices.Contains(p.ReceivedTypes(orderID), typ)
}

func orderOf(v any) string {
	switch m := v.(type) {
	case inventory.ReserveStock:
		return m.OrderID
	case inventory.CommitReservation:
		return m.OrderID
	case inventory.ReleaseReservation:
		return m.OrderID
	case inventory.RestockOrder:
		return m.OrderID
	case payments.AuthorizePayment:
		return m.PayableID
	case payments.CapturePayment:
		return m.PayableID
	case payments.VoidPayment:
		return m.PayableID
	case payments.RefundPayment:
		return m.PayableID
	}
	return ""
}

func answer[T any](p *Peer, c message.Command[T], reply func(p *Peer, m T) []message.Outgoing) bus.Subscription {
	return outbox.SubscribeCommand(p.db, c, "peer", func(ctx context.Context, tx *store.Tx, m message.Message[T]) error {
		p.mu.Lock()
		p.received = append(p.received, Command{Type: c.Name(), Payload: m.Body})
		var out []message.Outgoing
		if !p.Silent[c.Name()] {
			out = reply(p, m.Body)
		}
		p.mu.Unlock()
		return p.ob.Add(ctx, tx, out...)
	})
}

// Subscriptions returns the peer's subscriptions to the commands orders sends.
func (p *Peer) Subscriptions() []bus.Subscription {
	return []bus.Subscription{
		answer(p, inventory.ReserveStockCommand, func(p *Peer, m inventory.ReserveStock) []message.Outgoing {
			var rejected []inventory.RejectedLine
			for _, l := range m.Lines {
				if avail, ok := p.Stock[l.ProductID]; ok && avail < l.Quantity {
					rejected = append(rejected, inventory.RejectedLine{ProductID: l.ProductID, SKU: l.SKU, Requested: l.Quantity,
						Available: avail, Reason: inventory.RejectOutOfStock})
				}
			}
			if len(rejected) > 0 {
				return []message.Outgoing{inventory.StockReservationRejectedEvent.With(inventory.StockReservationRejected{OrderID: m.OrderID, Lines: rejected})}
			}
			return []message.Outgoing{inventory.StockReservedEvent.With(inventory.StockReserved{OrderID: m.OrderID, Lines: m.Lines, ExpiresAt: m.ExpiresAt})}
		}),
		answer(p, inventory.CommitReservationCommand, func(p *Peer, m inventory.CommitReservation) []message.Outgoing {
			if p.CommitFails {
				return []message.Outgoing{inventory.ReservationCommitFailedEvent.With(inventory.ReservationCommitFailed{OrderID: m.OrderID, Reason: "expired"})}
			}
			return []message.Outgoing{inventory.ReservationCommittedEvent.With(inventory.ReservationCommitted(m))}
		}),
		answer(p, inventory.ReleaseReservationCommand, func(_ *Peer, m inventory.ReleaseReservation) []message.Outgoing {
			return []message.Outgoing{inventory.ReservationReleasedEvent.With(inventory.ReservationReleased(m))}
		}),
		answer(p, inventory.RestockOrderCommand, func(_ *Peer, m inventory.RestockOrder) []message.Outgoing {
			return []message.Outgoing{inventory.OrderRestockedEvent.With(inventory.OrderRestocked{OrderID: m.OrderID})}
		}),
		answer(p, payments.AuthorizePaymentCommand, func(_ *Peer, m payments.AuthorizePayment) []message.Outgoing {
			if m.PaymentToken == DeclineToken {
				return []message.Outgoing{payments.PaymentDeclinedEvent.With(payments.PaymentDeclined{PayableID: m.PayableID, CustomerID: m.CustomerID,
					Reason: payments.DeclineCardDeclined, Message: DeclineMessage})}
			}
			return []message.Outgoing{payments.PaymentAuthorizedEvent.With(payments.PaymentAuthorized{PayableID: m.PayableID, CustomerID: m.CustomerID,
				Amount: m.Amount, ProviderRef: "ref-" + m.PayableID})}
		}),
		answer(p, payments.CapturePaymentCommand, func(_ *Peer, m payments.CapturePayment) []message.Outgoing {
			return []message.Outgoing{payments.PaymentCapturedEvent.With(payments.PaymentCaptured{PayableID: m.PayableID})}
		}),
		answer(p, payments.VoidPaymentCommand, func(_ *Peer, m payments.VoidPayment) []message.Outgoing {
			return []message.Outgoing{payments.PaymentVoidedEvent.With(payments.PaymentVoided{PayableID: m.PayableID})}
		}),
		answer(p, payments.RefundPaymentCommand, func(p *Peer, m payments.RefundPayment) []message.Outgoing {
			amount := m.Amount
			if amount == 0 {
				amount = 1 << 40 // "all that is left": the test's orders are far smaller
			}
			p.refunded[m.PayableID] += amount
			return []message.Outgoing{payments.RefundIssuedEvent.With(payments.RefundIssued{PayableID: m.PayableID, RefundID: m.RefundID,
				Amount: payments.Money{Amount: amount, Currency: "EUR"}, TotalRefunded: p.refunded[m.PayableID], Reason: m.Reason})}
		}),
	}
}

// World is the orders module running on a bus with the fakes around it.
type World struct {
	Host    *modhost.Host
	Service *checkout.Service
	Bus     *bus.Bus
	Catalog *Catalog
	Peer    *Peer
	Log     *testlog.Recorder
}

// NewWorld runs the orders service on h with opts (its timeout sweep started), the
// fake catalog and peer, and both outbox relays, until the test ends.
func NewWorld(t testing.TB, h *modhost.Host, opts checkout.Options) *World {
	t.Helper()
	rec := testlog.New(slog.LevelWarn)
	log := rec.Logger()
	ctx := context.Background()
	peerDB, err := store.OpenSQLite(ctx, "peer", filepath.Join(t.TempDir(), "peer.db"), store.Options{})
	if err != nil {
		t.Fatalf("open peer db: %v", err)
	}
	t.Cleanup(func() { _ = peerDB.Close() })
	if err := outbox.Migrate(ctx, peerDB, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatalf("migrate peer db: %v", err)
	}
	relay := outbox.NewRelay(peerDB, outbox.RelayConfig{PollInterval: 50 * time.Millisecond}, log)
	peer := &Peer{db: peerDB, ob: outbox.New(peerDB, relay), rl: relay, Stock: map[string]int64{}, Silent: map[string]bool{},
		refunded: map[string]int64{}}

	cat := NewCatalog()
	bc := &checkout.BusCatalog{}
	svc := checkout.NewService(h.DB, h.Outbox, bc, opts, log)
	b, err := bus.New(log, bus.Limits{}, nil, append(svc.Handlers(), cat.Handler()), append(svc.Subscriptions(), peer.Subscriptions()...))
	if err != nil {
		t.Fatalf("bus.New: %v", err)
	}
	bc.Bind(b)
	h.Relay.Start(b)
	relay.Start(b)
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stop, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = svc.Stop(stop)
		_ = relay.Stop(stop)
		_ = h.Relay.Stop(stop)
	})
	return &World{Host: h, Service: svc, Bus: b, Catalog: cat, Peer: peer, Log: rec}
}

// Fill puts each product in customer's cart, one unit each (or the quantities given).
func (w *World) Fill(t testing.TB, customerID string, products []catalog.Product, quantities ...int64) {
	t.Helper()
	for i, p := range products {
		q := int64(1)
		if i < len(quantities) {
			q = quantities[i]
		}
		if _, err := bus.Call(context.Background(), w.Bus, orders.SetCartItemRequest, orders.SetCartItem{CustomerID: customerID, ProductID: p.ID, Quantity: q}); err != nil {
			t.Fatalf("SetCartItem %s: %v", p.SKU, err)
		}
	}
}

// Place checks out customer's cart with token under a fresh idempotency key.
func (w *World) Place(t testing.TB, customerID, token string) orders.Order {
	t.Helper()
	key := bus.NewID()
	placed, err := bus.Call(context.Background(), w.Bus, orders.PlaceOrderRequest, orders.PlaceOrder{CustomerID: customerID,
		PaymentToken: token, IdempotencyKey: key, RequestHash: "hash-" + key})

	if err != nil {
		t.Fatalf("PlaceOrder: %v", err)
	}
	return placed.Order
}

// Order returns order id now.
func (w *World) Order(t testing.TB, id string) orders.Order {
	t.Helper()
	o, err := bus.Call(context.Background(), w.Bus, orders.GetOrderRequest, orders.GetOrder{ID: id})
	if err != nil {
		t.Fatalf("GetOrder %s: %v", id, err)
	}
	return o
}

// Saga returns the saga of order id now.
func (w *World) Saga(t testing.TB, id string) orders.Saga {
	t.Helper()
	s, err := bus.Call(context.Background(), w.Bus, orders.GetSagaRequest, orders.GetSaga{OrderID: id})
	if err != nil {
		t.Fatalf("GetSaga %s: %v", id, err)
	}
	return s
}

// WaitSaga waits until the saga of order id is in state, and returns the order.
func (w *World) WaitSaga(t testing.TB, id string, state orders.SagaState) orders.Order {
	t.Helper()
	testlog.Eventually(t, fmt.Sprintf("saga %s to be %s", id, state), func() bool {
		return w.Saga(t, id).State == state
	})
	return w.Order(t, id)
}

// Publish delivers out on the bus now, as if another module had sent it.
func (w *World) Publish(t testing.TB, out message.Outgoing) {
	t.Helper()
	env, err := bus.Seal(context.Background(), out)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Bus.Deliver(context.Background(), env); err != nil {
		t.Fatalf("deliver %s: %v", out.Type, err)
	}
}
