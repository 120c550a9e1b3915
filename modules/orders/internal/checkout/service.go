// Package checkout is the orders module's domain: carts priced through the catalog,
// checkout with idempotency keys, and the driver of the checkout saga — the message
// handlers and the timeout sweep that feed the saga state machine (package saga) and
// store what it decides together with the messages it sends, in one transaction.
package checkout

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/jobs"
	"github.com/agora-commerce/agora/internal/longpoll"
	"github.com/agora-commerce/agora/internal/message"
	"github.com/agora-commerce/agora/internal/outbox"
	"github.com/agora-commerce/agora/internal/store"
	"github.com/agora-commerce/agora/modules/catalog"
	"github.com/agora-commerce/agora/modules/orders"
	"github.com/agora-commerce/agora/modules/orders/internal/saga"
)

// Catalog prices products: it answers catalog.GetProducts.
type Catalog interface {
	GetProducts(ctx context.Context, ids []string) ([]catalog.Product, error)
}

// BusCatalog asks the catalog over a bus bound after construction: the bus is built
// from this module's handlers, so it cannot exist before them.
type BusCatalog struct{ b atomic.Pointer[bus.Bus] }

// Bind sets the bus to ask.
func (c *BusCatalog) Bind(b *bus.Bus) { c.b.Store(b) }

// GetProducts asks catalog.GetProducts.
func (c *BusCatalog) GetProducts(ctx context.Context, ids []string) ([]catalog.Product, error) {
	b := c.b.Load()
	if b == nil {
		return nil, message.ErrNoHandler.Withf("the orders module is not started")
	}
	ps, err := bus.Call(ctx, b, catalog.GetProductsRequest, catalog.GetProducts{IDs: ids})
	return ps.Products, err
}

// Options tunes the service. Zero values take the defaults.
type Options struct {
	Timing saga.Timing // default: 30s steps, 3 attempts, 15m reservations
	// SweepEvery is the timeout sweep's safety poll (default 5s): it wakes at the
	// deadlines this process sets, so the poll bounds only how late a deadline set
	// by another replica (one that then died) is seen.
	SweepEvery   time.Duration
	PollInterval time.Duration // how often WaitOrder re-reads the order, for changes made by other replicas (default 2s)
	MaxWait      time.Duration // the longest WaitOrder waits (default 25s)
	KeyRetention time.Duration // how long checkout idempotency keys are kept (default 7 days)
	// SagaEnded, if set, is called once a saga's move to a terminal state has
	// committed, with that state and the saga's age (for metrics).
	SagaEnded func(state orders.SagaState, took time.Duration)
}

func (o Options) withDefaults() Options {
	if o.Timing.StepTimeout <= 0 {
		o.Timing.StepTimeout = 30 * time.Second
	}
	if o.Timing.MaxAttempts <= 0 {
		o.Timing.MaxAttempts = 3
	}
	if o.Timing.ReservationTTL <= 0 {
		o.Timing.ReservationTTL = 15 * time.Minute
	}
	if o.SweepEvery <= 0 {
		o.SweepEvery = 5 * time.Second
	}
	if o.PollInterval <= 0 {
		o.PollInterval = 2 * time.Second
	}
	if o.MaxWait <= 0 {
		o.MaxWait = 25 * time.Second
	}
	if o.KeyRetention <= 0 {
		o.KeyRetention = 7 * 24 * time.Hour
	}
	return o
}

// Service handles the orders module's requests and the saga's messages.
type Service struct {
	db      *store.DB
	outbox  *outbox.Outbox
	catalog Catalog
	repo    Repo
	opts    Options
	log     *slog.Logger
	now     func() time.Time
	changes longpoll.Notifier // wakes WaitOrder calls once a change of their order commits
	sweep   *jobs.Worker[dueSaga]
}

// NewService returns the orders service on db, sending through ob and pricing with cat.
func NewService(db *store.DB, ob *outbox.Outbox, cat Catalog, opts Options, log *slog.Logger) *Service {
	s := &Service{db: db, outbox: ob, catalog: cat, repo: Repo{dialect: db.Dialect}, opts: opts.withDefaults(), log: log,
		now: func() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }}
	s.sweep = s.newSweep()
	return s
}

// Handlers returns the service's request handlers, for the bus.
func (s *Service) Handlers() []bus.RequestHandler {
	return []bus.RequestHandler{
		bus.Handle(orders.GetCartRequest, s.GetCart),
		bus.Handle(orders.SetCartItemRequest, s.SetCartItem),
		bus.Handle(orders.RemoveCartItemRequest, s.RemoveCartItem),
		bus.Handle(orders.PlaceOrderRequest, s.PlaceOrder),
		bus.Handle(orders.GetOrderRequest, s.GetOrder),
		bus.Handle(orders.WaitOrderRequest, s.WaitOrder),
		bus.Handle(orders.ListOrdersRequest, s.ListOrders),
		bus.Handle(orders.CancelOrderRequest, s.CancelOrder),
		bus.Handle(orders.RefundOrderRequest, s.RefundOrder),
		bus.Handle(orders.ListSagasRequest, s.ListSagas),
		bus.Handle(orders.GetSagaRequest, s.GetSaga),
	}
}

// Limits on free text.
const (
	maxIDLen     = 64
	maxReasonLen = 500
	maxHashLen   = 128
)

func invalid(field, format string, args ...any) error {
	return orders.ErrInvalidInput.Withf(format, args...).OnField(field)
}

func checkCustomer(id string) error {
	if id == "" || len(id) > maxIDLen {
		return orders.ErrInvalidInput.Withf("a customer id is required")
	}
	return nil
}

func checkProductID(id string) error {
	if _, err := uuid.Parse(id); err != nil || len(id) != 36 {
		return invalid("path.product_id", "product ids are UUIDs")
	}
	return nil
}
