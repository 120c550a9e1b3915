package stock_test

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/message"
	"github.com/agora-commerce/agora/internal/modhost"
	"github.com/agora-commerce/agora/internal/testdb"
	"github.com/agora-commerce/agora/modules/catalog"
	"github.com/agora-commerce/agora/modules/inventory"
	"github.com/agora-commerce/agora/modules/inventory/internal/stock"
)

func TestMain(m *testing.M) { os.Exit(testdb.Main(m)) }

// clock is a settable time for the service under test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// env is the inventory on one database, with its handlers on an in-process bus.
type env struct {
	t     *testing.T
	h     *modhost.Host
	s     *stock.Service
	b     *bus.Bus
	clock *clock
	seen  int // outbox rows already looked at by news
}

func newEnv(t *testing.T, h *modhost.Host) *env {
	t.Helper()
	c := &clock{t: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)}
	s := stock.NewService(h.DB, h.Outbox, testdb.Logger(), stock.Options{Now: c.now, SweepInterval: time.Millisecond})
	b, err := bus.New(testdb.Logger(), bus.Limits{}, nil, s.Handlers(), s.Subscriptions())
	if err != nil {
		t.Fatalf("bus.New: %v", err)
	}
	return &env{t: t, h: h, s: s, b: b, clock: c}
}

// send delivers a durable message to the inventory's subscriber as the relay
// would, and fails the test if its handler fails.
func send[T any](e *env, typ string, kind message.Kind, body T) {
	e.t.Helper()
	if err := sendErr(e, typ, kind, body); err != nil {
		e.t.Fatalf("deliver %s: %v", typ, err)
	}
}

func sendErr[T any](e *env, typ string, kind message.Kind, body T) error {
	m, err := bus.NewEnvelope(context.Background(), kind, typ, body)
	if err != nil {
		return err
	}
	return e.b.Deliver(context.Background(), m)
}

func (e *env) reserve(c inventory.ReserveStock) {
	e.t.Helper()
	send(e, inventory.ReserveStockCommand.Name(), message.KindCommand, c)
}

func (e *env) commit(orderID string) {
	e.t.Helper()
	send(e, inventory.CommitReservationCommand.Name(), message.KindCommand, inventory.CommitReservation{OrderID: orderID})
}

func (e *env) release(orderID, reason string) {
	e.t.Helper()
	send(e, inventory.ReleaseReservationCommand.Name(), message.KindCommand, inventory.ReleaseReservation{OrderID: orderID, Reason: reason})
}

func (e *env) restock(orderID string) {
	e.t.Helper()
	send(e, inventory.RestockOrderCommand.Name(), message.KindCommand, inventory.RestockOrder{OrderID: orderID, Reason: "cancelled"})
}

// product makes the inventory learn a product from catalog, as ProductCreated
// does, and stocks it with onHand units.
func (e *env) product(sku string, onHand int64) inventory.Item {
	e.t.Helper()
	id := bus.NewID()
	send(e, catalog.ProductCreatedEvent.Name(), message.KindEvent, catalog.ProductCreated{Product: catalog.Product{ID: id, SKU: sku}})
	if onHand > 0 {
		if _, err := e.s.Adjust(e.t.Context(), inventory.Adjust{SKU: sku, Delta: onHand, Reason: "received", Actor: "test"}); err != nil {
			e.t.Fatalf("Adjust %s: %v", sku, err)
		}
	}
	return e.item(sku)
}

func (e *env) item(sku string) inventory.Item {
	e.t.Helper()
	it, err := e.s.GetItem(e.t.Context(), inventory.GetItem{SKU: sku})
	if err != nil {
		e.t.Fatalf("GetItem %s: %v", sku, err)
	}
	return it
}

// numbers is an item's on hand and reserved.
type numbers struct{ OnHand, Reserved int64 }

func (e *env) numbers(sku string) numbers {
	e.t.Helper()
	it := e.item(sku)
	if it.Available != it.OnHand-it.Reserved {
		e.t.Errorf("%s: available %d, but on hand %d - reserved %d", sku, it.Available, it.OnHand, it.Reserved)
	}
	return numbers{it.OnHand, it.Reserved}
}

// news returns the outbox rows written since the last call.
func (e *env) news() []testdb.OutboxRow {
	e.t.Helper()
	rows := testdb.OutboxRows(e.t, e.h.DB)
	out := rows[e.seen:]
	e.seen = len(rows)
	return out
}

// types returns the types of rows, without the inventory. prefix.
func types(rows []testdb.OutboxRow) []string {
	out := testdb.OutboxTypes(rows)
	for i, t := range out {
		out[i] = t[len("inventory."):]
	}
	return out
}

// only returns the payload of the single row of type typ in rows.
func only[T any](t *testing.T, rows []testdb.OutboxRow, typ string) T {
	t.Helper()
	var found []testdb.OutboxRow
	for _, r := range rows {
		if r.Type == typ {
			found = append(found, r)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d %s messages in %v, want 1", len(found), typ, testdb.OutboxTypes(rows))
	}
	return testdb.Decode[T](t, found[0].Payload)
}

func line(it inventory.Item, q int64) inventory.Line {
	return inventory.Line{ProductID: it.ProductID, Quantity: q}
}

func (e *env) order(lines ...inventory.Line) inventory.ReserveStock {
	return inventory.ReserveStock{OrderID: bus.NewID(), Lines: lines, ExpiresAt: e.clock.now().Add(15 * time.Minute)}
}

func sku(i int) string { return fmt.Sprintf("SKU-%03d", i) }
